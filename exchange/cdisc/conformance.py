"""SDTMIG 3.4 conformance checks over the CDISC datasets (issue 18). Pure: no Django.

CDISC's own engine (CORE, ``cdisc-rules-engine``) cannot run in the test suite offline
(docs/exports.md, "Conformance"): its rules and the CDISC Library metadata it checks
against are not on the package registry. This module runs, over the records that
:func:`exchange.cdisc.mapping.datasets` returns, the checks CORE would make that matter
most for these datasets, each naming the CORE rule(s) and SDTMIG conformance rule(s) it
mirrors (``Finding.core``). The sponsor's package carries the report
(:func:`conformance_report`); the seed trial's package has no error
(tests/integration/test_cdisc_seed.py).

Severity: ``error`` where CORE reports an error for the same condition (or the dataset
breaks the standard or the transport format); ``warning`` where the data are allowed but
worth a reviewer's look (a term added to an extensible codelist).

A missing value is ``None`` or ``""`` (what XPT gives back for an empty text).
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from exchange.cdisc import metadata, terminology

Severity = Literal["error", "warning"]
# A dataset's records: iterable more than once (a list, or a reader of its file).
Rows = Iterable[Mapping[str, object]]
Records = Mapping[str, Rows]


@dataclass(frozen=True)
class Finding:
    rule: str  # Trialdesk's rule id (RULES below)
    severity: Severity
    dataset: str
    variable: str | None
    row: int | None  # 1-based record number in the dataset; None for the dataset as a whole
    message: str
    core: tuple[str, ...] = ()  # the CORE rule ids (and SDTMIG conformance rule ids) mirrored


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    core: tuple[str, ...]
    description: str


# The rules, as data: docs/exports.md lists them with the CORE rules they mirror.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("TD-V5-NAME", "error", ("CORE-000182", "CORE-000293", "CG0310", "CG0205"),
             "Dataset and variable names: upper case letters, digits and underscores, at most 8, not starting "
             "with a digit (XPT v5)."),
        Rule("TD-V5-LABEL", "error", ("CORE-000019", "CG0311"),
             "Dataset and variable labels at most 40 characters (XPT v5)."),
        Rule("TD-V5-VALUE", "error", (),
             "A text value within its variable's length (at most 200) and ASCII (XPT v5, FDA technical "
             "conformance guide)."),
        Rule("TD-REQ-PRESENT", "error", ("CORE-000355", "CG0014"),
             "Every Required variable is in the dataset."),
        Rule("TD-EXP-PRESENT", "error", ("CORE-000334", "CG0016"),
             "Every Expected variable is in the dataset."),
        Rule("TD-REQ-NULL", "error", ("CORE-000356", "CG0014"),
             "A Required SDTM variable is never null (ADaM's Req means present)."),
        Rule("TD-DOMAIN", "error", ("CORE-000180", "CORE-000598", "CG0308", "CG0413"),
             "DOMAIN (RDOMAIN in SUPP--) is the two-letter domain the dataset is named for."),
        Rule("TD-SUPP-PARENT", "error", ("CORE-000457", "CORE-000206", "CG0373", "CG0371"),
             "A SUPP-- record points at a parent record present in its domain (RDOMAIN, IDVAR, IDVARVAL)."),
        Rule("TD-SUPP-UNIQUE", "error", ("CORE-000203", "CG0411"),
             "IDVAR, IDVARVAL and QNAM are unique per subject in a SUPP-- dataset."),
        Rule("TD-DM-ONE", "error", ("CORE-000351", "CORE-000186", "CG0151", "CG0150"),
             "One DM record per subject: USUBJID and SUBJID unique in DM."),
        Rule("TD-DM-USUBJID", "error", ("CORE-000201", "CG0029"),
             "Every USUBJID of every dataset is in DM."),
        Rule("TD-SEQ-UNIQUE", "error", (),
             "--SEQ is a positive whole number, unique within USUBJID (SDTMIG 3.4 section 4.1.5); TSSEQ within "
             "TSPARMCD (section 7.6.1)."),
        Rule("TD-DTC-ISO8601", "error", (),
             "--DTC values are ISO 8601 dates or date-times, complete or right-truncated, and real dates."),
        Rule("TD-DY-PARTIAL", "error", ("CORE-000354", "CORE-000138", "CORE-000139", "CG0007", "CG0221", "CG0223"),
             "--DY is null when its --DTC or DM.RFSTDTC is not a complete date."),
        Rule("TD-DY-VALUE", "error", ("CORE-000529", "CG0006"),
             "--DY is the study day of its --DTC counted from DM.RFSTDTC, with no day 0."),
        Rule("TD-CT", "error", (),
             "A value of a variable with a codelist is a term of that codelist (value-level lists where defined)."),
        Rule("TD-CT-EXTENDED", "warning", (),
             "A value outside an extensible codelist's CDISC terms: a sponsor extension to review."),
        Rule("TD-DTHFL", "error", ("CORE-000006", "CORE-000007", "CORE-000252", "CORE-000253", "CORE-000254",
                                   "CG0131", "CG0435", "CG0136", "CG0135", "CG0134"),
             "DTHFL is Y or null; Y when DTHDTC is given, a DS death or a fatal AE is recorded."),
        Rule("TD-DEATH-AE", "warning", ("CORE-001078", "FB0609"),
             "A subject with DTHFL = Y has an AE with AEOUT = FATAL and AESDTH = Y (FDA business rule: a death "
             "from the disease under study is not an adverse event, hence a warning)."),
        Rule("TD-DS-DEATH", "error", ("CORE-000034", "CG0069"),
             "The date of a DS record with DSDECOD DEATH equals DM.DTHDTC."),
        Rule("TD-AESER", "error", ("CORE-000022", "CORE-000266", "CG0041", "CG0042"),
             "AESER is Y when a seriousness criterion is Y, and N when none is."),
        Rule("TD-ARMNRS", "error", ("CORE-000045", "CORE-000046", "CORE-000119", "CORE-000120", "CORE-000121",
                                    "CG0517", "CG0519", "CG0521", "CG0522", "CG0520"),
             "ARMNRS is given exactly when ARMCD/ACTARMCD is null; ARM and ARMCD (ACTARM, ACTARMCD) null together."),
        Rule("TD-RFSTDTC-ORDER", "error", ("CORE-000711",),
             "RFSTDTC is not after RFENDTC."),
    )
}  # fmt: skip

_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,7}\Z")
# ISO 8601 as SDTMIG 3.4 section 4.4 uses it: right-truncated date, optional time.
_DTC = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?)?\Z")
_SEQ_DATASETS = ("DM", "SUPP", "AD")  # no --SEQ: DM, the SUPP-- datasets, ADaM


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _finding(rule: str, dataset: str, variable: str | None, row: int | None, message: str) -> Finding:
    r = RULES[rule]
    return Finding(rule, r.severity, dataset, variable, row, message, r.core)


@functools.lru_cache(maxsize=65536)  # dates repeat across records: each is parsed once
def iso8601_problem(value: str) -> str | None:
    """Why ``value`` is not an ISO 8601 date/date-time as SDTM writes it, or None."""
    m = _DTC.match(value)
    if m is None:
        return f"{value!r} is not ISO 8601 (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh[:mm[:ss]])"
    year, month, day, hour, minute, second = (int(g) if g else None for g in m.groups())
    if month is not None and not 1 <= month <= 12:
        return f"{value!r}: month {month} is not 1-12"
    if day is not None:
        try:
            datetime.date(year or 0, month or 0, day)
        except ValueError:
            return f"{value!r} is not a real date"
    if (hour or 0) > 23 or (minute or 0) > 59 or (second or 0) > 59:
        return f"{value!r}: time out of range"
    return None


def _complete_date(value: object) -> datetime.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    return _date_of(value)


@functools.lru_cache(maxsize=65536)
def _date_of(value: str) -> datetime.date | None:
    return None if iso8601_problem(value) is not None else datetime.date.fromisoformat(value[:10])


def _study_day(day: datetime.date, start: datetime.date) -> int:
    n = (day - start).days
    return n + 1 if n >= 0 else n


def _is_sdtm(spec: metadata.DatasetSpec) -> bool:
    return spec.standard.startswith("SDTM")


# --- metadata and values -------------------------------------------------------------------


def _check_metadata(spec: metadata.DatasetSpec) -> Iterator[Finding]:
    if not _NAME.match(spec.name):
        yield _finding("TD-V5-NAME", spec.name, None, None, f"dataset name {spec.name!r} breaks the XPT v5 rule")
    if len(spec.label) > 40:
        yield _finding("TD-V5-LABEL", spec.name, None, None, f"dataset label is {len(spec.label)} characters")
    for v in spec.variables:
        if not _NAME.match(v.name):
            yield _finding("TD-V5-NAME", spec.name, v.name, None, f"variable name {v.name!r} breaks the XPT v5 rule")
        if len(v.label) > 40:
            yield _finding("TD-V5-LABEL", spec.name, v.name, None, f"label is {len(v.label)} characters (at most 40)")


def _check_columns(spec: metadata.DatasetSpec, first: Mapping[str, object] | None) -> Iterator[Finding]:
    present = set(first) if first is not None else set(spec.names)
    for v in spec.variables:
        if v.name in present:
            continue
        if v.core == "Req":
            yield _finding("TD-REQ-PRESENT", spec.name, v.name, None, f"Required variable {v.name} is missing")
        elif v.core == "Exp" and _is_sdtm(spec):
            yield _finding("TD-EXP-PRESENT", spec.name, v.name, None, f"Expected variable {v.name} is missing")


# Each check below looks at one record at a time (``row`` its 1-based number) and keeps
# at most one subject's worth of state, so the report streams over datasets of any size.


class _Values:
    """Per record: Required values present, text within XPT's limits, coded values, ISO 8601 dates."""

    def __init__(self, spec: metadata.DatasetSpec):
        self.spec = spec
        self.dated = [v.name for v in spec.variables if v.name.endswith("DTC") and v.type == "Char"]
        # Per variable, once: is it Req (ADaM's Req means present, may be null: ADaMIG 1.3 s3), its
        # length, and whether its values are coded (the terms, or None when value-level/any term).
        self.columns = []
        for v in spec.variables:
            value_level = (spec.name, v.name) in terminology.VALUE_LEVEL
            terms = frozenset(terminology.CODELISTS[v.codelist].terms) if v.codelist and not value_level else None
            coded = value_level or bool(terms)
            self.columns.append(
                (v, v.core == "Req" and _is_sdtm(spec), v.type == "Char", min(v.length, 200), coded, terms)
            )

    def check(self, row: int, record: Mapping[str, object]) -> Iterator[Finding]:
        spec = self.spec
        for v, required, char, length, coded, terms in self.columns:
            value = record.get(v.name)
            if value is None or value == "" or (isinstance(value, float) and value != value):
                if required and v.name in record:
                    yield _finding("TD-REQ-NULL", spec.name, v.name, row, f"Required variable {v.name} is null")
                continue
            if char and isinstance(value, str):
                if len(value) > length or not value.isascii():
                    yield _finding(
                        "TD-V5-VALUE", spec.name, v.name, row,
                        f"{len(value)} characters (length {v.length})" if value.isascii() else "non-ASCII text",
                    )  # fmt: skip
                if coded and (terms is None or value not in terms):
                    yield from _check_term(spec, v, row, record, value)
        for name in self.dated:
            value = record.get(name)
            if isinstance(value, str) and value:
                problem = iso8601_problem(value)
                if problem is not None:
                    yield _finding("TD-DTC-ISO8601", spec.name, name, row, problem)


