"""The trial bundle carries data cleaning (issue 12, docs/bundle.md): queries with their
threads (manual and automatic, open, answered, closed, a correction) and source
verification marks (current and cleared) round-trip through export -> import -> export
with a frozen casebook; a bad query or mark is refused by path and nothing is written."""

import copy
import json

import pytest
from django.apps import apps
from django.test import Client

from cleaning import selectors as cleaning_selectors
from cleaning import services as cleaning
from cleaning.models import DataQuery, QueryMessage
from core.errors import RecordLocked
from core.locks import lock_state_of
from exchange.bundle import BundleInvalid, bundle_export, bundle_import
from exchange.generate import generate_trial
from patients import services as patient_services
from patients.models import Patient
from safety import services as safety_services
from tests.factories import PASSWORD, UserFactory, grant
from trial.access import forget_grants
from trial.models import RoleGrant

pytestmark = pytest.mark.django_db

CONFIRMED_RULE = "assessment_overdue:mrd_hct_3m"


def as_json(document: dict) -> dict:
    return json.loads(json.dumps(document))


def table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


@pytest.fixture
def cleaned():  # type: ignore[no-untyped-def]
    """A small imported trial whose first patient went through data cleaning; returns
    (trial, patient, users)."""
    bundle = generate_trial(15, seed=5, code="CLEAN-1")
    bundle["patients"] = [p for p in bundle["patients"] if p.get("adverse_events") and p.get("cycles")][:2]
    bundle.pop("escalation_signoffs", None)
    trial = bundle_import(bundle)
    patient = Patient.objects.filter(trial=trial).order_by("subject_id").first()
    users = {
        "monitor": UserFactory(username="mona"),
        "coordinator": UserFactory(username="cora"),
        "data_manager": UserFactory(username="dama"),
    }
    grant(users["monitor"], trial, RoleGrant.Role.MONITOR)
    grant(users["coordinator"], trial, RoleGrant.Role.COORDINATOR, patient.site)
    grant(users["data_manager"], trial, RoleGrant.Role.DATA_MANAGER)
    ae = patient.adverse_events.order_by("id").first()
    cycle = patient.cycles.order_by("number").first()
    # Manual query on an AE's grade: answered with a correction, then closed.
    corrected = cleaning.query_raise(
        user=users["monitor"], target=ae, field_name="grade", question="Source says another grade."
    )
    cleaning.record_verify(user=users["monitor"], target=ae)  # cleared by the correction below
    cleaning.query_answer(
        user=users["coordinator"],
        query=corrected,
        text="Transcription error.",
        correction={"grade": str(ae.grade - 1 if ae.grade > 1 else ae.grade + 1)},
        reason="source document",
    )
    cleaning.query_close(user=users["monitor"], query=corrected, note="Fine now.")
    # Manual query on a cycle: answered without a correction (stays answered).
    answered = cleaning.query_raise(
        user=users["monitor"], target=cycle, field_name="", question="Was the dose given in full?"
    )
    cleaning.query_answer(user=users["coordinator"], query=answered, text="Yes, as written.")
    # Manual query on the patient: closed, re-opened (open again).
    reopened = cleaning.query_raise(user=users["monitor"], target=patient, field_name="", question="Birth year?")
    cleaning.query_answer(user=users["coordinator"], query=reopened, text="As in the chart.")
    cleaning.query_close(user=users["monitor"], query=reopened)
    cleaning.query_reopen(user=users["monitor"], query=reopened, text="The chart says otherwise.")
    # Automatic queries: one open, one closed by the rule.
    cleaning.query_raise_automatic(
        target=ae, rule_code="ae_ongoing_at_eot", field_name="resolved", question="Ongoing at end of treatment?"
    )
    auto = cleaning.query_raise_automatic(
        target=patient, rule_code="overdue:mrd_day_90", field_name="", question="MRD overdue."
    )
    cleaning.query_close_automatic(query=auto, text="Data fixed.")
    # SDV marks: current on the cycle and the patient; the AE one was cleared above.
    cleaning.record_verify(user=users["monitor"], target=cycle)
    cleaning.record_verify(user=users["monitor"], target=Patient.objects.get(pk=patient.pk))
    # The periodic rules raise their queries (overdue assessments); a monitor closes one
    # as confirmed at the source, so the rules do not ask it again.
    assert cleaning.query_sweep().raised > 0
    confirmed = DataQuery.objects.get(patient=patient, rule_code=CONFIRMED_RULE, state="open")
    cleaning.query_close(user=users["monitor"], query=confirmed, note="Confirmed at source: not done.")
    patient_services.casebook_freeze(user=users["data_manager"], patient=patient, password=PASSWORD)
    return trial, patient, users


