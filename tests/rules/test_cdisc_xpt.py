"""exchange.cdisc.xpt: the streamed XPT v5 writer writes the bytes pyreadstat writes for the
same data, and pyreadstat reads them back to the same values (issue 18). No database.

pyreadstat stamps its files with the clock (four copies of one ddMMMyy:hh:mm:ss stamp in
the library and member headers); the comparison reads its stamp back and gives the same
moment to :func:`exchange.cdisc.xpt.write`, so every byte is compared, stamps included."""

import datetime
import io
import math
import random
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from exchange.cdisc import mapping, metadata, writers, xpt
from exchange.cdisc.metadata import DatasetSpec, Variable

from .test_cdisc_conformance import STUDY, _subjects
from .test_cdisc_writers import ROWS, SPEC

STAMP = slice(144, 160)  # the library header's creation stamp (the other three are equal)


def _pyreadstat_bytes(spec: DatasetSpec, records, path: Path) -> bytes:  # type: ignore[no-untyped-def]
    """What exchange.cdisc.writers wrote through pyreadstat before the streamed writer."""
    columns = {}
    for v in spec.variables:
        values = [r[v.name] for r in records]
        if v.type == "Char":
            columns[v.name] = pd.Series(["" if x is None else x for x in values], dtype=object)
        elif v.date:
            days = [float(writers.sas_date(x)) if isinstance(x, datetime.date) else math.nan for x in values]
            columns[v.name] = pd.Series(days, dtype="float64")
        else:
            numbers = [float(x) if isinstance(x, int | float) else math.nan for x in values]
            columns[v.name] = pd.Series(numbers, dtype="float64")
    pyreadstat.write_xport(
        pd.DataFrame(columns, columns=list(spec.names)),
        str(path),
        file_label=spec.label,
        column_labels=[v.label for v in spec.variables],
        table_name=spec.name,
        file_format_version=5,
        variable_format={v.name: "DATE9." for v in spec.variables if v.date},
    )
    return path.read_bytes()


def _same_bytes(spec: DatasetSpec, records, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    theirs = _pyreadstat_bytes(spec, records, tmp_path / "theirs.xpt")
    # the stamp is written as it reads, whatever the zone: read it as UTC
    stamp = theirs[STAMP].decode("ascii").title() + "+0000"
    created = datetime.datetime.strptime(stamp, "%d%b%y:%H:%M:%S%z")
    ours_path = tmp_path / "ours.xpt"
    writers.write_xpt(spec, records, ours_path, created=created)
    ours = ours_path.read_bytes()
    assert len(ours) == len(theirs)
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
    assert first is None, (
        f"{spec.name}: first difference at byte {first}: {ours[first : first + 16]!r} vs {theirs[first : first + 16]!r}"
    )
    frame, meta = pyreadstat.read_xport(str(ours_path), disable_datetime_conversion=True)
    back, _ = pyreadstat.read_xport(str(tmp_path / "theirs.xpt"), disable_datetime_conversion=True)
    pd.testing.assert_frame_equal(frame, back)
    assert meta.number_rows in (len(records), None)


NUMS = DatasetSpec(
    "NUMS", "Numbers Of Every Kind", "One record per number", "EVENTS", "SDTMIG 3.4",
    (
        Variable("ID", "Identifier", "Char", 200, "Req"),
        Variable("X", "A Number", "Num", 8, "Perm"),
        Variable("EMPTY", "Never Given", "Char", 20, "Perm"),
        Variable("NONE", "A Number Never Given", "Num", 8, "Perm"),
        Variable("DT", "A Date", "Num", 8, "Perm", date=True),
    ),
)  # fmt: skip
NUMBERS = [
    0, 1, -1, 0.5, -0.85, 1 / 3, 0.1, 123456789.123, -1e-5, 1e20, -1e20, 3.141592653589793e40, 2.0**248,
    2.0**249, -(2.0**252), 1e300, -1e300, 2.0**-260, 2.0**-261, 1e-300, 5e-324, -0.0, 2**53 + 1, 1e75, 7.2e75,
]  # fmt: skip


def test_the_bytes_are_pyreadstats_for_numbers_of_every_kind(tmp_path):  # type: ignore[no-untyped-def]
    rng = random.Random(18)
    numbers = NUMBERS + [rng.uniform(-1e6, 1e6) for _ in range(200)] + [rng.lognormvariate(0, 40) for _ in range(200)]
    records = [
        {"ID": f"N{i}" + "x" * (i % 7), "X": n, "EMPTY": None, "NONE": None,
         "DT": datetime.date(1960, 1, 1) + datetime.timedelta(days=rng.randint(-30000, 30000)) if i % 3 else None}
        for i, n in enumerate(numbers)
    ]  # fmt: skip
    records[5]["ID"] = "y" * 200  # the longest text XPT v5 holds
    _same_bytes(NUMS, records, tmp_path)


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 9, 10, 11, 37])  # row lengths that do and do not fill a record
def test_the_bytes_are_pyreadstats_for_any_row_count(tmp_path, rows):  # type: ignore[no-untyped-def]
    records = [ROWS[i % len(ROWS)] for i in range(rows)]
    _same_bytes(SPEC, records, tmp_path)


def test_the_bytes_are_pyreadstats_for_every_mapped_dataset(tmp_path):  # type: ignore[no-untyped-def]
    for name, records in mapping.datasets(STUDY, _subjects()).items():
        _same_bytes(metadata.DATASETS[name], records, tmp_path)


def test_ibm_doubles_read_back_as_the_same_numbers():  # type: ignore[no-untyped-def]
    for n in NUMBERS:
        data = xpt.ibm_double(float(n))
        sign = -1 if data[0] & 0x80 else 1
        value = sign * int.from_bytes(data[1:], "big") / 2**56 * 16.0 ** ((data[0] & 0x7F) - 64)
        if 2.0**-260 <= abs(n) < 2.0**249:
            assert value == float(n)
        elif abs(n) < 2.0**-260:
            assert value == 0
        else:
            assert value == sign * (1 - 2.0**-56) * 16.0**63  # saturated, as ReadStat does


def test_a_value_wider_than_its_column_is_refused():  # type: ignore[no-untyped-def]
    columns = [xpt.Column("A", "A", True, 3)]
    with pytest.raises(ValueError, match="longer than 3"):
        xpt.write(io.BytesIO(), "T", "T", columns, [["abcd"]], datetime.datetime(2026, 1, 1))