def _check_term(
    spec: metadata.DatasetSpec, v: metadata.Variable, row: int, record: Mapping[str, object], value: str
) -> Iterator[Finding]:
    name = terminology.codelist_for(spec.name, v.name, v.codelist, record)
    if name is None or terminology.in_codelist(name, value):
        return
    codelist = terminology.CODELISTS[name]
    label = f"{name} ({codelist.c_code})" if codelist.c_code else f"{name} (sponsor-defined)"
    if codelist.extensible:
        yield _finding("TD-CT-EXTENDED", spec.name, v.name, row, f"{value!r} is not a term of {label}")
    else:
        yield _finding("TD-CT", spec.name, v.name, row, f"{value!r} is not a term of the non-extensible {label}")


# --- identifiers, sequence, study days ----------------------------------------------------


def _check_domain(spec: metadata.DatasetSpec, row: int, record: Mapping[str, object]) -> Iterator[Finding]:
    supp = spec.name.startswith("SUPP")
    variable, expected = ("RDOMAIN", spec.name[4:]) if supp else ("DOMAIN", spec.name)
    if variable in record and record[variable] != expected:
        yield _finding("TD-DOMAIN", spec.name, variable, row, f"{record[variable]!r}, not {expected!r}")


_NONE = object()  # no group yet
Group = object
Item = Hashable


