"""Patient characteristics as the paper's Table 1 (pure: no Django).

One :class:`Table1Patient` per treated patient in, one :class:`Table1` out: counts with
percentages of the group, and medians with ranges, in the paper's sections and order.

Age is the age at allo-HCT, computed as the HCT year minus the birth year: Trialdesk
stores a birth year, never a birth date (no identifiers), and the paper's "age" is at
HCT/enrolment, which for a 28-day-cycle study enrolling on day +40..+100 is the same
year in all but a few cases. Missing values are counted in an "Unknown" row, shown only
when there are any, so every section still adds up to N.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("15-39", 15, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60-69", 60, 69),
)
UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class Table1Patient:
    age: int | None  # at allo-HCT (HCT year - birth year)
    sex: str  # female / male
    race: str  # white / black / asian / other / unreported
    cytogenetic_risk: str  # standard / adverse / unknown / ""
    ph_positive: bool | None
    prior_lines: int | None
    prior_asparaginase: bool | None
    prior_blinatumomab: bool | None
    prior_inotuzumab: bool | None
    prior_car_t: bool | None
    prior_hct: bool | None
    disease_status: str  # cr1 / cr2 / cr3_plus / ""
    hct_ci: int | None
    donor_type: str
    graft_source: str
    conditioning: str  # mac / ric / nma / ""
    regimen: str  # busulfan / melphalan / tbi / other / ""
    atg: bool | None
    gvhd_prophylaxis: str
    mrd_before: bool | None
    mrd_after: bool | None


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    count: int | None = None  # patients (None for a median row)
    percent: float | None = None  # of the group, one decimal
    median: float | None = None
    low: float | None = None
    high: float | None = None
    indent: bool = False  # a sub-row (e.g. a regimen under its intensity)

    @property
    def text(self) -> str:
        if self.count is not None:
            return f"{self.count} ({self.percent:.1f})" if self.percent is not None else str(self.count)
        if self.median is None:
            return "-"
        return f"{_num(self.median)} ({_num(self.low)}-{_num(self.high)})"


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    rows: tuple[Row, ...]

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(f"{self.title}: no row {label!r}")


@dataclass(frozen=True, slots=True)
class Table1:
    n: int
    sections: tuple[Section, ...]

    def section(self, title: str) -> Section:
        for s in self.sections:
            if s.title == title:
                return s
        raise KeyError(f"no section {title!r}")

    def count(self, title: str, label: str) -> int:
        """Patients in one row (0 for a row the group does not have)."""
        try:
            found = self.section(title).row(label).count
        except KeyError:
            return 0
        return found or 0

    def median(self, title: str, label: str) -> tuple[float | None, float | None, float | None]:
        r = self.section(title).row(label)
        return (r.median, r.low, r.high)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _pct(count: int, n: int) -> float | None:
    return round(100.0 * count / n, 1) if n else None


def _median_row(label: str, values: Iterable[int | None]) -> Row:
    known = sorted(v for v in values if v is not None)
    if not known:
        return Row(label)
    return Row(label, median=float(statistics.median(known)), low=float(known[0]), high=float(known[-1]))


def _count(label: str, patients: Sequence[Table1Patient], test: Callable[[Table1Patient], bool], **kw: bool) -> Row:
    c = sum(1 for p in patients if test(p))
    return Row(label, c, _pct(c, len(patients)), **kw)


def _tally(patients: Sequence[Table1Patient], value: Callable[[Table1Patient], str], wanted: str) -> int:
    return sum(1 for p in patients if value(p) == wanted)


def _categories(
    patients: Sequence[Table1Patient], value: Callable[[Table1Patient], str], labels: Sequence[tuple[str, str]]
) -> tuple[Row, ...]:
    """One row per (value, label); values outside ``labels`` and blanks fall in Unknown."""
    rows = [Row(label, c, _pct(c, len(patients))) for v, label in labels for c in [_tally(patients, value, v)]]
    known = {v for v, _ in labels}
    unknown = sum(1 for p in patients if value(p) not in known)
    if unknown:
        rows.append(Row(UNKNOWN, unknown, _pct(unknown, len(patients))))
    return tuple(rows)


def _hct_ci_band(score: int | None) -> str:
    if score is None:
        return ""
    return "0" if score == 0 else ("1-2" if score <= 2 else ">=3")


def _mrd_group(p: Table1Patient) -> str:
    if p.mrd_before and p.mrd_after:
        return "both"
    if p.mrd_before:
        return "before"
    if p.mrd_after:
        return "after"
    if p.mrd_before is None and p.mrd_after is None:
        return ""
    return "negative"


def _age_band(age: int | None) -> str:
    for label, low, high in AGE_BANDS:
        if age is not None and low <= age <= high:
            return label
    return ""


def table1(patients: Sequence[Table1Patient]) -> Table1:
    """The paper's Table 1 over ``patients`` (the treated patients, N = len(patients))."""
    ps = list(patients)
    n = len(ps)
    ric_nma = [p for p in ps if p.conditioning in ("ric", "nma")]
    mac = [p for p in ps if p.conditioning == "mac"]

    def regimens(group: Sequence[Table1Patient]) -> list[Row]:
        # Sub-rows of an intensity, as the paper prints them (percent of all N).
        rows = []
        for value, label in (("busulfan", "Busulfan based"), ("melphalan", "Melphalan based"), ("tbi", "Other + TBI")):
            c = sum(1 for p in group if p.regimen == value)
            if c or value != "melphalan" or group is ric_nma:
                rows.append(Row(label, c, _pct(c, n), indent=True))
        other = sum(1 for p in group if p.regimen not in ("busulfan", "melphalan", "tbi"))
        if other:
            rows.append(Row("Other / not recorded", other, _pct(other, n), indent=True))
        return rows

    sections: tuple[Section, ...] = (
        Section(
            "Age, y",
            (
                _median_row("Median (range)", (p.age for p in ps)),
                *_categories(ps, lambda p: _age_band(p.age), [(b[0], b[0]) for b in AGE_BANDS]),
                _median_row("MAC: median (range)", (p.age for p in mac)),
                _median_row("RIC/NMA: median (range)", (p.age for p in ric_nma)),
            ),
        ),
        Section("Sex", _categories(ps, lambda p: p.sex, [("male", "Male"), ("female", "Female")])),
        Section(
            "Race",
            (
                *_categories(
                    ps,
                    lambda p: p.race if p.race in ("white", "black", "asian") else "other_unreported",
                    [
                        ("white", "White"),
                        ("black", "Black"),
                        ("asian", "Asian"),
                        ("other_unreported", "Other or unreported"),
                    ],
                ),
            ),  # fmt: skip
        ),
        Section(
            "Cytogenetics risk",
            (
                _count("Adverse", ps, lambda p: p.cytogenetic_risk == "adverse"),
                _count("Ph+", ps, lambda p: p.ph_positive is True),
            ),
        ),
        Section(
            "Therapy before transplantation",
            (
                _median_row("Median lines of therapy (range)", (p.prior_lines for p in ps)),
                _count("ASPase-containing regimen", ps, lambda p: p.prior_asparaginase is True),
                _count("Blinatumomab", ps, lambda p: p.prior_blinatumomab is True),
                _count("INO", ps, lambda p: p.prior_inotuzumab is True),
                _count("CAR T-cell therapy", ps, lambda p: p.prior_car_t is True),
                _count("Allo-HCT", ps, lambda p: p.prior_hct is True),
            ),
        ),
        Section(
            "Disease status before HCT",
            _categories(ps, lambda p: p.disease_status, [("cr1", "CR1"), ("cr2", "CR2"), ("cr3_plus", "CR3 or more")]),
        ),
        Section(
            "HCT-CI", _categories(ps, lambda p: _hct_ci_band(p.hct_ci), [("0", "0"), ("1-2", "1-2"), (">=3", ">=3")])
        ),
        Section(
            "Donor type",
            _categories(
                ps,
                lambda p: p.donor_type,
                [
                    ("matched_sibling", "Matched sibling"),
                    ("haploidentical", "Haploidentical"),
                    ("matched_unrelated", "Matched unrelated"),
                    ("cord_blood", "Cord blood"),
                    ("matched_related", "Matched related (other)"),
                    ("mismatched_unrelated", "Mismatched unrelated"),
                ],
            ),  # fmt: skip
        ),
        Section(
            "Donor source",
            _categories(
                ps,
                lambda p: p.graft_source,
                [
                    ("bone_marrow", "Bone marrow"),
                    ("peripheral_blood", "Peripheral blood"),
                    ("cord_blood", "Cord blood"),
                ],
            ),
        ),
        Section(
            "Conditioning regimen",
            (
                _count("MAC", ps, lambda p: p.conditioning == "mac"),
                *regimens(mac),
                _count("RIC/NMA", ps, lambda p: p.conditioning in ("ric", "nma")),
                *regimens(ric_nma),
                _count("ATG use", ps, lambda p: p.atg is True),
            ),
        ),
        Section(
            "GVHD prophylaxis regimen",
            _categories(
                ps,
                lambda p: p.gvhd_prophylaxis,
                [("cni_mtx", "CNI + MTX"), ("cni_mmf", "CNI + MMF"), ("ptcy", "PTCy"), ("other", "Other")],
            ),
        ),
        Section(
            "MRD status",
            _categories(
                ps,
                _mrd_group,
                [
                    ("before", "MRD+ before HCT"),
                    ("after", "MRD+ after HCT"),
                    ("both", "MRD+ before and after HCT"),
                    ("negative", "MRD- before and after HCT"),
                ],
            ),  # fmt: skip
        ),
    )
    # Drop zero rows of rarely used categories so the table reads like the paper's.
    optional = {"Other", "Matched related (other)", "Mismatched unrelated"}
    sections = tuple(
        Section(s.title, tuple(r for r in s.rows if not (r.label in optional and r.count == 0))) for s in sections
    )
    return Table1(n=n, sections=sections)


__all__ = ["AGE_BANDS", "Row", "Section", "Table1", "Table1Patient", "table1"]
