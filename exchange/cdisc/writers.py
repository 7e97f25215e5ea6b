"""Dataset writers: SAS transport v5 (XPT) and CDISC Dataset-JSON v1.1. No Django.

XPT through :mod:`exchange.cdisc.xpt` (streamed, the bytes pyreadstat would write): version 5,
the dataset name and label, each variable's label; character variables stored at the
longest value present (the FDA technical conformance guide's rule), numbers as 8-byte
doubles, ADaM dates as SAS dates (days since 1960-01-01) with the DATE9. format.

Dataset-JSON v1.1 is written by hand with :mod:`json`, streamed: the header, then one
row at a time to the file, so memory holds one row of text whatever the dataset's size.

Both refuse, before writing anything, what the format or the metadata cannot hold: a
value longer than its variable's length (and 200 characters in XPT), non-ASCII text
(the SDTM datasets are ASCII), a value of the wrong type. The message names the
dataset, the variable, the record and the rule.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from exchange.cdisc import xpt
from exchange.cdisc.mapping import Record, Value
from exchange.cdisc.metadata import DatasetSpec, Variable

SAS_EPOCH = datetime.date(1960, 1, 1)
DATASET_JSON_VERSION = "1.1.0"


class DatasetError(ValueError):
    """A value the dataset's metadata or the file format cannot hold."""


