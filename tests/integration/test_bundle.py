"""The trial bundle (docs/api.md, docs/bundle.md): export -> import -> export gives the
same document; a bad bundle is refused whole, every problem listed by JSON path, and
nothing is written; historic signatures and enrolment deviations are kept as such."""

import copy
import io
import json
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.tokens import token_issue
from exchange.bundle import IMPORT_USERNAME, BundleInvalid, bundle_export, bundle_import
from exchange.generate import generate_trial
from patients.models import Patient
from safety.models import DltAdjudication
from trial.models import EscalationSignoff, RoleGrant, Trial
from trial.selectors import escalation_open_slots

pytestmark = pytest.mark.django_db


def table_counts() -> dict[str, int]:
    """Rows in every table the project has (history tables included)."""
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def as_json(document: dict) -> dict:
    return json.loads(json.dumps(document))


def round_trip(bundle: dict) -> tuple[Trial, dict]:
    """Import, export; import that export again (under another code: records are never
    deleted, so "an empty database" is a database without that trial), export again."""
    trial = bundle_import(bundle)
    first = as_json(bundle_export(trial))
    again = copy.deepcopy(first)
    again["trial"]["code"] = f"{first['trial']['code']}-RT"
    second = as_json(bundle_export(bundle_import(again)))
    second["trial"]["code"] = first["trial"]["code"]
    assert second == first
    return trial, first


