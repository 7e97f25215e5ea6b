"""Sponsor exports (issue 8): values, scope, incremental pulls, bad input, query counts."""

import csv
import datetime
import io
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analysis import endpoints
from core.audit import record_update
from core.tokens import token_issue
from exchange import exports
from patients.models import Assessment, PatientEvent, Screening
from safety.models import AdverseEvent, CtcaeTerm
from tests.factories import (
    AdverseEventFactory,
    AssessmentFactory,
    ConsentFactory,
    CycleFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ScreeningFactory,
    TransplantFactory,
)

DATASETS = ["dm", "ex", "ae", "ds", "rs", "dv", "adtte"]
D = datetime.date


def _get(client, user, url):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="export test")
    return client.get(url, HTTP_AUTHORIZATION=f"Token {key}")


def _body(response) -> str:  # type: ignore[no-untyped-def]
    assert response.streaming, "exports are streamed"
    return b"".join(response.streaming_content).decode()


def _csv(client, user, dataset, trial, **query):  # type: ignore[no-untyped-def]
    params = "&".join(f"{k}={v}" for k, v in query.items())
    response = _get(client, user, f"/api/v1/exports/{dataset}/?trial={trial.code}&format=csv&{params}")
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(_body(response))))


@pytest.fixture
def treated(world):  # type: ignore[no-untyped-def]
    """One treated patient at site A with a record of every kind the exports read."""
    trial = world["trial"]
    level = DoseLevelFactory(trial=trial, level=1, dose_mg_m2=Decimal("0.3"))
    patient = PatientFactory(
        trial=trial, site=world["site_a"], subject_id="SA-001", dose_level=level, enrolled_on=D(2024, 3, 30)
    )
    TransplantFactory(patient=patient, date=D(2024, 1, 10))
    ConsentFactory(patient=patient, date=D(2024, 3, 20))
    ScreeningFactory(patient=patient, date=D(2024, 3, 18), result=Screening.Result.NOT_ELIGIBLE)
    CycleFactory(patient=patient, number=1, day1=D(2024, 4, 1))
    CycleFactory(patient=patient, number=2, due_date=D(2024, 4, 29), day1=D(2024, 5, 3), delay_days=4)
    CycleFactory(patient=patient, number=3, due_date=D(2024, 5, 31), day1=None, given=False)
    other_term = CtcaeTerm.objects.filter(term__icontains="Other, specify").first()
    ae = AdverseEventFactory(
        patient=patient, onset=D(2024, 4, 20), resolved=D(2024, 5, 2), serious=True, sae_hospitalisation=True
    )
    AdverseEventFactory(patient=patient, onset=D(2024, 3, 31), term=other_term, specify="Rash on left arm", grade=1)
    AssessmentFactory(patient=patient, kind=Assessment.Kind.MRD, date=D(2024, 4, 10))
    AssessmentFactory(
        patient=patient,
        kind=Assessment.Kind.BONE_MARROW,
        date=D(2024, 7, 1),
        result="",
        response=Assessment.Response.CR,
        blasts_pct=Decimal("1.5"),
    )
    PatientEventFactory(patient=patient, kind=PatientEvent.Kind.END_OF_TREATMENT, date=D(2024, 6, 1), reason="toxicity")
    PatientEventFactory(patient=patient, kind=PatientEvent.Kind.RELAPSE, date=D(2024, 10, 1), blasts_pct=Decimal("12"))
    PatientEventFactory(patient=patient, kind=PatientEvent.Kind.DEATH, date=D(2024, 12, 1), cause="relapse")
    # Site B: a patient with no dose yet (no first dose: not evaluable for NRM).
    other = PatientFactory(
        trial=trial, site=world["site_b"], subject_id="SB-001", dose_level=level, enrolled_on=D(2024, 3, 1)
    )
    TransplantFactory(patient=other, date=D(2024, 1, 1))
    PatientEventFactory(patient=other, kind=PatientEvent.Kind.LAST_CONTACT, date=D(2024, 6, 30))
    return {"trial": trial, "patient": patient, "other": other, "ae": ae}


