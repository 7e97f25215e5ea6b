"""The conformance report of a CDISC package (issue 18). Pure: no Django.

The datasets are read back from the Dataset-JSON files the package ships
(:class:`DatasetRows`, one row at a time, never a whole dataset) and the SDTMIG checks of
:mod:`exchange.cdisc.conformance` stream over them; this module adds the checks of the files
themselves and builds the report:

* ``TD-RECORDS``   the Dataset-JSON header, its rows and the XPT file hold the same count (error);
* ``TD-DEFINE-XSD`` define.xml is valid against the Define-XML 2.1 schema (error per message).

Findings are grouped by rule, dataset and variable, each group counted with its first
record and message, so a package with a million faulty rows still has a short report.
CDISC CORE (the open rules engine) is not run here: its results, when it runs, go in the
report's ``core`` entry (None until then), beside these checks, not instead of them.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.cdisc.conformance import RULES, Finding, Severity

MAX_FINDINGS_KEPT = 200  # groups per report; the totals always count every occurrence

FILE_CHECKS: dict[str, str] = {
    "TD-RECORDS": "Dataset-JSON header, Dataset-JSON rows and the XPT file hold the same number of records",
    "TD-DEFINE-XSD": "define.xml is valid against the Define-XML 2.1 schema (define2-1-0.xsd)",
}


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


class DatasetRows:
    """The rows of a Dataset-JSON file, read again from the file at every iteration, one
    row at a time (what :func:`exchange.cdisc.conformance.findings` streams over); its
    ``len`` is the rows a whole read gave (a read is made if none was)."""

    def __init__(self, path: Path):
        self.path = path
        self.read: int | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with open(self.path, encoding="utf-8") as lines:
            _, rows = dataset_json_rows(lines)
            n = 0
            for row in rows:
                yield row
                n += 1
        self.read = n

    def __len__(self) -> int:
        if self.read is None:
            for _ in self:
                pass
        return self.read or 0


@dataclass
class DatasetRead:
    """One dataset read back from its Dataset-JSON file, with the record counts to compare."""

    name: str
    records: list[dict[str, Any]] | DatasetRows = field(default_factory=list)
    header_records: int | None = None
    xpt_records: int | None = None

    def count_findings(self) -> list[Finding]:
        read = len(self.records)
        return [
            Finding("TD-RECORDS", "error", self.name, None, None, f"{source} says {count} records, {read} rows read")
            for source, count in (("Dataset-JSON header", self.header_records), ("XPT file", self.xpt_records))
            if count != read
        ]


def dataset_read(name: str, json_path: Path, xpt_records: int | None) -> DatasetRead:
    """The dataset with its rows in memory (small datasets, tests)."""
    with open(json_path, encoding="utf-8") as lines:
        header, rows = dataset_json_rows(lines)
        return DatasetRead(name, list(rows), header.get("records"), xpt_records)


def dataset_open(name: str, json_path: Path, xpt_records: int | None) -> DatasetRead:
    """The dataset with its rows left in the file (:class:`DatasetRows`): only the header is read here."""
    with open(json_path, encoding="utf-8") as lines:
        header, _ = dataset_json_rows(lines)
    return DatasetRead(name, DatasetRows(json_path), header.get("records"), xpt_records)


class RowsRead(Mapping[str, int]):
    """Rows read per dataset, counted when asked (after the checks have read them all)."""

    def __init__(self, read: Sequence[DatasetRead]):
        self._read = {d.name: d for d in read}

    def __getitem__(self, name: str) -> int:
        return len(self._read[name].records)

    def __iter__(self) -> Iterator[str]:
        return iter(self._read)

    def __len__(self) -> int:
        return len(self._read)


def define_findings(messages: Sequence[str]) -> list[Finding]:
    return [Finding("TD-DEFINE-XSD", "error", "define.xml", None, None, message) for message in messages]


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


@dataclass
class _Group:
    severity: Severity
    message: str
    first_record: int
    count: int = 0


def report(
    datasets: Mapping[str, int],
    findings: Iterable[Finding],
    *,
    define_checked: bool,
    package: str,
    created: datetime.datetime,
) -> dict[str, Any]:
    """The report as JSON-able data: totals, per-dataset counts (``datasets``: records per
    dataset), then the findings grouped (at most :data:`MAX_FINDINGS_KEPT` groups)."""
    groups: dict[tuple[str, str, str], _Group] = {}
    tally: dict[str, dict[str, int]] = {}
    for f in findings:
        key = (f.rule, f.dataset, f.variable or "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(f.severity, f.message, f.row or 0)
        elif (f.row or 0) < group.first_record:  # findings may come in any order (streamed)
            group.message, group.first_record = f.message, f.row or 0
        group.count += 1
        counts = tally.setdefault(f.dataset, {"errors": 0, "warnings": 0})
        counts["errors" if f.severity == "error" else "warnings"] += 1
    # After the findings: ``datasets`` may count rows the findings' reading has just read (rows_read).
    per_dataset = {
        name: {"records": n, **tally.get(name, {"errors": 0, "warnings": 0})} for name, n in datasets.items()
    }
    ordered = sorted(groups.items(), key=lambda kv: (kv[1].severity != "error", kv[0]))
    rows = [
        {"dataset": dataset, "variable": variable or None, "check": rule, "severity": g.severity,
         "message": g.message, "count": g.count, "first_record": g.first_record}
        for (rule, dataset, variable), g in ordered
    ]  # fmt: skip
    checks = {rule.id: rule.description for rule in RULES.values()} | FILE_CHECKS
    if not define_checked:
        checks["TD-DEFINE-XSD"] += " (not run: the schema is not installed)"
    return {
        "package": package,
        "created": created.replace(microsecond=0).isoformat(),
        "checks": checks,
        "errors": sum(r["count"] for r in rows if r["severity"] == "error"),
        "warnings": sum(r["count"] for r in rows if r["severity"] == "warning"),
        "datasets": per_dataset,
        "findings": rows[:MAX_FINDINGS_KEPT],
        "findings_left_out": max(0, len(rows) - MAX_FINDINGS_KEPT),
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
        *(f"  {name:<16} {text}" for name, text in data["checks"].items()),
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
        first = f" (first: record {f['first_record']})" if f["first_record"] else ""
        lines.append(f"  {f['severity']:<7} {f['check']:<16} {where}: {f['message']} x{f['count']}{first}")
    if data["findings_left_out"]:
        lines.append(f"  ... {data['findings_left_out']} more group(s) left out here (counted in the totals)")
    lines.append("")
    lines.append("CDISC CORE: not run" if data["core"] is None else "CDISC CORE: see conformance.json")
    return "\n".join(lines) + "\n"