def contains(expected, actual, path="$"):  # type: ignore[no-untyped-def]
    """Every value the generator wrote is in the export (which adds the computed ones)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing from the export"
            contains(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            contains(e, a, f"{path}[{i}]")
    elif isinstance(expected, str) and isinstance(actual, int | float) and not isinstance(actual, bool):
        assert Decimal(expected) == Decimal(str(actual)), f"{path}: {expected!r} != {actual!r}"  # "0.3" is 0.3
    else:
        assert expected == actual, f"{path}: {expected!r} != {actual!r}"


def by_subject(document: dict) -> dict:
    return {p["subject_id"]: p for p in document["patients"]}


def test_generated_trial_round_trips_and_keeps_every_value() -> None:
    bundle = generate_trial(22, seed=7)
    trial, exported = round_trip(copy.deepcopy(bundle))

    assert exported["format"] == "trial-bundle/1"
    assert Patient.objects.filter(trial=trial).count() == 22
    generated = by_subject(bundle)
    for subject, patient in by_subject(exported).items():
        contains(generated[subject], patient, f"patients[{subject}]")
    contains(bundle["trial"], exported["trial"], "trial")
    contains(bundle["escalation_signoffs"], exported["escalation_signoffs"], "escalation_signoffs")


SEED_BUNDLE = Path(__file__).resolve().parents[2] / "exchange" / "data" / "ino_post_hct_seed.json"


@pytest.mark.skipif(not SEED_BUNDLE.exists(), reason="the seed trial's bundle (issue 10) is not there")
def test_the_seed_trial_bundle_round_trips() -> None:
    seed = json.loads(SEED_BUNDLE.read_text())
    trial, exported = round_trip(copy.deepcopy(seed))

    assert len(exported["patients"]) == len(seed["patients"])
    recorded = by_subject(exported)
    for subject, patient in by_subject(seed).items():
        # Events are written (and exported) in date order; everything else as given.
        contains({k: v for k, v in patient.items() if k != "events"}, recorded[subject], subject)
        assert sorted(patient.get("events", []), key=lambda e: e["date"]) == sorted(
            recorded[subject]["events"], key=lambda e: e["date"]
        )


def test_signatures_are_historic_and_the_signer_need_not_exist() -> None:
    trial = bundle_import(generate_trial(16, seed=2))

    signoffs = list(EscalationSignoff.objects.filter(trial=trial))
    assert len(signoffs) == 5 and all(s.imported and s.signature_id is None for s in signoffs)
    assert {s.signed_by_name for s in signoffs} == {"Dr. Ivy Investigator"}
    assert signoffs[-1].decision == "mtd_declared" and signoffs[-1].signed_at.date() == date(2018, 9, 5)
    (dlt,) = DltAdjudication.objects.filter(patient__trial=trial)
    assert dlt.signature_id is None and dlt.signed_by_name == "Dr. Ivy Investigator" and dlt.is_dlt
    assert dlt.rule == DltAdjudication.Rule.NON_HEMATOLOGIC  # found by the DLT rules, not written by the bundle
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="Dr. Ivy Investigator").exists()
    # The import's own service user keeps no access once the import is over.
    writer = get_user_model().objects.get(username=IMPORT_USERNAME)
    assert not writer.has_usable_password()
    assert not RoleGrant.objects.filter(user=writer, revoked_at__isnull=True).exists()


def test_enrolments_the_rules_had_opened_are_not_deviations_and_others_are() -> None:
    bundle = generate_trial(18, seed=5)
    # The first L1 patient is recorded at L2, a level nobody had opened then.
    first = bundle["patients"][0]
    first["dose_level"] = 2
    for cycle in first["cycles"]:
        cycle["dose_mg_m2"] = 0.4

    trial = bundle_import(bundle)

    patients = {p.subject_id: p for p in Patient.objects.filter(trial=trial)}
    moved = patients[first["subject_id"]]
    assert moved.dose_level.level == 2
    assert "Enrolled at L2" in moved.enrolment_deviation and "L1 (3)" in moved.enrolment_deviation
    # The second L1 patient met an open L1 slot: no deviation.
    assert patients[bundle["patients"][1]["subject_id"]].enrolment_deviation == ""
    # A deviation the bundle records is kept as recorded.
    assert patients[bundle["patients"][15]["subject_id"]].enrolment_deviation.startswith("Expansion at the MTD")


def test_the_trial_level_results_are_recomputed_once_after_the_import(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        trial = bundle_import(generate_trial(16, seed=4))
    # One request per result, not one per record written (computation_requests_deferred).
    assert len(callbacks) == 3

    # Eager tasks ran at commit: the 3+3 state is fresh and says what the data say.
    from trial.models import TrialComputation

    escalation = TrialComputation.objects.get(trial=trial, kind=TrialComputation.Kind.ESCALATION)
    assert not escalation.stale and escalation.runs == 1
    assert escalation.data["mtd_dose_level"] == 4
    # One of the trial's two expansion places at the signed MTD is taken (issue 19 item 3).
    assert escalation_open_slots(trial) == {4: 1}


@pytest.mark.parametrize(
    ("change", "expected_path"),
    [
        (lambda b: b.update(patient=[]), "patient: unknown key"),
        (lambda b: b["trial"].update(sites=None), "trial.sites: a value is required"),
        (lambda b: b["trial"]["sites"][0].update(country=3), "trial.sites[0].country: expected"),
        (lambda b: b["trial"].update(sponsor="Société X"), "trial.sponsor: Use plain ASCII"),
        (
            lambda b: b["trial"]["sites"][1].update(country="us"),
            "trial.sites[1].country: 'us' is not an ISO 3166-1 alpha-3",
        ),
        (lambda b: b["trial"]["sites"][1].update(country="XYZ"), "sites[1].country: 'XYZ' is not an ISO 3166-1"),
        (lambda b: b["trial"]["sites"][1].update(country=None), "trial.sites[1].country: a value is required"),
        (lambda b: b["trial"]["dose_levels"][0].pop("dose_mg_m2"), "trial.dose_levels[0].dose_mg_m2: required key"),
        (lambda b: b["patients"][1].update(sex="f"), "patients[1].sex: 'f' is not one of female, male"),
        (lambda b: b["patients"][2]["cycles"][0].update(day1="2017-13-01"), "patients[2].cycles[0].day1: '2017-13-01'"),
        (lambda b: b["patients"][0]["adverse_events"].append({"grde": 2}), "].grde: unknown key"),
        (lambda b: b["patients"][4].update(birth_year="1970"), "patients[4].birth_year: expected a whole number"),
        (lambda b: b["patients"][5]["screenings"][0].update(anc_10e9_l=True), "screenings[0].anc_10e9_l: expected a"),
        (lambda b: b.update(format="trial-bundle/2"), "format: expected 'trial-bundle/1'"),
        (
            lambda b: b["patients"][0]["assessments"][0].update(voided={"at": "2024-01-01T00:00:00+00:00", "by": "x"}),
            "patients[0].assessments[0].voided.reason: required key",
        ),
        (
            lambda b: b["patients"][0]["events"][0].update(voided={"at": "2024-01-01", "by": "x", "reason": "r"}),
            "patients[0].events[0].voided.at: '2024-01-01' has no time zone",
        ),
        (
            lambda b: (
                b["patients"][0]
                .setdefault("dlt_adjudications", [])
                .append(
                    {"kind": "investigator", "is_dlt": True, "rationale": "r", "by": "x", "at": "2018-01-01"}
                    | {"evidence": {"term": "Nausea", "grade": 3, "onset": "2017-01-01", "resolved": None}}
                )
            ),
            ".evidence.attribution: required key",
        ),
        (
            lambda b: (
                b["patients"][0]
                .setdefault("dlt_adjudications", [])
                .append(
                    {"kind": "investigator", "is_dlt": True, "rationale": "r", "by": "x", "at": "2018-01-01"}
                    | {
                        "evidence": {
                            "term": "Nausea",
                            "grade": 3,
                            "onset": "2017-01-01",
                            "resolved": None,
                            "attribution": "possible",
                        }
                    }
                )
            ),
            "patients[0].dlt_adjudications[0].evidence: only a decision on an AE",
        ),
    ],
)
def test_a_malformed_bundle_names_the_path(change, expected_path) -> None:  # type: ignore[no-untyped-def]
    bundle = generate_trial(16, seed=1)
    change(bundle)
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    assert any(expected_path in problem for problem in refused.value.problems), refused.value.problems


def test_a_bundle_without_site_countries_still_imports() -> None:
    """Bundles written before sites had a country (DM.COUNTRY) import with none recorded."""
    bundle = generate_trial(4, seed=1)
    for site in bundle["trial"]["sites"]:
        del site["country"]
    trial = bundle_import(bundle)
    assert set(trial.sites.values_list("country", flat=True)) == {""}


def test_several_shape_problems_are_all_listed_and_nothing_is_written() -> None:
    bundle = generate_trial(16, seed=1)
    bundle["patients"][0]["adverse_events"][:0] = [{"term": "Nausea", "meddra_code": "10028813", "grade": 2,
                                                    "onset": "2017-08-20", "attribution": "probabel"}]  # fmt: skip
    bundle["patients"][3]["cycles"][1]["day_1"] = "2017-11-01"  # misspelt: would lose the date
    bundle["patients"][7]["events"][0]["kind"] = "deceased"
    before = table_counts()

    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)

    problems = refused.value.problems
    assert any(p.startswith("patients[0].adverse_events[0].attribution: 'probabel' is not one of") for p in problems)
    assert any(p.startswith("patients[3].cycles[1].day_1: unknown key") for p in problems)
    assert any(p.startswith("patients[7].events[0].kind: 'deceased'") for p in problems)
    assert len(problems) == 3
    assert table_counts() == before


def test_rule_problems_are_all_listed_by_path_and_nothing_is_written() -> None:
    bundle = generate_trial(16, seed=1)
    p3 = bundle["patients"][3]
    c1 = date.fromisoformat(p3["cycles"][0]["day1"])
    p3["cycles"][1]["day1"] = date.fromordinal(c1.toordinal() + 10).isoformat()  # 18 days early
    bundle["patients"][5]["screenings"][0]["platelets_10e9_l"] = 30  # a screen failure...
    bundle["patients"][5]["screenings"][0]["result"] = "eligible"  # ...recorded as eligible
    bundle["patients"][7]["adverse_events"].append(
        {"term": "Sepsis", "meddra_code": "10040047", "grade": 5, "onset": bundle["patients"][7]["enrolled"],
         "attribution": "unrelated"}
    )  # fmt: skip
    bundle["patients"][8]["adverse_events"].append(
        {"term": "Nausea", "meddra_code": "99999999", "grade": 1, "onset": bundle["patients"][8]["enrolled"],
         "attribution": "unrelated"}
    )  # fmt: skip
    bundle["patients"][9]["events"].append({"kind": "death", "date": "2031-01-01", "cause": "other"})
    bundle["escalation_signoffs"][0]["decision"] = "wait"  # not a decision anyone signs
    before = table_counts()

    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)

    problems = refused.value.problems
    expected = [
        "patients[3].cycles[1].day1: ",
        "patients[5].screenings[0].result: the bundle says eligible, the eligibility rules give not_eligible",
        "patients[5].enrolled: ",
        "patients[7].adverse_events[",
        "patients[8].adverse_events[",
        "patients[9].events[",
        "escalation_signoffs[0].decision: ",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert any("Grade 5 means death" in p for p in problems if p.startswith("patients[7]")), problems
    assert any("not a CTCAE v5.0 MedDRA code" in p for p in problems if p.startswith("patients[8]"))
    assert any("in the future" in p for p in problems if p.startswith("patients[9]"))
    assert table_counts() == before


def test_a_sign_off_in_the_future_or_before_its_cohort_is_refused_by_path_and_nothing_is_written() -> None:
    bundle = generate_trial(16, seed=1)
    signoffs = bundle["escalation_signoffs"]
    signoffs[0]["at"] = "2999-01-01"  # in the future
    assert signoffs[1]["decision"] == "escalate"  # decided on the cohort one level below
    level = signoffs[1]["dose_level"] - 1
    first = min(p["enrolled"] for p in bundle["patients"] if p.get("dose_level") == level and p.get("enrolled"))
    signoffs[1]["at"] = date.fromordinal(date.fromisoformat(first).toordinal() - 1).isoformat()
    before = table_counts()

    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)

    problems = refused.value.problems
    assert any(
        p.startswith("escalation_signoffs[0].at: The sign-off date 2999-01-01 is in the future") for p in problems
    )
    assert any(
        p.startswith("escalation_signoffs[1].at: ") and f"before the first enrolment at L{level} ({first})" in p
        for p in problems
    ), problems
    assert table_counts() == before


def test_a_bundle_for_a_trial_that_exists_is_refused() -> None:
    bundle = generate_trial(15, seed=1)
    bundle_import(copy.deepcopy(bundle))
    before = table_counts()
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    assert refused.value.problems == ["trial.code: A trial with code GEN-3P3 already exists on this server."]
    assert table_counts() == before


def test_export_costs_a_fixed_number_of_queries() -> None:
    small = bundle_import(generate_trial(15, seed=3, code="SMALL"))
    large = bundle_import(generate_trial(40, seed=3, code="LARGE"))
    counts = []
    for trial in (small, large):
        with CaptureQueriesContext(connection) as queries:
            bundle_export(trial)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_demo_trial_round_trips_through_the_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trial.demo import load_demo

    trial, _ = load_demo()
    out = io.StringIO()
    call_command("export_trial", trial.code, stdout=out)
    first = json.loads(out.getvalue())
    assert first["trial"]["code"] == "INO-POST-HCT" and len(first["trial"]["dose_levels"]) == 4
    first["trial"]["code"] = "INO-COPY"
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(first))
    call_command("import_trial", str(path), stdout=io.StringIO())
    out = io.StringIO()
    call_command("export_trial", "INO-COPY", stdout=out)
    assert json.loads(out.getvalue()) == first


def test_import_command_lists_the_problems_and_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bundle = generate_trial(15, seed=1)
    bundle["patients"][2]["sex"] = "unknown"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_trial", str(path), stderr=err)
    assert "patients[2].sex: 'unknown' is not one of female, male" in err.getvalue()
    with pytest.raises(CommandError, match="No trial"):
        call_command("export_trial", "NOPE", stdout=io.StringIO())


def test_api_import_is_for_administrators(client, world) -> None:  # type: ignore[no-untyped-def]
    bundle = generate_trial(15, seed=1, code="API-TRIAL")

    def post(user, body):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="t")
        return client.post(
            "/api/v1/trials/import/", json.dumps(body), content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {key}",
        )  # fmt: skip

    for role in ("coordinator_a", "investigator", "sponsor", "nobody"):
        assert post(world[role], bundle).status_code == 403
    before = table_counts()
    bad = copy.deepcopy(bundle)
    bad["patients"][0]["cycles"][0]["dayone"] = "2017-08-01"
    refused = post(world["admin"], bad)
    assert refused.status_code == 400
    assert refused.json()["errors"]["bundle"] == ["patients[0].cycles[0].dayone: unknown key (not in trial-bundle/1; "
                                                  "a misspelt key would lose data)."]  # fmt: skip
    counts = table_counts()
    counts.pop("core.ApiToken"), before.pop("core.ApiToken")
    counts.pop("core.HistoricalApiToken", None), before.pop("core.HistoricalApiToken", None)
    assert counts == before
    created = post(world["admin"], bundle)
    assert created.status_code == 201
    assert created.json()["code"] == "API-TRIAL" and created.json()["patients"] == 15


def bundle_variety(bundle: dict) -> set[str]:
    """Every kind of record and value the generator varies, as flags: what a sample must keep."""
    seen: set[str] = set()
    for p in bundle["patients"]:
        t = p["transplant"]
        seen |= {f"site {p['site']}", f"sex {p['sex']}", f"race {p['race']}", f"level {p['dose_level']}"}
        seen |= {f"{key} {t[key]}" for key in ("disease_status", "conditioning", "donor_type", "graft_source")}
        seen |= {f"gvhd_prophylaxis {t['gvhd_prophylaxis']}", f"mrd_before {t['mrd_before']}"}
        seen |= {f"consent v{c['protocol_version']}" for c in p["consents"]}
        seen |= {f"{len(p['cycles'])} cycles", f"{len(p['adverse_events'])} AEs"}
        seen |= {"reduced cycle" for c in p["cycles"] if c["reduced"]} | {
            "delayed cycle" for c in p["cycles"] if c["delay_days"]
        }
        seen |= {f"event {e['kind']}" for e in p["events"]} | {f"{kind}" for kind in ("dlt_adjudications",
                 "concomitant_medications", "enrolment_deviation") if p.get(kind)}  # fmt: skip
    return seen


def test_a_large_generated_trial_round_trips_on_postgresql(postgres_required) -> None:  # type: ignore[no-untyped-def]
    """Acceptance at scale, through the same services, at a bounded cost: every 25th patient
    of the 1,000-patient generated trial (after the 15 of the escalation phase), so the
    sample spans the same six years and both protocol versions and keeps every kind of
    record and value the 1,000 have (checked below). The full 1,000-patient timing is a
    benchmark (``bench/bundle_round_trip.py``, figures in docs/bundle.md)."""
    full = generate_trial(1000, seed=11, code="GEN-1000")
    bundle = {**full, "patients": full["patients"][:15] + full["patients"][15::25]}
    assert bundle_variety(bundle) == bundle_variety(full)
    assert len(bundle["patients"]) == 55
    started = time.perf_counter()
    trial = bundle_import(bundle)
    imported = time.perf_counter()
    first = as_json(bundle_export(trial))
    assert len(first["patients"]) == 55
    first["trial"]["code"] = "GEN-1000-RT"
    second = as_json(bundle_export(bundle_import(first)))
    done = time.perf_counter()
    first["trial"]["code"] = second["trial"]["code"]
    assert second == first
    print(f"\n55 patients: import {imported - started:.1f} s, round trip total {done - started:.1f} s")


def test_voided_records_and_the_evidence_of_signed_decisions_round_trip() -> None:
    """Issue 19 item 4 and issue 16 item 2: a record voided as entered in error travels with
    its void (when, who, why) and stays voided; a signed DLT decision whose AE was edited
    after signing stays invalidated, with the same changes, after export and import."""
    from cleaning.services import casebook_record_void
    from dosing import services as dosing_services
    from dosing.models import ConcomitantMedication, LabPanel
    from patients.models import Assessment, PatientEvent
    from safety import services as safety_services
    from safety.models import AdverseEvent, GvhdEpisode
    from tests.factories import PASSWORD, UserFactory, grant

    trial = bundle_import(generate_trial(22, seed=7, code="VOID-1"))
    coordinator, investigator = UserFactory(username="cora"), UserFactory(username="ivan")
    for site in trial.sites.all():
        grant(coordinator, trial, RoleGrant.Role.COORDINATOR, site)
    grant(investigator, trial, RoleGrant.Role.INVESTIGATOR)
    patients = Patient.objects.filter(trial=trial)
    ae_patient = next(
        p for p in patients.order_by("subject_id") if p.adverse_events.filter(adjudications=None).count() >= 2
    )
    signed_ae, voided_ae = list(ae_patient.adverse_events.filter(adjudications=None).order_by("id"))[:2]
    # A signed decision, then the AE edited: the signature no longer applies (issue 16).
    decision = safety_services.adjudication_sign(
        user=investigator,
        patient=ae_patient,
        data={
            "adverse_event": signed_ae,
            "rule": DltAdjudication.Rule.INVESTIGATOR,
            "event_date": signed_ae.onset,
            "is_dlt": True,
            "rationale": "judged a DLT at the time",
        },
        password=PASSWORD,
    )
    new_grade = 2 if signed_ae.grade != 2 else 1
    safety_services.ae_update(user=coordinator, ae=signed_ae, changes={"grade": new_grade}, reason="source")
    decision.refresh_from_db()
    changes = decision.evidence_changes
    assert changes == (f"grade {signed_ae.grade} -> {new_grade}",) and decision.needs_readjudication
    # One record of every voidable type voided, with a reason.
    patient = patients.filter(assessments__isnull=False, events__isnull=False).order_by("subject_id").first()
    extra_labs = dosing_services.lab_panel_record(
        user=coordinator, patient=patient, data={"date": patient.enrolled_on, "platelets": Decimal("99")}
    )
    gvhd = safety_services.gvhd_record(
        user=coordinator,
        patient=patient,
        data={"kind": "acute", "onset": patient.enrolled_on, "acute_grade": 2, "chronic_severity": ""},
    )
    medication = patients.filter(medications__isnull=False).first().medications.first()
    visit_labs = LabPanel.objects.filter(patient=patient).exclude(pk=extra_labs.pk).first()
    targets = [
        voided_ae,
        extra_labs,
        visit_labs,
        patient.assessments.first(),
        patient.events.filter(kind="last_contact").first() or patient.events.first(),
        medication,
        gvhd,
    ]
    for i, record in enumerate(targets):
        casebook_record_void(user=coordinator, target=record, reason=f"entered in error #{i}")
    first = as_json(bundle_export(trial))
    carried = [
        (p["subject_id"], key, item["voided"])
        for p in first["patients"]
        for key in ("labs", "adverse_events", "gvhd_episodes", "assessments", "events", "concomitant_medications")
        for item in p[key]
        if "voided" in item
    ] + [
        (p["subject_id"], "cycles.labs", c["labs"]["voided"])
        for p in first["patients"]
        for c in p["cycles"]
        if "voided" in c.get("labs", {})
    ]
    assert sorted(v["reason"] for _, _, v in carried) == [f"entered in error #{i}" for i in range(7)]
    assert {v["by"] for _, _, v in carried} == {"cora"}
    exported_ae = by_subject(first)[ae_patient.subject_id]
    [row] = [a for a in exported_ae["dlt_adjudications"] if a["rationale"] == "judged a DLT at the time"]
    assert row["evidence"]["grade"] == signed_ae.grade

    again = copy.deepcopy(first)
    again["trial"]["code"] = "VOID-1-RT"
    moved = bundle_import(again)
    second = as_json(bundle_export(moved))
    second["trial"]["code"] = first["trial"]["code"]
    assert second == first
    # The voided records arrive voided, as recorded, and stay out of the clinical reads.
    for model, original in zip(
        (AdverseEvent, LabPanel, LabPanel, Assessment, PatientEvent, ConcomitantMedication, GvhdEpisode),
        targets,
        strict=True,
    ):
        original = model.all_objects.get(pk=original.pk)
        [copy_] = model.all_objects.filter(
            patient__trial=moved, patient__subject_id=original.patient.subject_id, void_reason=original.void_reason
        )
        assert copy_.voided_at == original.voided_at and copy_.voided_by_name == "cora" and copy_.voided_by is None
        assert not model.objects.filter(pk=copy_.pk).exists()
    # The decision is still invalidated, with the same changes.
    [moved_decision] = DltAdjudication.objects.filter(patient__trial=moved, rationale="judged a DLT at the time")
    assert moved_decision.evidence_changes == changes and moved_decision.needs_readjudication
    assert "edited after signing" in (moved_decision.signature_evidence_problem() or "")