def test_cleaning_round_trips_with_a_frozen_casebook(cleaned) -> None:  # type: ignore[no-untyped-def]
    trial, patient, users = cleaned
    first = as_json(bundle_export(trial))
    p = next(x for x in first["patients"] if x["subject_id"] == patient.subject_id)
    assert p["lock"]["state"] == "frozen"
    queries = p["queries"]
    assert [(q["record"], q["field"], q["state"], q["origin"]) for q in queries[:5]] == [
        ("adverse_events[0]", "grade", "closed", "manual"),
        ("cycles[0]", None, "answered", "manual"),
        ("patient", None, "open", "manual"),
        ("adverse_events[0]", "resolved", "closed", "automatic"),  # closed by the sweep below: AE resolved
        ("patient", None, "closed", "automatic"),
    ]
    assert queries[0]["raised_by"] == "mona"
    assert [m["kind"] for m in queries[0]["messages"]] == ["question", "correction", "close"]
    correction = queries[0]["messages"][1]
    assert correction["by"] == "cora" and correction["field"] == "grade" and correction["old"] != correction["new"]
    assert queries[3]["rule_code"] == "ae_ongoing_at_eot" and queries[3]["raised_by"] is None
    assert queries[4]["messages"][-1] == {**queries[4]["messages"][-1], "kind": "auto_close", "by": None}
    swept = {q["rule_code"]: q for q in queries[5:]}
    assert swept[CONFIRMED_RULE]["state"] == "closed" and len(swept) > 1
    assert swept[CONFIRMED_RULE]["messages"][-1]["by"] == "mona"
    assert sorted((v["record"], v["current"], v["by"]) for v in p["source_verifications"]) == [
        ("adverse_events[0]", False, "mona"),
        ("cycles[0]", True, "mona"),
        ("patient", True, "mona"),
    ]

    again = copy.deepcopy(first)
    again["trial"]["code"] = "CLEAN-1-RT"
    imported = bundle_import(again)
    second = as_json(bundle_export(imported))
    second["trial"]["code"] = first["trial"]["code"]
    assert second == first

    # Historic people, kept times, marked imported; SDV state kept relative to the new records.
    copy_patient = Patient.objects.get(trial=imported, subject_id=patient.subject_id)
    rows = list(DataQuery.objects.filter(patient=copy_patient).order_by("created_at", "id"))
    assert all(q.imported and q.raised_by is None for q in rows)
    assert rows[0].raised_by_name == "mona"
    assert rows[0].created_at.isoformat() == queries[0]["raised_at"]
    assert QueryMessage.objects.filter(query__patient=copy_patient, author_name="cora").count() == 3
    new_ae = copy_patient.adverse_events.order_by("id").first()
    new_cycle = copy_patient.cycles.order_by("number").first()
    assert cleaning_selectors.sdv_status(new_cycle).state == "verified"
    assert cleaning_selectors.sdv_status(new_ae).state == "cleared"
    assert cleaning_selectors.sdv_status(copy_patient).state == "verified"
    assert "mona" in cleaning_selectors.sdv_status(new_cycle).text
    # The rules do not raise again: not the live imported ones, not the one a monitor closed as confirmed
    # (its historic closing time is older than the imported record's re-creation).
    live = DataQuery.objects.exclude(state="closed").filter(patient=copy_patient).count()
    cleaning.query_sweep()
    assert DataQuery.objects.exclude(state="closed").filter(patient=copy_patient).count() == live
    assert not DataQuery.objects.filter(patient=copy_patient, rule_code=CONFIRMED_RULE, state="open").exists()
    # The casebook is frozen after the import: data refused, the imported thread still answerable.
    assert lock_state_of(new_ae) == "frozen"
    grant(users["coordinator"], imported, RoleGrant.Role.COORDINATOR, copy_patient.site)
    forget_grants(users["coordinator"])
    with pytest.raises(RecordLocked):
        safety_services.ae_update(user=users["coordinator"], ae=new_ae, changes={"grade": new_ae.grade}, reason="test")
    reopened = next(q for q in rows if q.state == "open" and q.origin == "manual")
    cleaning.query_answer(user=users["coordinator"], query=reopened, text="Checked again at the site.")
    assert DataQuery.objects.get(pk=reopened.pk).state == "answered"
    # The thread shows the recorded people, not "system".
    client = Client()
    client.force_login(users["coordinator"], backend="django.contrib.auth.backends.ModelBackend")
    thread = client.get(f"/queries/{reopened.pk}/").content.decode()
    assert "mona (imported)" in thread and "cora (imported)" in thread


def _bad(first: dict, mutate) -> list[str]:  # type: ignore[no-untyped-def]
    bundle = copy.deepcopy(first)
    bundle["trial"]["code"] = "CLEAN-BAD"
    mutate(bundle["patients"][0])
    before = table_counts()
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    assert table_counts() == before  # nothing written, not even the import user's rows
    return refused.value.problems


