"""The conformance report of a CDISC package (exchange/cdisc/package_report.py): record counts compared,
the Dataset-JSON reader streams back what the writer wrote, findings grouped and counted."""

import datetime
import io
import json

import pytest

from exchange.cdisc import package_report, writers
from exchange.cdisc.conformance import Finding
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


def test_record_counts_must_agree():  # type: ignore[no-untyped-def]
    read = package_report.DatasetRead("XX", [GOOD], header_records=1, xpt_records=2)
    assert [(f.rule, f.message) for f in read.count_findings()] == [
        ("TD-RECORDS", "XPT file says 2 records, 1 rows read")
    ]
    assert package_report.DatasetRead("XX", [GOOD], 1, 1).count_findings() == []


def test_dataset_json_rows_stream_back_what_the_writer_wrote(tmp_path):  # type: ignore[no-untyped-def]
    rows = [GOOD, {**GOOD, "XXSEQ": 2, "XXTERM": 'a "q", b', "XXSER": None}]
    out = io.StringIO()
    writers.write_dataset_json(
        SPEC, rows, out, study="S", count=2, created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    )
    header, read = package_report.dataset_json_rows(io.StringIO(out.getvalue()))
    assert header["records"] == 2 and header["name"] == "XX"
    assert list(read) == rows
    assert json.loads(out.getvalue())["rows"][1][2] == 'a "q", b'  # still one JSON document
    path = tmp_path / "xx.json"
    path.write_text(out.getvalue())
    back = package_report.dataset_read("XX", path, xpt_records=2)
    assert back.records == rows and back.count_findings() == []


def test_a_file_that_is_not_dataset_json_is_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="not a Dataset-JSON file"):
        package_report.dataset_json_rows(io.StringIO('{"rows": []}\n'))


def test_report_groups_counts_and_prints_the_findings():  # type: ignore[no-untyped-def]
    findings = [
        Finding("TD-REQ-NULL", "error", "XX", "XXTERM", 3, "Required variable XXTERM is null"),
        Finding("TD-REQ-NULL", "error", "XX", "XXTERM", 7, "Required variable XXTERM is null"),
        Finding("TD-CT-EXTENDED", "warning", "XX", "XXSER", 1, "U is not a CDISC term of NY"),
        *package_report.define_findings(["line 3: bad element"]),
    ]
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    data = package_report.report({"XX": 9}, findings, define_checked=True, package="P.zip", created=created)
    assert (data["errors"], data["warnings"], data["core"]) == (3, 1, None)
    assert data["datasets"] == {"XX": {"records": 9, "errors": 2, "warnings": 1}}
    assert [(f["check"], f["count"], f["first_record"]) for f in data["findings"]] == [
        ("TD-DEFINE-XSD", 1, 0),
        ("TD-REQ-NULL", 2, 3),
        ("TD-CT-EXTENDED", 1, 1),
    ]  # errors first
    assert "TD-REQ-NULL" in data["checks"] and "TD-RECORDS" in data["checks"]
    text = package_report.report_text(data)
    assert "3 error(s), 1 warning(s)" in text and "define.xml: line 3: bad element" in text
    assert "XX.XXTERM: Required variable XXTERM is null x2 (first: record 3)" in text
    unchecked = package_report.report({}, [], define_checked=False, package="P", created=created)
    assert "not run" in unchecked["checks"]["TD-DEFINE-XSD"] and unchecked["errors"] == 0


def test_only_the_first_groups_are_kept_but_all_are_counted():  # type: ignore[no-untyped-def]
    findings = [Finding("TD-REQ-NULL", "error", f"D{i}", "V", 1, "null") for i in range(250)]
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    data = package_report.report({}, findings, define_checked=True, package="P", created=created)
    assert len(data["findings"]) == package_report.MAX_FINDINGS_KEPT and data["findings_left_out"] == 50
    assert data["errors"] == 250  # the totals count every occurrence, kept or not


def test_findings_may_come_in_any_order():  # type: ignore[no-untyped-def]
    """The package counts the streamed findings (conformance.findings): a group's first
    record is its lowest, whatever the order they come in."""
    findings = [
        Finding("TD-REQ-NULL", "error", "XX", "XXTERM", 7, "seven"),
        Finding("TD-REQ-NULL", "error", "XX", "XXTERM", 3, "three"),
        Finding("TD-REQ-NULL", "error", "XX", "XXTERM", 5, "five"),
    ]
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    data = package_report.report({"XX": 9}, iter(findings), define_checked=True, package="P", created=created)
    assert [(f["count"], f["first_record"], f["message"]) for f in data["findings"]] == [(3, 3, "three")]
    assert data["datasets"] == {"XX": {"records": 9, "errors": 3, "warnings": 0}}
