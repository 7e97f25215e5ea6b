"""Security tests of issue 11, each a walk over the project's own URL patterns, so a new
endpoint is covered without editing this file.

Elsewhere, not repeated here: the coordinator-of-site-A walk (test_site_walls.py), login
lockout, session expiry and tokens (test_auth.py), a sponsor token cannot write
(test_sponsor_api.py), the database triggers on audit tables (test_audit.py
test_database_refuses_update_and_delete_of_audit_rows), ``check --deploy`` clean
(test_setup.py test_deploy_check_passes_with_production_settings).
"""

import re
import subprocess
import sys
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import get_resolver

from core.models import Signature
from core.tokens import token_issue
from tests.factories import SCOPED_FACTORIES
from tests.integration.test_site_walls import (
    _fill,
    _model_for,
    _view_model,
    _walk,
    make_out_of_scope,
    walk_out_of_scope,
)
from trial.access import CAPABILITIES
from trial.models import RoleGrant
from trial.permissions import WRITE_CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("coordinator_a", "investigator", "sponsor", "admin", "data_manager", "monitor")
REFUSED = {401, 403, 404, 405}
UNSAFE = ("post", "put", "patch", "delete")
# The user's own session and account, not trial data: any signed-in user may post here.
ACCOUNT_URLS = {"logout", "session_keepalive", "password_change", "login", "api_tokens"}
# Pages that serve two capabilities, each action checking its own (the views say which);
# every role they accept must hold one of these.
SHARED_WRITE_PAGES = {
    "patient_enrol": {"enter_data", "sign"},  # the coordinator enrols, the investigator confirms eligibility
    "query_detail": {"enter_data", "raise_query"},  # the site answers; the query's raisers close or re-open
}
# Asking for a CDISC package (issue 18) writes no trial data: a build job, for the holders of
# "export", sponsors included (exchange/api_packages.py). Accepted from exporters only.
EXPORT_REQUESTS = {"cdisc_packages", "api-cdisc-packages"}


def _role(world, key):  # type: ignore[no-untyped-def]
    return RoleGrant.objects.get(user=world[key], trial=world["trial"]).role


def _login(client, user):  # type: ignore[no-untyped-def]
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def own_objects(world):  # type: ignore[no-untyped-def]
    """One object of every scoped model in trial T at site A: in scope for every role."""
    return {model: make(world["trial"], world["site_a"]) for model, make in SCOPED_FACTORIES.items()}


def _routed_writes(callback, is_api: bool) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """The unsafe methods a view routes at all (any other answers 405 by construction)."""
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route
        return tuple(m for m in UNSAFE if m in actions)
    holder = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if holder is not None:
        return tuple(m for m in UNSAFE if hasattr(holder, m))
    return UNSAFE if is_api else ("post",)  # a function view: a page takes its writes by POST


def _urls(objects):  # type: ignore[no-untyped-def]
    """(url, url name, is_api, routed unsafe methods) for every non-admin URL pattern,
    objects filled in; the ``.json`` twins of API routes are the same views, left out."""
    for regex, pattern in _walk(get_resolver()):
        kwargs = pattern.pattern.regex.groupindex
        if regex.startswith("admin/") or "format" in kwargs:
            continue
        values = {}
        for kwarg in kwargs:
            model = _model_for(kwarg, pattern.callback)
            assert model in objects, f"{regex}: cannot fill <{kwarg}>"
            values[kwarg] = objects[model].pk
        url = _fill(regex, values)
        is_api = url.startswith("/api/")
        yield url, pattern.name, is_api, _routed_writes(pattern.callback, is_api)


# --- (a) the walls, for every role --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r for r in ROLES if r != "coordinator_a"])  # coordinator: test_site_walls.py
def test_every_role_reaches_nothing_of_another_trial(client, world, role):  # type: ignore[no-untyped-def]
    objects, markers = make_out_of_scope(world, site_wall=False)  # trial-wide roles see site B: trial U instead
    problems, checked = walk_out_of_scope(client, world[role], objects, markers, quick=True)
    assert not problems, "\n".join(problems)
    assert checked > 80


@pytest.fixture
def crawler(world):  # type: ignore[no-untyped-def]
    """A user holding every role of trial T (coordinator at site A): sees every form."""
    from tests.factories import UserFactory, grant

    user = UserFactory(username="crawler")
    for role in RoleGrant.Role.values:
        grant(user, world["trial"], role, world["site_a"] if role == RoleGrant.Role.COORDINATOR else None)
    return user


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str | None] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attributes = dict(attrs)
        if tag == "form" and (attributes.get("method") or "").lower() == "post":
            self.actions.append(attributes.get("action"))