def _check_value(spec: DatasetSpec, v: Variable, index: int, value: Value) -> None:
    where = f"{spec.name}.{v.name} (record {index + 1})"
    if value is None:
        return  # Req/Exp variables left empty are for the conformance check (CORE) to report
    if v.type == "Char":
        if not isinstance(value, str):
            raise DatasetError(f"{where}: character variable given {type(value).__name__} {value!r}")
        if len(value) > v.length:
            raise DatasetError(f"{where}: {len(value)} characters, longer than its length {v.length}")
        if not value.isascii():
            raise DatasetError(f"{where}: non-ASCII text {value!r}; the datasets are ASCII")
    elif v.date:
        if not isinstance(value, datetime.date):
            raise DatasetError(f"{where}: date variable given {type(value).__name__} {value!r}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(f"{where}: numeric variable given {type(value).__name__} {value!r}")
    elif v.integer and not float(value).is_integer():
        raise DatasetError(f"{where}: integer variable given {value!r}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise DatasetError(f"{where}: {value} is not a finite number")


def validate(spec: DatasetSpec, records: Sequence[Record]) -> None:
    """Raise :class:`DatasetError` on the first record the dataset cannot hold."""
    for index, record in enumerate(records):
        if tuple(record) != spec.names:
            raise DatasetError(f"{spec.name} (record {index + 1}): variables {list(record)} are not {list(spec.names)}")
        for v in spec.variables:
            _check_value(spec, v, index, record[v.name])


# --- XPT ---------------------------------------------------------------------------------


def sas_date(day: datetime.date) -> int:
    return (day - SAS_EPOCH).days


def char_length(values: Iterable[Value]) -> int:
    """The storage width of a text variable in XPT: its longest value, at least 1 (the FDA
    technical conformance guide's rule; define.xml's Length says the same)."""
    return max((len(x) for x in values if isinstance(x, str)), default=0) or 1


def xpt_columns(spec: DatasetSpec, lengths: Mapping[str, int]) -> list[xpt.Column]:
    """The XPT variables of ``spec``, text variables ``lengths[name]`` wide."""
    return [
        xpt.Column(v.name, v.label, True, lengths[v.name])
        if v.type == "Char"
        else xpt.Column(v.name, v.label, False, 8, "DATE" if v.date else "", 9 if v.date else 0)
        for v in spec.variables
    ]


def xpt_value(v: Variable, value: Value) -> xpt.XptValue:
    """A record's value as XPT holds it: dates as SAS dates, missing as None."""
    if isinstance(value, datetime.date):
        return sas_date(value)
    return value


def write_xpt(
    spec: DatasetSpec, records: Sequence[Record], path: Path, created: datetime.datetime | None = None
) -> None:
    """``path`` (``dm.xpt``...) as SAS transport version 5 (:mod:`exchange.cdisc.xpt`).
    ``created`` goes in the file's header (default: now, as pyreadstat writes it)."""
    validate(spec, records)
    lengths = {v.name: char_length(r[v.name] for r in records) for v in spec.variables if v.type == "Char"}
    rows = ([xpt_value(v, r[v.name]) for v in spec.variables] for r in records)
    with open(path, "wb") as out:
        xpt.write(
            out,
            spec.name,
            spec.label,
            xpt_columns(spec, lengths),
            rows,
            created or datetime.datetime.now().astimezone(),
        )


# --- Dataset-JSON v1.1 -------------------------------------------------------------------


def _data_type(v: Variable) -> dict[str, Any]:
    if v.type == "Char":
        return {"dataType": "string", "length": v.length}
    if v.date:
        return {"dataType": "date", "targetDataType": "integer", "displayFormat": "DATE9."}
    if v.integer:
        return {"dataType": "integer"}
    return {"dataType": "double"}


def dataset_json_columns(spec: DatasetSpec) -> list[dict[str, Any]]:
    columns = []
    for v in spec.variables:
        column: dict[str, Any] = {"itemOID": f"IT.{spec.name}.{v.name}", "name": v.name, "label": v.label}
        column |= _data_type(v)
        if v.key is not None:
            column["keySequence"] = v.key
        columns.append(column)
    return columns


def _json_value(v: Variable, value: Value) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return value.isoformat()
    if v.integer and isinstance(value, int | float):
        return int(value)
    return value


def dataset_json_head(
    spec: DatasetSpec,
    *,
    study: str,
    count: int,
    created: datetime.datetime,
    originator: str = "Trialdesk",
    source_version: str = "",
) -> str:
    """A Dataset-JSON v1.1 file up to its first row: the header, ``count`` its ``records``."""
    header = {
        "datasetJSONCreationDateTime": created.replace(microsecond=0).isoformat(),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study}.{spec.name}",
        "originator": originator,
        "sourceSystem": {"name": "Trialdesk", "version": source_version or "0"},
        "studyOID": study,
        "metaDataVersionOID": f"MDV.{study}.{spec.standard.replace(' ', '')}",
        "itemGroupOID": f"IG.{spec.name}",
        "records": count,
        "name": spec.name,
        "label": spec.label,
        "columns": dataset_json_columns(spec),
    }
    return json.dumps(header)[:-1] + ', "rows": ['


DATASET_JSON_TAIL = "\n]}\n"


def dataset_json_row(spec: DatasetSpec, index: int, record: Record) -> str:
    """Record ``index`` (0-based) as its Dataset-JSON row (one line of JSON), checked first."""
    if tuple(record) != spec.names:
        raise DatasetError(f"{spec.name} (record {index + 1}): variables {list(record)} are not {list(spec.names)}")
    for v in spec.variables:
        _check_value(spec, v, index, record[v.name])
    return json.dumps([_json_value(v, record[v.name]) for v in spec.variables], ensure_ascii=True)


def write_dataset_json(
    spec: DatasetSpec,
    records: Iterable[Record],
    out: IO[str],
    *,
    study: str,
    count: int,
    created: datetime.datetime,
    originator: str = "Trialdesk",
    source_version: str = "",
) -> int:
    """Write ``records`` to ``out`` as Dataset-JSON v1.1, one row at a time. ``count``
    goes in the header (``records``) and must match; returns the rows written."""
    out.write(
        dataset_json_head(
            spec, study=study, count=count, created=created, originator=originator, source_version=source_version
        )
    )
    written = 0
    for index, record in enumerate(records):
        out.write(("\n" if written == 0 else ",\n") + dataset_json_row(spec, index, record))
        written += 1
    out.write(DATASET_JSON_TAIL)
    if written != count:
        raise DatasetError(f"{spec.name}: header says {count} records, {written} written")
    return written


# --- both, streamed through a staging file -------------------------------------------------


class DatasetStage:
    """One dataset written without ever holding its records: :meth:`add` checks each batch
    of records and appends their Dataset-JSON rows to a staging file (one line each),
    counting them and noting each text variable's longest value; :meth:`finish` then
    writes the Dataset-JSON file (header with the count, the staged rows) and the XPT
    file (read back from the staged rows, text variables as wide as their longest value).
    The files are those :func:`write_dataset_json` and :func:`write_xpt` write for all the
    records at once (tests/integration/test_cdisc_seed.py compares them)."""

    def __init__(self, spec: DatasetSpec, staging: Path):
        self.spec = spec
        self.count = 0
        self.longest = {v.name: 0 for v in spec.variables if v.type == "Char"}
        self._names = spec.names
        self.path = staging / f"{spec.name.lower()}.rows"
        self._rows: IO[str] | None = open(self.path, "w", encoding="ascii")  # noqa: SIM115 (closed in finish)

    def add(self, records: Iterable[Record]) -> None:
        if self._rows is None:
            raise DatasetError(f"{self.spec.name}: written already, no more records")
        spec, names, variables = self.spec, self._names, self.spec.variables
        longest, write, dumps = self.longest, self._rows.write, json.dumps
        for record in records:
            # dataset_json_row, inline: the spec's names once, not per record
            if tuple(record) != names:
                raise DatasetError(
                    f"{spec.name} (record {self.count + 1}): variables {list(record)} are not {list(names)}"
                )
            row = []
            for v in variables:
                value = record[v.name]
                _check_value(spec, v, self.count, value)
                row.append(_json_value(v, value))
            write(dumps(row, ensure_ascii=True) + "\n")
            for name in longest:
                value = record[name]
                if isinstance(value, str) and len(value) > longest[name]:
                    longest[name] = len(value)
            self.count += 1

    def _staged(self) -> Iterator[str]:
        with open(self.path, encoding="ascii") as lines:
            for line in lines:
                yield line[:-1]

    def finish(self, json_path: Path, xpt_path: Path, *, study: str, created: datetime.datetime) -> int:
        """Write both files; returns the record count. The staging file is removed."""
        if self._rows is not None:
            self._rows.close()
            self._rows = None
        with open(json_path, "w", encoding="utf-8") as out:
            out.write(dataset_json_head(self.spec, study=study, count=self.count, created=created))
            for index, line in enumerate(self._staged()):
                out.write(("\n" if index == 0 else ",\n") + line)
            out.write(DATASET_JSON_TAIL)
        dates = [v.date for v in self.spec.variables]

        def rows() -> Iterator[list[xpt.XptValue]]:
            for line in self._staged():
                row = json.loads(line)
                yield [
                    sas_date(datetime.date.fromisoformat(value)) if date and value is not None else value
                    for date, value in zip(dates, row, strict=True)
                ]

        lengths = {name: n or 1 for name, n in self.longest.items()}
        with open(xpt_path, "wb") as binary:
            xpt.write(binary, self.spec.name, self.spec.label, xpt_columns(self.spec, lengths), rows(), created)
        self.path.unlink()
        return self.count
