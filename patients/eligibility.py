"""Eligibility at enrolment (PROTOCOL section 2), as a pure rule.

Frozen dataclasses in, plain values out; no Django. Every threshold lives in
`EligibilityParams`, whose defaults are the seed trial's; a second trial with other
numbers passes other params and needs no code change.

Three outcomes per criterion: ``pass``, ``fail``, ``missing``. Missing is never pass
(PROTOCOL 2: "all must hold at enrolment"), so a screening with any missing fact is
not eligible. A known failure outranks a missing fact within one criterion: one
failed part already makes the criterion fail, whatever else is unknown.

Age at consent is ``consent year - birth year``, because the app stores the birth
year only (docs/api.md, ``birth_year``). This can overstate the true age by up to one
year (born in December, consented in January), so a patient whose true age is 15 can
pass as 16 and one who is truly 75 can fail as 76. The screening form should say so
when the computed age is at either limit.

Lab values are in SI, x10^9/L (docs/api.md). `platelets_problems` and `anc_problems` catch
values typed in cells/uL (50000 instead of 50) and return messages for the form; the
eligibility rule itself treats an implausible value as missing, so a unit slip that
reaches it through an import can never turn into a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from patients.lab_plausibility import entry_problems, with_ceiling

Status = Literal["pass", "fail", "missing"]
Overall = Literal["eligible", "not_eligible", "incomplete"]
HighRiskPath = Literal["mrd", "disease_status", "conditioning"]


@dataclass(frozen=True)
class EligibilityParams:
    """Per-trial thresholds for PROTOCOL section 2; defaults are the seed trial's."""

    # 2.1: inclusive at both ends.
    min_age: int = 16
    max_age: int = 75
    # 2.2: the diagnoses accepted, and those that must also be CD22-positive. The
    # protocol says "CD22-positive ALL, or lymphoid blast crisis of CML": read
    # literally, CD22 positivity is required for ALL only. A trial that wants it for
    # both adds "cml_lymphoid_blast" here.
    diagnoses: frozenset[str] = frozenset({"b_all", "cml_lymphoid_blast"})
    cd22_required_for: frozenset[str] = frozenset({"b_all"})
    # 2.4 (b) and (c): the disease statuses and conditioning intensities that count
    # as high risk of relapse.
    high_risk_disease_statuses: frozenset[str] = frozenset({"cr2", "cr3_plus"})
    high_risk_conditioning: frozenset[str] = frozenset({"ric", "nma"})
    # 2.5: days after HCT (day 0 = stem cell infusion), inclusive at both ends.
    enrolment_day_min: int = 40
    enrolment_day_max: int = 100
    # 2.6: strict lower limits, x10^9/L, on labs drawn at most this many days before
    # enrolment (0 = drawn on the day of enrolment).
    platelets_above: float = 50.0
    anc_above: float = 1.0
    lab_max_age_days: int = 14
    # 2.7: active acute GVHD of this grade or higher excludes.
    agvhd_excluding_grade: int = 3
    # Plausibility (x10^9/L): above these a value is taken for a unit slip. Platelet
    # counts above 2000 x10^9/L and ANC above 100 x10^9/L are not seen in practice,
    # while 1000x those ceilings is where a count typed in cells/uL lands.
    platelets_plausible_max: float = 2000.0
    anc_plausible_max: float = 100.0


SEED_ELIGIBILITY = EligibilityParams()


@dataclass(frozen=True)
class ScreeningFacts:
    """What a screening knows; any field may be None, meaning not recorded."""

    birth_year: int | None
    consent_date: date | None
    diagnosis: str | None  # docs/api.md: b_all | cml_lymphoid_blast
    cd22_positive: bool | None
    cr_at_day30: bool | None
    mrd_before: bool | None
    mrd_after: bool | None
    disease_status: str | None  # cr1 | cr2 | cr3_plus
    conditioning: str | None  # mac | ric | nma
    hct_date: date | None  # day 0 = stem cell infusion
    enrolment_date: date | None  # the date eligibility is judged for
    lab_date: date | None
    platelets_10e9_l: float | None
    anc_10e9_l: float | None
    agvhd_grade: int | None  # active acute GVHD grade, 0 = none
    liver_gvhd: bool | None  # active liver GVHD of any grade
    sos_history: bool | None