def _form_targets(user, urls) -> set[str]:  # type: ignore[no-untyped-def]
    """Where the post forms of every page ``user`` can open send their data (path only),
    plus the POST-only pages (GET answers 405)."""
    client = _login(Client(), user)
    targets = set()
    for url, name, is_api, _ in urls:
        if is_api or name in ACCOUNT_URLS:
            continue
        response = client.get(url)
        if response.status_code == 405:
            targets.add(url)
        elif response.status_code == 200 and "html" in response.get("Content-Type", ""):
            parser = _Forms()
            parser.feed(response.content.decode(errors="replace"))
            targets |= {(action or url).split("#")[0].split("?")[0] for action in parser.actions}
    return targets


def _audit_rows() -> dict[str, dict[int, tuple]]:  # type: ignore[type-arg]
    models = [m for m in apps.get_models() if m.__name__.startswith("Historical")] + [Signature]
    rows = {}
    for model in models:
        fields = [f.attname for f in model._meta.concrete_fields]
        rows[model.__name__] = {row[0]: row for row in model.objects.values_list("pk", *fields)}
    return rows


def _accepted(response, is_api: bool) -> bool:  # type: ignore[no-untyped-def]
    """Past the capability check. The API validates the body before its service checks
    the capability, so there a 400 proves nothing: only a success counts. A page checks
    the capability before its form, so its form answered again (200) counts too."""
    if is_api:
        return 200 <= response.status_code < 300
    if response.status_code in REFUSED:
        return False
    return not (response.status_code == 302 and "/login" in response["Location"])


@pytest.mark.django_db
def test_writes_need_the_capability_and_leave_audit_rows_alone(client, world, own_objects, crawler):  # type: ignore[no-untyped-def]
    """Every write endpoint (every routed unsafe API method, every page's post form), as
    every role, in its own trial and site.

    Whatever one endpoint accepts (a page even only to answer "this field is required"),
    all the roles it accepts must share a write capability: a sponsor (none) is accepted
    nowhere, a monitor or data manager never where only coordinators enter data, a
    coordinator never where only investigators sign or adjudicate or admins configure.
    And no request, accepted or not, changes an existing history row or signature.
    """
    accepted: dict[tuple[str, str], set[str]] = defaultdict(set)
    problems = []
    urls = list(_urls(own_objects))
    pages = _form_targets(crawler, urls)
    writes = [(url, name, is_api, methods) for url, name, is_api, methods in urls if is_api or url in pages]
    for role in ROLES:
        user = world[role]
        _, key = token_issue(user=user, name="capabilities")
        _login(client, user)
        before = _audit_rows()
        with transaction.atomic():  # each role's walk is rolled back: no role sees another's writes
            for url, name, is_api, methods in writes:
                if name in ACCOUNT_URLS:
                    continue
                for method in methods:
                    if "_auth_user_id" not in client.session:
                        _login(client, user)
                    if is_api:
                        response = getattr(client, method)(
                            url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
                        )
                    else:
                        response = getattr(client, method)(url, {})
                    if response.status_code >= 500:
                        problems.append(f"{role} {method.upper()} {url}: {response.status_code}")
                    elif _accepted(response, is_api):
                        accepted[(f"{method.upper()} {url}", name)].add(role)
            after = _audit_rows()
            transaction.set_rollback(True)
        for model, rows in before.items():
            changed = [pk for pk, row in rows.items() if after[model].get(pk) != row]
            if changed:
                problems.append(f"{role}: the walk changed or deleted {model} rows {changed}")
    for (endpoint, name), roles in sorted(accepted.items()):
        capabilities = [CAPABILITIES[_role(world, r)] & WRITE_CAPABILITIES for r in roles]
        if name in EXPORT_REQUESTS:
            if not all("export" in CAPABILITIES[_role(world, r)] for r in roles):
                problems.append(f"{endpoint}: accepted from {sorted(roles)}; needs export")
        elif name in SHARED_WRITE_PAGES:
            if not all(held & SHARED_WRITE_PAGES[name] for held in capabilities):
                problems.append(f"{endpoint}: accepted from {sorted(roles)}; needs {SHARED_WRITE_PAGES[name]}")
        elif not frozenset.intersection(*capabilities):
            problems.append(f"{endpoint}: accepted from {sorted(roles)}, who share no write capability")
    assert not problems, "\n".join(problems)
    assert not any("sponsor" in roles for (_, name), roles in accepted.items() if name not in EXPORT_REQUESTS)
    assert {name for _, name in accepted} >= EXPORT_REQUESTS  # the exporters' requests were reached
    assert len(pages) > 15 and len(accepted) > 10, (sorted(pages), sorted(accepted))  # it reached the real ones


# --- (b) CSRF ---------------------------------------------------------------------------------


def _row_counts() -> dict[str, int]:
    # Sessions and sign-in records are the test's own sign-ins, not data.
    models = [m for m in apps.get_models() if m._meta.app_label not in {"sessions", "axes"}]
    return {m._meta.label: m._base_manager.count() for m in models}


