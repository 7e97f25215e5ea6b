"""Safety services against the database: AEs, lab proposals, adjudication, DLT outcomes."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import EditConflict, SignatureRefused
from core.models import Signature
from core.signatures import signatures_for
from dosing.models import Cycle
from patients.models import PatientEvent
from safety import selectors, services
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode, LabProposalDismissal
from tests.factories import (
    PASSWORD,
    ConsentFactory,
    CycleFactory,
    DoseLevelFactory,
    LabPanelFactory,
    PatientEventFactory,
    PatientFactory,
)
from trial.models import TrialComputation

PLATELETS = "10035528"
NEUTROPHILS = "10029366"
SOS = "10063675"
NAUSEA = "10028813"
FATIGUE = "10016256"
OTHER_CARDIAC = "10007541"
AS_OF = datetime.date(2024, 9, 1)


def term(code: str) -> CtcaeTerm:
    return CtcaeTerm.objects.get(version="5.0", meddra_code=code)


def make_patient(world, site="site_a", *, cycles=(datetime.date(2024, 4, 1), datetime.date(2024, 4, 29)), level=1):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    dose_level = trial.dose_levels.filter(level=level).first() or DoseLevelFactory(
        trial=trial, level=level, dose_mg_m2=Decimal("0.3") + Decimal("0.1") * (level - 1)
    )
    patient = PatientFactory(
        site=world[site], trial=trial, dose_level=dose_level, enrolled_on=datetime.date(2024, 3, 25)
    )
    ConsentFactory(patient=patient, date=datetime.date(2024, 3, 20))
    for n, day1 in enumerate(cycles, start=1):
        CycleFactory(patient=patient, number=n, due_date=day1, day1=day1, dose_level=dose_level)
    return patient


def ae_data(**overrides):  # type: ignore[no-untyped-def]
    data = {
        "term": term(NAUSEA),
        "grade": 2,
        "onset": datetime.date(2024, 4, 10),
        "resolved": None,
        "attribution": "possible",
    }
    data.update(overrides)
    return data


def escalation_seq(trial) -> int:  # type: ignore[no-untyped-def]
    row = TrialComputation.objects.filter(trial=trial, kind=TrialComputation.Kind.ESCALATION).first()
    return row.request_seq if row else 0


# ---------------------------------------------------------------- the dictionary in the DB


@pytest.mark.django_db
def test_loaded_dictionary_has_837_terms_in_26_socs():  # type: ignore[no-untyped-def]
    assert CtcaeTerm.objects.filter(version="5.0").count() == 837
    assert CtcaeTerm.objects.values("soc").distinct().count() == 26


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "name", "grades"),
    [
        ("10035528", "Platelet count decreased", [1, 2, 3, 4]),
        ("10029366", "Neutrophil count decreased", [1, 2, 3, 4]),
        ("10002272", "Anemia", [1, 2, 3, 4, 5]),
        ("10063675", "Sinusoidal obstruction syndrome", [2, 3, 4, 5]),
        ("10016288", "Febrile neutropenia", [3, 4, 5]),
        ("10011914", "Death NOS", [5]),
        ("10040047", "Sepsis", [3, 4, 5]),
        ("10028813", "Nausea", [1, 2, 3]),
        ("10016256", "Fatigue", [1, 2, 3]),
        ("10001551", "Alanine aminotransferase increased", [1, 2, 3, 4]),
        ("10012727", "Diarrhea", [1, 2, 3, 4, 5]),
        ("10007541", "Cardiac disorders - Other, specify", [1, 2, 3, 4, 5]),
    ],
)
def test_dictionary_terms_codes_and_grades(code, name, grades):  # type: ignore[no-untyped-def]
    row = term(code)
    assert row.term == name and row.grades == grades


@pytest.mark.django_db
def test_search_ranks_by_term_then_code_then_soc():  # type: ignore[no-untyped-def]
    assert selectors.ctcae_search("plate")[0].meddra_code == PLATELETS
    assert selectors.ctcae_search("10063675")[0].term == "Sinusoidal obstruction syndrome"
    by_soc = selectors.ctcae_search("hepatobiliary", limit=5)
    assert by_soc and all(t.soc == "Hepatobiliary disorders" for t in by_soc)


# ---------------------------------------------------------------- AE writes


def test_record_ae_is_audited_and_marks_escalation_stale(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    before = escalation_seq(world["trial"])
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    assert ae.pk and ae.version == 1 and ae.history.count() == 1
    assert ae.history.first().history_user == world["coordinator_a"]
    assert escalation_seq(world["trial"]) == before + 1


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"term": "PLT", "grade": 5}, "grade", "Grade 5 is not defined for 'Platelet count decreased' (grades 1-4)"),
        ({"term": "SOS", "grade": 1}, "grade", "Grade 1 is not defined for 'Sinusoidal obstruction syndrome'"),
        ({"resolved": datetime.date(2024, 4, 9)}, "resolved", "before the onset"),
        ({"onset": datetime.date(2024, 3, 19)}, "onset", "before the patient's consent"),
        ({"term": "OTHER"}, "specify", "requires the event to be specified"),
        ({"serious": True}, "serious", "at least one SAE criterion"),
        ({"sae_hospitalisation": True}, "serious", "mark the AE as serious"),
        ({"term": "SOS", "grade": 5}, "grade", "record the patient's death"),
    ],
)
def test_bad_ae_input_names_the_field_and_writes_nothing(world, overrides, field, text):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    codes = {"PLT": PLATELETS, "SOS": SOS, "OTHER": OTHER_CARDIAC}
    if "term" in overrides:
        overrides["term"] = term(codes[overrides["term"]])
    with pytest.raises(ValidationError) as exc:
        services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(**overrides))
    assert text in " ".join(exc.value.message_dict[field])
    assert not AdverseEvent.objects.exists()
    assert escalation_seq(world["trial"]) == 0


def test_ae_for_a_patient_of_another_site_is_refused(world):  # type: ignore[no-untyped-def]
    patient_b = make_patient(world, "site_b")
    with pytest.raises(PermissionDenied):
        services.ae_record(user=world["coordinator_a"], patient=patient_b, data=ae_data())
    with pytest.raises(PermissionDenied):  # investigators read and adjudicate; they do not enter AEs
        services.ae_record(user=world["investigator"], patient=patient_b, data=ae_data())
    assert not AdverseEvent.objects.exists()


def test_grade_5_links_the_death_record(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    death = PatientEventFactory(patient=patient, kind=PatientEvent.Kind.DEATH, date=datetime.date(2024, 5, 2))
    ae = services.ae_record(
        user=world["coordinator_a"],
        patient=patient,
        data=ae_data(term=term("10040047"), grade=5, outcome="fatal", onset=datetime.date(2024, 4, 30)),
    )
    assert ae.death == death


def test_follow_up_needs_a_reason_and_the_current_version(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    user = world["coordinator_a"]
    ae = services.ae_record(user=user, patient=patient, data=ae_data())
    with pytest.raises(ValidationError) as exc:
        services.ae_update(user=user, ae=ae, changes={"resolved": datetime.date(2024, 4, 20)}, reason="")
    assert "reason_for_change" in exc.value.message_dict
    updated = services.ae_update(
        user=user, ae=ae, changes={"resolved": datetime.date(2024, 4, 20)}, reason="resolved", expected_version=1
    )
    assert updated.version == 2 and updated.history.first().history_change_reason == "resolved"
    with pytest.raises(EditConflict):
        services.ae_update(user=user, ae=ae, changes={"grade": 3}, reason="worse", expected_version=1)
    with pytest.raises(ValidationError) as exc:
        services.ae_update(
            user=user, ae=updated, changes={"resolved": datetime.date(2024, 4, 1)}, reason="typo", expected_version=2
        )
    assert "before the onset" in exc.value.message_dict["resolved"][0]
    assert AdverseEvent.objects.get().version == 2


def test_cycle_is_derived_from_the_patients_cycles(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    user = world["coordinator_a"]
    for onset in (datetime.date(2024, 3, 28), datetime.date(2024, 4, 1), datetime.date(2024, 5, 5)):
        services.ae_record(user=user, patient=patient, data=ae_data(onset=onset))
    rows = selectors.ae_rows(list(selectors.ae_list(user, patient=patient)))
    assert [r.cycle for r in rows] == [None, 1, 2]


def test_sae_clock_due_and_late(world, monkeypatch):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    user = world["coordinator_a"]
    ae = services.ae_record(user=user, patient=patient, data=ae_data(serious=True, sae_hospitalisation=True))
    due = ae.created_at + datetime.timedelta(hours=24)
    [row] = selectors.ae_rows([ae], now=ae.created_at + datetime.timedelta(hours=1))
    assert row.sae.due == due and not row.sae.late and row.sae.status == "due"
    [row] = selectors.ae_rows([ae], now=ae.created_at + datetime.timedelta(hours=25))
    assert row.sae.late and row.sae.status == "overdue"
    # Reported two hours late, entered an hour later (a report time is never in the future).
    monkeypatch.setattr(timezone, "now", lambda: due + datetime.timedelta(hours=3))
    ae = services.ae_update(
        user=user, ae=ae, changes={"sae_reported_at": due + datetime.timedelta(hours=2)}, reason="reported"
    )
    [row] = selectors.ae_rows([ae])
    assert row.sae.late and row.sae.status == "reported late"


def test_gvhd_episode_with_its_own_grading(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    user = world["coordinator_a"]
    with pytest.raises(ValidationError) as exc:
        services.gvhd_record(user=user, patient=patient, data={"kind": "chronic", "onset": datetime.date(2024, 5, 1)})
    assert "chronic_severity" in exc.value.message_dict
    ep = services.gvhd_record(
        user=user,
        patient=patient,
        data={"kind": "acute", "onset": datetime.date(2024, 5, 1), "acute_grade": 2, "liver_stage": 1},
    )
    assert ep.liver_involved and GvhdEpisode.objects.count() == 1


# ---------------------------------------------------------------- lab proposals


def test_lab_panel_proposes_confirm_and_dismiss(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    user = world["coordinator_a"]
    panel = LabPanelFactory(
        patient=patient, date=datetime.date(2024, 4, 15), platelets=Decimal("40"), anc=Decimal("0.8"), hemoglobin=None
    )
    proposals = {p.meddra_code: p.grade for p in selectors.lab_proposals(user, patient)}
    assert proposals[PLATELETS] == 3 and proposals[NEUTROPHILS] == 3
    ae = services.lab_proposal_confirm(user=user, panel=panel, meddra_code=PLATELETS, attribution="probable")
    assert ae.source == AdverseEvent.Source.LAB and ae.lab_panel == panel and ae.grade == 3 and ae.onset == panel.date
    with pytest.raises(ValidationError):
        services.lab_proposal_dismiss(user=user, panel=panel, meddra_code=NEUTROPHILS, reason=" ")
    services.lab_proposal_dismiss(user=user, panel=panel, meddra_code=NEUTROPHILS, reason="lab error, redrawn")
    assert LabProposalDismissal.objects.get().reason == "lab error, redrawn"
    assert selectors.lab_proposals(user, patient) == []
    with pytest.raises(ValidationError):
        services.lab_proposal_confirm(user=user, panel=panel, meddra_code=PLATELETS, attribution="probable")


# ---------------------------------------------------------------- adjudication


def adjudicate(world, patient, password=PASSWORD, user="investigator", **overrides):  # type: ignore[no-untyped-def]
    data = {
        "rule": DltAdjudication.Rule.NON_HEMATOLOGIC,
        "adverse_event": None,
        "event_date": datetime.date(2024, 4, 10),
        "is_dlt": True,
        "rationale": "grade 3 nausea despite antiemetics",
    }
    supersedes = overrides.pop("supersedes", None)
    data.update(overrides)
    return services.adjudication_sign(
        user=world[user], patient=patient, data=data, password=password, supersedes=supersedes
    )


def test_adjudication_by_a_coordinator_is_refused(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    with pytest.raises(PermissionDenied):
        adjudicate(world, patient, user="coordinator_a")
    assert not DltAdjudication.objects.exists()


def test_wrong_password_writes_nothing(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    with pytest.raises(SignatureRefused):
        adjudicate(world, patient, password="wrong")
    assert not DltAdjudication.objects.exists() and not Signature.objects.exists()


def test_signed_adjudication_cannot_be_signed_twice_nor_edited_only_superseded(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    before = escalation_seq(world["trial"])
    first = adjudicate(world, patient, adverse_event=ae)
    assert escalation_seq(world["trial"]) == before + 1
    [(sig, check)] = signatures_for(first)
    assert sig.meaning == Signature.Meaning.ADJUDICATED and check.valid and sig.printed_name
    assert first.signature == sig
    with pytest.raises(SignatureRefused):
        services.adjudication_sign_existing(user=world["investigator"], adjudication=first, password=PASSWORD)
    with pytest.raises(ValidationError) as exc:
        services.adjudication_edit(user=world["investigator"], adjudication=first, is_dlt=False)
    assert "superseded" in " ".join(exc.value.messages) or "supersedes" in " ".join(exc.value.messages)
    second = adjudicate(world, patient, adverse_event=ae, is_dlt=False, rationale="re-review", supersedes=first)
    first.refresh_from_db()
    assert first.superseded_by == second and first.is_dlt is True
    with pytest.raises(ValidationError):  # only the latest can be superseded
        adjudicate(world, patient, adverse_event=ae, supersedes=first)
    assert DltAdjudication.objects.count() == 2


def test_a_decided_candidate_needs_supersession_not_a_second_decision(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    first = adjudicate(world, patient, adverse_event=ae)
    with pytest.raises(ValidationError) as exc:
        adjudicate(world, patient, adverse_event=ae, is_dlt=False)
    assert f"#{first.pk}" in exc.value.message_dict["non_field_errors"][0]
    assert DltAdjudication.objects.count() == 1 and Signature.objects.count() == 1


# ---------------------------------------------------------------- DLT from real records


def test_candidates_on_the_investigators_page_come_from_real_aes_labs_cycles(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    coord = world["coordinator_a"]
    nausea = services.ae_record(user=coord, patient=patient, data=ae_data(grade=3, attribution="probable"))
    services.ae_record(user=coord, patient=patient, data=ae_data(term=term(FATIGUE), grade=3, attribution="unrelated"))
    # Platelets grade 3 from 2024-05-01 to the first recovered draw on 2024-06-05: 35 days > 28.
    for day, value in (
        (datetime.date(2024, 4, 28), "80"),
        (datetime.date(2024, 5, 1), "30"),
        (datetime.date(2024, 6, 5), "90"),
    ):
        LabPanelFactory(patient=patient, date=day, platelets=Decimal(value), anc=Decimal("2.0"))
    [review] = selectors.trial_dlt_review(world["investigator"], world["trial"], AS_OF)
    found = {(c.candidate.rule.value, c.candidate.ae_id) for c in review.candidates}
    assert found == {("non_hematologic_grade3_related", nausea.pk), ("prolonged_cytopenia", None)}
    assert review.status == "pending" and "2 candidate" in review.reason


def test_dlt_outcomes_follow_adjudications_and_evaluability(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    coord = world["coordinator_a"]
    completed = make_patient(world)
    with_dlt = make_patient(world)
    one_dose = make_patient(world, cycles=(datetime.date(2024, 4, 1),))
    PatientEventFactory(
        patient=one_dose, kind=PatientEvent.Kind.END_OF_TREATMENT, date=datetime.date(2024, 4, 20), reason="withdrawal"
    )
    ae = services.ae_record(user=coord, patient=with_dlt, data=ae_data(grade=3, attribution="definite"))
    outcomes = {o["patient_id"]: o for o in selectors.patient_dlt_outcomes(trial, AS_OF)}
    assert outcomes[completed.pk]["status"] == "no_dlt"
    assert outcomes[with_dlt.pk]["status"] == "pending"
    assert outcomes[one_dose.pk]["status"] == "non_evaluable" and "1 of 2" in outcomes[one_dose.pk]["reason"]
    adjudicate(world, with_dlt, adverse_event=ae)
    outcome = {o["patient_id"]: o for o in selectors.patient_dlt_outcomes(trial, AS_OF)}[with_dlt.pk]
    assert outcome["status"] == "dlt"
    assert outcome["dose_level"] == 1 and outcome["enrolment_order"] == (datetime.date(2024, 3, 25), with_dlt.pk)
    # Still inside the window: pending, whatever the doses.
    early = {o["patient_id"]: o["status"] for o in selectors.patient_dlt_outcomes(trial, datetime.date(2024, 5, 10))}
    assert early[completed.pk] == "pending"


def test_not_enrolled_patients_are_left_out(world):  # type: ignore[no-untyped-def]
    PatientFactory(site=world["site_a"], trial=world["trial"])
    assert selectors.patient_dlt_outcomes(world["trial"], AS_OF) == []


@pytest.mark.parametrize("n", [3, 30])
def test_dlt_outcomes_cost_a_fixed_number_of_queries(world, n):  # type: ignore[no-untyped-def]
    for i in range(n):
        p = make_patient(world, "site_a" if i % 2 else "site_b", level=1 + i % 2)
        services.ae_record(user=world["coordinator_a" if i % 2 else "coordinator_b"], patient=p, data=ae_data(grade=3))
        LabPanelFactory(patient=p, date=datetime.date(2024, 4, 15), platelets=Decimal("40"))
        adjudicate(world, p, is_dlt=bool(i % 3 == 0))
    with CaptureQueriesContext(connection) as ctx:
        outcomes = selectors.patient_dlt_outcomes(world["trial"], AS_OF)
    assert len(outcomes) == n
    assert len(ctx.captured_queries) == 6


def test_inconsistent_cycle_dates_do_not_crash_the_review(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    Cycle.objects.filter(patient=patient, number=2).update(day1=datetime.date(2024, 3, 1))
    [outcome] = selectors.patient_dlt_outcomes(world["trial"], AS_OF)
    assert outcome["status"] == "pending" and "cannot evaluate" in outcome["reason"]


# ---------------------------------------------------------------- Table 2


def test_table_2_counts_patients_by_worst_grade(world):  # type: ignore[no-untyped-def]
    coord = world["coordinator_a"]
    p1, p2 = make_patient(world), make_patient(world)
    p3 = make_patient(world, level=2)
    make_patient(world, level=2)  # no AE: in the denominator only
    for patient, grade in ((p1, 1), (p1, 3), (p2, 2), (p3, 4)):
        services.ae_record(user=coord, patient=patient, data=ae_data(term=term(PLATELETS), grade=grade))
    services.ae_record(user=coord, patient=p1, data=ae_data(grade=1))
    summary = selectors.ae_summary(world["investigator"], world["trial"])
    level1, level2 = summary["dose_levels"]
    assert level1["patients"] == 2 and level1["patients_with_event"] == 2
    plt = next(r for r in level1["terms"] if r["term"] == "Platelet count decreased")
    assert (plt["grade_1_2"], plt["grade_3_4"]) == (1, 1)  # p1's worst is 3, p2's is 2
    assert level2["patients"] == 2 and level2["patients_with_event"] == 1
    overall = summary["overall"]
    assert overall["patients"] == 4 and overall["patients_with_event"] == 3
    assert overall["terms"][0] == {
        "term": "Platelet count decreased",
        "grade_1_2": 1,
        "grade_3_4": 2,
        "grade_5": 0,
        "any_grade": 3,
    }


def test_summary_counts_only_the_coordinators_site(world):  # type: ignore[no-untyped-def]
    make_patient(world, "site_b")
    assert selectors.ae_summary(world["coordinator_a"], world["trial"])["overall"]["patients"] == 0
    assert selectors.ae_summary(world["investigator"], world["trial"])["overall"]["patients"] == 1


def test_a_signed_dlt_reaches_the_escalation_result(world, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    with django_capture_on_commit_callbacks(execute=True):
        adjudicate(world, patient, adverse_event=ae)
    computation = TrialComputation.objects.get(trial=world["trial"], kind=TrialComputation.Kind.ESCALATION)
    assert not computation.stale
    [cohort] = [c for c in computation.data["cohorts"] if c["dose_level"] == 1]
    assert cohort["dlts"] == 1 and cohort["evaluable"] == 1
