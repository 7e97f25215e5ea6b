"""Patients services: registration, transplant, consent, screening, enrolment,
assessments and outcome events; each refusal names the field and writes nothing."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients import selectors, services
from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
from tests.factories import (
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ProtocolVersionFactory,
    TransplantFactory,
)
from trial.models import TrialComputation

D = datetime.date
HCT = D(2024, 1, 10)
SCREEN = {
    "date": D(2024, 3, 1),  # day +51
    "lab_date": D(2024, 2, 28),
    "platelets_10e9_l": Decimal("133"),
    "anc_10e9_l": Decimal("2.1"),
    "agvhd_grade": 0,
    "liver_gvhd": False,
    "sos_history": False,
}
TRANSPLANT = {
    "date": HCT,
    "disease_status": "cr1",
    "conditioning": "ric",
    "regimen": "melphalan",
    "mrd_before": False,
    "mrd_after": False,
    "cr_at_day30": True,
}


def open_slots(trial, slots):  # type: ignore[no-untyped-def]
    """What the escalation engine would have signed into effect: {level: slots}."""
    TrialComputation.objects.update_or_create(
        trial=trial,
        kind=TrialComputation.Kind.ESCALATION,
        defaults={
            "data": {"open_slots": [{"dose_level": lv, "slots": n} for lv, n in slots.items()]},
            "request_seq": 1,
            "computed_seq": 1,  # fresh: nothing changed since it was computed
        },
    )


def seq(trial, kind):  # type: ignore[no-untyped-def]
    row = TrialComputation.objects.filter(trial=trial, kind=kind).first()
    return row.request_seq if row else 0


@pytest.fixture
def levels(world):  # type: ignore[no-untyped-def]
    return [DoseLevelFactory(trial=world["trial"], level=n, dose_mg_m2=Decimal(f"0.{n + 2}")) for n in (1, 2, 3, 4)]


@pytest.fixture
def registered(world):  # type: ignore[no-untyped-def]
    user = world["coordinator_a"]
    return services.patient_register(
        user=user,
        trial=world["trial"],
        data={
            "site": world["site_a"],
            "subject_id": "SA-001",
            "sex": "female",
            "race": "white",
            "birth_year": 1975,
            "diagnosis": "b_all",
            "cd22_positive": True,
        },
    )


@pytest.fixture
def consented(world, registered):  # type: ignore[no-untyped-def]
    version = ProtocolVersionFactory(trial=world["trial"], version="1", effective=D(2017, 7, 1))
    services.transplant_record(user=world["coordinator_a"], patient=registered, data=dict(TRANSPLANT))
    services.consent_record(
        user=world["coordinator_a"], patient=registered, protocol_version=version, on=D(2024, 2, 20)
    )
    return registered


@pytest.fixture
def screened(world, consented):  # type: ignore[no-untyped-def]
    services.screening_record(user=world["coordinator_a"], patient=consented, data=dict(SCREEN))
    return consented


# --- screening --------------------------------------------------------------------------


def test_stored_screening_carries_every_criterion_with_reason(world, consented):  # type: ignore[no-untyped-def]
    screening = services.screening_record(user=world["coordinator_a"], patient=consented, data=dict(SCREEN))
    screening.refresh_from_db()
    assert screening.result == Screening.Result.ELIGIBLE
    assert [c["number"] for c in screening.criteria] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(c["status"] == "pass" and c["reason"] for c in screening.criteria)
    by_key = {c["key"]: c for c in screening.criteria}
    assert by_key["enrolment_window"]["reason"].startswith("day +51 after HCT")
    assert by_key["high_risk"]["paths"] == ["conditioning"]


def test_screen_failure_is_stored_with_its_failed_criteria_and_rescreening_adds_a_record(world, consented):  # type: ignore[no-untyped-def]
    user = world["coordinator_a"]
    failed = services.screening_record(
        user=user, patient=consented, data={**SCREEN, "platelets_10e9_l": Decimal("40"), "liver_gvhd": True}
    )
    assert failed.result == Screening.Result.NOT_ELIGIBLE
    not_passed = {c["key"]: c for c in failed.criteria if c["status"] == "fail"}
    assert set(not_passed) == {"graft_function", "gvhd"}
    assert "Platelets 40 x10^9/L; must be > 50" in not_passed["graft_function"]["reason"]
    again = services.screening_record(user=user, patient=consented, data={**SCREEN, "date": D(2024, 3, 2)})
    assert again.result == Screening.Result.ELIGIBLE
    assert Screening.objects.filter(patient=consented).count() == 2
    failed.refresh_from_db()
    assert failed.result == Screening.Result.NOT_ELIGIBLE and failed.version == 1  # the old one stays as it was


def test_missing_data_is_missing_never_pass(world, registered):  # type: ignore[no-untyped-def]
    # No transplant and no consent recorded yet: those criteria are missing, not passed.
    screening = services.screening_record(user=world["coordinator_a"], patient=registered, data={"date": D(2024, 3, 1)})
    statuses = {c["key"]: c["status"] for c in screening.criteria}
    assert screening.result == Screening.Result.INCOMPLETE
    assert statuses["age"] == "missing" and statuses["cr_at_day30"] == "missing"
    assert statuses["graft_function"] == "missing" and statuses["diagnosis"] == "pass"


def test_thresholds_come_from_the_trial(world, consented):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    trial.min_platelets, trial._change_reason = Decimal("150"), "stricter protocol"
    trial.save()
    consented.refresh_from_db()
    screening = services.screening_record(user=world["coordinator_a"], patient=consented, data=dict(SCREEN))
    graft = next(c for c in screening.criteria if c["key"] == "graft_function")
    assert graft["status"] == "fail" and "must be > 150" in graft["reason"]


# --- enrolment --------------------------------------------------------------------------


def test_enrolment_assigns_the_lowest_open_level_and_requests_recomputation(world, screened, levels):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    open_slots(trial, {3: 2, 2: 1})
    before = {k: seq(trial, k) for k in (TrialComputation.Kind.ESCALATION, TrialComputation.Kind.SURVIVAL)}
    patient = services.patient_enrol(user=world["coordinator_a"], patient=screened, on=D(2024, 3, 2))
    patient.refresh_from_db()
    assert patient.enrolled_on == D(2024, 3, 2) and patient.dose_level.level == 2
    assert patient.enrolment_deviation == ""
    for kind, value in before.items():
        assert seq(trial, kind) == value + 1, kind


def test_enrolment_refused_when_latest_screening_failed(world, screened, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {1: 3})
    services.screening_record(
        user=world["coordinator_a"], patient=screened, data={**SCREEN, "date": D(2024, 3, 2), "sos_history": True}
    )
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=world["coordinator_a"], patient=screened, on=D(2024, 3, 3))
    message = exc.value.message_dict["enrolled_on"][0]
    assert "not eligible" in message and "SOS" in message
    screened.refresh_from_db()
    assert screened.enrolled_on is None and screened.dose_level is None and screened.version == 1


@pytest.mark.parametrize(
    ("on", "text"),
    [
        (D(2024, 3, 20), "labs drawn 21 days before enrolment"),  # labs too old
        (D(2024, 4, 25), "day +106 after HCT"),  # past the day +100 window
    ],
)
def test_enrolment_refused_when_screening_expired(world, screened, levels, on, text):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {1: 3})
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=world["coordinator_a"], patient=screened, on=on)
    message = exc.value.message_dict["enrolled_on"][0]
    assert "is not valid on" in message and text in message and "Re-screen" in message
    screened.refresh_from_db()
    assert screened.enrolled_on is None


def test_enrolment_refused_without_screening_or_consent(world, registered, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {1: 3})
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=world["coordinator_a"], patient=registered, on=D(2024, 3, 2))
    messages = " ".join(exc.value.message_dict["enrolled_on"])
    assert "No consent" in messages and "not been screened" in messages


def test_no_open_slot_refuses_enrolment_clearly(world, screened, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {})
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=world["coordinator_a"], patient=screened, on=D(2024, 3, 2))
    assert "No dose level has an open slot" in exc.value.message_dict["dose_level"][0]
    screened.refresh_from_db()
    assert screened.enrolled_on is None


def test_enrolment_waits_while_the_slots_are_recomputed(world, screened, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {1: 3})
    TrialComputation.objects.filter(trial=world["trial"], kind="escalation").update(request_seq=2)  # stale
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=world["coordinator_a"], patient=screened, on=D(2024, 3, 2))
    assert "being recomputed" in exc.value.message_dict["dose_level"][0]
    screened.refresh_from_db()
    assert screened.enrolled_on is None


def test_investigator_enrols_at_chosen_level_as_recorded_deviation(world, screened, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {})
    investigator = world["investigator"]
    with pytest.raises(ValidationError) as exc:
        services.patient_enrol(user=investigator, patient=screened, on=D(2024, 3, 2), dose_level=levels[1])
    assert "protocol deviation; say why" in exc.value.message_dict["deviation_reason"][0]
    patient = services.patient_enrol(
        user=investigator,
        patient=screened,
        on=D(2024, 3, 2),
        dose_level=levels[1],
        deviation_reason="DSMB allowed a replacement patient",
    )
    patient.refresh_from_db()
    assert patient.dose_level.level == 2
    assert patient.enrolment_deviation == "Enrolled at L2 (no open slot): DSMB allowed a replacement patient"


def test_coordinator_may_not_choose_the_level(world, screened, levels):  # type: ignore[no-untyped-def]
    open_slots(world["trial"], {1: 3})
    with pytest.raises(PermissionDenied):
        services.patient_enrol(
            user=world["coordinator_a"], patient=screened, on=D(2024, 3, 2), dose_level=levels[3], deviation_reason="x"
        )


# --- bad input: each names its field, nothing written --------------------------------------


def _count():  # type: ignore[no-untyped-def]
    return tuple(m.objects.count() for m in (Patient, Transplant, Consent, Screening, Assessment, PatientEvent))


def _death(world, patient, **kw):  # type: ignore[no-untyped-def]
    data = {"kind": "death", "date": D(2024, 6, 1), "cause": "gvhd", **kw}
    return services.event_record(user=world["coordinator_a"], patient=patient, data=data)


def _relapse(world, patient, **kw):  # type: ignore[no-untyped-def]
    data = {"kind": "relapse", "date": D(2024, 5, 1), "blasts_pct": Decimal("12"), **kw}
    return services.event_record(user=world["coordinator_a"], patient=patient, data=data)


FUTURE = datetime.date.today() + datetime.timedelta(days=30)

BAD_INPUT = [
    # (name, setup, action, field, text)
    (
        "future screening date",
        None,
        lambda w, p: services.screening_record(user=w["coordinator_a"], patient=p, data={**SCREEN, "date": FUTURE}),
        "date",
        "is in the future",
    ),
    (
        "future event date",
        None,
        lambda w, p: _death(w, p, date=FUTURE),
        "date",
        "is in the future",
    ),
    (
        "death before HCT",
        None,
        lambda w, p: _death(w, p, date=D(2023, 12, 1)),
        "date",
        "Death date 2023-12-01 is before the HCT date 2024-01-10",
    ),
    (
        "relapse after death",
        lambda w, p: _death(w, p),
        lambda w, p: _relapse(w, p, date=D(2024, 7, 1)),
        "date",
        "Relapse 2024-07-01 is after death 2024-06-01",
    ),
    (
        "death before a recorded relapse",
        lambda w, p: _relapse(w, p, date=D(2024, 7, 1)),
        lambda w, p: _death(w, p),
        "date",
        "Relapse 2024-07-01 is after death 2024-06-01",
    ),
    (
        "second death",
        lambda w, p: _death(w, p),
        lambda w, p: _death(w, p, date=D(2024, 6, 2)),
        "kind",
        "A death is already recorded (2024-06-01)",
    ),
    (
        "death without cause",
        None,
        lambda w, p: _death(w, p, cause=""),
        "cause",
        "A death needs its cause",
    ),
    (
        "screening before HCT",
        None,
        lambda w, p: services.screening_record(
            user=w["coordinator_a"], patient=p, data={**SCREEN, "date": D(2024, 1, 5), "lab_date": D(2024, 1, 4)}
        ),
        "date",
        "The screening date 2024-01-05 is before the HCT date 2024-01-10",
    ),
    (
        "negative platelets",
        None,
        lambda w, p: services.screening_record(
            user=w["coordinator_a"], patient=p, data={**SCREEN, "platelets_10e9_l": Decimal("-5")}
        ),
        "platelets_10e9_l",
        "Platelets cannot be negative",
    ),
    (
        "platelets in the wrong unit",
        None,
        lambda w, p: services.screening_record(
            user=w["coordinator_a"], patient=p, data={**SCREEN, "platelets_10e9_l": Decimal("50000")}
        ),
        "platelets_10e9_l",
        "did you mean 50 x10^9/L?",
    ),
    (
        "ANC in the wrong unit",
        None,
        lambda w, p: services.screening_record(
            user=w["coordinator_a"], patient=p, data={**SCREEN, "anc_10e9_l": Decimal("1200")}
        ),
        "anc_10e9_l",
        "did you mean 1.2 x10^9/L?",
    ),
    (
        "labs after screening",
        None,
        lambda w, p: services.screening_record(
            user=w["coordinator_a"], patient=p, data={**SCREEN, "lab_date": D(2024, 3, 5)}
        ),
        "lab_date",
        "cannot be drawn after the screening date",
    ),
    (
        "duplicate subject ID",
        None,
        lambda w, p: services.patient_register(
            user=w["coordinator_a"],
            trial=w["trial"],
            data={"site": w["site_a"], "subject_id": "SA-001", "sex": "male", "birth_year": 1970},
        ),
        "subject_id",
        "Subject ID SA-001 is already registered in this trial",
    ),
    (
        "registration at a site not one's own",
        None,
        lambda w, p: services.patient_register(
            user=w["coordinator_a"],
            trial=w["trial"],
            data={"site": w["site_b"], "subject_id": "SB-001", "sex": "male", "birth_year": 1970},
        ),
        "site",
        "only at your own site",
    ),
    (
        "future consent date",
        None,
        lambda w, p: services.consent_record(
            user=w["coordinator_a"],
            patient=p,
            protocol_version=ProtocolVersionFactory(trial=w["trial"], version="2", effective=D(2020, 1, 1)),
            on=FUTURE,
        ),
        "date",
        "is in the future",
    ),
    (
        "re-consent to the same version",
        None,
        lambda w, p: services.consent_record(
            user=w["coordinator_a"], patient=p, protocol_version=p.consents.get().protocol_version, on=D(2024, 3, 1)
        ),
        "protocol_version",
        "Consent to version 1 is already recorded",
    ),
    (
        "second transplant",
        None,
        lambda w, p: services.transplant_record(user=w["coordinator_a"], patient=p, data=dict(TRANSPLANT)),
        "date",
        "already recorded",
    ),
    (
        "MRD without method",
        None,
        lambda w, p: services.assessment_record(
            user=w["coordinator_a"], patient=p, data={"kind": "mrd", "date": D(2024, 4, 1), "result": "negative"}
        ),
        "method",
        "needs its method",
    ),
    (
        "marrow blasts above 100%",
        None,
        lambda w, p: services.assessment_record(
            user=w["coordinator_a"],
            patient=p,
            data={"kind": "bone_marrow", "date": D(2024, 4, 1), "blasts_pct": Decimal("120"), "response": "cr"},
        ),
        "blasts_pct",
        "percentage from 0 to 100",
    ),
    (
        "end of treatment after death",
        lambda w, p: _death(w, p),
        lambda w, p: services.event_record(
            user=w["coordinator_a"],
            patient=p,
            data={"kind": "end_of_treatment", "date": D(2024, 6, 10), "reason": "death"},
        ),
        "date",
        "after death on 2024-06-01",
    ),
]


@pytest.mark.parametrize(
    ("setup", "action", "field", "text"), [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input_names_the_field_and_writes_nothing(world, consented, setup, action, field, text):  # type: ignore[no-untyped-def]
    if setup is not None:
        setup(world, consented)
    before = _count()
    with pytest.raises(ValidationError) as exc:
        action(world, consented)
    errors = exc.value.message_dict
    assert field in errors, errors
    assert any(text in message for message in errors[field]), errors
    assert _count() == before


def test_future_transplant_date_is_refused(world, registered):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        services.transplant_record(user=world["coordinator_a"], patient=registered, data={**TRANSPLANT, "date": FUTURE})
    assert "is in the future" in exc.value.message_dict["date"][0]
    assert not Transplant.objects.exists()


def test_coordinator_of_another_site_cannot_write(world, consented):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        services.screening_record(user=world["coordinator_b"], patient=consented, data=dict(SCREEN))
    with pytest.raises(PermissionDenied):
        _relapse({"coordinator_a": world["coordinator_b"]}, consented)
    assert not Screening.objects.exists() and not PatientEvent.objects.exists()


# --- consent, assessments, events -----------------------------------------------------------


def test_reconsent_to_a_later_version(world, consented):  # type: ignore[no-untyped-def]
    v2 = ProtocolVersionFactory(trial=world["trial"], version="2", effective=D(2024, 3, 1))
    consent = services.consent_record(
        user=world["coordinator_a"], patient=consented, protocol_version=v2, on=D(2024, 4, 1)
    )
    assert consent.protocol_version.version == "2"
    assert list(consented.consents.values_list("protocol_version__version", flat=True)) == ["1", "2"]


@pytest.mark.parametrize(
    ("kind", "extra", "computations"),
    [
        ("relapse", {"blasts_pct": Decimal("8"), "relapse_site": "marrow"}, {"survival"}),
        ("death", {"cause": "relapse"}, {"survival", "escalation"}),
        ("last_contact", {}, {"survival"}),
        ("end_of_treatment", {"reason": "completed"}, {"survival", "escalation"}),
        ("withdrawal", {}, {"survival"}),
    ],
)
def test_each_event_requests_its_recomputations(world, consented, kind, extra, computations):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    kinds = (TrialComputation.Kind.SURVIVAL, TrialComputation.Kind.ESCALATION)
    before = {k: seq(trial, k) for k in kinds}
    services.event_record(
        user=world["coordinator_a"], patient=consented, data={"kind": kind, "date": D(2024, 6, 1), **extra}
    )
    bumped = {k.value for k in kinds if seq(trial, k) > before[k]}
    assert bumped == computations


def test_event_edit_needs_reason_and_rechecks_the_dates(world, consented):  # type: ignore[no-untyped-def]
    _death(world, consented)
    relapse = _relapse(world, consented)
    with pytest.raises(ValidationError) as exc:
        services.event_update(
            user=world["coordinator_a"],
            event=relapse,
            changes={"date": D(2024, 6, 5)},
            reason="typo",
            expected_version=1,
        )
    assert "is after death" in exc.value.message_dict["date"][0]
    with pytest.raises(ValidationError) as exc:
        services.event_update(
            user=world["coordinator_a"], event=relapse, changes={"date": D(2024, 5, 2)}, reason="", expected_version=1
        )
    assert "reason_for_change" in exc.value.message_dict
    updated = services.event_update(
        user=world["coordinator_a"], event=relapse, changes={"date": D(2024, 5, 2)}, reason="typo", expected_version=1
    )
    assert updated.date == D(2024, 5, 2) and updated.version == 2


def test_assessments_of_both_kinds(world, consented):  # type: ignore[no-untyped-def]
    user = world["coordinator_a"]
    mrd = services.assessment_record(
        user=user,
        patient=consented,
        data={"kind": "mrd", "date": D(2024, 4, 1), "method": "ngs", "result": "positive", "level": Decimal("0.0001")},
    )
    marrow = services.assessment_record(
        user=user,
        patient=consented,
        data={"kind": "bone_marrow", "date": D(2024, 4, 1), "blasts_pct": Decimal("2"), "response": "cr"},
    )
    assert [a.pk for a in selectors.assessment_list(user, consented.pk)] == [mrd.pk, marrow.pk]
    assert list(selectors.assessment_list(world["coordinator_b"], consented.pk)) == []


# --- outcome_rows (the survival computation's input) ---------------------------------------


def _enrolled(world, n, site="site_a"):  # type: ignore[no-untyped-def]
    level = world["trial"].dose_levels.first() or DoseLevelFactory(trial=world["trial"], level=1)
    patients = []
    for _ in range(n):
        p = PatientFactory(site=world[site], trial=world["trial"], dose_level=level, enrolled_on=D(2024, 3, 2))
        TransplantFactory(patient=p, date=HCT, conditioning="mac", mrd_before=False, mrd_after=True)
        PatientEventFactory(patient=p, kind="relapse", date=D(2024, 8, 1))
        PatientEventFactory(patient=p, kind="last_contact", date=D(2024, 9, 1))
        PatientEventFactory(patient=p, kind="last_contact", date=D(2024, 10, 1))
        PatientEventFactory(patient=p, kind="death", date=D(2024, 11, 1), cause="relapse")
        patients.append(p)
    return patients


def test_outcome_rows_content(world, consented):  # type: ignore[no-untyped-def]
    (patient,) = _enrolled(world, 1, site="site_b")
    TransplantFactory(patient=PatientFactory(site=world["site_a"], trial=world["trial"]))  # not enrolled: left out
    rows = selectors.outcome_rows(world["trial"])
    assert rows == [
        {
            "patient_id": patient.pk,
            "subject_id": patient.subject_id,
            "site_code": "SB",
            "dose_level": 1,
            "enrolled_on": D(2024, 3, 2),
            "hct_date": HCT,
            "relapse_date": D(2024, 8, 1),
            "death_date": D(2024, 11, 1),
            "death_cause": "relapse",
            "last_contact_date": D(2024, 10, 1),
            "mrd_positive": True,
            "conditioning": "mac",
        }
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [(False, False, False), (True, None, True), (None, False, None), (False, None, None)],
)
def test_outcome_rows_mrd_positive(world, before, after, expected):  # type: ignore[no-untyped-def]
    (patient,) = _enrolled(world, 1)
    Transplant.objects.filter(patient=patient).update(mrd_before=before, mrd_after=after)
    assert selectors.outcome_rows(world["trial"])[0]["mrd_positive"] is expected


def test_outcome_rows_constant_queries(world, django_assert_num_queries):  # type: ignore[no-untyped-def]
    _enrolled(world, 3)
    with CaptureQueriesContext(connection) as few:
        assert len(selectors.outcome_rows(world["trial"])) == 3
    _enrolled(world, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(selectors.outcome_rows(world["trial"])) == 30
    assert len(few.captured_queries) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_enrolments_never_share_one_slot(world, levels, monkeypatch):  # type: ignore[no-untyped-def]
    """Two coordinators enrol two eligible patients at once for the last open slot."""
    import threading

    from analysis import tasks

    monkeypatch.setattr(tasks.trial_recompute, "delay", lambda *a, **k: None)  # the engine is not under test
    version = ProtocolVersionFactory(trial=world["trial"], version="1", effective=D(2017, 7, 1))
    patients = []
    for n in (1, 2):
        p = PatientFactory(
            site=world["site_a"], trial=world["trial"], subject_id=f"SA-00{n}", diagnosis="b_all", cd22_positive=True
        )
        services.transplant_record(user=world["coordinator_a"], patient=p, data=dict(TRANSPLANT))
        services.consent_record(user=world["coordinator_a"], patient=p, protocol_version=version, on=D(2024, 2, 20))
        services.screening_record(user=world["coordinator_a"], patient=p, data=dict(SCREEN))
        patients.append(p)
    open_slots(world["trial"], {1: 1})
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def enrol(p):  # type: ignore[no-untyped-def]
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            services.patient_enrol(user=world["coordinator_a"], patient=p, on=D(2024, 3, 2))
            outcomes.append("enrolled")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=enrol, args=(p,)) for p in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("enrolled") == 1 and any("being recomputed" in o for o in outcomes), outcomes
    assert Patient.objects.filter(enrolled_on__isnull=False).count() == 1
