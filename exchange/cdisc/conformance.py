"""The conformance report of a CDISC package (issue 18). Pure: no Django.

The checks run over what the package ships: each dataset is read back from its
Dataset-JSON file one row at a time (memory holds one row whatever the dataset's size)
and held against its metadata (:mod:`exchange.cdisc.metadata`); the XPT file's record
count is compared with it, and define.xml is validated against the Define-XML 2.1 XSD.

Checks (``CHECKS``; an error is a value the standard forbids, a warning one it
discourages):

* ``required``   a Req variable is never empty (error);
* ``length``     a character value fits its variable's length and XPT v5's 200 (error);
* ``codelist``   a controlled value is a term of its codelist, value-level lists included
                 (error for a non-extensible list, warning for an extensible one);
* ``seq_unique`` ``--SEQ`` is unique within each USUBJID (error);
* ``iso8601``    ``--DTC`` values are ISO 8601 dates or date-times, partial allowed (error);
* ``records``    the Dataset-JSON header, its rows and the XPT file hold the same count (error);
* ``define_xsd`` define.xml is valid against the Define-XML 2.1 schema (error per message).

CDISC CORE (the open rules engine) is not run here: its results, when it runs, go in the
report's ``core`` entry (None until then), beside these checks, not instead of them.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exchange.cdisc.metadata import DatasetSpec
from exchange.cdisc.terminology import CODELISTS, codelist_for, in_codelist

Severity = Literal["error", "warning"]
XPT_MAX_LENGTH = 200
MAX_FINDINGS_KEPT = 200  # per report; the counts always count every occurrence

CHECKS: dict[str, str] = {
    "required": "Required (Req) variables are never empty",
    "length": "Character values fit the variable's length (and XPT v5's 200 characters)",
    "codelist": "Controlled values are terms of their codelist (value-level lists included)",
    "seq_unique": "--SEQ is unique within each subject (USUBJID)",
    "iso8601": "--DTC values are ISO 8601 dates or date-times (partial dates allowed)",
    "records": "Dataset-JSON header, Dataset-JSON rows and the XPT file hold the same number of records",
    "define_xsd": "define.xml is valid against the Define-XML 2.1 schema (define2-1-0.xsd)",
}

_ISO8601 = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2})(:(?P<M>\d{2})(:(?P<S>\d{2})(\.\d+)?)?)?)?)?)?$"
)


def is_iso8601(value: str) -> bool:
    """True for ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` and date-times ``YYYY-MM-DDThh[:mm[:ss[.f]]]``
    naming a real calendar day and time."""
    match = _ISO8601.match(value)
    if match is None:
        return False
    parts = match.groupdict()
    month = int(parts["m"]) if parts["m"] else 1
    day = int(parts["d"]) if parts["d"] else 1
    try:
        datetime.date(int(parts["y"]), month, day)
    except ValueError:
        return False
    hour, minute, second = (int(parts[k]) if parts[k] else 0 for k in ("H", "M", "S"))
    return hour < 24 and minute < 60 and second < 60


@dataclass
class _Tally:
    severity: Severity
    message: str
    count: int = 0
    first_record: int = 0
    example: str = ""


@dataclass
class DatasetCheck:
    """Accumulates the findings of one dataset, one record at a time."""

    spec: DatasetSpec
    records: int = 0
    _tallies: dict[tuple[str, str], _Tally] = field(default_factory=dict)
    _seqs: set[tuple[str, int]] = field(default_factory=set)

    def _note(self, check: str, variable: str, severity: Severity, message: str, value: Any) -> None:
        tally = self._tallies.get((check, variable))
        if tally is None:
            tally = self._tallies[(check, variable)] = _Tally(severity, message, first_record=self.records)
            tally.example = "" if value is None else str(value)[:80]
        tally.count += 1

    def add(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        name = self.spec.name
        for v in self.spec.variables:
            value = record.get(v.name)
            empty = value is None or value == ""
            if v.core == "Req" and empty:
                self._note("required", v.name, "error", "required variable is empty", value)
                continue
            if empty or not isinstance(value, str):
                continue
            if v.type == "Char" and len(value) > min(v.length, XPT_MAX_LENGTH):
                self._note("length", v.name, "error", f"longer than {min(v.length, XPT_MAX_LENGTH)} characters", value)
            codelist = codelist_for(name, v.name, v.codelist, record)
            if codelist is not None and codelist in CODELISTS and not in_codelist(codelist, value):
                extensible = CODELISTS[codelist].extensible
                self._note(
                    "codelist",
                    v.name,
                    "warning" if extensible else "error",
                    f"not a term of {codelist}" + (" (extensible)" if extensible else ""),
                    value,
                )
            if v.name.endswith("DTC") and not is_iso8601(value):
                self._note("iso8601", v.name, "error", "not an ISO 8601 date or date-time", value)
        seq_name = f"{self.spec.name}SEQ"
        seq = record.get(seq_name)
        if isinstance(seq, int | float) and isinstance(record.get("USUBJID"), str):
            key = (str(record["USUBJID"]), int(seq))
            if key in self._seqs:
                self._note("seq_unique", seq_name, "error", "repeated within the subject", f"{key[0]} {key[1]}")
            self._seqs.add(key)

    def note_records(self, header_records: int | None, xpt_records: int | None) -> None:
        """Compare the record counts of the Dataset-JSON header and the XPT file with the rows read."""
        for source, count in (("Dataset-JSON header", header_records), ("XPT file", xpt_records)):
            if count != self.records:
                tally = _Tally("error", f"{source} says {count} records, {self.records} rows read", 1)
                self._tallies[("records", source)] = tally

    def findings(self) -> list[dict[str, Any]]:
        return [
            {
                "dataset": self.spec.name,
                "variable": variable if check != "records" else None,
                "check": check,
                "severity": t.severity,
                "message": t.message,
                "count": t.count,
                "first_record": t.first_record,
                "example": t.example,
            }
            for (check, variable), t in sorted(self._tallies.items())
        ]


def dataset_json_rows(lines: Iterable[str]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and the rows (as dicts by column name) of a Dataset-JSON file written by
    :func:`exchange.cdisc.writers.write_dataset_json` (one row per line), read lazily."""
    iterator = iter(lines)
    first = next(iterator)
    marker = ', "rows": ['
    if not first.rstrip("\n").endswith(marker):
        raise ValueError("not a Dataset-JSON file written one row per line")
    header: dict[str, Any] = json.loads(first.rstrip("\n")[: -len(marker)] + "}")
    names = [c["name"] for c in header["columns"]]

    def rows() -> Iterator[dict[str, Any]]:
        for line in iterator:
            text = line.strip()
            if text.startswith("]"):
                return
            yield dict(zip(names, json.loads(text.rstrip(",")), strict=True))

    return header, rows()


def check_dataset(spec: DatasetSpec, json_path: Path, xpt_records: int | None) -> DatasetCheck:
    """Every check of one dataset, from its Dataset-JSON file (streamed)."""
    result = DatasetCheck(spec)
    with open(json_path, encoding="utf-8") as lines:
        header, rows = dataset_json_rows(lines)
        for row in rows:
            result.add(row)
    result.note_records(header.get("records"), xpt_records)
    return result


def define_problems(define_xml: Path, xsd: Path | None) -> list[str] | None:
    """define.xml's messages from the Define-XML 2.1 XSD (empty: valid); None when the
    schema is not available (the report then says the check was not run)."""
    if xsd is None or not xsd.exists():
        return None
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(xsd)))
    if schema.validate(etree.parse(str(define_xml))):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]


def report(
    datasets: Iterable[DatasetCheck], define: list[str] | None, *, package: str, created: datetime.datetime
) -> dict[str, Any]:
    """The report as JSON-able data: counts first, then the findings (at most
    :data:`MAX_FINDINGS_KEPT`, each with how often it occurred)."""
    findings: list[dict[str, Any]] = []
    per_dataset: dict[str, dict[str, int]] = {}
    for d in datasets:
        found = d.findings()
        per_dataset[d.spec.name] = {
            "records": d.records,
            "errors": sum(f["count"] for f in found if f["severity"] == "error"),
            "warnings": sum(f["count"] for f in found if f["severity"] == "warning"),
        }
        findings += found
    if define:
        for message in define:
            findings.append(
                {"dataset": "define.xml", "variable": None, "check": "define_xsd", "severity": "error",
                 "message": message, "count": 1, "first_record": 0, "example": ""}
            )  # fmt: skip
    errors = sum(f["count"] for f in findings if f["severity"] == "error")
    warnings = sum(f["count"] for f in findings if f["severity"] == "warning")
    checks = dict(CHECKS)
    if define is None:
        checks["define_xsd"] += " (not run: the schema is not installed)"
    return {
        "package": package,
        "created": created.replace(microsecond=0).isoformat(),
        "checks": checks,
        "errors": errors,
        "warnings": warnings,
        "datasets": per_dataset,
        "findings": findings[:MAX_FINDINGS_KEPT],
        "findings_left_out": max(0, len(findings) - MAX_FINDINGS_KEPT),
        # CDISC CORE (cdisc-rules-engine) results go here when it runs over the package.
        "core": None,
    }


def report_text(data: Mapping[str, Any]) -> str:
    """The report as plain text (conformance.txt in the zip)."""
    lines = [
        f"Conformance report: {data['package']} ({data['created']})",
        f"{data['errors']} error(s), {data['warnings']} warning(s)",
        "",
        "Checks run:",
        *(f"  {name:<11} {text}" for name, text in data["checks"].items()),
        "",
        "Datasets:",
        *(
            f"  {name:<8} {d['records']:>9} records  {d['errors']} error(s)  {d['warnings']} warning(s)"
            for name, d in data["datasets"].items()
        ),
        "",
        "Findings:" if data["findings"] else "Findings: none",
    ]
    for f in data["findings"]:
        where = f["dataset"] + (f".{f['variable']}" if f["variable"] else "")
        example = f" e.g. {f['example']!r} (record {f['first_record']})" if f["example"] else ""
        lines.append(f"  {f['severity']:<7} {f['check']:<10} {where}: {f['message']} x{f['count']}{example}")
    if data["findings_left_out"]:
        lines.append(f"  ... {data['findings_left_out']} more finding(s) left out here (counted in the totals)")
    lines.append("")
    lines.append("CDISC CORE: not run" if data["core"] is None else "CDISC CORE: see conformance.json")
    return "\n".join(lines) + "\n"
