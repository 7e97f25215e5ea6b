"""The pre-lock checklist (issue 19 item 8): a casebook is not locked with open queries,
unverified records or no investigator review unless the data manager acknowledges an
override with a reason, kept with the lock; and a locked casebook shows no editable form."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import get_resolver, reverse

from cleaning import services as cleaning_services
from cleaning.models import DataQuery
from core.locks import lock_patient_path
from core.models import Signature
from core.signatures import signature_apply
from patients.models import CasebookLock
from tests.factories import PASSWORD, PatientFactory
from tests.integration.test_lock_walker import LOCK_SCREENS, locked_objects  # noqa: F401 - the fixture
from tests.integration.test_site_walls import _fill, _model_for, _walk

pytestmark = pytest.mark.django_db


def lock(world, patient, **kwargs):  # type: ignore[no-untyped-def]
    return cleaning_services.casebook_lock_checked(
        user=world["data_manager"], patient=patient, password=PASSWORD, **kwargs
    )


def make_clear(world, patient):  # type: ignore[no-untyped-def]
    cleaning_services.record_verify(user=world["monitor"], target=patient)
    signature_apply(patient, user=world["investigator"], password=PASSWORD, meaning=Signature.Meaning.REVIEWED)


def test_lock_is_refused_while_the_checklist_is_not_clear(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-101")
    with pytest.raises(ValidationError) as exc:
        lock(world, patient)
    text = " ".join(exc.value.message_dict["override"])
    assert "1 of 1 record not source verified" in text and "no valid investigator review signature" in text
    with pytest.raises(ValidationError) as exc:
        lock(world, patient, override=True, override_reason="  ")
    assert "override_reason" in exc.value.message_dict
    assert not CasebookLock.objects.filter(patient=patient).exists()
    # An unclosed query alone blocks too.
    make_clear(world, patient)
    query = cleaning_services.query_raise(user=world["monitor"], target=patient, field_name="", question="Birth year?")
    with pytest.raises(ValidationError, match="1 unclosed query"):
        lock(world, patient)
    cleaning_services.query_close(user=world["monitor"], query=query, note="fine")
    assert DataQuery.objects.get(pk=query.pk).state == "closed"
    locked = lock(world, patient)
    assert locked.state == "locked" and "checklist" not in locked.reason


def test_override_with_reason_is_kept_with_the_lock_and_audited(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-102")
    locked = lock(world, patient, override=True, override_reason="Site closed; sponsor agreed (memo 12)")
    assert locked.state == "locked"
    assert "Locked over the pre-lock checklist (1 of 1 record not source verified" in locked.reason
    assert locked.reason.endswith("Site closed; sponsor agreed (memo 12)")
    assert (
        locked.history.exclude(history_change_reason__startswith="signed:")
        .order_by("-history_id")
        .first()
        .history_change_reason
        == locked.reason
    )
    assert Signature.objects.filter(meaning=Signature.Meaning.LOCK, object_id=locked.pk).exists()


def test_lock_page_shows_the_checklist_and_needs_the_override(world, login):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-103")
    client = login(world["data_manager"])
    url = reverse("casebook_lock", args=[patient.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="lock-checklist"' in page and "1 of 1 record not source verified" in page
    refused = client.post(url, {"action": "locked", "password": PASSWORD})
    assert refused.status_code == 200 and "The pre-lock checklist is not clear" in refused.content.decode()
    assert not CasebookLock.objects.filter(patient=patient).exists()
    done = client.post(
        url, {"action": "locked", "password": PASSWORD, "override": "on", "override_reason": "closing the site"}
    )
    assert done.status_code == 302
    assert "closing the site" in CasebookLock.objects.get(patient=patient).reason
    # Freezing is not locking: no checklist needed.
    other = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-104")
    frozen = client.post(reverse("casebook_lock", args=[other.pk]), {"action": "frozen", "password": PASSWORD})
    assert frozen.status_code == 302


FORM_POST = re.compile(r"<form\b[^>]*method=[\"']?post", re.IGNORECASE)
ALLOWED_FORMS = ("/accounts/logout/", "logout")


@pytest.mark.parametrize("role", ["coordinator_a", "investigator", "monitor", "data_manager"])
def test_a_locked_casebook_shows_no_editable_form(client, world, locked_objects, role):  # type: ignore[no-untyped-def]  # noqa: F811
    """Every page naming an object of a locked casebook (GET), as each role: no POST form
    but the sign-out form (and the data manager's own lock screen, where unlocking is)."""
    client.force_login(world[role], backend="django.contrib.auth.backends.ModelBackend")
    pages, problems = 0, []
    for regex, pattern in _walk(get_resolver()):
        if regex.startswith(("admin/", "api/")) or pattern.name in LOCK_SCREENS:
            continue
        values, fillable, casebook = {}, True, False
        for kwarg in pattern.pattern.regex.groupindex:
            model = _model_for(kwarg, pattern.callback)
            if model is None or model not in locked_objects:
                fillable = False
                break
            values[kwarg] = locked_objects[model].pk
            # A casebook object is one the lock reaches (through its patient); trial-level
            # records (simulation runs, CDISC packages) are not part of any casebook.
            casebook = casebook or lock_patient_path(model) is not None
        if not fillable or not casebook:
            continue
        url = _fill(regex, values)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        pages += 1
        body = response.content.decode()
        for match in FORM_POST.finditer(body):
            tag = body[match.start() : body.find(">", match.start()) + 1]
            if not any(allowed in tag for allowed in ALLOWED_FORMS):
                problems.append(f"{role} GET {url}: {tag}")
    assert pages > 10, pages
    assert not problems, "\n".join(problems)
