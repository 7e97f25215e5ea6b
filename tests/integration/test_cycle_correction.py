"""Correcting a cycle after first entry (issue 12: a query on a cycle's day-1 date).

dosing.services.cycle_update re-runs the first-entry rules on the corrected values,
recomputes what they derive, moves the next cycle's due date with a moved day 1, and
writes all of it with the reason, or nothing. The screen, the API PATCH and a query's
correction all go through it.
"""

import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from cleaning import services as cleaning_services
from cleaning.models import QueryMessage
from core.errors import EditConflict, RecordLocked
from core.tokens import token_issue
from dosing import services
from dosing.models import Cycle, Deviation
from patients import services as patient_services
from tests.factories import (
    PASSWORD,
    ConsentFactory,
    DoseLevelFactory,
    PatientFactory,
    ProtocolVersionFactory,
    TransplantFactory,
)
from tests.integration.test_dosing_services import C1D1, HCT, SEED_LEVELS, d, visit
from trial.models import TrialComputation


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    levels = {n: DoseLevelFactory(trial=trial, level=n, dose_mg_m2=Decimal(dose)) for n, dose in SEED_LEVELS}
    v1 = ProtocolVersionFactory(trial=trial, version="1", max_cycles=4, effective=datetime.date(2017, 7, 1))
    p = PatientFactory(site=world["site_a"], trial=trial, dose_level=levels[3], enrolled_on=datetime.date(2024, 2, 20))
    TransplantFactory(patient=p, date=HCT)
    ConsentFactory(patient=p, protocol_version=v1, date=datetime.date(2024, 2, 5))
    return p


def give(world, patient, *visits):  # type: ignore[no-untyped-def]
    return [services.cycle_record(user=world["coordinator_a"], patient=patient, data=v) for v in visits]


def three_cycles(world, patient):  # type: ignore[no-untyped-def]
    """C1 on C1D1, C2 on its due date, C3 four days late (with its reason)."""
    return give(world, patient, visit(C1D1), visit(d(28)), visit(d(60), delay_reason="clinic closed"))


def correct(world, cycle, changes, reason="source document says otherwise", **kwargs):  # type: ignore[no-untyped-def]
    return services.cycle_update(
        user=kwargs.pop("user", world["coordinator_a"]), cycle=cycle, changes=changes, reason=reason, **kwargs
    )


def _audit_rows() -> int:
    return sum(m._default_manager.count() for m in apps.get_models() if m.__name__.startswith("Historical"))


def refused(world, cycle, changes, field, text, **kwargs):  # type: ignore[no-untyped-def]
    """The correction is refused with ``text`` under ``field``, and nothing is written."""
    before = _audit_rows(), list(Cycle.objects.order_by("pk").values())
    with pytest.raises(ValidationError) as exc:
        correct(world, cycle, changes, **kwargs)
    assert text in " ".join(exc.value.message_dict.get(field, [])), exc.value.message_dict
    assert (_audit_rows(), list(Cycle.objects.order_by("pk").values())) == before
    return exc.value.message_dict


# --- the service -------------------------------------------------------------------