class _Repeats:
    """Items repeated within their group (a subject's --SEQ values, its SUPP-- keys).

    Datasets come subject by subject, so only the current group's items are held; a group
    that comes back after another (a dataset not in subject order) is checked again at
    the end, over the rows of such groups alone (a second read of the dataset), and its
    findings of the first read are dropped: the same findings as one set of every key."""

    def __init__(self, rows: Rows, key: Callable[[Mapping[str, object]], tuple[Group, Item] | None],
                 finding: Callable[[int, Mapping[str, object], Group, Item], Finding]):  # fmt: skip
        self.rows, self.key, self.finding = rows, key, finding
        self.group: Group = _NONE
        self.seen: set[Item] = set()
        self.closed: set[Group] = set()
        self.split: set[Group] = set()
        self.found: list[tuple[Group, Finding]] = []

    def check(self, row: int, record: Mapping[str, object]) -> None:
        key = self.key(record)
        if key is None:
            return
        group, item = key
        if group != self.group:
            self.closed.add(self.group)
            if group in self.closed:
                self.split.add(group)
            self.group, self.seen = group, set()
        if item in self.seen:
            self.found.append((group, self.finding(row, record, group, item)))
        self.seen.add(item)

    def findings(self) -> Iterator[Finding]:
        yield from (f for group, f in self.found if group not in self.split)
        if not self.split:
            return
        seen: dict[Group, set[Item]] = {group: set() for group in self.split}
        for row, record in enumerate(self.rows, start=1):
            key = self.key(record)
            if key is not None and key[0] in seen:
                if key[1] in seen[key[0]]:
                    yield self.finding(row, record, *key)
                seen[key[0]].add(key[1])


