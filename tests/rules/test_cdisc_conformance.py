"""The conformance checks of a CDISC package (exchange/cdisc/conformance.py): each check finds
what it is for, counts every occurrence, and the Dataset-JSON reader streams what the writer wrote."""

import datetime
import io
import json

import pytest

from exchange.cdisc import conformance, writers
from exchange.cdisc.metadata import DatasetSpec, Variable

SPEC = DatasetSpec(
    "XX", "Test Dataset", "One record per thing", "EVENTS", "SDTMIG 3.4",
    (
        Variable("USUBJID", "Unique Subject Identifier", "Char", 20, "Req", key=1),
        Variable("XXSEQ", "Sequence Number", "Num", 8, "Req", key=2, integer=True),
        Variable("XXTERM", "Reported Term", "Char", 10, "Req"),
        Variable("XXSER", "Serious", "Char", 1, "Exp", "NY"),
        Variable("XXSTDTC", "Start Date", "Char", 19, "Exp"),
    ),
)  # fmt: skip
GOOD = {"USUBJID": "S-001", "XXSEQ": 1, "XXTERM": "Nausea", "XXSER": "N", "XXSTDTC": "2024-03-10"}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024", True), ("2024-03", True), ("2024-03-10", True), ("2024-03-10T14", True),
        ("2024-03-10T14:05", True), ("2024-03-10T14:05:09.5", True), ("2024-02-29", True),
        ("2023-02-29", False), ("2024-13", False), ("2024-3-10", False), ("10/03/2024", False),
        ("2024-03-10T24:00", False), ("2024-03-10 14:05", False), ("", False),
    ],
)  # fmt: skip
def test_iso8601(value, ok):  # type: ignore[no-untyped-def]
    assert conformance.is_iso8601(value) is ok


@pytest.mark.parametrize(
    ("change", "check", "variable", "severity"),
    [
        ({"XXTERM": None}, "required", "XXTERM", "error"),
        ({"XXTERM": ""}, "required", "XXTERM", "error"),
        ({"XXTERM": "Much too long a term"}, "length", "XXTERM", "error"),
        ({"XXSER": "X"}, "codelist", "XXSER", "error"),
        ({"XXSTDTC": "10/03/2024"}, "iso8601", "XXSTDTC", "error"),
        ({"XXSEQ": 1}, "seq_unique", "XXSEQ", "error"),  # the second record repeats the first's 1
    ],
)
def test_each_check_finds_its_problem_and_counts_it(change, check, variable, severity):  # type: ignore[no-untyped-def]
    result = conformance.DatasetCheck(SPEC)
    result.add(GOOD)
    result.add({**GOOD, "XXSEQ": 2, **change})
    result.add({**GOOD, "USUBJID": "S-002", "XXSEQ": 1, **change})
    found = result.findings()
    assert [(f["check"], f["variable"], f["severity"]) for f in found] == [(check, variable, severity)]
    # the third record (another subject) repeats the problem, except the per-subject --SEQ
    assert found[0]["count"] == (1 if check == "seq_unique" else 2) and found[0]["first_record"] == 2


def test_a_clean_dataset_has_no_finding():  # type: ignore[no-untyped-def]
    result = conformance.DatasetCheck(SPEC)
    for seq in (1, 2, 3):
        result.add({**GOOD, "XXSEQ": seq, "XXSER": None})  # Exp may be empty
    result.note_records(3, 3)
    assert result.findings() == []


def test_record_counts_must_agree():  # type: ignore[no-untyped-def]
    result = conformance.DatasetCheck(SPEC)
    result.add(GOOD)
    result.note_records(1, 2)
    assert [(f["check"], f["message"]) for f in result.findings()] == [
        ("records", "XPT file says 2 records, 1 rows read")
    ]


def test_dataset_json_rows_stream_back_what_the_writer_wrote(tmp_path):  # type: ignore[no-untyped-def]
    rows = [GOOD, {**GOOD, "XXSEQ": 2, "XXTERM": 'a "q", b', "XXSER": None}]
    out = io.StringIO()
    writers.write_dataset_json(
        SPEC, rows, out, study="S", count=2, created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    )
    header, read = conformance.dataset_json_rows(io.StringIO(out.getvalue()))
    assert header["records"] == 2 and header["name"] == "XX"
    assert list(read) == rows
    assert json.loads(out.getvalue())["rows"][1][2] == 'a "q", b'  # still one JSON document
    path = tmp_path / "xx.json"
    path.write_text(out.getvalue())
    assert conformance.check_dataset(SPEC, path, xpt_records=2).findings() == []


def test_report_totals_and_text():  # type: ignore[no-untyped-def]
    result = conformance.DatasetCheck(SPEC)
    result.add({**GOOD, "XXTERM": None})
    result.note_records(1, 1)
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    data = conformance.report([result], ["line 3: bad element"], package="P.zip", created=created)
    assert (data["errors"], data["warnings"]) == (2, 0) and data["core"] is None
    assert data["datasets"] == {"XX": {"records": 1, "errors": 1, "warnings": 0}}
    text = conformance.report_text(data)
    assert "2 error(s), 0 warning(s)" in text and "define.xml: line 3: bad element" in text
    assert "not run" in conformance.report([result], None, package="P", created=created)["checks"]["define_xsd"]