@pytest.mark.django_db
def test_every_form_and_every_write_refuses_a_request_without_the_csrf_token(world, own_objects, crawler):  # type: ignore[no-untyped-def]
    """Every page is searched for <form method="post">; each form's target, and every
    other URL, is posted to with a signed-in session cookie but without the token: 403,
    and not one row written anywhere. (The check runs before any view, whoever posts.)"""
    urls = list(_urls(own_objects))
    forms = _form_targets(crawler, urls)
    assert len(forms) > 15, forms  # the walk found the forms
    before = _row_counts()
    problems = []
    attacker = _login(Client(enforce_csrf_checks=True), crawler)
    for target in sorted(forms | {url for url, _, _, _ in urls}):
        response = attacker.post(target, {"reason_for_change": "csrf", "version": 1})
        if response.status_code != 403:
            problems.append(f"POST {target} without a CSRF token: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert _row_counts() == before


# --- (c) audit rows cannot be changed through any endpoint -----------------------------------


def _is_audit_model(model) -> bool:  # type: ignore[no-untyped-def]
    return model is Signature or (model is not None and model.__name__.startswith("Historical"))


def test_no_endpoint_is_built_on_an_audit_model_for_writing():  # type: ignore[no-untyped-def]
    problems = []
    for regex, pattern in _walk(get_resolver()):
        model = _view_model(pattern.callback)
        if not _is_audit_model(model):
            continue
        actions = getattr(pattern.callback, "actions", None) or {}
        writes = {m for m in actions if m in UNSAFE}
        holder = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
        allowed = {m for m in getattr(holder, "http_method_names", []) if m in UNSAFE} if not actions else writes
        if allowed:
            problems.append(f"{regex}: {model.__name__} with {sorted(allowed)}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_admin_offers_no_change_or_delete_of_audit_rows(admin_client, admin_user, world, rf):  # type: ignore[no-untyped-def]
    request = rf.get("/admin/")
    request.user = admin_user
    problems = []
    for model, model_admin in admin.site._registry.items():
        if model.__name__.startswith("Historical"):
            problems.append(f"{model.__name__} is registered in the admin")
        if model is Signature:
            for permission in ("add", "change", "delete"):
                checker = getattr(model_admin, f"has_{permission}_permission")
                if checker(request) if permission == "add" else checker(request, None):
                    problems.append(f"the admin can {permission} a Signature")
    assert not problems, "\n".join(problems)

    # simple_history's per-version page of an audited model: its form may save the record
    # again (an ordinary audited edit, with a reason), never rewrite a stored version,
    # also when asked to "change history" (SIMPLE_HISTORY_EDIT stays off).
    trial = world["trial"]
    trial.title = "Trial T renamed"
    trial._change_reason = "renamed"
    trial.save()
    versions = list(trial.history.order_by("history_id").values_list())
    oldest = trial.history.order_by("history_id").first()
    url = f"/admin/trial/trial/{trial.pk}/history/{oldest.history_id}/"
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name in form.fields if (value := form.initial.get(name)) not in (None, False)}
    data.update(title="Reverted", reason_for_change="revert through the history page", _change_history="1")
    admin_client.post(url, data)
    after = list(trial.history.order_by("history_id").values_list())
    assert after[: len(versions)] == versions  # every stored version as it was
    assert all(h.history_change_reason for h in trial.history.all())  # any new one has its reason
    delete = admin_client.post(f"/admin/trial/historicaltrial/{oldest.history_id}/delete/", {"post": "yes"})
    assert delete.status_code in {302, 404}  # no admin page for history rows (302: to the admin index)
    assert list(trial.history.order_by("history_id").values_list())[: len(versions)] == versions


# --- (e) static security lint -------------------------------------------------------------------

# Every suppressed S rule (ruff's bandit port) without its reason on the same line, reviewed
# as (file, rule): why it is safe.
REVIEWED_NOQA = {
    ("exchange/exports.py", "S608"): "SQL text is assembled from the module's own table names and column "
    "expressions (Django model metadata); every value from a request is a query parameter.",
    ("exchange/bundle.py", "S101"): "type narrowing for mypy after the trial row was created; never user input.",
    ("dosing/services.py", "S101"): "type narrowing: the schedule rule returned a complete evaluation just above.",
    ("bench/generate.py", "S608"): "benchmark data generator: table and column names from Django model metadata, "
    "no input from anyone.",
}
NOQA_S = re.compile(r"#\s*n[o]qa:\s*([A-Z0-9, ]*S\d{3}[A-Z0-9, ]*)(.*)$")


def test_every_security_lint_exception_is_justified():  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ruff")), "check", "--select", "S", "--output-format", "concise", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    problems = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".venv/", "node_modules/")) or "/migrations/" in relative:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            match = NOQA_S.search(line)
            if not match:
                continue
            reason = match.group(2).strip(" -():")
            for rule in re.findall(r"S\d{3}", match.group(1)):
                if len(reason) < 8 and (relative, rule) not in REVIEWED_NOQA:
                    problems.append(f"{relative}:{number}: noqa {rule} without a reason (add one, or review it here)")
    assert not problems, "\n".join(problems)