def test_day1_correction_recomputes_moves_the_next_cycle_and_keeps_the_reason(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    c1, c2, c3 = three_cycles(world, patient)
    assert (c3.due_date, c3.delay_days) == (d(56), 4)
    seqs = dict(TrialComputation.objects.filter(trial=world["trial"]).values_list("kind", "request_seq"))
    with django_capture_on_commit_callbacks() as callbacks:
        updated = correct(
            world,
            c2,
            {"day1": d(30), "delay_reason": "pharmacy delay"},
            reason="Source: dosed 31 March",
            expected_version=1,
        )
    assert len(callbacks) == 2  # escalation and survival recomputation, after commit
    assert (updated.day1, updated.delay_days, updated.delay_reason, updated.version) == (d(30), 2, "pharmacy delay", 2)
    c3.refresh_from_db()
    assert (c3.due_date, c3.delay_days, c3.version, c3.day1) == (d(58), 2, 2, d(60))  # due 28 days after the new C2D1
    assert updated.history.order_by("-history_id").first().history_change_reason == "Source: dosed 31 March"
    follower_reason = c3.history.order_by("-history_id").first().history_change_reason
    assert follower_reason == "Source: dosed 31 March (follows from the correction of cycle 2 day 1)"
    after = dict(TrialComputation.objects.filter(trial=world["trial"]).values_list("kind", "request_seq"))
    assert after[TrialComputation.Kind.ESCALATION] > seqs[TrialComputation.Kind.ESCALATION]
    assert after[TrialComputation.Kind.SURVIVAL] > seqs[TrialComputation.Kind.SURVIVAL]
    c1.refresh_from_db()
    assert c1.version == 1


def test_check_shows_what_else_a_moved_day1_changes(world, patient):  # type: ignore[no-untyped-def]
    c1, c2, c3 = three_cycles(world, patient)
    values = {name: getattr(c2, name) for name in services.CYCLE_CORRECTABLE_FIELDS} | {"day1": d(30)}
    ev = services.cycle_correction_evaluate(patient, c2, {**values, "delay_reason": "pharmacy"})
    assert not ev.errors and ev.effects == [
        "Cycle 3 becomes due on 2024-04-28 (delay 2 days); it is corrected with this cycle."
    ]
    values = {name: getattr(c1, name) for name in services.CYCLE_CORRECTABLE_FIELDS} | {"given": False}
    ev = services.cycle_correction_evaluate(patient, c1, {**values, "not_given_reason": "x"})
    assert ev.effects == [
        "The DLT window moves from 2024-03-01 to 2024-04-29 (the day before C3D1) to 2024-03-29 to "
        "2024-05-27 (C2D1 + 27 days, provisional): the escalation is recomputed; review this patient's "
        "DLT adjudications."
    ]
    assert Cycle.objects.filter(version__gt=1).count() == 0  # evaluating writes nothing


def test_day1_before_the_previous_cycle_is_refused(world, patient):  # type: ignore[no-untyped-def]
    _, c2, _ = three_cycles(world, patient)
    refused(world, c2, {"day1": d(-1)}, "day1", "is not after cycle 1 day 1 (2024-03-01)")


def test_day1_after_the_next_cycle_is_refused(world, patient):  # type: ignore[no-untyped-def]
    _, c2, _ = three_cycles(world, patient)
    refused(world, c2, {"day1": d(61), "delay_reason": "x"}, "day1", "cycle 3 day 1 (2024-04-30) is not after cycle 2")


def test_day1_too_early_for_its_own_due_date_is_refused(world, patient):  # type: ignore[no-untyped-def]
    _, c2 = give(world, patient, visit(C1D1), visit(d(28)))
    refused(world, c2, {"day1": d(26)}, "day1", "Too early: C2D1 2 days before the due date 2024-03-29")


def test_delay_beyond_the_allowance_needs_an_investigators_deviation(world, patient):  # type: ignore[no-untyped-def]
    _, c2 = give(world, patient, visit(C1D1), visit(d(28)))
    changes = {"day1": d(38), "delay_reason": "patient travelled"}
    refused(world, c2, changes, "day1", "An investigator must first record a protocol deviation (delay) for cycle 2")
    refused(world, c2, {"day1": d(31)}, "delay_reason", "record the reason for the delay")
    deviation = services.deviation_record(
        user=world["investigator"],
        patient=patient,
        data={"kind": Deviation.Kind.DELAY, "date": d(38), "reason": "travel", "cycle_number": 2},
    )
    updated = correct(world, c2, changes)
    assert (updated.day1, updated.delay_days, updated.deviation_id) == (d(38), 10, deviation.pk)


def test_a_moved_day1_must_keep_the_next_cycle_valid(world, patient):  # type: ignore[no-untyped-def]
    c1, c2 = give(world, patient, visit(C1D1), visit(d(28)))
    # C1D1 two days later: C2 (given on the old due date) would be too early.
    refused(world, c1, {"day1": d(2)}, "day1", "cycle 2 (day 1 2024-03-29) would be too early")
    # C1D1 three days earlier: C2 would be 3 days late, and it has no delay reason.
    message = refused(world, c1, {"day1": d(-3)}, "day1", "first correct cycle 2 with its delay reason")
    # ... and the labs entered with C1 (drawn the day before) would be after the new day 1.
    assert "after the corrected day 1" in " ".join(message["day1"])
    correct(world, c2, {"delay_reason": "waited for labs"})
    refused(world, c1, {"day1": d(-3)}, "day1", "labs drawn after day 1 cannot clear the dose")


def test_height_and_weight_recompute_bsa_and_dose_within_the_administered_tolerance(world, patient):  # type: ignore[no-untyped-def]
    (c1,) = give(world, patient, visit(C1D1))
    assert (c1.bsa_m2, c1.dose_mg) == (Decimal("1.82"), Decimal("0.91"))
    refused(world, c1, {"weight_kg": Decimal("100")}, "dose_mg", "differs from the computed dose")
    updated = correct(world, c1, {"weight_kg": Decimal("100"), "dose_mg": None})
    assert updated.bsa_m2 > Decimal("2.1") and updated.dose_mg > Decimal("1.0")
    refused(world, c1, {"height_cm": Decimal("1.7")}, "height_cm", "")


def test_no_reason_stale_version_unknown_field_and_no_change_write_nothing(world, patient):  # type: ignore[no-untyped-def]
    (c1,) = give(world, patient, visit(C1D1))
    refused(world, c1, {"day1": d(1)}, "reason_for_change", "A reason for change is required", reason="  ")
    refused(world, c1, {"number": 2}, "number", "order of the cycles")
    refused(world, c1, {"day1": C1D1}, "__all__", "Nothing to correct")
    correct(world, c1, {"sos": False, "acute_gvhd_grade": 1})  # version 2
    before = _audit_rows()
    with pytest.raises(EditConflict):
        correct(world, c1, {"day1": d(1)}, expected_version=1)
    assert _audit_rows() == before
    assert Cycle.objects.get(pk=c1.pk).day1 == C1D1


def test_given_to_not_given_clears_the_dose_and_needs_its_reason(world, patient):  # type: ignore[no-untyped-def]
    (c1,) = give(world, patient, visit(C1D1))
    refused(world, c1, {"given": False}, "not_given_reason", "Give the reason the dose was not given")
    updated = correct(world, c1, {"given": False, "not_given_reason": "refused by patient"})
    assert (updated.given, updated.dose_mg, updated.dose_mg_m2, updated.bsa_m2) == (False, None, None, None)


def test_only_the_sites_coordinator_and_never_a_locked_casebook(world, patient):  # type: ignore[no-untyped-def]
    (c1,) = give(world, patient, visit(C1D1))
    for user in ("coordinator_b", "investigator", "monitor"):
        with pytest.raises(PermissionDenied):
            correct(world, c1, {"day1": d(1)}, user=world[user])
    patient_services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(RecordLocked, match="is frozen"):
        correct(world, c1, {"day1": d(1)})
    assert Cycle.objects.get(pk=c1.pk).version == 1


# --- the screen --------------------------------------------------------------------


def test_correction_screen_check_save_and_history(world, patient, login):  # type: ignore[no-untyped-def]
    _, c2 = give(world, patient, visit(C1D1), visit(d(28)))
    client = login(world["coordinator_a"])
    tab = client.get(reverse("patient_dosing", args=[patient.pk])).content.decode()
    assert reverse("cycle_correct", args=[c2.pk]) in tab
    assert "<title>Dosing · " in tab and "<h2>Concomitant medications</h2>" not in tab.split("</title>")[0]
    url = reverse("cycle_correct", args=[c2.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'value="2024-03-29"' in page.content.decode()
    form = {
        "day1": "2024-03-31",
        "given": "true",
        "height_cm": "170",
        "weight_kg": "70",
        "acute_gvhd_grade": "0",
        "liver_gvhd": "false",
        "sos": "false",
        "dose_mg": "0.91",
        "delay_reason": "pharmacy",
        "version": "1",
    }
    check = client.post(url, {**form, "check": "1"})  # no reason needed to check; nothing written
    assert check.status_code == 200 and "C2D1 2 days after the due date" in check.content.decode()
    assert Cycle.objects.get(pk=c2.pk).version == 1
    no_reason = client.post(url, {**form, "save": "1"})
    assert "A reason for change is required" in no_reason.content.decode()
    late = client.post(url, {**form, "delay_reason": "", "reason_for_change": "source", "save": "1"})
    assert "record the reason for the delay" in late.content.decode()
    saved = client.post(url, {**form, "reason_for_change": "Source: 31 March", "save": "1"})
    assert saved.status_code == 302
    assert Cycle.objects.get(pk=c2.pk).day1 == d(30)
    stale = client.post(url, {**form, "day1": "2024-04-01", "reason_for_change": "again", "save": "1"})
    assert "The record changed since you read it" in stale.content.decode()
    history = client.get(reverse("cycle_history", args=[c2.pk])).content.decode()
    assert "Source: 31 March" in history and "2024-03-31" in history
    # An investigator reads the tab without the Correct link, and may not open the screen.
    inv = login(world["investigator"])
    assert (
        reverse("cycle_correct", args=[c2.pk])
        not in inv.get(reverse("patient_dosing", args=[patient.pk])).content.decode()
    )
    assert inv.get(url).status_code == 403


def test_correction_screen_on_a_locked_casebook_says_so(world, patient, login):  # type: ignore[no-untyped-def]
    (c1,) = give(world, patient, visit(C1D1))
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    client = login(world["coordinator_a"])
    url = reverse("cycle_correct", args=[c1.pk])
    page = client.get(url).content.decode()
    assert "is locked" in page and 'name="save"' not in page
    post = client.post(
        url, {"day1": "2024-03-02", "given": "true", "reason_for_change": "x", "version": "1", "save": "1"}
    )
    assert post.status_code == 423 and "is locked" in post.content.decode()
    assert Cycle.objects.get(pk=c1.pk).version == 1


# --- the API -----------------------------------------------------------------------


def test_api_patch_needs_reason_and_version_and_answers_409_on_stale(world, patient, client):  # type: ignore[no-untyped-def]
    _, c2 = give(world, patient, visit(C1D1), visit(d(28)))
    _, key = token_issue(user=world["coordinator_a"], name="test")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    url = f"/api/v1/patients/{patient.pk}/cycles/{c2.pk}/"
    body = {"day1": "2024-03-31", "delay_reason": "pharmacy"}
    no_reason = client.patch(url, {**body, "version": 1}, content_type="application/json")
    assert no_reason.status_code == 400 and "reason_for_change" in no_reason.json()["errors"]
    no_version = client.patch(url, {**body, "reason_for_change": "source"}, content_type="application/json")
    assert no_version.status_code == 400 and "version" in no_version.json()["errors"]
    bad = client.patch(
        url, {"day1": "2024-03-27", "reason_for_change": "source", "version": 1}, content_type="application/json"
    )
    assert bad.status_code == 400 and "too early" in " ".join(bad.json()["errors"]["day1"]).lower()
    unknown = client.patch(url, {"number": 5, "reason_for_change": "s", "version": 1}, content_type="application/json")
    assert unknown.status_code == 400 and "number" in unknown.json()["errors"]
    ok = client.patch(
        url, {**body, "reason_for_change": "source"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["day1"] == "2024-03-31" and ok.json()["delay_days"] == 2 and ok["ETag"] == '"2"'
    before = _audit_rows()
    stale = client.patch(
        url, {"day1": "2024-04-01", "reason_for_change": "again"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    assert _audit_rows() == before and Cycle.objects.get(pk=c2.pk).day1 == d(30)


# --- a query on a cycle's day 1 ----------------------------------------------------


def test_query_on_day1_is_corrected_through_the_cycle_service(world, patient):  # type: ignore[no-untyped-def]
    _, c2 = give(world, patient, visit(C1D1), visit(d(31), delay_reason="holiday"))
    query = cleaning_services.query_raise(
        user=world["monitor"], target=c2, field_name="day1", question="The infusion record says 1 April?"
    )
    with pytest.raises(ValidationError) as exc:  # the cycle rules answer under the answer form's names
        cleaning_services.query_answer(
            user=world["coordinator_a"], query=query, text="Corrected", correction={"day1": "2024-03-27"}, reason="x"
        )
    assert "too early" in " ".join(exc.value.message_dict["new_value"]).lower()
    message = cleaning_services.query_answer(
        user=world["coordinator_a"],
        query=query,
        text="Yes, dosed 31 March; corrected.",
        correction={"day1": "2024-03-31"},
        reason="infusion record",
    )
    c2.refresh_from_db()
    assert (c2.day1, c2.delay_days, c2.version) == (d(30), 2, 2)
    history = c2.history.order_by("-history_id").first()
    assert history.history_change_reason == f"Query #{query.pk}: infusion record"
    assert message.kind == QueryMessage.Kind.CORRECTION
    assert (message.target_history_id, message.target_version) == (history.history_id, 2)