def test_ae_rows_carry_ctcae_meddra_grade_attribution_seriousness_and_study_days(client, world, treated):  # type: ignore[no-untyped-def]
    rows = _csv(client, world["sponsor"], "ae", treated["trial"])
    assert [r["AESTDTC"] for r in rows] == ["2024-04-20", "2024-03-31"]  # by patient, then record
    ae, other = rows
    assert ae["STUDYID"] == "TRIAL-T" and ae["DOMAIN"] == "AE" and ae["USUBJID"] == "TRIAL-T-SA-001"
    assert (ae["AEDECOD"], ae["AELLTCD"], ae["AEBODSYS"]) == ("Platelet count decreased", "10035528", "Investigations")
    assert (ae["AETOXGR"], ae["AEREL"], ae["AESER"], ae["AESHOSP"], ae["AESDTH"]) == ("3", "PROBABLE", "Y", "Y", "N")
    assert (ae["AEACN"], ae["AEENDTC"], ae["AEENRF"]) == ("DOSE NOT CHANGED", "2024-05-02", "")
    # Study day 1 = first dose (2024-04-01); the day before it is -1 (SDTM, no day 0).
    assert (ae["AESTDY"], ae["AEENDY"]) == ("20", "32")
    assert other["AESTDY"] == "-1" and other["AEENRF"] == "ONGOING" and other["AEENDTC"] == ""
    assert other["AETERM"].endswith(" - Rash on left arm") and other["AEDECOD"] != other["AETERM"]


def test_exposure_is_one_row_per_administered_dose(client, world, treated):  # type: ignore[no-untyped-def]
    rows = _csv(client, world["investigator"], "ex", treated["trial"])
    assert [(r["EXSEQ"], r["EXSTDTC"], r["EXSTDY"]) for r in rows] == [
        ("1", "2024-04-01", "1"),
        ("2", "2024-05-03", "33"),
    ]
    first, second = rows
    assert (first["EXDOSE"], first["EXDOSU"], first["EXDOSMGM"], first["EXBSA"]) == ("0.55", "mg", "0.3", "1.82")
    assert (second["EXADJ"], second["EXDELAY"], second["VISIT"]) == ("DOSE DELAYED", "4", "CYCLE 2 DAY 1")


def test_demographics_are_de_identified(client, world, treated):  # type: ignore[no-untyped-def]
    rows = {r["SUBJID"]: r for r in _csv(client, world["sponsor"], "dm", treated["trial"])}
    dm = rows["SA-001"]
    assert (dm["BRTHDTC"], dm["SEX"], dm["RACE"], dm["SITEID"]) == ("1975", "F", "NOT REPORTED", "SA")
    assert (dm["ARMCD"], dm["ARM"], dm["ACTARMCD"]) == ("L1", "0.3 mg/m2", "L1")
    assert (dm["RFICDTC"], dm["RFSTDTC"], dm["RFENDTC"], dm["DTHDTC"], dm["DTHFL"]) == (
        "2024-03-20",
        "2024-04-01",
        "2024-05-03",
        "2024-12-01",
        "Y",
    )
    assert rows["SB-001"]["ACTARMCD"] == "NOTTRT" and rows["SB-001"]["DTHFL"] == ""
    # Only subject ID and birth year identify a patient; no site name, no user.
    assert set(dm) == set(exports.DATASETS["dm"].columns)
    body = json.dumps(list(rows.values()))
    assert world["site_a"].name not in body and world["coordinator_a"].username not in body


def test_disposition_and_response(client, world, treated):  # type: ignore[no-untyped-def]
    ds = [(r["DSDECOD"], r["DSSTDTC"], r["DSSTDY"]) for r in _csv(client, world["sponsor"], "ds", treated["trial"])]
    assert ds[:6] == [
        ("SCREEN FAILURE", "2024-03-18", "-14"),
        ("INFORMED CONSENT OBTAINED", "2024-03-20", "-12"),
        ("ENROLLED", "2024-03-30", "-2"),
        ("ADVERSE EVENT", "2024-06-01", "62"),
        ("DEATH", "2024-12-01", "245"),
        ("ENROLLED", "2024-03-01", ""),  # SB-001: no first dose, no study day
    ]
    rs = [
        (r["RSTESTCD"], r["RSSTRESC"], r["RSSTRESN"] and float(r["RSSTRESN"]), r["RSDTC"])
        for r in _csv(client, world["sponsor"], "rs", treated["trial"])
    ]
    assert rs == [
        ("MRD", "NEGATIVE", "", "2024-04-10"),
        ("OVRLRESP", "CR", 1.5, "2024-07-01"),
        ("OVRLRESP", "RELAPSE", 12.0, "2024-10-01"),  # "12" on PostgreSQL, "12.0" on SQLite
    ]