def _seq_key(name: str) -> Callable[[Mapping[str, object]], tuple[Group, Item] | None]:
    def key(record: Mapping[str, object]) -> tuple[Group, Item] | None:
        value = record.get(name)
        if _missing(value) or not _positive_whole(value):
            return None
        # Subject data: unique per subject; the trial summary (no subjects): per parameter.
        return record.get("USUBJID", record.get("TSPARMCD")), float(value)  # type: ignore[arg-type]

    return key


def _positive_whole(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value >= 1 and float(value).is_integer()


def _seq_check(spec: metadata.DatasetSpec, records: Rows) -> tuple[str, _Repeats] | None:
    if spec.name.startswith(_SEQ_DATASETS) or not _is_sdtm(spec):
        return None
    name = f"{spec.name}SEQ"

    def finding(row: int, record: Mapping[str, object], group: Group, item: Item) -> Finding:
        return _finding("TD-SEQ-UNIQUE", spec.name, name, row, f"{name} {record.get(name):g} repeated for {group}")

    return name, _Repeats(records, _seq_key(name), finding)


def _check_seq_value(
    spec: metadata.DatasetSpec, name: str, row: int, record: Mapping[str, object]
) -> Iterator[Finding]:
    value = record.get(name)
    if not _missing(value) and not _positive_whole(value):
        yield _finding("TD-SEQ-UNIQUE", spec.name, name, row, f"{name} {value!r} is not a positive whole number")


def _supp_key(record: Mapping[str, object]) -> tuple[Group, Item]:
    return record.get("USUBJID"), (record.get("IDVAR"), record.get("IDVARVAL"), record.get("QNAM"))


def _supp_repeat(spec: metadata.DatasetSpec, records: Rows) -> _Repeats:
    def finding(row: int, record: Mapping[str, object], group: Group, item: Item) -> Finding:
        key = (group, *item)  # type: ignore[misc]
        return _finding("TD-SUPP-UNIQUE", spec.name, "QNAM", row, f"{record.get('QNAM')} repeated for {key[:3]}")

    return _Repeats(records, _supp_key, finding)


class _Parent:
    """Whether a SUPP-- record's parent is present: the parent dataset is read alongside,
    a subject at a time (both come subject by subject in the same order), so one
    subject's parent records are held. A subject not found ahead of the walk, or a key
    not found in the subject's records, is settled by reading the parent again for that
    subject alone (its records may not all be together)."""

    def __init__(self, rows: Rows):
        self.rows = rows
        self._walk = self._groups()
        self._subject: object = _NONE
        self._records: list[Mapping[str, object]] = []
        self._complete = False
        self._keys: dict[object, set[str]] = {}

    def _groups(self) -> Iterator[tuple[object, list[Mapping[str, object]]]]:
        subject: object = _NONE
        group: list[Mapping[str, object]] = []
        for record in self.rows:
            usubjid = record.get("USUBJID")
            if usubjid != subject and group:
                yield subject, group
                group = []
            subject = usubjid
            group.append(record)
        if group:
            yield subject, group

    def _use(self, subject: object, records: list[Mapping[str, object]], complete: bool) -> None:
        self._subject, self._records, self._complete, self._keys = subject, records, complete, {}

    def _read_whole(self, subject: object) -> None:
        self._use(subject, [r for r in self.rows if r.get("USUBJID") == subject], True)

    def has(self, subject: object, idvar: str, idval: object) -> bool:
        if subject != self._subject:
            for found, records in self._walk:
                if found == subject:
                    self._use(found, records, False)
                    break
            else:
                self._walk = self._groups()
                self._read_whole(subject)
        if f"{idval}" in self._keys_of(idvar):
            return True
        if self._complete:
            return False
        self._read_whole(subject)
        return f"{idval}" in self._keys_of(idvar)

    def _keys_of(self, idvar: str) -> set[str]:
        if idvar not in self._keys:
            self._keys[idvar] = {_text(r.get(idvar)) for r in self._records}
        return self._keys[idvar]


def _check_supp_parent(
    spec: metadata.DatasetSpec, parent: _Parent, row: int, record: Mapping[str, object]
) -> Iterator[Finding]:
    idvar, idval = record.get("IDVAR"), record.get("IDVARVAL")
    if isinstance(idvar, str) and idvar and not parent.has(record.get("USUBJID"), idvar, idval):
        yield _finding(
            "TD-SUPP-PARENT", spec.name, "IDVARVAL", row,
            f"no {spec.name[4:]} record of {record.get('USUBJID')} with {idvar} = {idval}",
        )  # fmt: skip


def _text(value: object) -> str:
    """A parent variable's value as IDVARVAL holds it (a whole number without '.0')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _check_dm(records: Sequence[Mapping[str, object]]) -> Iterator[Finding]:
    for variable in ("USUBJID", "SUBJID"):
        seen: set[object] = set()
        for row, record in enumerate(records, start=1):
            value = record.get(variable)
            if value in seen:
                yield _finding("TD-DM-ONE", "DM", variable, row, f"{value} has more than one DM record")
            seen.add(value)
    for row, r in enumerate(records, start=1):
        death = r.get("DTHDTC")
        if not _missing(r.get("DTHFL")) and r.get("DTHFL") != "Y":
            yield _finding("TD-DTHFL", "DM", "DTHFL", row, f"DTHFL is {r.get('DTHFL')!r}: Y or null")
        if not _missing(death) and r.get("DTHFL") != "Y":
            yield _finding("TD-DTHFL", "DM", "DTHFL", row, f"DTHDTC {death} without DTHFL = Y")
        for code, label in (("ARMCD", "ARM"), ("ACTARMCD", "ACTARM")):
            if _missing(r.get(code)) != _missing(r.get(label)):
                yield _finding("TD-ARMNRS", "DM", code, row, f"{code} and {label} must be null together")
        arm_null = _missing(r.get("ARMCD")) or _missing(r.get("ACTARMCD"))
        if arm_null == _missing(r.get("ARMNRS")):
            rule = "ARMNRS is null but an arm is null" if arm_null else "ARMNRS is given but both arms are"
            yield _finding("TD-ARMNRS", "DM", "ARMNRS", row, rule)
        start, end = _complete_date(r.get("RFSTDTC")), _complete_date(r.get("RFENDTC"))
        if start is not None and end is not None and start > end:
            yield _finding("TD-RFSTDTC-ORDER", "DM", "RFENDTC", row, f"RFSTDTC {start} after RFENDTC {end}")


def _check_subject(
    spec: metadata.DatasetSpec, row: int, record: Mapping[str, object], dm: set[object]
) -> Iterator[Finding]:
    if "USUBJID" in record and record["USUBJID"] not in dm:
        yield _finding("TD-DM-USUBJID", spec.name, "USUBJID", row, f"{record['USUBJID']} is not in DM")


def _study_day_pairs(spec: metadata.DatasetSpec) -> list[tuple[str, str]]:
    if not _is_sdtm(spec) or spec.name == "DM":
        return []
    return [
        (v.name, f"{v.name[:-2]}DTC")
        for v in spec.variables
        if v.name.endswith("DY") and f"{v.name[:-2]}DTC" in spec.names
    ]


def _check_study_days(
    spec: metadata.DatasetSpec, pairs: list[tuple[str, str]], row: int, record: Mapping[str, object],
    reference: Mapping[object, object],
) -> Iterator[Finding]:  # fmt: skip
    start = _complete_date(reference.get(record.get("USUBJID")))
    for dy, dtc in pairs:
        value = record.get(dy)
        if _missing(value):
            continue
        day = _complete_date(record.get(dtc))
        if day is None or start is None:
            yield _finding(
                "TD-DY-PARTIAL", spec.name, dy, row,
                f"{dy} is {value} but {dtc} or DM.RFSTDTC is not a complete date",
            )  # fmt: skip
        elif value != _study_day(day, start):
            yield _finding(
                "TD-DY-VALUE", spec.name, dy, row,
                f"{dy} is {value}; {dtc} {day} from RFSTDTC {start} is day {_study_day(day, start)}",
            )  # fmt: skip


# --- across datasets ------------------------------------------------------------------------


class _Deaths:
    """Who died by DS and AE (one entry per subject at most), against DM."""

    def __init__(self, dm_records: Sequence[Mapping[str, object]]):
        self.dm = {r.get("USUBJID"): (row, r) for row, r in enumerate(dm_records, start=1)}
        self.by_ds: dict[object, str] = {}
        self.by_ae: dict[object, str] = {}
        self.fatal_ae: set[object] = set()

    def check_ds(self, row: int, r: Mapping[str, object]) -> Iterator[Finding]:
        if r.get("DSDECOD") != "DEATH":
            return
        self.by_ds.setdefault(r.get("USUBJID"), "a DS record with DSDECOD DEATH")
        subject = self.dm.get(r.get("USUBJID"))
        if subject is not None and r.get("DSSTDTC") != subject[1].get("DTHDTC"):
            yield _finding(
                "TD-DS-DEATH", "DS", "DSSTDTC", row,
                f"DSSTDTC {r.get('DSSTDTC')} but DM.DTHDTC {subject[1].get('DTHDTC')}",
            )  # fmt: skip

    def check_ae(self, r: Mapping[str, object]) -> None:
        if r.get("AEOUT") == "FATAL" or r.get("AESDTH") == "Y":
            self.by_ae.setdefault(r.get("USUBJID"), "a fatal AE")
        if r.get("AEOUT") == "FATAL" and r.get("AESDTH") == "Y":
            self.fatal_ae.add(r.get("USUBJID"))

    def findings(self, has_ae: bool) -> Iterator[Finding]:
        dead = dict(self.by_ds)  # DS says so first, as the report has always put it
        for usubjid, why in self.by_ae.items():
            dead.setdefault(usubjid, why)
        for usubjid, why in dead.items():
            subject = self.dm.get(usubjid)
            if subject is not None and subject[1].get("DTHFL") != "Y":
                yield _finding("TD-DTHFL", "DM", "DTHFL", subject[0], f"{usubjid} has {why} but DTHFL is not Y")
        if has_ae:
            for usubjid, (row, r) in self.dm.items():
                if r.get("DTHFL") == "Y" and usubjid not in self.fatal_ae:
                    yield _finding(
                        "TD-DEATH-AE", "DM", "DTHFL", row,
                        f"{usubjid} died ({r.get('DTHDTC')}) with no AE of AEOUT FATAL and AESDTH Y",
                    )  # fmt: skip


_SAE_CRITERIA = ("AESCAN", "AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESOD", "AESMIE")


def _check_aeser(row: int, r: Mapping[str, object]) -> Iterator[Finding]:
    criteria = [c for c in _SAE_CRITERIA if r.get(c) == "Y"]
    if criteria and r.get("AESER") != "Y":
        yield _finding("TD-AESER", "AE", "AESER", row, f"{', '.join(criteria)} = Y but AESER is not Y")
    elif not criteria and not _missing(r.get("AESER")) and r.get("AESER") != "N":
        yield _finding("TD-AESER", "AE", "AESER", row, "AESER is Y but no seriousness criterion is Y")


# --- the report -----------------------------------------------------------------------------


def findings(datasets: Records, specs: Mapping[str, metadata.DatasetSpec] = metadata.DATASETS) -> Iterator[Finding]:
    """Every finding over ``datasets`` (name -> records), streamed in no particular order.

    Each dataset's records must be iterable more than once (a list, or a reader that reads
    its file again: :class:`exchange.cdisc.package_report.DatasetRows`); every dataset is
    read once, a SUPP-- dataset's parent once more alongside it, DM is held (one record per
    subject) and otherwise at most one subject's records: the memory does not grow with
    the datasets (a dataset not in subject order is read again, see :class:`_Repeats`).
    Datasets without a spec are left out; a dataset named in ``specs`` but absent is not
    a finding (a trial may lack it)."""
    dm_records = list(datasets.get("DM", ()))
    usubjids = {r.get("USUBJID") for r in dm_records}
    rfstdtc = {r.get("USUBJID"): r.get("RFSTDTC") for r in dm_records}
    deaths = _Deaths(dm_records)
    for name, records in datasets.items():
        spec = specs.get(name)
        if spec is None:
            if name in ("AE", "DS"):  # the deaths and AESER are checked whatever the specs
                yield from _check_unspecified(name, records, deaths)
            continue
        yield from _check_metadata(spec)
        first = next(iter(records), None)
        yield from _check_columns(spec, first)
        values = _Values(spec)
        sdtm = _is_sdtm(spec)
        supp = name.startswith("SUPP")
        seq = _seq_check(spec, records)
        days = _study_day_pairs(spec)
        subjects = "DM" in datasets and name != "DM"
        parent = _Parent(datasets.get(name[4:], ())) if supp else None
        repeats = _supp_repeat(spec, records) if supp else None
        for row, record in enumerate(records, start=1):
            yield from values.check(row, record)
            if sdtm:
                yield from _check_domain(spec, row, record)
            if seq is not None:
                yield from _check_seq_value(spec, seq[0], row, record)
                seq[1].check(row, record)
            if days:
                yield from _check_study_days(spec, days, row, record, rfstdtc)
            if subjects:
                yield from _check_subject(spec, row, record, usubjids)
            if parent is not None and repeats is not None:
                yield from _check_supp_parent(spec, parent, row, record)
                repeats.check(row, record)
            if name == "DS":
                yield from deaths.check_ds(row, record)
            elif name == "AE":
                deaths.check_ae(record)
                yield from _check_aeser(row, record)
        if sdtm and supp and first is not None and name[4:] not in datasets:
            yield _finding("TD-SUPP-PARENT", spec.name, "RDOMAIN", None, f"no {name[4:]} dataset for {spec.name}")
        if seq is not None:
            yield from seq[1].findings()
        if repeats is not None:
            yield from repeats.findings()
    yield from _check_dm(dm_records)
    yield from deaths.findings("AE" in datasets)


def _check_unspecified(name: str, records: Rows, deaths: _Deaths) -> Iterator[Finding]:
    for row, record in enumerate(records, start=1):
        if name == "DS":
            yield from deaths.check_ds(row, record)
        else:
            deaths.check_ae(record)
            yield from _check_aeser(row, record)


def conformance_report(
    datasets: Records, specs: Mapping[str, metadata.DatasetSpec] = metadata.DATASETS
) -> list[Finding]:
    """Every finding over ``datasets`` (name -> records, as :func:`mapping.datasets` gives
    them), errors first, then by dataset, row and variable (:func:`findings`, held and
    sorted: for a package's report, :mod:`exchange.cdisc.package_report` counts the
    streamed findings instead)."""
    order = list(datasets)
    return sorted(
        findings(datasets, specs),
        key=lambda f: (
            f.severity != "error",
            order.index(f.dataset) if f.dataset in order else len(order),
            f.row or 0,
            f.variable or "",
            f.rule,
        ),
    )


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def report_text(findings: Sequence[Finding]) -> str:
    """One line per finding, for a package's conformance report (plain text)."""
    if not findings:
        return "No findings.\n"
    lines = []
    for f in findings:
        where = f.dataset + (f".{f.variable}" if f.variable else "") + (f" (record {f.row})" if f.row else "")
        core = f" [{', '.join(f.core)}]" if f.core else ""
        lines.append(f"{f.severity.upper()} {f.rule} {where}: {f.message}{core}")
    return "\n".join(lines) + "\n"
