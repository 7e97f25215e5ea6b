"""The site wall: every URL pattern of the project, walked as a coordinator of site A
against objects of site B (and of a trial he or she has no role in).

The walker finds the patterns itself and fills their arguments from the argument's
name (``<model>_id``) or the view's model, so a new endpoint is covered without
editing this test. An argument it cannot fill fails the test, with what to rename.
"""

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from core.tokens import token_issue
from tests.factories import SCOPED_FACTORIES

SAFE_DENIALS = {403, 404}


def _walk(resolver, prefix=""):  # type: ignore[no-untyped-def]
    for entry in resolver.url_patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            yield from _walk(entry, regex.rstrip("$"))
        elif isinstance(entry, URLPattern):
            yield regex, entry


def _view_model(callback):  # type: ignore[no-untyped-def]
    for holder in (getattr(callback, "cls", None), getattr(callback, "view_class", None)):
        if holder is None:
            continue
        queryset = getattr(holder, "queryset", None)
        if queryset is not None:
            return queryset.model
        if getattr(holder, "model", None) is not None:
            return holder.model
    return None


def _model_for(kwarg, callback):  # type: ignore[no-untyped-def]
    if kwarg in {"pk", "id"}:
        return _view_model(callback)
    if kwarg.endswith("_id"):
        wanted = kwarg[: -len("_id")].replace("_", "")
        for model in apps.get_models():
            if model._meta.model_name == wanted:
                return model
    return None


def _fill(regex, values):  # type: ignore[no-untyped-def]
    # DRF's API root spells its suffix group with the dot inside: (?P<format>\.[a-z0-9]+/?)
    path = re.sub(r"\(\?P<format>\\\.[^)]*\)", ".json", regex)
    for name, value in values.items():
        path = re.sub(rf"\(\?P<{name}>[^)]*\)", str(value), path)
    path = path.rstrip("$").replace("/?", "/")
    path = re.sub(r"\\Z$", "", path)
    path = re.sub(r"\\(.)", r"\1", path)  # regex escapes such as \- and \. are literal characters
    assert "(?P<" not in path, path
    return "/" + path


def make_out_of_scope(world, site_wall: bool = True):  # type: ignore[no-untyped-def]
    """One object of every scoped model beyond the user's walls, plus the strings that must
    never leak. ``site_wall``: site data at site B of the user's own trial (for a
    coordinator of site A); otherwise everything in the other trial U (for the
    trial-wide roles, who see every site of trial T)."""
    objects, markers = {}, {world["other"].code, world["other"].title}
    for model, make in SCOPED_FACTORIES.items():
        site_level = getattr(model, "scope_site_path", None) is not None
        obj = (
            make(world["trial"], world["site_b"]) if site_level and site_wall else make(world["other"], world["site_c"])
        )
        objects[model] = obj
        if site_level:
            markers.add(str(obj))
    scoped = {m for m in apps.get_models() if getattr(m, "scope_trial_path", None)}
    missing = scoped - set(SCOPED_FACTORIES)
    assert not missing, f"add a factory to tests.factories.SCOPED_FACTORIES for {sorted(m.__name__ for m in missing)}"
    return objects, markers


@pytest.fixture
def out_of_scope(world):  # type: ignore[no-untyped-def]
    return make_out_of_scope(world)


@pytest.mark.django_db
def test_coordinator_of_site_a_reaches_nothing_of_site_b(client, world, out_of_scope):  # type: ignore[no-untyped-def]
    problems, checked = walk_out_of_scope(client, world["coordinator_a"], *out_of_scope)
    assert not problems, "\n".join(problems)
    assert checked > 80  # the walker really found the project's URLs


