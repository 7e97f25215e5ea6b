"""The seed trial replayed (issue 10): import the shipped bundle through the importer,
then read every figure of the paper from the app's own outputs (Table 1 selector, the
safety summary, the escalation and survival computations), not from the bundle.

Where the paper contradicts itself the test follows docs/seed-trial.md (which says why).
"""

import datetime
import json
import statistics
from collections import Counter
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse

from analysis.services import computation_run
from dosing.selectors import cycles_by_patient, first_dose_dates
from exchange.bundle import bundle_import
from patients.models import Patient, PatientEvent
from patients.selectors import outcome_rows, table1
from safety.models import CtcaeTerm, DltAdjudication, GvhdEpisode
from safety.selectors import ae_list, ae_summary, trial_dlt_review
from safety.services import ctcae_dictionary_load
from tests.factories import UserFactory, grant
from trial.models import RoleGrant, TrialComputation

BUNDLE = Path(__file__).resolve().parents[2] / "exchange" / "data" / "ino_post_hct_seed.json"
MONTH = 365.25 / 12


@pytest.fixture(scope="module")
def seed(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Import once for the module, inside a transaction rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        if not CtcaeTerm.objects.exists():  # emptied by an earlier transactional test (conftest)
            ctcae_dictionary_load()
        trial = bundle_import(json.loads(BUNDLE.read_text(encoding="utf-8")))
        investigator = UserFactory(username="seed-investigator")
        grant(investigator, trial, RoleGrant.Role.INVESTIGATOR)
        escalation = computation_run(trial.pk, TrialComputation.Kind.ESCALATION).data
        survival = computation_run(trial.pk, TrialComputation.Kind.SURVIVAL).data
        yield {"trial": trial, "investigator": investigator, "escalation": escalation, "survival": survival}
        transaction.set_rollback(True)


@pytest.fixture
def trial(seed, db):  # type: ignore[no-untyped-def]
    return seed["trial"]


def _months(days: float) -> float:
    return round(days / MONTH, 1)


# ------------------------------------------------------------------ Table 1


TABLE1 = [
    ("Sex", "Male", 9), ("Sex", "Female", 9),
    ("Age, y", "15-39", 7), ("Age, y", "40-49", 4), ("Age, y", "50-59", 4), ("Age, y", "60-69", 3),
    ("Race", "White", 15), ("Race", "Black", 1), ("Race", "Asian", 1), ("Race", "Other or unreported", 1),
    ("Cytogenetics risk", "Adverse", 9), ("Cytogenetics risk", "Ph+", 6),
    ("Therapy before transplantation", "ASPase-containing regimen", 6),
    ("Therapy before transplantation", "Blinatumomab", 8),
    ("Therapy before transplantation", "INO", 3),
    ("Therapy before transplantation", "CAR T-cell therapy", 2),
    ("Therapy before transplantation", "Allo-HCT", 1),
    ("Disease status before HCT", "CR1", 14), ("Disease status before HCT", "CR2", 3),
    ("Disease status before HCT", "CR3 or more", 1),
    ("HCT-CI", "0", 1), ("HCT-CI", "1-2", 7), ("HCT-CI", ">=3", 10),
    ("Donor type", "Matched sibling", 2), ("Donor type", "Haploidentical", 3),
    ("Donor type", "Matched unrelated", 12), ("Donor type", "Cord blood", 1),
    ("Donor source", "Bone marrow", 5), ("Donor source", "Peripheral blood", 12), ("Donor source", "Cord blood", 1),
    ("Conditioning regimen", "MAC", 5), ("Conditioning regimen", "RIC/NMA", 13),
    ("Conditioning regimen", "ATG use", 6),
    ("GVHD prophylaxis regimen", "CNI + MTX", 12), ("GVHD prophylaxis regimen", "CNI + MMF", 2),
    ("GVHD prophylaxis regimen", "PTCy", 4),
    ("MRD status", "MRD+ before HCT", 4), ("MRD status", "MRD+ after HCT", 1),
    ("MRD status", "MRD+ before and after HCT", 1), ("MRD status", "MRD- before and after HCT", 12),
]  # fmt: skip


@pytest.mark.parametrize(("section", "label", "count"), TABLE1)
def test_table1_counts(trial, section, label, count):  # type: ignore[no-untyped-def]
    assert table1(trial).count(section, label) == count


def test_table1_medians_and_regimens(trial):  # type: ignore[no-untyped-def]
    t = table1(trial)
    assert t.n == 18
    assert t.median("Age, y", "Median (range)") == (44, 17, 67)
    assert t.median("Age, y", "MAC: median (range)") == (29, 17, 32)
    assert t.median("Age, y", "RIC/NMA: median (range)") == (56, 27, 67)
    assert t.median("Therapy before transplantation", "Median lines of therapy (range)") == (2, 1, 5)
    regimens = [(r.label, r.count) for r in t.section("Conditioning regimen").rows]
    assert regimens == [
        ("MAC", 5), ("Busulfan based", 1), ("Other + TBI", 4),
        ("RIC/NMA", 13), ("Busulfan based", 2), ("Melphalan based", 8), ("Other + TBI", 3),
        ("ATG use", 6),
    ]  # fmt: skip


def test_table1_selector_costs_one_query_whatever_the_size(trial, django_assert_num_queries):  # type: ignore[no-untyped-def]
    with django_assert_num_queries(1):
        assert table1(trial).n == 18
    Patient.objects.filter(trial=trial, dose_level__isnull=False).exclude(site__code="UHC").update(dose_level=None)
    with django_assert_num_queries(1):
        assert table1(trial).n == 8


def test_table1_page_shows_the_table_in_constant_queries(seed, db, client, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    client.force_login(seed["investigator"])
    with django_assert_max_num_queries(12):
        response = client.get(reverse("trial_table1", args=[seed["trial"].pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "44 (17-67)" in html and "29 (17-32)" in html and "56 (27-67)" in html and "12 (66.7)" in html


def test_table1_page_of_a_coordinator_counts_own_site_only(seed, db, client):  # type: ignore[no-untyped-def]
    coordinator = UserFactory(username="seed-coordinator")
    trial = seed["trial"]
    grant(coordinator, trial, RoleGrant.Role.COORDINATOR, trial.sites.get(code="MSK"))
    client.force_login(coordinator)
    response = client.get(reverse("trial_table1", args=[trial.pk]))
    assert response.status_code == 200
    assert "N = 4" in response.content.decode()  # MSK treated 4 (its screen failure is not counted)


# ------------------------------------------------------------------ dosing


def _per_patient_cycles(trial):  # type: ignore[no-untyped-def]
    cycles = cycles_by_patient(trial)
    levels = dict(Patient.objects.filter(trial=trial, dose_level__isnull=False).values_list("pk", "dose_level__level"))
    return {pid: (levels[pid], len(cycles.get(pid, []))) for pid in levels}


def test_patients_and_cycles_per_level(trial):  # type: ignore[no-untyped-def]
    by_level: dict[int, list[int]] = {}
    for level, n in _per_patient_cycles(trial).values():
        by_level.setdefault(level, []).append(n)
    assert {lv: sorted(ns, reverse=True) for lv, ns in by_level.items()} == {
        1: [4, 4, 3, 1],
        2: [4, 4, 3],
        3: [4, 3, 3, 3, 2, 1],  # the paper lists 7 counts for 6 patients: docs/seed-trial.md
        4: [8, 4, 4, 4, 2],
    }


def test_first_dose_day_doses_and_platelets(trial):  # type: ignore[no-untyped-def]
    first = first_dose_dates(trial)
    hct = {r["patient_id"]: r["hct_date"] for r in outcome_rows(trial)}
    days = [(first[pid] - hct[pid]).days for pid in first]
    assert len(days) == 18 and statistics.median(days) == 84 and (min(days), max(days)) == (47, 100)
    doses = [n for _, n in _per_patient_cycles(trial).values()]
    # Median 3 as printed is the lower median; 18 patients' counts give 3.5 (docs/seed-trial.md).
    assert statistics.median_low(doses) == 3 and statistics.median(doses) == 3.5
    assert (min(doses), max(doses)) == (1, 8)
    platelets = []
    for p in Patient.objects.filter(trial=trial, dose_level__isnull=False).prefetch_related("screenings"):
        before = [s for s in p.screenings.all() if s.date <= first[p.pk]]
        platelets.append(float(before[-1].platelets_10e9_l))
    assert statistics.median(platelets) == 133


def test_discontinuation_reasons(trial):  # type: ignore[no-untyped-def]
    reasons = Counter(
        PatientEvent.objects.filter(patient__trial=trial, kind=PatientEvent.Kind.END_OF_TREATMENT).values_list(
            "reason", flat=True
        )
    )
    assert reasons == {"withdrawal": 8, "toxicity": 6, "completed": 4}


# ------------------------------------------------------------------ safety (Table 2, DLT)

# The paper's Table 2 row -> the CTCAE v5.0 term the seed records it under.
TABLE2 = [
    ("Neutropenia", "Neutrophil count decreased", 3, 3),
    ("Thrombocytopenia", "Platelet count decreased", 2, 6),
    ("Anemia", "Anemia", 1, 0),
    ("Infections and infestations", "Infections and infestations - Other, specify", 5, 2),
    ("Nausea and vomiting", "Nausea", 8, 0),
    ("Fatigue and weakness", "Fatigue", 5, 0),
    ("Anorexia", "Anorexia", 3, 0),
    ("Headache", "Headache", 3, 0),
    ("Rash", "Rash maculo-papular", 2, 0),
    ("Abdominal pain", "Abdominal pain", 2, 0),
    ("Acute GVHD", "Immune system disorders - Other, specify", 2, 0),
    ("Diarrhea", "Diarrhea", 2, 0),
    ("Elevated bilirubin", "Blood bilirubin increased", 1, 0),
    ("Fever", "Fever", 1, 0),
]


def test_table2_reproduced_exactly(seed, db):  # type: ignore[no-untyped-def]
    summary = ae_summary(seed["investigator"], seed["trial"])["overall"]
    assert summary["patients"] == 18
    rows = {r["term"]: (r["grade_1_2"], r["grade_3_4"], r["grade_5"]) for r in summary["terms"]}
    assert rows == {term: (g12, g34, 0) for _, term, g12, g34 in TABLE2}
    # Patients with >= 1 event: 16 with a grade 1/2 event (every patient with an AE has
    # one), 7 with a grade 3/4 event.
    assert summary["patients_with_event"] == 16
    worst: dict[int, int] = {}
    low: set[int] = set()
    for ae in ae_list(seed["investigator"], trial=seed["trial"]):
        worst[ae.patient_id] = max(worst.get(ae.patient_id, 0), ae.grade)
        if ae.grade <= 2:
            low.add(ae.patient_id)
    assert len(low) == 16 and sum(1 for g in worst.values() if g in (3, 4)) == 7


def test_one_dlt_prolonged_thrombocytopenia_at_05_and_no_sos(seed, db):  # type: ignore[no-untyped-def]
    trial = seed["trial"]
    dlts = list(DltAdjudication.objects.filter(patient__trial=trial, is_dlt=True, superseded_by__isnull=True))
    assert len(dlts) == 1
    dlt = dlts[0]
    assert dlt.rule == DltAdjudication.Rule.PROLONGED_CYTOPENIA and dlt.patient.dose_level.level == 3
    assert dlt.adverse_event.term.term == "Platelet count decreased" and dlt.adverse_event.grade >= 3
    assert (dlt.adverse_event.resolved - dlt.adverse_event.onset).days > 28
    review = trial_dlt_review(seed["investigator"], trial, as_of=datetime.date(2026, 1, 1))
    assert sum(r.open_candidates for r in review) == 0  # every candidate adjudicated
    statuses = Counter(r.status for r in review)
    assert statuses == {"no_dlt": 16, "dlt": 1, "non_evaluable": 1}
    assert not [ae for ae in ae_list(seed["investigator"], trial=trial) if "sinusoidal" in ae.term.term.lower()]


def test_escalation_replay_declares_the_mtd_at_06(seed, db):  # type: ignore[no-untyped-def]
    esc = seed["escalation"]
    assert esc["decision"] == "mtd_declared" and esc["mtd_dose_level"] == 4
    assert esc["cohorts"][3]["dose_mg_m2"] == 0.6
    assert [(c["enrolled"], c["evaluable"], c["non_evaluable"], c["dlts"]) for c in esc["cohorts"]] == [
        (4, 3, 1, 0), (3, 3, 0, 0), (6, 6, 0, 1), (5, 5, 0, 0),
    ]  # fmt: skip
    assert esc["awaiting_signoff"] is None and esc["warnings"] == []
    assert [(h["decision"], h["dose_level"]) for h in esc["history"]] == [
        ("escalate", 2), ("escalate", 3), ("expand", 3), ("escalate", 4), ("mtd_declared", 4),
    ]  # fmt: skip


# ------------------------------------------------------------------ outcomes


def _at_1y(block):  # type: ignore[no-untyped-def]
    return round(block["at_1y"]["estimate"] * 100)


def test_survival_at_one_year(seed, db):  # type: ignore[no-untyped-def]
    s = seed["survival"]
    assert (_at_1y(s["pfs"]), _at_1y(s["os"])) == (89, 94)
    assert round(s["nrm"]["at_1y"]["estimate"] * 100, 1) == 5.6
    fu = s["follow_up"]
    assert (_months(fu["median_days"]), _months(fu["min_days"]), round(fu["max_days"] / MONTH)) == (18.1, 8.6, 59)


def test_survival_subgroups(seed, db):  # type: ignore[no-untyped-def]
    groups = {(g["name"], g["endpoint"]): g["groups"] for g in seed["survival"]["subgroups"]}
    assert _at_1y(groups[("mrd", "pfs")]["positive"]) == 100
    assert _at_1y(groups[("conditioning", "pfs")]["mac"]) == 100
    # The paper prints 83%; two events in 13 with no censoring before them give 84.6%
    # (docs/seed-trial.md: 83% contradicts the OS 92% and NRM 5.6% figures).
    assert _at_1y(groups[("conditioning", "pfs")]["ric_nma"]) == 85
    assert _at_1y(groups[("conditioning", "os")]["ric_nma"]) == 92
    assert _at_1y(groups[("conditioning", "os")]["mac"]) == 100
    assert _at_1y(groups[("mrd", "os")]["positive"]) == 100


def test_relapses_and_the_gvhd_death(trial):  # type: ignore[no-untyped-def]
    rows = {r["subject_id"]: r for r in outcome_rows(trial)}
    levels = dict(Patient.objects.filter(trial=trial).values_list("subject_id", "dose_level__level"))
    relapses = sorted((round((r["relapse_date"] - r["hct_date"]).days / MONTH), levels[sid])
                      for sid, r in rows.items() if r["relapse_date"])  # fmt: skip
    assert relapses == [(7, 3), (23, 2)]
    deaths = [(sid, r) for sid, r in rows.items() if r["death_date"]]
    assert len(deaths) == 1
    sid, death = deaths[0]
    assert death["death_cause"] == "gvhd" and levels[sid] == 4 and (death["death_date"] - death["hct_date"]).days < 365


def test_acute_gvhd_grades_and_mrd_conversion(trial):  # type: ignore[no-untyped-def]
    worst: dict[int, int] = {}
    for pid, grade in GvhdEpisode.objects.filter(patient__trial=trial, kind="acute").values_list(
        "patient_id", "acute_grade"
    ):
        worst[pid] = max(worst.get(pid, 0), grade)
    assert len(worst) == 13 and Counter(worst.values()) == {1: 5, 2: 7, 4: 1}
    first = first_dose_dates(trial)
    converted = 0
    mrd_positive = Patient.objects.filter(trial=trial, dose_level__isnull=False).filter(
        transplant__mrd_before=True
    ) | Patient.objects.filter(trial=trial, dose_level__isnull=False, transplant__mrd_after=True)
    mrd_positive = mrd_positive.distinct().prefetch_related("assessments")
    for p in mrd_positive:
        after = [a for a in p.assessments.all() if a.kind == "mrd" and a.date > first[p.pk]]
        if after and after[-1].result == "negative":
            converted += 1
    assert (mrd_positive.count(), converted) == (6, 4)


# ------------------------------------------------------------------ the dashboard


def test_the_pages_show_the_replayed_results(seed, db, client):  # type: ignore[no-untyped-def]
    client.force_login(seed["investigator"])
    trial = seed["trial"]
    escalation = client.get(reverse("escalation", args=[trial.pk])).content.decode()
    assert "MTD: level 4" in escalation
    survival = client.get(reverse("survival", args=[trial.pk])).content.decode()
    assert "0.944" in survival and "0.889" in survival and "0.056" in survival  # OS, PFS, NRM at 1 year
    table = client.get(reverse("trial_table1", args=[trial.pk])).content.decode()
    assert "44 (17-67)" in table
