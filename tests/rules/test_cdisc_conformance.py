"""exchange.cdisc.conformance: each check, worked on a small clean package that one
change breaks (issue 18; in place of CDISC CORE, docs/exports.md). Pure: no database."""

import copy
import datetime
from decimal import Decimal

import pytest

from exchange.cdisc import conformance, mapping, metadata
from exchange.cdisc.conformance import conformance_report, errors, iso8601_problem, report_text
from exchange.cdisc.mapping import AdverseEvent, Disposition, Dose, LabDraw, Medication, Study, Subject

D = datetime.date
STUDY = Study(code="STUDY-1", drug="INOTUZUMAB OZOGAMICIN")


def _subjects() -> list[Subject]:
    dosed = Subject(
        subject_id="UHC-001", site_code="UHC", birth_year=1975, sex="female", race="white", level=2,
        level_dose_mg_m2=Decimal("0.600"), enrolled_on=D(2024, 3, 1), hct_date=D(2024, 1, 15),
        doses=(
            Dose(1, D(2024, 3, 10), 2, Decimal("1.02"), Decimal("0.600"), Decimal("1.70")),
            Dose(2, D(2024, 4, 10), 2, Decimal("1.02"), Decimal("0.600"), Decimal("1.70")),
        ),
        adverse_events=(
            AdverseEvent(1, "Nausea", "10028813", "Gastrointestinal disorders", 2, D(2024, 3, 12), D(2024, 3, 20),
                         "possible", dlt=False),
            AdverseEvent(2, "Sepsis", "10040047", "Infections and infestations", 5, D(2024, 6, 1), D(2024, 6, 3),
                         "unrelated", serious=True, sae_death=True, outcome="fatal"),
        ),
        dispositions=(
            Disposition("consent", 11, D(2024, 2, 20), protocol_version="2"),
            Disposition("enrolment", 1, D(2024, 3, 1)),
            Disposition("end_of_treatment", 12, D(2024, 5, 8), reason="completed"),
            Disposition("death", 13, D(2024, 6, 3), cause="infection"),
        ),
        death_date=D(2024, 6, 3), death_cause="infection",
        labs=(LabDraw(5, D(2024, 3, 10), 1, platelets=Decimal("140"), alt=Decimal("45")),),
        medications=(Medication(6, "dasatinib", D(2024, 2, 1)),),
        diagnosis="b_all", country="USA",
    )  # fmt: skip
    failed = Subject(
        subject_id="UHC-002", site_code="UHC", birth_year=1980, sex="male", race="asian", country="USA",
        dispositions=(Disposition("consent", 21, D(2024, 2, 1)), Disposition("screening_failure", 22, D(2024, 2, 5))),
    )  # fmt: skip
    return [dosed, failed]


CLEAN = mapping.datasets(STUDY, _subjects())


def _package():  # type: ignore[no-untyped-def]
    return copy.deepcopy(CLEAN)


def _row(data, dataset, **match):  # type: ignore[no-untyped-def]
    """The 1-based row number and the record of the first record matching ``match``."""
    for i, r in enumerate(data[dataset], start=1):
        if all(r[k] == v for k, v in match.items()):
            return i, r
    raise AssertionError(f"no {dataset} record {match}")


def test_the_clean_package_has_no_finding():  # type: ignore[no-untyped-def]
    assert conformance_report(_package()) == []
    assert report_text([]) == "No findings.\n"


def _set(dataset, variable, value, **match):  # type: ignore[no-untyped-def]
    def change(data):  # type: ignore[no-untyped-def]
        row, r = _row(data, dataset, **match)
        r[variable] = value
        return row

    return change


def _drop(dataset, variable):  # type: ignore[no-untyped-def]
    def change(data):  # type: ignore[no-untyped-def]
        for r in data[dataset]:
            del r[variable]

    return change


def _duplicate(dataset, **match):  # type: ignore[no-untyped-def]
    def change(data):  # type: ignore[no-untyped-def]
        _, r = _row(data, dataset, **match)
        data[dataset].append(dict(r))
        return len(data[dataset])

    return change


