"""Voiding a record entered in error (issue 19 item 4): never deleted, kept with who,
when and why, audited, refused on a locked casebook, left out of every clinical read and
export; a signed DLT decision on a voided AE is flagged for re-adjudication."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from cleaning import services as cleaning_services
from core.errors import RecordLocked
from dosing.models import LabPanel
from exchange import exports
from patients import services as patient_services
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.models import AdverseEvent
from tests.factories import PASSWORD
from tests.integration.test_safety_services import FATIGUE, adjudicate, ae_data, escalation_seq, make_patient, term

pytestmark = pytest.mark.django_db


def void(world, record, reason="entered in error: wrong patient", user="coordinator_a"):  # type: ignore[no-untyped-def]
    return cleaning_services.casebook_record_void(user=world[user], target=record, reason=reason)


def test_void_needs_a_reason_is_audited_kept_and_excluded(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    with pytest.raises(ValidationError) as exc:
        void(world, ae, reason="  ")
    assert "void_reason" in exc.value.message_dict
    for other in ("coordinator_b", "monitor", "sponsor"):
        with pytest.raises(PermissionDenied):
            void(world, ae, user=other)
    before = escalation_seq(world["trial"])
    voided = void(world, ae)
    assert voided.voided_by == world["coordinator_a"] and voided.void_reason == "entered in error: wrong patient"
    assert escalation_seq(world["trial"]) > before
    assert ae.history.order_by("-history_id").first().history_change_reason == "voided: entered in error: wrong patient"
    # Kept, never deleted, but out of the clinical reads.
    assert AdverseEvent.all_objects.filter(pk=ae.pk).exists()
    assert not AdverseEvent.objects.filter(pk=ae.pk).exists()
    assert list(safety_selectors.ae_list(world["investigator"], patient=patient)) == []
    summary = safety_selectors.ae_summary(world["investigator"], world["trial"])
    assert ae.term.term not in str(summary)
    with pytest.raises(ValidationError, match="already voided"):
        cleaning_services.casebook_record_void(
            user=world["coordinator_a"], target=AdverseEvent.all_objects.get(pk=ae.pk), reason="again"
        )


def test_voided_records_leave_the_exports(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    kept = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=2))
    gone = safety_services.ae_record(
        user=world["coordinator_a"], patient=patient, data=ae_data(grade=1, term=term(FATIGUE))
    )
    void(world, gone)
    rows = [row for batch in exports.export_batches("ae", world["trial"], [world["site_a"].pk], None) for row in batch]
    ids = {row[3] for row in rows}
    assert kept.pk in ids and gone.pk not in ids


def test_void_is_refused_on_a_locked_casebook(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(RecordLocked):
        void(world, ae)
    assert AdverseEvent.objects.get(pk=ae.pk).voided_at is None


def test_a_signed_dlt_on_a_voided_ae_is_flagged_and_the_patient_pending(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    signed = adjudicate(world, patient, adverse_event=ae)
    as_of = datetime.date(2024, 7, 1)
    assert safety_selectors.patient_dlt_review(patient, as_of).status == "dlt"
    void(world, ae)
    review = safety_selectors.patient_dlt_review(patient, as_of)
    assert review.on_voided_aes == [signed]
    assert review.status == "pending"
    adjudicate(world, patient, adverse_event=ae, is_dlt=False, rationale="AE entered in error", supersedes=signed)
    review = safety_selectors.patient_dlt_review(patient, as_of)
    assert review.on_voided_aes == [] and review.status != "pending"


def test_a_voided_lab_panel_no_longer_feeds_the_checks(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    panel = LabPanel.objects.create(patient=patient, date=datetime.date(2024, 4, 20), platelets=Decimal("5"))
    assert [p.pk for p in patient.lab_panels.all()] == [panel.pk]
    assert safety_selectors.lab_proposals(world["coordinator_a"], patient)
    void(world, panel, reason="another patient's labs")
    assert list(patient.lab_panels.all()) == []
    assert safety_selectors.lab_proposals(world["coordinator_a"], patient) == []


def test_void_screen_needs_the_reason_and_voids(world, login):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    client = login(world["coordinator_a"])
    assert reverse("ae_void", args=[ae.pk]) in client.get(reverse("patient_safety", args=[patient.pk])).content.decode()
    url = reverse("ae_void", args=[ae.pk])
    assert "This field is required" in client.post(url, {"version": ae.version}).content.decode()
    done = client.post(url, {"version": ae.version, "void_reason": "wrong patient"})
    assert done.status_code == 302
    assert AdverseEvent.all_objects.get(pk=ae.pk).void_reason == "wrong patient"
    assert client.get(url).status_code == 404  # voided: no longer a current record
    assert login(world["coordinator_b"]).get(reverse("ae_void", args=[ae.pk])).status_code == 404


def test_a_query_on_a_voided_record_still_opens_and_refuses_a_correction(world, login):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    query = cleaning_services.query_raise(user=world["monitor"], target=ae, field_name="grade", question="Grade?")
    void(world, ae)
    assert login(world["coordinator_a"]).get(reverse("query_detail", args=[query.pk])).status_code == 200
    with pytest.raises(ValidationError, match="voided"):
        cleaning_services.query_answer(
            user=world["coordinator_a"], query=query, text="x", correction={"grade": 3}, reason="r"
        )


def test_the_dlt_page_shows_the_flag(world, login):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    patient = make_patient(world)
    ae = safety_services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adjudicate(world, patient, adverse_event=ae)
    void(world, ae, reason="duplicate entry")
    page = login(world["investigator"]).get(reverse("patient_safety", args=[patient.pk])).content.decode()
    assert 'data-testid="dlt-on-voided-ae"' in page and "duplicate entry" in page