def walk_out_of_scope(client, user, objects, markers, quick=False):  # type: ignore[no-untyped-def]
    """Every URL pattern x GET/POST/PATCH/DELETE as ``user``, object arguments filled with
    ``objects``: returns (problems, requests made). Also used for every role by
    tests/integration/test_security.py, ``quick``: without the admin and the ``.json``
    twins (the same views; both walked here) and, where nothing can be reached or
    changed, GET only (lists) or GET and POST (pages: a page answers PATCH or DELETE as GET).
    """
    _, key = token_issue(user=user, name="walker")
    api_headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    checked, problems = 0, []

    for regex, pattern in _walk(get_resolver()):
        kwargs = list(pattern.pattern.regex.groupindex)
        is_admin = regex.startswith("admin/")
        if quick and (is_admin or "format" in kwargs):
            continue
        values, object_kwargs = {}, []
        for kwarg in kwargs:
            if kwarg == "format":
                values[kwarg] = "json"
                continue
            if is_admin:  # the admin is for staff only: every URL must bounce to its login
                values[kwarg] = "1" if "id" in kwarg else "patients"
                continue
            model = _model_for(kwarg, pattern.callback)
            if model is None or model not in objects:
                problems.append(
                    f"{regex}: cannot fill <{kwarg}>; name it <model>_id or give the view a scoped queryset"
                )
                continue
            values[kwarg] = objects[model].pk
            object_kwargs.append(kwarg)
        url = _fill(regex, values)
        headers = api_headers if url.startswith("/api/") else {}
        methods = ("get", "post", "patch", "delete")
        if quick:
            methods = methods if (object_kwargs and headers) else ("get", "post") if object_kwargs else ("get",)
        for method in methods:
            if "_auth_user_id" not in client.session:  # the walk passes through logout URLs
                client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
            response = getattr(client, method)(url, **headers)
            checked += 1
            body = response.content.decode(errors="replace")
            leaked = [m for m in markers if m in body]
            if leaked:
                problems.append(f"{method.upper()} {url}: body shows out-of-scope data {leaked}")
            if response.status_code >= 500:
                problems.append(f"{method.upper()} {url}: {response.status_code}")
            elif is_admin and pattern.name in {"login", "logout"}:
                pass  # the admin's own sign-in pages: checked for leaks above, nothing else
            elif is_admin:
                if response.status_code != 302 or "/admin/login/" not in response["Location"]:
                    problems.append(
                        f"{method.upper()} {url}: admin answered {response.status_code}, not a redirect to login"
                    )
            elif object_kwargs and response.status_code not in SAFE_DENIALS | {405}:
                problems.append(f"{method.upper()} {url}: answered {response.status_code}, expected 404 or 403")
            elif not object_kwargs and method == "get" and response.status_code == 404:
                # A URL without object arguments exists for everyone: a 404 here means the
                # walker built the path wrong, and would hide a leak behind a false pass.
                problems.append(f"GET {url}: 404 on a URL with no object argument (walker built it wrong?)")
    return problems, checked


@pytest.mark.django_db
def test_user_without_role_sees_nothing(client, world):  # type: ignore[no-untyped-def]
    from tests.factories import PatientFactory

    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    client.force_login(world["nobody"], backend="django.contrib.auth.backends.ModelBackend")
    assert world["trial"].code not in client.get("/").content.decode()
    assert client.get(f"/trials/{world['trial'].pk}/").status_code == 404
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    _, key = token_issue(user=world["nobody"], name="t")
    body = client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert body["count"] == 0


@pytest.mark.django_db
def test_register_form_offers_only_own_sites_and_refuses_site_b(client, world):  # type: ignore[no-untyped-def]
    from patients.models import Patient

    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    url = f"/trials/{world['trial'].pk}/patients/new/"
    page = client.get(url).content.decode()
    assert "Site A hospital" in page and "Site B hospital" not in page
    response = client.post(
        url, {"site": world["site_b"].pk, "subject_id": "SB-123", "sex": "male", "race": "white", "birth_year": 1970}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Patient.objects.filter(subject_id="SB-123").exists()
