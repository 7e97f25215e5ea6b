"""SAS transport version 5 (XPT), written one row at a time. Pure: no Django, no pandas.

pyreadstat (ReadStat) writes XPT only from a whole DataFrame, so a million-row dataset
would be held in memory as Python objects and again as a frame; this writer streams the
rows to the file instead and keeps one row in memory. It writes the same bytes as
``pyreadstat.write_xport(..., file_format_version=5)`` for the same data
(tests/rules/test_cdisc_xpt.py compares them byte for byte, with the two timestamps
pyreadstat takes from the clock set equal), following the layout of the SAS technical
paper TS-140 ("The record layout of a data set in SAS transport (XPORT) format"):

* 80-byte records: the library header (three records), the member header, the descriptor
  (dataset name, label, timestamps), the NAMESTR header, one 140-byte NAMESTR per
  variable (padded with blanks to a record boundary), the OBS header, then the rows;
* each row is the variables' fields side by side with no gap (text padded with blanks to
  the variable's storage width, numbers as 8-byte IBM 370 floating point), rows run on
  across record boundaries, and the last record is padded with blanks;
* a missing number is SAS's ``.`` (0x2E then seven zero bytes), missing text is blanks;
* numbers convert exactly (53 mantissa bits fit in 56); as ReadStat does, one of 2**249 or
  more (IBM's exponent would reach 2**252) is written as the largest IBM number of its sign,
  one too small (under 2**-260) as 0, and -0.0 as 0.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

RECORD = 80
NAMESTR = 140
MISSING = b"\x2e" + b"\x00" * 7
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_HEADER = "HEADER RECORD*******{}HEADER RECORD!!!!!!!{}"

XptValue = str | int | float | None


@dataclass(frozen=True)
class Column:
    """One variable: ``width`` is the storage width of a text variable (at least 1);
    numbers are always 8 bytes. ``format`` and ``format_width`` are the display format
    (``DATE``, 9 for DATE9.), empty for none."""

    name: str
    label: str
    char: bool
    width: int = 8
    format: str = ""
    format_width: int = 0


def _pad(text: str, width: int) -> bytes:
    data = text.encode("ascii")
    if len(data) > width:
        raise ValueError(f"{text!r} is longer than {width} bytes")
    return data.ljust(width, b" ")


def _timestamp(when: datetime.datetime) -> str:
    # ddMMMyy:hh:mm:ss with English month names, whatever the process's locale.
    return f"{when.day:02d}{_MONTHS[when.month - 1]}{when.year % 100:02d}:{when:%H:%M:%S}"


def ibm_double(value: float) -> bytes:
    """``value`` as an IBM 370 double: sign bit, 7-bit exponent of 16 (excess 64), 56-bit fraction."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", value))
    sign = bits >> 63
    biased = (bits >> 52) & 0x7FF
    if biased == 0:  # zero, -0.0 and IEEE subnormals (all far under IBM's smallest)
        return b"\x00" * 8
    if biased == 0x7FF:
        raise ValueError(f"{value} has no XPT representation")
    exponent = biased - 1023  # value = 1.m * 2**exponent
    mantissa = (bits & ((1 << 52) - 1)) | (1 << 52)
    ibm_exponent = exponent // 4 + 65  # 16**(E-64) just above the value
    if exponent > 248:  # ReadStat's limit (IBM's own is 2**252): saturate as it does
        return b"\xff" * 8 if sign else b"\x7f" + b"\xff" * 7
    if ibm_exponent < 0:
        return b"\x00" * 8
    fraction = mantissa << (exponent % 4)  # 56 bits, first hex digit non-zero
    return struct.pack(">Q", (sign << 63) | (ibm_exponent << 56) | fraction)