DOSED = "STUDY-1-UHC-001"
FAILED = "STUDY-1-UHC-002"


@pytest.mark.parametrize(
    ("change", "rule", "dataset", "variable"),
    [
        (_set("DM", "COUNTRY", None, USUBJID=DOSED), "TD-REQ-NULL", "DM", "COUNTRY"),
        (_set("AE", "AETERM", "", AESEQ=1), "TD-REQ-NULL", "AE", "AETERM"),
        (_drop("LB", "LBTESTCD"), "TD-REQ-PRESENT", "LB", "LBTESTCD"),
        (_drop("EX", "EXDOSE"), "TD-EXP-PRESENT", "EX", "EXDOSE"),
        (_set("AE", "AEDECOD", "x" * 201, AESEQ=1), "TD-V5-VALUE", "AE", "AEDECOD"),
        (_set("CM", "CMTRT", "DASATINIB \u00e9", CMSEQ=1), "TD-V5-VALUE", "CM", "CMTRT"),
        (_set("AE", "DOMAIN", "XX", AESEQ=1), "TD-DOMAIN", "AE", "DOMAIN"),
        (_set("SUPPAE", "RDOMAIN", "CM", QNAM="AEDLT"), "TD-DOMAIN", "SUPPAE", "RDOMAIN"),
        (_set("SUPPAE", "IDVARVAL", "9", QNAM="AEDLT"), "TD-SUPP-PARENT", "SUPPAE", "IDVARVAL"),
        (_duplicate("SUPPAE", QNAM="AEDLT"), "TD-SUPP-UNIQUE", "SUPPAE", "QNAM"),
        (_duplicate("DM", USUBJID=FAILED), "TD-DM-ONE", "DM", "USUBJID"),
        (_set("DM", "SUBJID", "UHC-001", USUBJID=FAILED), "TD-DM-ONE", "DM", "SUBJID"),
        (_set("LB", "USUBJID", "STUDY-1-UHC-999", LBTESTCD="ALT"), "TD-DM-USUBJID", "LB", "USUBJID"),
        (_set("AE", "AESEQ", 1, AESEQ=2), "TD-SEQ-UNIQUE", "AE", "AESEQ"),
        (_set("DS", "DSSEQ", 0.5, DSSEQ=1), "TD-SEQ-UNIQUE", "DS", "DSSEQ"),
        # TS has no subjects: TSSEQ is unique within a parameter (every parameter starts at 1)
        (_duplicate("TS", TSPARMCD="TITLE"), "TD-SEQ-UNIQUE", "TS", "TSSEQ"),
        (_set("AE", "AEENDTC", "2024-3-20", AESEQ=1), "TD-DTC-ISO8601", "AE", "AEENDTC"),
        (_set("CM", "CMSTDTC", "2024-02-30", CMSEQ=1), "TD-DTC-ISO8601", "CM", "CMSTDTC"),
        (_set("AE", "AESTDY", 2, AESEQ=1), "TD-DY-VALUE", "AE", "AESTDY"),  # 12 March from 10 March: day 3
        (_set("EX", "EXSTDY", 0, EXSEQ=1), "TD-DY-VALUE", "EX", "EXSTDY"),  # no day 0
        (_set("AE", "AESTDTC", "2024-03", AESEQ=1), "TD-DY-PARTIAL", "AE", "AESTDY"),
        (_set("AE", "AEOUT", "GONE", AESEQ=1), "TD-CT", "AE", "AEOUT"),
        (_set("DS", "DSCAT", "OTHER EVENT", DSDECOD="ENTERED INTO TRIAL"), "TD-CT", "DS", "DSCAT"),
        # value-level: ENTERED INTO TRIAL is a PROTMLST term, not an NCOMPLT one (an extensible list)
        (_set("DS", "DSDECOD", "ENTERED INTO TRIAL", DSDECOD="COMPLETED"), "TD-CT-EXTENDED", "DS", "DSDECOD"),
        (_set("LB", "LBTESTCD", "GLUC", LBTESTCD="ALT"), "TD-CT-EXTENDED", "LB", "LBTESTCD"),
        (_set("DM", "DTHFL", "N", USUBJID=FAILED), "TD-DTHFL", "DM", "DTHFL"),
        (_set("DM", "DTHFL", None, USUBJID=DOSED), "TD-DTHFL", "DM", "DTHFL"),
        (_set("DS", "DSSTDTC", "2024-06-02", DSDECOD="DEATH"), "TD-DS-DEATH", "DS", "DSSTDTC"),
        (_set("AE", "AESER", "N", AESEQ=2), "TD-AESER", "AE", "AESER"),
        (_set("AE", "AESER", "Y", AESEQ=1), "TD-AESER", "AE", "AESER"),
        (_set("AE", "AEOUT", "RECOVERED/RESOLVED", AESEQ=2), "TD-DEATH-AE", "DM", "DTHFL"),
        (_set("DM", "ARMNRS", None, USUBJID=FAILED), "TD-ARMNRS", "DM", "ARMNRS"),
        (_set("DM", "ARMNRS", "NOT ASSIGNED", USUBJID=DOSED), "TD-ARMNRS", "DM", "ARMNRS"),
        (_set("DM", "ARM", None, USUBJID=DOSED), "TD-ARMNRS", "DM", "ARMCD"),
        (_set("DM", "RFENDTC", "2024-03-01", USUBJID=DOSED), "TD-RFSTDTC-ORDER", "DM", "RFENDTC"),
    ],
)  # fmt: skip
def test_each_check_finds_what_it_is_for(change, rule, dataset, variable):  # type: ignore[no-untyped-def]
    data = _package()
    row = change(data)
    findings = conformance_report(data)
    hits = [f for f in findings if (f.rule, f.dataset, f.variable) == (rule, dataset, variable)]
    assert hits, report_text(findings)
    if row is not None and dataset in ("AE", "CM", "DS", "EX", "LB", "SUPPAE"):
        assert row in {f.row for f in hits}
    first = hits[0]
    assert first.severity == conformance.RULES[rule].severity
    assert first.core == conformance.RULES[rule].core
    assert rule in report_text(findings)