@dataclass(frozen=True)
class CriterionResult:
    number: int  # PROTOCOL 2.x
    key: str
    status: Status
    reason: str
    # Criterion 4 only: the high-risk paths that pass.
    paths: tuple[HighRiskPath, ...] = ()


@dataclass(frozen=True)
class EligibilityResult:
    criteria: tuple[CriterionResult, ...]

    @property
    def eligible(self) -> bool:
        return all(c.status == "pass" for c in self.criteria)

    @property
    def overall(self) -> Overall:
        if self.eligible:
            return "eligible"
        if any(c.status == "fail" for c in self.criteria):
            return "not_eligible"
        return "incomplete"

    @property
    def failed(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "fail")

    @property
    def missing(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if c.status == "missing")

    def criterion(self, key: str) -> CriterionResult:
        return next(c for c in self.criteria if c.key == key)


@dataclass(frozen=True)
class ScreeningValidity:
    """Whether a screening can still be used to enrol on a given date."""

    valid: bool
    reasons: tuple[str, ...]
    # The dates between which both the day window and the lab age hold; None when a
    # date is missing or the two ranges do not overlap.
    valid_from: date | None
    valid_until: date | None


# --- plausibility, for forms -------------------------------------------------------


def _count_problems(name: str, value: float, plausible_max: float) -> tuple[str, ...]:
    # One plausibility rule for every lab entry (patients.lab_plausibility), with the
    # trial's own ceiling; a count typed in cells/uL gets the "did you mean" hint.
    analyte = {"Platelets": "platelets", "ANC": "anc"}[name]
    return entry_problems(analyte, value, {analyte: with_ceiling(analyte, plausible_max)})


def platelets_problems(value: float, params: EligibilityParams = SEED_ELIGIBILITY) -> tuple[str, ...]:
    """Messages for a platelet count in x10^9/L; empty if plausible."""
    return _count_problems("Platelets", value, params.platelets_plausible_max)


def anc_problems(value: float, params: EligibilityParams = SEED_ELIGIBILITY) -> tuple[str, ...]:
    """Messages for an ANC in x10^9/L; empty if plausible."""
    return _count_problems("ANC", value, params.anc_plausible_max)


# --- the criteria ------------------------------------------------------------------


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _combine(parts: list[tuple[Status, str]]) -> tuple[Status, str]:
    """One status for a criterion made of parts: any fail fails, else any missing."""
    statuses = {s for s, _ in parts}
    status: Status = "fail" if "fail" in statuses else "missing" if "missing" in statuses else "pass"
    return status, "; ".join(r for _, r in parts)


def _age(f: ScreeningFacts, p: EligibilityParams) -> CriterionResult:
    limits = f"range is {p.min_age} to {p.max_age}"
    if f.birth_year is None or f.consent_date is None:
        what = "birth year" if f.birth_year is None else "consent date"
        return CriterionResult(1, "age", "missing", f"{what} not recorded; {limits}")
    # Birth year only is stored: see the module docstring.
    age = f.consent_date.year - f.birth_year
    ok = p.min_age <= age <= p.max_age
    reason = f"age {age} at consent ({f.consent_date.year} - {f.birth_year}); {limits}"
    return CriterionResult(1, "age", "pass" if ok else "fail", reason)


def _diagnosis(f: ScreeningFacts, p: EligibilityParams) -> CriterionResult:
    if f.diagnosis is None:
        return CriterionResult(2, "diagnosis", "missing", "diagnosis not recorded")
    if f.diagnosis not in p.diagnoses:
        accepted = ", ".join(sorted(p.diagnoses))
        return CriterionResult(2, "diagnosis", "fail", f"diagnosis {f.diagnosis} is not one of {accepted}")
    if f.diagnosis not in p.cd22_required_for:
        return CriterionResult(2, "diagnosis", "pass", f"diagnosis {f.diagnosis}")
    if f.cd22_positive is None:
        return CriterionResult(
            2,
            "diagnosis",
            "missing",
            f"diagnosis {f.diagnosis}; CD22 status not recorded",
        )
    if not f.cd22_positive:
        return CriterionResult(
            2,
            "diagnosis",
            "fail",
            f"diagnosis {f.diagnosis} is CD22-negative; CD22+ required",
        )
    return CriterionResult(2, "diagnosis", "pass", f"diagnosis {f.diagnosis}, CD22-positive")


