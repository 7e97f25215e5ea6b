"""Subject IDs: their shape, their normal form and their look-alikes (issue 16).

Pure module: no Django import. A subject ID is the site code, a hyphen and a number of
at least three digits (UHC-001). The whole text must be that (``fullmatch``: a regex
``$`` also matches before a final newline, which let "XSS-001\\n" in beside "XSS-001").

Two IDs are look-alikes when a tired eye or a spreadsheet takes one for the other: the
same site code and the same number once case, surrounding spaces and leading zeros are
ignored (UHC-901, UHC-0901, uhc-00901). Only one of them may exist in a trial, so every
record is filed under one patient.
"""

from __future__ import annotations

import re

SUBJECT_ID = re.compile(r"[A-Z0-9]+-[0-9]{3,}")
SHAPE_MESSAGE = "Use the site code, a hyphen and a number of at least 3 digits, e.g. UHC-001."


def normalise(raw: str) -> str:
    """The form a subject ID is stored in: surrounding whitespace removed, capitals."""
    return raw.strip().upper()


def shape_problems(subject_id: str) -> tuple[str, ...]:
    """Messages when ``subject_id`` (already normalised) is not an ID's whole text."""
    if SUBJECT_ID.fullmatch(subject_id) is None:
        return (f"{subject_id!r} is not a subject ID. {SHAPE_MESSAGE}",)
    return ()


def look_alike_key(subject_id: str) -> tuple[str, int] | None:
    """(site code, number) with case, whitespace and leading zeros ignored; None when the
    text is not an ID at all."""
    text = normalise(subject_id)
    if SUBJECT_ID.fullmatch(text) is None:
        return None
    site, number = text.rsplit("-", 1)
    return site, int(number)


def look_alike_of(subject_id: str, existing: list[str] | tuple[str, ...]) -> str | None:
    """The first of ``existing`` that is ``subject_id`` or a look-alike of it, or None."""
    key = look_alike_key(subject_id)
    if key is None:
        return None
    return next((other for other in existing if look_alike_key(other) == key), None)