def test_adtte_follows_analysis_endpoints(client, world, treated):  # type: ignore[no-untyped-def]
    rows = {(r["SUBJID"], r["PARAMCD"]): r for r in _csv(client, world["sponsor"], "adtte", treated["trial"])}
    assert len(rows) == 6  # 2 patients x OS, PFS, NRM
    outcome = endpoints.PatientOutcome("SA-001", D(2024, 1, 10), D(2024, 4, 1), D(2024, 10, 1), D(2024, 12, 1), None)
    assert rows[("SA-001", "OS")]["AVAL"] == str(endpoints.os_time(outcome).time_days) == "326"
    assert rows[("SA-001", "OS")]["CNSR"] == "0" and rows[("SA-001", "OS")]["ADT"] == "2024-12-01"
    assert rows[("SA-001", "PFS")]["AVAL"] == str(endpoints.pfs_time(outcome).time_days)
    nrm = rows[("SA-001", "NRM")]
    assert (nrm["ORIGIN"], nrm["STARTDT"], nrm["CNSR"]) == ("FIRST_DOSE", "2024-04-01", "2")  # relapse: competing
    assert nrm["AVAL"] == str(endpoints.nrm_time(outcome).time_days)
    censored = rows[("SB-001", "OS")]
    assert (censored["AVAL"], censored["CNSR"], censored["ADT"]) == ("181", "1", "2024-06-30")
    assert rows[("SB-001", "NRM")]["AVAL"] == "" and "NO FIRST DOSE" in rows[("SB-001", "NRM")]["EVNTDESC"]


def test_json_is_a_streamed_document_with_typed_values_and_no_deletions(client, world, treated):  # type: ignore[no-untyped-def]
    response = _get(client, world["sponsor"], f"/api/v1/exports/ae/?trial={treated['trial'].pk}&format=json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "never deleted" in response["X-Export-Deletions"]
    document = json.loads(_body(response))
    assert document["dataset"] == "ae" and document["deletions"] == [] and document["columns"][0] == "STUDYID"
    first = document["rows"][0]
    assert first["AETOXGR"] == 3 and first["AESTDY"] == 20 and first["AESTDTC"] == "2024-04-20"
    assert document["rows"][1]["AEENDY"] is None


def test_updated_since_returns_changes_with_their_new_values(client, world, treated):  # type: ignore[no-untyped-def]
    trial, ae = treated["trial"], treated["ae"]
    cutoff = timezone.now()
    assert _csv(client, world["sponsor"], "ae", trial, updated_since=cutoff.isoformat().replace("+", "%2B")) == []
    record_update(ae, {"grade": 4}, user=world["coordinator_a"], reason="source verification")
    rows = _csv(client, world["sponsor"], "ae", trial, updated_since=cutoff.isoformat().replace("+", "%2B"))
    assert [(r["AESEQ"], r["AETOXGR"]) for r in rows] == [(str(ae.pk), "4")]
    # A corrected first dose moves every study day of the patient: all its rows come back.
    cycle = treated["patient"].cycles.get(number=1)
    later = timezone.now()
    record_update(cycle, {"day1": D(2024, 4, 2)}, user=world["coordinator_a"], reason="date typo")
    since = later.isoformat().replace("+", "%2B")
    assert {r["AESTDY"] for r in _csv(client, world["sponsor"], "ae", trial, updated_since=since)} == {"19", "-2"}
    assert [r["SUBJID"] for r in _csv(client, world["sponsor"], "dm", trial, updated_since=since)] == ["SA-001"]
    assert {r["SUBJID"] for r in _csv(client, world["sponsor"], "adtte", trial, updated_since=since)} == {"SA-001"}
    # A date alone means midnight UTC; a naive date-time is UTC.
    assert len(_csv(client, world["sponsor"], "ae", trial, updated_since="2000-01-01")) == 2
    assert len(_csv(client, world["sponsor"], "ae", trial, updated_since="2000-01-01T00:00:00")) == 2


@pytest.mark.parametrize(
    ("role", "expected"),
    [("sponsor", 200), ("investigator", 200), ("coordinator_a", 404), ("admin", 404), ("nobody", 404)],
)
def test_only_the_export_capability_reaches_exports(client, world, treated, role, expected):  # type: ignore[no-untyped-def]
    for dataset in DATASETS:
        response = _get(client, world[role], f"/api/v1/exports/{dataset}/?trial={treated['trial'].code}")
        assert response.status_code == expected, (role, dataset)


def test_exports_need_authentication_and_stay_in_the_users_trials(client, world, treated):  # type: ignore[no-untyped-def]
    assert client.get(f"/api/v1/exports/ae/?trial={treated['trial'].code}").status_code in {401, 403}
    other = world["other"]
    for ref in (other.code, str(other.pk), "²", "99999999999999999999", "%00"):
        response = _get(client, world["sponsor"], f"/api/v1/exports/dm/?trial={ref}")
        assert response.status_code == 404 and other.title not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=xml", "format"),
        ("format=", "format"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2024-13-45", "updated_since"),
        ("updated_since=2024-05-01T25:00:00", "updated_since"),
        ("trial=", "trial"),
    ],
)
def test_bad_parameters_answer_400_naming_the_parameter(client, world, treated, query, field):  # type: ignore[no-untyped-def]
    trial = "" if query.startswith("trial=") else f"trial={treated['trial'].code}&"
    response = _get(client, world["sponsor"], f"/api/v1/exports/ae/?{trial}{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_unsafe_methods_are_refused(client, world, treated):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=world["investigator"], name="t")
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(
            f"/api/v1/exports/ae/?trial={treated['trial'].code}", HTTP_AUTHORIZATION=f"Token {key}"
        )
        assert response.status_code == 405


def _patients_with_records(world, count: int) -> None:  # type: ignore[no-untyped-def]
    trial = world["trial"]
    level = trial.dose_levels.first() or DoseLevelFactory(trial=trial, level=1)
    for i in range(count):
        patient = PatientFactory(trial=trial, site=world["site_a"], dose_level=level, enrolled_on=D(2024, 3, 30))
        TransplantFactory(patient=patient)
        ConsentFactory(patient=patient)
        CycleFactory(patient=patient)
        AdverseEventFactory(patient=patient)
        AssessmentFactory(patient=patient)
        PatientEventFactory(patient=patient, kind=PatientEvent.Kind.DEATH, date=D(2024, 8, 1 + i % 20))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_query_count_does_not_grow_with_the_data(client, world, django_assert_num_queries, dataset, fmt):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=world["sponsor"], name="t")
    url = f"/api/v1/exports/{dataset}/?trial={world['trial'].code}&format={fmt}"
    _body(client.get(url, HTTP_AUTHORIZATION=f"Token {key}"))  # the token's first use is recorded once
    counts = []
    for added in (3, 27):  # 3 patients, then 30
        _patients_with_records(world, added)
        with CaptureQueriesContext(connection) as captured:
            assert _body(client.get(url, HTTP_AUTHORIZATION=f"Token {key}"))
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
    with django_assert_num_queries(counts[1]):
        _body(client.get(url, HTTP_AUTHORIZATION=f"Token {key}"))