def _cr_at_day30(f: ScreeningFacts) -> CriterionResult:
    if f.cr_at_day30 is None:
        return CriterionResult(3, "cr_at_day30", "missing", "remission status at day +30 not recorded")
    if f.cr_at_day30:
        return CriterionResult(3, "cr_at_day30", "pass", "in CR at day +30 after HCT")
    return CriterionResult(3, "cr_at_day30", "fail", "not in CR at day +30 after HCT")


def _high_risk(f: ScreeningFacts, p: EligibilityParams) -> CriterionResult:
    # 2.4: at least one path suffices, so a path that passes makes the criterion pass
    # even when another path's facts are missing; it fails only if every path fails.
    paths: list[tuple[HighRiskPath, Status, str]] = []

    if f.mrd_before or f.mrd_after:
        when = " and ".join(w for w, v in (("before", f.mrd_before), ("after", f.mrd_after)) if v)
        paths.append(("mrd", "pass", f"(a) MRD positive {when} HCT"))
    elif f.mrd_before is None or f.mrd_after is None:
        paths.append(("mrd", "missing", "(a) MRD before/after HCT not recorded"))
    else:
        paths.append(("mrd", "fail", "(a) MRD negative before and after HCT"))

    if f.disease_status is None:
        paths.append(("disease_status", "missing", "(b) disease status at HCT not recorded"))
    elif f.disease_status in p.high_risk_disease_statuses:
        paths.append(("disease_status", "pass", f"(b) transplanted in {f.disease_status}"))
    else:
        paths.append(("disease_status", "fail", f"(b) transplanted in {f.disease_status}"))

    if f.conditioning is None:
        paths.append(("conditioning", "missing", "(c) conditioning not recorded"))
    elif f.conditioning in p.high_risk_conditioning:
        paths.append(("conditioning", "pass", f"(c) {f.conditioning} conditioning"))
    else:
        paths.append(("conditioning", "fail", f"(c) {f.conditioning} conditioning"))

    passed = tuple(name for name, s, _ in paths if s == "pass")
    statuses = {s for _, s, _ in paths}
    status: Status = "pass" if passed else "missing" if "missing" in statuses else "fail"
    reason = "; ".join(r for _, _, r in paths)
    return CriterionResult(4, "high_risk", status, reason, paths=passed)


def _enrolment_day(hct_date: date | None, on: date | None, p: EligibilityParams) -> tuple[Status, str]:
    window = f"window is +{p.enrolment_day_min} to +{p.enrolment_day_max}"
    if hct_date is None or on is None:
        what = "HCT date" if hct_date is None else "enrolment date"
        return "missing", f"{what} not recorded; {window}"
    day = (on - hct_date).days
    ok = p.enrolment_day_min <= day <= p.enrolment_day_max
    return ("pass" if ok else "fail"), f"day {day:+d} after HCT; {window}"


def _lab_age(lab_date: date | None, on: date | None, p: EligibilityParams) -> tuple[Status, str]:
    limit = f"must be drawn within {p.lab_max_age_days} days before enrolment"
    if lab_date is None or on is None:
        what = "lab date" if lab_date is None else "enrolment date"
        return "missing", f"{what} not recorded; labs {limit}"
    age = (on - lab_date).days
    if age < 0:
        return "fail", f"labs dated {_days(-age)} after enrolment; labs {limit}"
    ok = age <= p.lab_max_age_days
    return ("pass" if ok else "fail"), f"labs drawn {_days(age)} before enrolment; {limit}"