def test_errors_come_first_and_warnings_do_not_count_as_errors():  # type: ignore[no-untyped-def]
    data = _package()
    _set("LB", "LBTESTCD", "GLUC", LBTESTCD="ALT")(data)
    _set("AE", "AETERM", None, AESEQ=1)(data)
    findings = conformance_report(data)
    assert [f.severity for f in findings] == ["error", "warning"]
    assert [f.rule for f in errors(findings)] == ["TD-REQ-NULL"]
    assert report_text(findings).splitlines()[0] == (
        "ERROR TD-REQ-NULL AE.AETERM (record 1): Required variable AETERM is null [CORE-000356, CG0014]"
    )


def test_adam_req_may_be_null_and_the_metadata_limits_are_checked():  # type: ignore[no-untyped-def]
    data = _package()
    _set("ADSL", "TRT01P", None, USUBJID=FAILED)(data)  # ADaMIG: Req = the variable is present
    assert conformance_report(data) == []
    bad = metadata.DatasetSpec(
        "XXLONGNAME", "y" * 41, "s", "EVENTS", "SDTMIG 3.4",
        (metadata.Variable("1BAD", "z" * 41, "Char", 10, "Perm"),),
    )  # fmt: skip
    found = {(f.rule, f.variable) for f in conformance_report({"XXLONGNAME": []}, {"XXLONGNAME": bad})}
    assert found == {("TD-V5-NAME", None), ("TD-V5-LABEL", None), ("TD-V5-NAME", "1BAD"), ("TD-V5-LABEL", "1BAD")}