def test_bad_queries_and_marks_are_refused_by_path_and_nothing_is_written(cleaned) -> None:  # type: ignore[no-untyped-def]
    trial, patient, _ = cleaned
    first = as_json(bundle_export(trial))
    first["patients"].sort(key=lambda p: p["subject_id"] != patient.subject_id)  # the cleaned one first

    def no_such_ae(p):  # type: ignore[no-untyped-def]
        p["queries"][0]["record"] = "adverse_events[7]"

    assert _bad(first, no_such_ae) == ["patients[0].queries[0].record: no adverse_events[7] in this patient."]

    def nonsense_path(p):  # type: ignore[no-untyped-def]
        p["source_verifications"][0]["record"] = "ae/3"
        p["queries"][1]["record"] = "widgets[0]"

    problems = _bad(first, nonsense_path)
    assert any(
        x.startswith("patients[0].source_verifications[0].record: 'ae/3' is not a record path") for x in problems
    )
    assert any(x.startswith("patients[0].queries[1].record: 'widgets' is not a record list") for x in problems)

    def bad_shape(p):  # type: ignore[no-untyped-def]
        p["queries"][0]["state"] = "pending"
        p["queries"][1]["messages"][0]["colour"] = "red"
        p["source_verifications"][0].pop("current")

    problems = _bad(first, bad_shape)
    assert "patients[0].queries[0].state: 'pending' is not one of open, answered, closed." in problems
    assert any(x.startswith("patients[0].queries[1].messages[0].colour: unknown key") for x in problems)
    assert "patients[0].source_verifications[0].current: required key is missing." in problems

    def bad_rules(p):  # type: ignore[no-untyped-def]
        p["queries"][0]["field"] = "colour"  # not a field of an AE
        p["queries"][1]["closed_at"] = p["queries"][1]["raised_at"]  # answered with a closing time
        p["queries"][2]["raised_by"] = None  # a manual query names its raiser
        p["queries"][3]["rule_code"] = None  # an automatic query names its rule
        p["queries"][0]["messages"][1]["field"] = "shoe_size"  # corrected field not on an AE
        p["queries"][4]["messages"] = p["queries"][4]["messages"][1:]  # no question first

    problems = _bad(first, bad_rules)
    for expected in (
        "patients[0].queries[0].field: ",
        "patients[0].queries[0].messages[1].field: ",
        "patients[0].queries[1].closed_at: ",
        "patients[0].queries[2].raised_by: ",
        "patients[0].queries[3].rule_code: ",
        "patients[0].queries[4].messages: ",
    ):
        assert any(x.startswith(expected) for x in problems), (expected, problems)

    def duplicate_live_rule(p):  # type: ignore[no-untyped-def]
        live = next(q for q in p["queries"] if q["origin"] == "automatic" and q["state"] == "open")
        p["queries"].append(copy.deepcopy(live))

    problems = _bad(first, duplicate_live_rule)
    n = len(first["patients"][0]["queries"])
    assert any(x.startswith(f"patients[0].queries[{n}].rule_code: Another open query") for x in problems), problems


def test_recorded_times_in_the_future_are_refused_by_path_and_nothing_is_written(cleaned) -> None:  # type: ignore[no-untyped-def]
    trial, patient, _ = cleaned
    first = as_json(bundle_export(trial))
    first["patients"].sort(key=lambda p: p["subject_id"] != patient.subject_id)  # the cleaned one first
    future = "2999-01-01T10:00:00+00:00"
    closed = next(j for j, q in enumerate(first["patients"][0]["queries"]) if q["state"] == "closed")

    def in_the_future(p):  # type: ignore[no-untyped-def]
        p["queries"][0]["raised_at"] = future
        p["queries"][closed]["closed_at"] = future
        p["queries"][1]["messages"][1]["at"] = future
        p["source_verifications"][0]["at"] = future
        p["lock"]["at"] = future

    problems = _bad(first, in_the_future)
    for expected in (
        "patients[0].queries[0].raised_at: The query's raising time 2999-01-01 ",
        f"patients[0].queries[{closed}].closed_at: The query's closing time 2999-01-01 ",
        "patients[0].queries[1].messages[1].at: The message time 2999-01-01 ",
        "patients[0].source_verifications[0].at: The verification time 2999-01-01 ",
        "patients[0].lock.at: The casebook lock time 2999-01-01 ",
    ):
        assert any(x.startswith(expected) and "is in the future" in x for x in problems), (expected, problems)
    assert len(problems) == 5, problems

    bundle = copy.deepcopy(first)
    bundle["trial_lock"] = {"state": "locked", "at": future, "by": "Dr. Dana Manager", "reason": "interim analysis"}
    problems = _bad(bundle, lambda p: None)
    assert len(problems) == 1 and problems[0].startswith("trial_lock.at: The trial lock time 2999-01-01 "), problems