def _namestr(index: int, column: Column, position: int) -> bytes:
    return b"".join(
        (
            struct.pack(">hhhh", 2 if column.char else 1, 0, column.width if column.char else 8, index),
            _pad(column.name, 8),
            _pad(column.label, 40),
            _pad(column.format, 8),
            # nfl, nfd, nfj (ReadStat: 1, right-justified, for numbers), nfill
            struct.pack(">hhhh", column.format_width, 0, 0 if column.char else 1, 0),
            _pad("", 8),  # informat: none
            struct.pack(">hhi", 0, 0, position),
            b"\x00" * 52,
        )
    )


def header(name: str, label: str, columns: Sequence[Column], created: datetime.datetime) -> bytes:
    """Every record before the first row (library, member, descriptor, NAMESTRs, OBS)."""
    stamp = _timestamp(created)
    zeros = "0" * 30
    parts = [
        _HEADER.format("LIBRARY ", zeros).encode("ascii").ljust(RECORD, b" "),
        _pad("SAS     SAS     SASLIB  6.06    bsd4.2  " + " " * 24 + stamp, RECORD),
        _pad(stamp, RECORD),
        _pad(_HEADER.format("MEMBER  ", "000000000000000001600000000140"), RECORD),
        _pad(_HEADER.format("DSCRPTR ", zeros), RECORD),
        _pad(f"SAS     {name:<8}SASDATA 6.06    bsd4.2  " + " " * 24 + stamp, RECORD),
        _pad(stamp + " " * 16 + f"{label:<40}" + " " * 8, RECORD),
        _pad(_HEADER.format("NAMESTR ", f"000000{len(columns):04d}" + "0" * 20), RECORD),
    ]
    names = []
    position = 0
    for index, column in enumerate(columns, start=1):
        names.append(_namestr(index, column, position))
        position += column.width if column.char else 8
    block = b"".join(names)
    parts.append(block + b" " * (-len(block) % RECORD))
    parts.append(_pad(_HEADER.format("OBS     ", zeros), RECORD))
    return b"".join(parts)


Encoder = Callable[[XptValue], bytes]


def _char_encoder(width: int) -> Encoder:
    blank = b" " * width

    def encode(value: XptValue) -> bytes:
        if value is None or value == "":
            return blank
        data = str(value).encode("ascii")
        if len(data) > width:
            raise ValueError(f"{value!r} is longer than {width} bytes")
        return data.ljust(width, b" ")

    return encode


_NUMBERS: dict[float, bytes] = {}  # values repeat (sequence numbers, days, grades): each converts once


def _number(value: XptValue) -> bytes:
    if value is None:
        return MISSING
    if isinstance(value, str):
        raise TypeError(f"a number was expected, not {value!r}")
    number = float(value)
    if number != number:  # NaN: missing, as pandas gives it to pyreadstat
        return MISSING
    encoded = _NUMBERS.get(number)
    if encoded is None:
        encoded = ibm_double(number)
        if len(_NUMBERS) < 100_000:
            _NUMBERS[number] = encoded
    return encoded


class Writer:
    """Rows to ``out`` one at a time; :meth:`close` pads the last record (the file stays open)."""

    def __init__(self, out: BinaryIO, name: str, label: str, columns: Sequence[Column], created: datetime.datetime):
        self.out = out
        self.rows = 0
        self._size = 0
        self._encoders: list[Encoder] = [_char_encoder(c.width) if c.char else _number for c in columns]
        out.write(header(name, label, columns, created))

    def write(self, values: Sequence[XptValue]) -> None:
        data = b"".join([encode(value) for encode, value in zip(self._encoders, values, strict=True)])
        self.out.write(data)
        self._size += len(data)
        self.rows += 1

    def close(self) -> None:
        self.out.write(b" " * (-self._size % RECORD))


def write(
    out: BinaryIO,
    name: str,
    label: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[XptValue]],
    created: datetime.datetime,
) -> int:
    """The whole file; returns the rows written."""
    writer = Writer(out, name, label, columns, created)
    for row in rows:
        writer.write(row)
    writer.close()
    return writer.rows