def _count_above(name: str, value: float | None, above: float, plausible_max: float) -> tuple[Status, str]:
    if value is None:
        return "missing", f"{name} not recorded"
    problems = _count_problems(name, value, plausible_max)
    if problems:
        # An implausible value is unusable, not a result: treat it as missing.
        return "missing", " ".join(problems)
    ok = value > above
    return ("pass" if ok else "fail"), f"{name} {value:g} x10^9/L; must be > {above:g}"


def _graft_function(f: ScreeningFacts, p: EligibilityParams) -> CriterionResult:
    status, reason = _combine(
        [
            _count_above(
                "Platelets",
                f.platelets_10e9_l,
                p.platelets_above,
                p.platelets_plausible_max,
            ),
            _count_above("ANC", f.anc_10e9_l, p.anc_above, p.anc_plausible_max),
            _lab_age(f.lab_date, f.enrolment_date, p),
        ]
    )
    return CriterionResult(6, "graft_function", status, reason)


def _gvhd(f: ScreeningFacts, p: EligibilityParams) -> CriterionResult:
    parts: list[tuple[Status, str]] = []
    grade = f.agvhd_grade
    if grade is None:
        parts.append(("missing", "active acute GVHD grade not recorded"))
    elif not 0 <= grade <= 4:
        parts.append(("missing", f"acute GVHD grade {grade} is not a grade (0-4)"))
    else:
        excludes = f"grade >= {p.agvhd_excluding_grade} excludes"
        status: Status = "fail" if grade >= p.agvhd_excluding_grade else "pass"
        parts.append((status, f"active acute GVHD grade {grade}; {excludes}"))
    if f.liver_gvhd is None:
        parts.append(("missing", "liver GVHD not recorded"))
    elif f.liver_gvhd:
        parts.append(("fail", "active liver GVHD; any grade excludes"))
    else:
        parts.append(("pass", "no active liver GVHD"))
    status, reason = _combine(parts)
    return CriterionResult(7, "gvhd", status, reason)


def _sos(f: ScreeningFacts) -> CriterionResult:
    if f.sos_history is None:
        return CriterionResult(8, "sos", "missing", "SOS/VOD history not recorded")
    if f.sos_history:
        return CriterionResult(8, "sos", "fail", "history of SOS/VOD")
    return CriterionResult(8, "sos", "pass", "no history of SOS/VOD")


def assess_eligibility(facts: ScreeningFacts, params: EligibilityParams = SEED_ELIGIBILITY) -> EligibilityResult:
    """Every criterion of PROTOCOL section 2, in protocol order, with its reason.

    To judge the same screening for another enrolment date, pass
    ``dataclasses.replace(facts, enrolment_date=...)``.
    """
    day_status, day_reason = _enrolment_day(facts.hct_date, facts.enrolment_date, params)
    return EligibilityResult(
        criteria=(
            _age(facts, params),
            _diagnosis(facts, params),
            _cr_at_day30(facts),
            _high_risk(facts, params),
            CriterionResult(5, "enrolment_window", day_status, day_reason),
            _graft_function(facts, params),
            _gvhd(facts, params),
            _sos(facts),
        )
    )


def screening_validity(
    hct_date: date | None,
    lab_date: date | None,
    on: date,
    params: EligibilityParams = SEED_ELIGIBILITY,
) -> ScreeningValidity:
    """Can a screening still be used to enrol on ``on``?

    Only the date-bound criteria age (2.5, the day window after HCT; 2.6, the lab
    age); the others do not change with the enrolment date. A stale screening is
    repeated as a new record (PROTOCOL 2), not edited.
    """
    day_status, day_reason = _enrolment_day(hct_date, on, params)
    lab_status, lab_reason = _lab_age(lab_date, on, params)
    valid_from: date | None = None
    valid_until: date | None = None
    if hct_date is not None and lab_date is not None:
        start = max(hct_date + timedelta(days=params.enrolment_day_min), lab_date)
        end = min(
            hct_date + timedelta(days=params.enrolment_day_max),
            lab_date + timedelta(days=params.lab_max_age_days),
        )
        if start <= end:
            valid_from, valid_until = start, end
    return ScreeningValidity(
        valid=day_status == "pass" and lab_status == "pass",
        reasons=(day_reason, lab_reason),
        valid_from=valid_from,
        valid_until=valid_until,
    )