def test_values_read_back_from_xpt_are_understood():  # type: ignore[no-untyped-def]
    """XPT gives '' for an empty text and floats (NaN when missing) for numbers."""
    data = {
        name: [
            {k: ("" if v is None and metadata.DATASETS[name].variable(k).type == "Char" else
                 float("nan") if v is None else float(v) if isinstance(v, int) else v) for k, v in r.items()}
            for r in records
        ]
        for name, records in _package().items()
    }  # fmt: skip
    assert conformance_report(data) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024", None),
        ("2024-03", None),
        ("2024-03-10", None),
        ("2024-03-10T14", None),  # SDTMIG 3.4 s4.4.4: minutes unknown
        ("2024-03-10T14:30", None),
        ("2024-03-10T14:30:15", None),
        ("2024-03-10T14:30:15.5", None),
        ("2024-13", "month 13"),
        ("2023-02-29", "not a real date"),
        ("2024-03-10T24:00", "time out of range"),
        ("10/03/2024", "not ISO 8601"),
        ("2024--10", "not ISO 8601"),  # a gap: SDTM right-truncates instead
        ("2024-03-10 14:30", "not ISO 8601"),
    ],
)
def test_iso8601_as_sdtm_writes_it(value, problem):  # type: ignore[no-untyped-def]
    found = iso8601_problem(value)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_every_rule_names_what_it_mirrors():  # type: ignore[no-untyped-def]
    for rule in conformance.RULES.values():
        assert rule.id.startswith("TD-") and rule.description
        assert all(c.startswith(("CORE-", "CG", "FB")) for c in rule.core)


def _five_subjects():  # type: ignore[no-untyped-def]
    import dataclasses

    dosed, failed = _subjects()
    return mapping.datasets(
        STUDY,
        [
            dataclasses.replace(template, subject_id=f"UHC-{n:03d}")
            for n, template in enumerate([dosed, failed, dosed, dosed, failed], start=1)
        ],
    )


def test_records_out_of_subject_order_are_checked_as_in_order():  # type: ignore[no-untyped-def]
    """The checks hold one subject's state at a time (datasets come subject by subject); a
    dataset out of that order is read again for the subjects that come back, so the
    findings are those of the whole dataset at once."""
    data = _five_subjects()
    assert conformance_report(data) == []
    data["SUPPAE"].reverse()  # its parents (AE) no longer come in the same order: every lookup settles
    data["AE"].insert(0, data["AE"].pop())  # one subject's AEs split in two runs
    assert conformance_report(data) == []
    repeat = dict(data["AE"][1])  # the first subject's first AE again, after every other subject's
    data["AE"].append(repeat)
    data["SUPPAE"].append({**data["SUPPAE"][0], "IDVARVAL": "99"})
    found = [(f.rule, f.dataset, f.row) for f in conformance_report(data)]
    assert found == [("TD-SEQ-UNIQUE", "AE", len(data["AE"])), ("TD-SUPP-PARENT", "SUPPAE", len(data["SUPPAE"]))]


def test_findings_stream_over_datasets_read_again_from_their_files(tmp_path):  # type: ignore[no-untyped-def]
    """The package's report reads each Dataset-JSON file again when a check needs it
    (package_report.DatasetRows): the same findings as over the records in memory."""
    import datetime as dt

    from exchange.cdisc import package_report, writers

    data = _five_subjects()
    _set("AE", "AESTDY", 2, AESEQ=1)(data)
    data["AE"].append(dict(data["AE"][0]))
    files = {}
    for name, records in data.items():
        path = tmp_path / f"{name.lower()}.json"
        with open(path, "w", encoding="utf-8") as out:
            writers.write_dataset_json(
                metadata.DATASETS[name], records, out, study="STUDY-1", count=len(records),
                created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
        files[name] = package_report.dataset_open(name, path, None).records
    assert conformance_report(files) == conformance_report(data) != []
    assert {name: len(rows) for name, rows in files.items()} == {name: len(r) for name, r in data.items()}