def test_a_large_export_is_sent_in_several_chunks(client, world, treated, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(exports, "BATCH_ROWS", 5)
    patient = treated["patient"]
    AdverseEvent.objects.bulk_create(
        AdverseEvent(patient=patient, term=treated["ae"].term, grade=1, onset=D(2024, 4, 2), attribution="unrelated")
        for _ in range(23)
    )
    _, key = token_issue(user=world["sponsor"], name="t")
    response = client.get(f"/api/v1/exports/ae/?trial={treated['trial'].code}", HTTP_AUTHORIZATION=f"Token {key}")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 5  # batches of 5 rows, not one body built in memory
    assert b"".join(chunks).decode().count("\n") == 1 + 25


@pytest.mark.parametrize(
    "dangerous", ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(client, world, treated, dangerous):  # type: ignore[no-untyped-def]
    """OWASP CSV injection (issue 16 item 11): free text starting with = + - @ TAB CR gets a
    leading quote in CSV, on both writers (PostgreSQL's and Python's); JSON keeps the text;
    negative numbers in numeric columns stay numbers."""
    patient = treated["patient"]
    PatientEventFactory(patient=patient, kind=PatientEvent.Kind.RELAPSE, date=D(2024, 11, 1), relapse_site=dangerous)
    # A study day before the first dose is a genuine negative number.
    AssessmentFactory(patient=patient, kind=Assessment.Kind.MRD, date=D(2024, 3, 25))
    rows = _csv(client, world["sponsor"], "rs", treated["trial"])
    sites = [r["RSLOC"] for r in rows if r["RSLOC"] not in ("", "EXTRAMEDULLARY")]
    assert sites == ["'" + dangerous.upper()], sites
    assert all(not r[c].startswith(exports.FORMULA_STARTS) for r in rows for c in r if c not in ("RSDY", "RSSTRESN"))
    assert "-7" in [r["RSDY"] for r in rows]
    response = _get(client, world["sponsor"], f"/api/v1/exports/rs/?trial={treated['trial'].code}&format=json")
    document = json.loads(_body(response))
    assert dangerous.upper() in [r["RSLOC"] for r in document["rows"]]
    assert -7 in [r["RSDY"] for r in document["rows"]]


def test_csv_cell_rule():  # type: ignore[no-untyped-def]
    assert exports.csv_cell("=1+1") == "'=1+1"
    assert exports.csv_cell("-3", numeric=True) == "-3"
    assert exports.csv_cell("-3") == "'-3"  # text column: neutralised
    assert exports.csv_cell("-cmd", numeric=True) == "'-cmd"
    assert exports.csv_cell(-3) == -3
    assert exports.csv_cell("plain") == "plain"
    assert exports.csv_cell(None) is None
