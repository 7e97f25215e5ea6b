"""A sponsor's API token: reads exports of its trials only, never writes (but asks for CDISC
packages, SPONSOR_REQUESTS), never sees who.

The walk below visits every /api/v1/ URL pattern of the project (found from the URL
resolver as tests/integration/test_site_walls.py does, so a new endpoint is covered
without editing this file) with a sponsor's token, filling object arguments with
records of the sponsor's own trial: every unsafe method must answer 403 or 405 (404
where the sponsor may not even see the object), and no body may show a user's name.
"""

import re
from decimal import Decimal

import pytest
from django.urls import get_resolver

from core.tokens import token_issue
from tests.factories import SCOPED_FACTORIES, DoseLevelFactory, UserFactory
from tests.integration.test_site_walls import _fill, _model_for, _walk
from trial.models import EscalationSignoff

UNSAFE = ("post", "put", "patch", "delete")
# Collection URLs that answer a sponsor's write with 404 ("no trial in which you enter
# data") rather than 403: tests/integration/test_api.py pins that answer for patients/.
# Still no write; to be turned into 403 with that test.
NOT_FOUND_WRITES: set[str] = set()
# The one write a sponsor may make (issue 18): asking for a CDISC package records a build job
# and changes no trial data (exchange/api_packages.py). 202 queued, 200 the open build.
SPONSOR_REQUESTS = re.compile(r"^/api/v1/trials/\d+/cdisc-packages/$")


@pytest.fixture
def own_trial_objects(world):  # type: ignore[no-untyped-def]
    """One object of every scoped model in the sponsor's trial, signed by a named user."""
    signer = UserFactory(username="signer_x", first_name="Hieronymus", last_name="Quackenbush")
    objects = {model: make(world["trial"], world["site_b"]) for model, make in SCOPED_FACTORIES.items()}
    DoseLevelFactory(trial=world["trial"], level=2, dose_mg_m2=Decimal("0.8"))
    EscalationSignoff.objects.create(
        trial=world["trial"], decision="escalate", dose_level=2, signed_by_name=signer.get_full_name()
    )
    from analysis.services import computation_run

    computation_run(world["trial"].pk, "escalation")  # its history shows who signed
    names = {signer.get_full_name(), signer.username, "Walker Test"}
    for key in ("coordinator_a", "coordinator_b", "investigator", "admin"):
        names |= {world[key].username, world[key].get_full_name()}
    # Names short enough to occur inside ordinary words ("inv" in "invalid") prove nothing.
    return objects, {name for name in names if len(name) >= 6}


def _api_urls(objects):  # type: ignore[no-untyped-def]
    for regex, pattern in _walk(get_resolver()):
        if not regex.startswith("api/v1/"):
            continue
        values, has_object = {}, False
        for kwarg in pattern.pattern.regex.groupindex:
            if kwarg == "format":
                values[kwarg] = "json"
                continue
            model = _model_for(kwarg, pattern.callback)
            assert model in objects, f"{regex}: cannot fill <{kwarg}>"
            values[kwarg] = objects[model].pk
            has_object = True
        yield _fill(regex, values), has_object


@pytest.mark.django_db
def test_sponsor_token_cannot_write_on_any_endpoint(client, world, own_trial_objects):  # type: ignore[no-untyped-def]
    objects, _ = own_trial_objects
    _, key = token_issue(user=world["sponsor"], name="walker")
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    problems, checked = [], 0
    for url, has_object in _api_urls(objects):
        allowed = {403, 405, 404} if has_object or url in NOT_FOUND_WRITES else {403, 405}
        for method in UNSAFE:
            if method == "post" and SPONSOR_REQUESTS.match(url):
                response = client.post(url, data={}, content_type="application/json", **headers)
                checked += 1
                if response.status_code not in {200, 202} or response.json()["requested_by"] != "sponsor":
                    problems.append(f"POST {url}: {response.status_code} {response.content[:120]!r}")
                continue
            response = getattr(client, method)(url, data={}, content_type="application/json", **headers)
            checked += 1
            if response.status_code not in allowed:
                problems.append(f"{method.upper()} {url}: {response.status_code} {response.content[:120]!r}")
    assert not problems, "\n".join(problems)
    assert checked > 40


@pytest.mark.django_db
def test_sponsor_sees_no_user_names(client, world, own_trial_objects):  # type: ignore[no-untyped-def]
    objects, names = own_trial_objects
    _, key = token_issue(user=world["sponsor"], name="walker")
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    problems = []
    trial = world["trial"]
    urls = [url for url, _ in _api_urls(objects)]
    urls += [
        f"/api/v1/exports/{name}/?trial={trial.code}&format={fmt}"
        for name in ("dm", "ex", "ae", "ds", "rs", "dv", "adtte")
        for fmt in ("csv", "json")
    ]
    for url in urls:
        response = client.get(url, **headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        shown = sorted(n for n in names if n and n in text)
        if shown:
            problems.append(f"GET {url}: shows {shown}")
        if response.status_code >= 500:
            problems.append(f"GET {url}: {response.status_code}")
    assert not problems, "\n".join(problems)
    history = client.get(f"/api/v1/trials/{trial.pk}/escalation/", **headers).json()["history"]
    assert history and {h["signed_by"] for h in history} == {"investigator"}  # the role, not the name


@pytest.mark.django_db
def test_sponsor_gets_404_outside_its_trials(client, world):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=world["sponsor"], name="t")
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    other = world["other"]
    for ref in (other.code, str(other.pk), "NO-SUCH-TRIAL"):
        for name in ("dm", "ae", "adtte"):
            response = client.get(f"/api/v1/exports/{name}/?trial={ref}", **headers)
            assert response.status_code == 404, (ref, name)
            assert other.title not in response.content.decode()
    assert client.get(f"/api/v1/trials/{other.pk}/", **headers).status_code == 404
