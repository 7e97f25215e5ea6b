"""Dosing services: every bad input of issue 4 refused with a clear message and nothing
written; the reduction carry-over; deviations; dosing closed after EOT/relapse/death."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from dosing import selectors, services
from dosing.models import Cycle, Deviation, LabPanel
from patients.models import PatientEvent
from tests.factories import (
    ConsentFactory,
    CycleFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ProtocolVersionFactory,
    TransplantFactory,
)
from trial.models import TrialComputation

HCT = datetime.date(2024, 1, 10)
C1D1 = datetime.date(2024, 3, 1)  # day +51
SEED_LEVELS = ((1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6"))


def d(days: int, start: datetime.date = C1D1) -> datetime.date:
    return start + datetime.timedelta(days=days)


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    levels = {n: DoseLevelFactory(trial=trial, level=n, dose_mg_m2=Decimal(dose)) for n, dose in SEED_LEVELS}
    level3 = levels[3]
    v1 = ProtocolVersionFactory(trial=trial, version="1", max_cycles=4, effective=datetime.date(2017, 7, 1))
    ProtocolVersionFactory(trial=trial, version="2", max_cycles=12, effective=datetime.date(2019, 1, 1))
    p = PatientFactory(site=world["site_a"], trial=trial, dose_level=level3, enrolled_on=datetime.date(2024, 2, 20))
    TransplantFactory(patient=p, date=HCT)
    ConsentFactory(patient=p, protocol_version=v1, date=datetime.date(2024, 2, 5))
    return p


def visit(when: datetime.date, **overrides):  # type: ignore[no-untyped-def]
    """A clean visit: fresh labs that pass, no GVHD/SOS, 170 cm, 70 kg."""
    day1 = overrides.get("day1", when)
    data = {
        "day1": day1,
        "lab_date": day1 - datetime.timedelta(days=1),
        "platelets": Decimal("120"),
        "anc": Decimal("2.0"),
        "hemoglobin": Decimal("110"),
        "acute_gvhd_grade": 0,
        "liver_gvhd": False,
        "sos": False,
        "height_cm": Decimal("170"),
        "weight_kg": Decimal("70"),
        "given": True,
    }
    data.update(overrides)
    return data


def record(world, patient, data):  # type: ignore[no-untyped-def]
    return services.cycle_record(user=world["coordinator_a"], patient=patient, data=data)


def give_cycles(world, patient, count, start=C1D1, **overrides):  # type: ignore[no-untyped-def]
    return [record(world, patient, visit(d(28 * i, start), **overrides)) for i in range(count)]


def refused(world, patient, data, field, text):  # type: ignore[no-untyped-def]
    cycles, panels = Cycle.objects.count(), LabPanel.objects.count()
    with pytest.raises(ValidationError) as exc:
        record(world, patient, data)
    messages = " ".join(exc.value.message_dict.get(field, []))
    assert text in messages, exc.value.message_dict
    assert (Cycle.objects.count(), LabPanel.objects.count()) == (cycles, panels)  # nothing half-written


def test_first_cycle_computes_dose_stores_check_and_requests_recomputation(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks() as callbacks:
        cycle = record(world, patient, visit(C1D1))
    assert len(callbacks) == 2  # the two recomputations, enqueued after commit
    # Day +40 is 2024-02-19 but enrolment was 2024-02-20: C1 is never due before enrolment.
    assert (cycle.number, cycle.due_date, cycle.day1) == (1, datetime.date(2024, 2, 20), C1D1)
    assert (cycle.bsa_m2, cycle.dose_mg_m2, cycle.dose_mg, cycle.reduced) == (
        Decimal("1.82"), Decimal("0.5"), Decimal("0.91"), False,
    )  # fmt: skip
    assert [c["status"] for c in cycle.safety_check] == ["pass"] * 5
    assert cycle.lab_panel is not None and cycle.lab_panel.platelets == Decimal("120")
    assert cycle.history.first().history_user == world["coordinator_a"]
    kinds = set(TrialComputation.objects.filter(trial=world["trial"]).values_list("kind", flat=True))
    assert {TrialComputation.Kind.ESCALATION, TrialComputation.Kind.SURVIVAL} <= kinds


def test_next_cycle_is_due_28_days_after_day1_and_late_within_allowance_needs_reason(world, patient):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    refused(world, patient, visit(d(33)), "delay_reason", "record the reason for the delay")
    cycle = record(world, patient, visit(d(33), delay_reason="cytopenia"))
    assert (cycle.number, cycle.due_date, cycle.delay_days) == (2, d(28), 5)


# --- the bad inputs of issue 4 --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"height_cm": Decimal("1.7")}, "height_cm", "did you mean 170 cm (1.7 metres)?"),
        ({"weight_kg": Decimal("700")}, "weight_kg", "outside the plausible range 25-250 kg"),
        ({"height_cm": None}, "height_cm", "Enter the height in cm"),
        (
            {"day1": d(-20)},
            "day1",
            "too early: C1D1 on day +31 after HCT; the window is +41 to +100",
        ),  # opens at enrolment, day +41
        ({"number": 2}, "number", "The next cycle is cycle 1, not 2"),
        ({"reduced": True}, "reduction_reason", "A reduced dose needs its reason"),
        ({"given": False}, "not_given_reason", "reason the dose was not given"),
        ({"lab_date": d(1)}, "lab_date", "Labs drawn after day 1"),
        ({"dose_mg": Decimal("1.5")}, "dose_mg", "differs from the computed dose 0.91 mg"),
        ({"platelets": Decimal("40")}, "__all__", "platelets > 50 x10^9/L: fail (40 x10^9/L"),
        ({"acute_gvhd_grade": 3}, "__all__", "no active acute GVHD above grade 2: fail"),
        ({"sos": True}, "__all__", "no SOS/VOD: fail"),
        ({"lab_date": None, "liver_gvhd": None}, "__all__", "no active liver GVHD: missing"),
    ],
)
def test_bad_first_cycle_is_refused_whole(world, patient, overrides, field, text):  # type: ignore[no-untyped-def]
    refused(world, patient, visit(C1D1, **overrides), field, text)


def test_cycle_dated_before_the_previous_one(world, patient):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    refused(world, patient, visit(d(-1)), "day1", "is not after cycle 1 day 1 (2024-03-01)")


def test_two_cycles_with_the_same_number(world, patient):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    refused(world, patient, visit(d(28), number=1), "number", "Cycle 1 is already recorded")


def test_fifth_cycle_under_v1_without_reconsent_is_refused_then_allowed_after_reconsent(world, patient):  # type: ignore[no-untyped-def]
    give_cycles(world, patient, 4)
    refused(
        world, patient, visit(d(28 * 4)), "number", "cycle 5 is beyond the maximum of 4 cycles of protocol version 1"
    )
    v2 = patient.trial.protocol_versions.get(version="2")
    ConsentFactory(patient=patient, protocol_version=v2, date=d(28 * 4 - 3))
    assert record(world, patient, visit(d(28 * 4))).number == 5


def test_thirteenth_cycle_under_v2_is_refused(world, patient):  # type: ignore[no-untyped-def]
    v2 = patient.trial.protocol_versions.get(version="2")
    ConsentFactory(patient=patient, protocol_version=v2, date=d(-5))
    give_cycles(world, patient, 12)
    refused(
        world, patient, visit(d(28 * 12)), "number", "cycle 13 is beyond the maximum of 12 cycles of protocol version 2"
    )


@pytest.mark.parametrize(
    "kind", [PatientEvent.Kind.DEATH, PatientEvent.Kind.END_OF_TREATMENT, PatientEvent.Kind.RELAPSE]
)
def test_no_dosing_after_death_eot_or_relapse(world, patient, kind):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    PatientEventFactory(patient=patient, kind=kind, date=d(20))
    refused(world, patient, visit(d(28)), "day1", "dosing is closed for this patient")


# --- delays and safety check need an investigator's deviation ----------------------------


def test_delay_beyond_allowance_needs_investigators_deviation(world, patient):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    late = visit(d(28 + 9), delay_reason="infection")
    refused(world, patient, late, "day1", "An investigator must first record a protocol deviation (delay) for cycle 2")
    with pytest.raises(PermissionDenied):
        services.deviation_record(
            user=world["coordinator_a"], patient=patient,
            data={"kind": "delay", "cycle_number": 2, "date": d(36), "reason": "x"},
        )  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        services.deviation_record(
            user=world["investigator"], patient=patient, data={"kind": "delay", "cycle_number": 2, "date": d(36)}
        )
    assert "reason" in exc.value.message_dict
    deviation = services.deviation_record(
        user=world["investigator"], patient=patient,
        data={"kind": "delay", "cycle_number": 2, "date": d(36), "reason": "PI approved: infection"},
    )  # fmt: skip
    cycle = record(world, patient, late)
    assert (cycle.delay_days, cycle.deviation) == (9, deviation)
    assert [r.record for r in selectors.deviation_list(world["investigator"], world["trial"])] == [deviation]
    assert list(selectors.deviation_list(world["coordinator_b"], world["trial"])) == []


def test_failed_safety_check_dosed_only_with_a_deviation(world, patient):  # type: ignore[no-untyped-def]
    low = visit(C1D1, platelets=Decimal("45"))
    refused(
        world, patient, low, "__all__", "unless an investigator records a protocol deviation (safety check) for cycle 1"
    )
    Deviation.objects.create(
        patient=patient, kind=Deviation.Kind.SAFETY_CHECK, cycle_number=1, date=C1D1, reason="PI decision"
    )
    cycle = record(world, patient, low)
    assert cycle.deviation.kind == "safety_check"
    assert cycle.safety_check[0]["status"] == "fail"


def test_not_given_cycle_needs_no_safety_check(world, patient):  # type: ignore[no-untyped-def]
    record(world, patient, visit(C1D1))
    refused(world, patient, visit(d(28), given=False), "not_given_reason", "reason the dose was not given")
    # 10 days late and with failing labs: not a deviation, since no dose was given
    cycle = record(world, patient, visit(d(38), platelets=Decimal("20"), given=False, not_given_reason="cytopenia"))
    assert (cycle.given, cycle.dose_mg, cycle.not_given_reason) == (False, None, "cytopenia")
    assert selectors.cycles_by_patient(world["trial"]) == {patient.pk: [(1, C1D1)]}


# --- reduction carry-over -----------------------------------------------------------------


def test_reduction_carries_over_until_investigator_restores_full_dose(world, patient):  # type: ignore[no-untyped-def]
    c1 = record(world, patient, visit(C1D1))
    with pytest.raises(ValidationError, match="No dose reduction is in force after cycle 1"):
        services.cycle_full_dose_restore(user=world["investigator"], cycle=c1, reason="nothing to restore")
    c2 = record(world, patient, visit(d(28), reduced=True, reduction_reason="cytopenia"))
    assert (c2.reduced, c2.dose_mg) == (True, Decimal("0.46"))  # 0.5 x 1.82 x 50%, rounded from 0.455
    c3 = record(world, patient, visit(d(56)))  # not ticked: carried over all the same
    assert (c3.reduced, c3.reduction_reason, c3.dose_mg) == (True, "cytopenia", Decimal("0.46"))
    with pytest.raises(PermissionDenied):
        services.cycle_full_dose_restore(user=world["coordinator_a"], cycle=c3, reason="counts recovered")
    with pytest.raises(ValidationError, match="on the latest cycle"):
        services.cycle_full_dose_restore(user=world["investigator"], cycle=c2, reason="counts recovered")
    with pytest.raises(ValidationError):
        services.cycle_full_dose_restore(user=world["investigator"], cycle=c3, reason="")
    services.cycle_full_dose_restore(
        user=world["investigator"], cycle=c3, reason="counts recovered", expected_version=1
    )
    c4 = record(world, patient, visit(d(84)))
    assert (c4.reduced, c4.dose_mg) == (False, Decimal("0.91"))
    assert c1.dose_mg == Decimal("0.91")
    c3.refresh_from_db()
    assert c3.full_dose_restored and c3.history.first().history_change_reason == "counts recovered"


def test_coordinator_of_another_site_cannot_record(world, patient):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        services.cycle_record(user=world["coordinator_b"], patient=patient, data=visit(C1D1))
    with pytest.raises(PermissionDenied):
        services.cycle_record(user=world["investigator"], patient=patient, data=visit(C1D1))
    assert not Cycle.objects.exists()


# --- selectors for the survival computation ----------------------------------------------


def test_first_dose_dates_and_cycles_by_patient_in_one_query_each(world, patient, django_assert_num_queries):  # type: ignore[no-untyped-def]
    give_cycles(world, patient, 2)
    other = PatientFactory(site=world["site_b"], trial=world["trial"])
    CycleFactory(patient=other, number=1, day1=datetime.date(2024, 5, 1), given=False)
    CycleFactory(patient=other, number=2, day1=datetime.date(2024, 5, 29))
    elsewhere = PatientFactory(site=world["site_c"], trial=world["other"])
    CycleFactory(patient=elsewhere)
    with django_assert_num_queries(1):
        first = selectors.first_dose_dates(world["trial"])
    with django_assert_num_queries(1):
        by_patient = selectors.cycles_by_patient(world["trial"])
    assert first == {patient.pk: C1D1, other.pk: datetime.date(2024, 5, 29)}
    assert by_patient == {patient.pk: [(1, C1D1), (2, d(28))], other.pk: [(2, datetime.date(2024, 5, 29))]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_two_coordinators_recording_the_same_cycle_at_once(world, patient, monkeypatch):  # type: ignore[no-untyped-def]
    """The patient row is locked while the number is chosen: one cycle 1, one refusal."""
    import threading

    from analysis import tasks

    monkeypatch.setattr(tasks.trial_recompute, "delay", lambda *a, **k: None)  # recomputation is not under test
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def enter() -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            record(world, patient, visit(C1D1, number=1))  # as the screen sends it
            outcomes.append("recorded")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("recorded") == 1 and any("Cycle 1 is already recorded" in o for o in outcomes), outcomes
    assert Cycle.objects.filter(patient=patient).count() == 1
