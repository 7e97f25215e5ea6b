"""Dose-limiting toxicity: the window, candidate DLTs, evaluability (PROTOCOL section 5).

Pure module: no Django import. The software only *flags* candidates; an
investigator's signed adjudication makes or unmakes a DLT (section 5, third
bullet), so every candidate carries its evidence in words for that review.

Definitions chosen here (section 5 leaves them to the implementation):

Window. Cycles 1..N (N = `window_cycles`, 2 in the seed trial) of
`cycle_length_days` (28). It starts on C1D1 and ends, inclusive, on the day
before C(N+1)D1; without that cycle, on CkD1 + (N - k + 1) x length - 1 for the
last cycle k that has a day 1. With N = 2 and 28-day cycles: the day before
C3D1, else C2D1 + 27, else C1D1 + 55. An event on the end day is inside; the day
after is outside. The end is recomputed whenever cycle data change.

Duration of a cytopenia, rule (b). Days are counted as the difference of dates
(end - start), so an episode from 1 March to 29 March lasts 28 days and is not
a DLT; to 30 March it lasts 29 days and is. Two independent measurements, and
either one exceeding the limit flags the candidate (flagging is cheap, missing a
DLT is not; the investigator sees both numbers):
- from the AE record: onset (which must be inside the window) to the resolution
  date, where the resolution date is the first day the AE is no longer present;
  ongoing AEs run to the `as_of` date;
- from the lab series, per lineage (platelets, ANC): an episode starts at the
  first draw graded >= the threshold whose previous draw (if any) was below it,
  and ends at the first later draw graded below the threshold; with no such
  draw it runs to `as_of`. The start draw must be inside the window. Draws
  after `as_of` are ignored; on a day with several draws the lowest value
  counts. Because the true recovery lies somewhere between the last low draw
  and the first recovered one, this is the longest duration the data allow.
Only the onset need be inside the window: a cytopenia that starts in cycle 2
and lasts into cycle 3 is exactly the DLT rule (b) is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Literal

from dosing import schedule
from safety.ctcae import (
    DLT_CYTOPENIA_MEDDRA_CODES,
    NEUTROPHIL_COUNT_DECREASED,
    PLATELET_COUNT_DECREASED,
    SINUSOIDAL_OBSTRUCTION_SYNDROME,
)
from safety.lab_grading import (
    LabGrade,
    Number,
    grade_neutrophil_count,
    grade_platelet_count,
    to_decimal,
)

# docs/api.md `attribution` enumeration, weakest to strongest.
ATTRIBUTIONS: tuple[str, ...] = (
    "unrelated",
    "unlikely",
    "possible",
    "probable",
    "definite",
)
Lineage = Literal["platelets", "anc"]

_LINEAGE_CODE: dict[Lineage, str] = {
    "platelets": PLATELET_COUNT_DECREASED,
    "anc": NEUTROPHIL_COUNT_DECREASED,
}
_LINEAGE_NAME: dict[Lineage, str] = {
    "platelets": "thrombocytopenia",
    "anc": "neutropenia",
}
# Without the lab's LLN only grade 1 is out of reach (grades 2-4 use absolute
# cut-offs), so the grade-2 cut-off stands in for it: grade 1 is never proposed.
_FALLBACK_LLN: dict[Lineage, Decimal] = {
    "platelets": Decimal("75.0"),
    "anc": Decimal("1.5"),
}


class DltRule(StrEnum):
    SOS = "sos"
    PROLONGED_CYTOPENIA = "prolonged_cytopenia"
    NON_HEMATOLOGIC_GRADE3_RELATED = "non_hematologic_grade3_related"
    DEATH = "death"


class Evaluability(StrEnum):
    EVALUABLE_WITH_DLT = "evaluable_with_dlt"
    EVALUABLE_WITHOUT_DLT = "evaluable_without_dlt"
    PENDING = "pending"
    NON_EVALUABLE = "non_evaluable"


@dataclass(frozen=True, slots=True)
class DltParams:
    """Per-trial settings (PROTOCOL section 5 marks each one *(param)*)."""

    cycle_length_days: int = 28
    window_cycles: int = 2
    # Rule (b): grade >= this, lasting MORE than `cytopenia_max_days`.
    cytopenia_grade: int = 3
    cytopenia_max_days: int = 28
    # Rule (c): the paper prints "grade >3"; the protocol reads it as >= 3.
    non_haematological_grade: int = 3
    related_attributions: frozenset[str] = frozenset({"possible", "probable", "definite"})
    cytopenia_meddra_codes: frozenset[str] = DLT_CYTOPENIA_MEDDRA_CODES
    sos_meddra_codes: frozenset[str] = frozenset({SINUSOIDAL_OBSTRUCTION_SYNDROME})

    def __post_init__(self) -> None:
        if self.cycle_length_days < 1 or self.window_cycles < 1:
            raise ValueError("cycle length and window cycles must be positive")
        for name in ("cytopenia_grade", "non_haematological_grade"):
            if getattr(self, name) not in range(1, 6):
                raise ValueError(f"{name} must be a CTCAE grade 1-5")
        if self.cytopenia_max_days < 0:
            raise ValueError("cytopenia_max_days cannot be negative")
        unknown = self.related_attributions - set(ATTRIBUTIONS)
        if unknown:
            raise ValueError(f"unknown attribution(s): {sorted(unknown)}")


DEFAULT_PARAMS = DltParams()


@dataclass(frozen=True, slots=True)
class DltWindow:
    start: date
    end: date  # inclusive
    basis: str  # how the end was found, for the evidence text

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def day_number(self, day: date) -> int:
        """C1D1 is day 1, as clinicians count."""
        return (day - self.start).days + 1

    def describe(self) -> str:
        return f"DLT window {self.start} to {self.end} ({self.basis})"


@dataclass(frozen=True, slots=True)
class AdverseEvent:
    ae_id: int
    term: str
    meddra_code: str
    grade: int
    onset: date
    resolved: date | None  # None = ongoing
    attribution: str  # one of ATTRIBUTIONS
    haematological: bool  # safety.ctcae.HAEMATOLOGICAL_MEDDRA_CODES for v5.0

    def __post_init__(self) -> None:
        if self.grade not in range(1, 6):
            raise ValueError(f"AE {self.ae_id}: grade must be 1-5, not {self.grade}")
        if self.attribution not in ATTRIBUTIONS:
            raise ValueError(f"AE {self.ae_id}: unknown attribution {self.attribution!r}")
        if self.resolved is not None and self.resolved < self.onset:
            raise ValueError(f"AE {self.ae_id}: resolved before onset")


@dataclass(frozen=True, slots=True)
class SosRecord:
    """An SOS/VOD diagnosis (e.g. by modified Seattle or EBMT criteria)."""

    diagnosed: date
    grade: int | None = None
    ae_id: int | None = None


@dataclass(frozen=True, slots=True)
class LabDraw:
    """One blood count, SI units (x10^9/L); either value may be missing."""

    drawn: date
    platelets: Number | None = None
    anc: Number | None = None
    platelets_lln: Number | None = None
    anc_lln: Number | None = None


@dataclass(frozen=True, slots=True)
class DltInput:
    cycle_day1s: tuple[date, ...]  # C1D1, C2D1, ... in cycle order
    adverse_events: tuple[AdverseEvent, ...] = ()
    sos_records: tuple[SosRecord, ...] = ()
    labs: tuple[LabDraw, ...] = ()
    death_date: date | None = None


@dataclass(frozen=True, slots=True)
class DltCandidate:
    rule: DltRule
    event_date: date
    evidence: str
    ae_id: int | None = None


@dataclass(frozen=True, slots=True)
class CytopeniaEpisode:
    lineage: Lineage
    start: date  # first draw at grade >= threshold
    end: date | None  # first later draw below threshold; None = still low at as_of
    worst_grade: int
    worst_value: Decimal
    days: int  # (end or as_of) - start


@dataclass(frozen=True, slots=True)
class EvaluabilityResult:
    status: Evaluability
    reason: str
    window: DltWindow | None
    doses_in_window: int

    @property
    def replacement_needed(self) -> bool:
        # PROTOCOL section 5: anyone non-evaluable is replaced.
        return self.status is Evaluability.NON_EVALUABLE


def dlt_window(cycle_day1s: Sequence[date], params: DltParams = DEFAULT_PARAMS) -> DltWindow:
    """The DLT window from the day-1 dates known so far (module docstring)."""
    if not cycle_day1s:
        raise ValueError("no C1D1: the DLT window starts with the first dose")
    for n, (earlier, later) in enumerate(pairwise(cycle_day1s), start=1):
        if later <= earlier:
            raise ValueError(f"C{n + 1}D1 {later} is not after C{n}D1 {earlier}")
    # One rule, one place: the window is the schedule's (dosing.schedule, PROTOCOL s5).
    window = schedule.dlt_window(
        [schedule.PastCycle(number, day1) for number, day1 in enumerate(cycle_day1s, start=1)],
        schedule.ScheduleParams(cycle_length_days=params.cycle_length_days, dlt_window_cycles=params.window_cycles),
    )
    assert window is not None  # noqa: S101 - C1D1 exists, checked above
    return DltWindow(window.start, window.end, window.end_rule)


def dlt_window_end(cycle_day1s: Sequence[date], params: DltParams = DEFAULT_PARAMS) -> date:
    return dlt_window(cycle_day1s, params).end


def cytopenia_episodes(
    labs: Sequence[LabDraw],
    lineage: Lineage,
    *,
    as_of: date,
    grade_threshold: int = 3,
) -> tuple[CytopeniaEpisode, ...]:
    """Runs of consecutive draws graded >= threshold (module docstring)."""
    # Lowest value per day: a same-day repeat must not split or hide an episode.
    daily: dict[date, tuple[Decimal, LabGrade]] = {}
    for draw in labs:
        raw = draw.platelets if lineage == "platelets" else draw.anc
        if raw is None or draw.drawn > as_of:
            continue
        value = to_decimal(raw, lineage)
        raw_lln = draw.platelets_lln if lineage == "platelets" else draw.anc_lln
        lln = _FALLBACK_LLN[lineage] if raw_lln is None else to_decimal(raw_lln, "LLN")
        grader = grade_platelet_count if lineage == "platelets" else grade_neutrophil_count
        graded = grader(value, lln=lln)
        if draw.drawn not in daily or value < daily[draw.drawn][0]:
            daily[draw.drawn] = (value, graded)

    episodes: list[CytopeniaEpisode] = []
    start: date | None = None
    worst_grade, worst_value = 0, Decimal(0)
    for day in sorted(daily):
        value, graded = daily[day]
        low = graded.grade >= grade_threshold
        if low and start is None:
            start, worst_grade, worst_value = day, graded.grade, value
        elif low and start is not None:
            if value < worst_value:
                worst_grade, worst_value = graded.grade, value
        elif not low and start is not None:
            episodes.append(CytopeniaEpisode(lineage, start, day, worst_grade, worst_value, (day - start).days))
            start = None
    if start is not None:
        episodes.append(CytopeniaEpisode(lineage, start, None, worst_grade, worst_value, (as_of - start).days))
    return tuple(episodes)


def dlt_candidates(record: DltInput, *, as_of: date, params: DltParams = DEFAULT_PARAMS) -> tuple[DltCandidate, ...]:
    """Candidate DLTs by rules (a)-(d) of PROTOCOL section 5, as known on `as_of`.

    One candidate per AE (the most specific rule: SOS before the others), plus
    one per lab-only cytopenia episode and one for a death.
    """
    window = dlt_window(record.cycle_day1s, params)
    candidates: list[DltCandidate] = []
    done_ae: set[int] = set()

    def in_window(day: date) -> bool:
        # Events dated after as_of are data-entry errors or not yet happened.
        return window.contains(day) and day <= as_of

    # (a) SOS of any grade: an SOS AE or a separate SOS diagnosis record.
    for ae in record.adverse_events:
        if ae.meddra_code in params.sos_meddra_codes and in_window(ae.onset):
            candidates.append(
                DltCandidate(
                    DltRule.SOS,
                    ae.onset,
                    f"{ae.term} grade {ae.grade} (AE {ae.ae_id}), onset {ae.onset}, "
                    f"day {window.day_number(ae.onset)} of the {window.describe()}; "
                    "SOS of any grade is a DLT",
                    ae.ae_id,
                )
            )
            done_ae.add(ae.ae_id)
    for sos in record.sos_records:
        if not in_window(sos.diagnosed) or (sos.ae_id is not None and sos.ae_id in done_ae):
            continue
        grade = "grade not recorded" if sos.grade is None else f"grade {sos.grade}"
        candidates.append(
            DltCandidate(
                DltRule.SOS,
                sos.diagnosed,
                f"SOS diagnosed {sos.diagnosed} ({grade}), day "
                f"{window.day_number(sos.diagnosed)} of the {window.describe()}; "
                "SOS of any grade is a DLT",
                sos.ae_id,
            )
        )
        if sos.ae_id is not None:
            done_ae.add(sos.ae_id)

    candidates.extend(_prolonged_cytopenias(record, window, as_of, params, done_ae))

    # (c) Non-haematological grade >= 3 with a possible/probable/definite link.
    for ae in record.adverse_events:
        if (
            ae.ae_id in done_ae
            or ae.haematological
            or ae.grade < params.non_haematological_grade
            or ae.attribution not in params.related_attributions
            or not in_window(ae.onset)
        ):
            continue
        candidates.append(
            DltCandidate(
                DltRule.NON_HEMATOLOGIC_GRADE3_RELATED,
                ae.onset,
                f"{ae.term} grade {ae.grade} (AE {ae.ae_id}), attribution "
                f"{ae.attribution}, onset {ae.onset}, day {window.day_number(ae.onset)} "
                f"of the {window.describe()}; non-haematological grade >= "
                f"{params.non_haematological_grade} related to study drug",
                ae.ae_id,
            )
        )
        done_ae.add(ae.ae_id)

    # (d) Death, whatever the cause: attribution is the adjudicator's call.
    if record.death_date is not None and in_window(record.death_date):
        candidates.append(
            DltCandidate(
                DltRule.DEATH,
                record.death_date,
                f"death on {record.death_date}, day {window.day_number(record.death_date)} of the {window.describe()}",
            )
        )

    rule_order = list(DltRule)
    candidates.sort(
        key=lambda c: (
            c.event_date,
            rule_order.index(c.rule),
            -1 if c.ae_id is None else c.ae_id,
        )
    )
    return tuple(candidates)


def _prolonged_cytopenias(
    record: DltInput,
    window: DltWindow,
    as_of: date,
    params: DltParams,
    done_ae: set[int],
) -> list[DltCandidate]:
    """Rule (b): grade >= 3 neutropenia/thrombocytopenia lasting > 28 days."""
    limit = params.cytopenia_max_days
    threshold = params.cytopenia_grade
    # AE id -> evidence sentences; an AE can be flagged by its own dates and by labs.
    evidence: dict[int, list[str]] = {}
    onsets: dict[int, date] = {}
    unlinked: list[DltCandidate] = []

    cytopenia_aes = [
        ae
        for ae in record.adverse_events
        if ae.meddra_code in params.cytopenia_meddra_codes
        and ae.grade >= threshold
        and ae.ae_id not in done_ae
        and window.contains(ae.onset)
        and ae.onset <= as_of
    ]
    for ae in cytopenia_aes:
        end = ae.resolved if ae.resolved is not None else as_of
        days = (end - ae.onset).days
        if days > limit:
            until = f"resolved {ae.resolved}" if ae.resolved else f"ongoing as of {as_of}"
            evidence.setdefault(ae.ae_id, []).append(
                f"{ae.term} grade {ae.grade} (AE {ae.ae_id}) from {ae.onset} "
                f"(day {window.day_number(ae.onset)} of the {window.describe()}), "
                f"{until}: {days} days > {limit}"
            )
            onsets[ae.ae_id] = ae.onset

    for lineage, code in _LINEAGE_CODE.items():
        if code not in params.cytopenia_meddra_codes:
            continue
        for ep in cytopenia_episodes(record.labs, lineage, as_of=as_of, grade_threshold=threshold):
            if not window.contains(ep.start) or ep.days <= limit:
                continue
            until = (
                f"first draw below grade {threshold} on {ep.end}"
                if ep.end
                else f"still grade >= {threshold} as of {as_of}"
            )
            words = (
                f"labs: {_LINEAGE_NAME[lineage]} grade >= {threshold} from {ep.start} "
                f"(day {window.day_number(ep.start)} of the {window.describe()}), "
                f"{until}: {ep.days} days > {limit}; worst grade {ep.worst_grade} "
                f"({lineage} {ep.worst_value} x10^9/L)"
            )
            match = _matching_ae(cytopenia_aes, code, ep, as_of)
            if match is None:
                unlinked.append(
                    DltCandidate(
                        DltRule.PROLONGED_CYTOPENIA,
                        ep.start,
                        words + "; no matching AE recorded",
                    )
                )
            else:
                evidence.setdefault(match.ae_id, []).append(words)
                onsets.setdefault(match.ae_id, match.onset)

    flagged = [
        DltCandidate(DltRule.PROLONGED_CYTOPENIA, onsets[ae_id], "; ".join(texts), ae_id)
        for ae_id, texts in evidence.items()
    ]
    done_ae.update(evidence)
    return flagged + unlinked


def _matching_ae(aes: Sequence[AdverseEvent], code: str, ep: CytopeniaEpisode, as_of: date) -> AdverseEvent | None:
    """The AE of the same lineage whose dates overlap the lab episode, if any."""
    ep_end = ep.end if ep.end is not None else as_of
    overlapping = [
        ae
        for ae in aes
        if ae.meddra_code == code
        and ae.onset <= ep_end
        and (ae.resolved if ae.resolved is not None else as_of) >= ep.start
    ]
    if not overlapping:
        return None
    return min(overlapping, key=lambda ae: (abs((ae.onset - ep.start).days), ae.ae_id))


def dlt_evaluability(
    cycle_day1s: Sequence[date],
    *,
    as_of: date,
    confirmed_dlt_dates: Sequence[date] = (),
    unadjudicated_candidates: int = 0,
    treatment_ended: date | None = None,
    off_study: date | None = None,
    params: DltParams = DEFAULT_PARAMS,
) -> EvaluabilityResult:
    """DLT-evaluability, PROTOCOL section 5 last bullet.

    - `cycle_day1s`: day-1 dates of the cycles given (INO is given on day 1,
      section 3, so each is a dose received).
    - `confirmed_dlt_dates`: event dates of DLTs an investigator confirmed.
    - `unadjudicated_candidates`: candidates still awaiting a signed decision;
      while any is open the patient cannot be counted either way.
    - `treatment_ended`: end-of-treatment date (no further doses will come).
    - `off_study`: date toxicity follow-up stopped (withdrawal, lost to
      follow-up, death): after it the window cannot be completed.
    """
    n_window = params.window_cycles
    if not cycle_day1s:
        if treatment_ended is not None or off_study is not None:
            return EvaluabilityResult(Evaluability.NON_EVALUABLE, "never dosed; treatment ended", None, 0)
        return EvaluabilityResult(Evaluability.PENDING, "not dosed yet", None, 0)

    window = dlt_window(cycle_day1s, params)
    doses = min(len(cycle_day1s), n_window)

    def result(status: Evaluability, reason: str) -> EvaluabilityResult:
        return EvaluabilityResult(status, f"{reason} ({window.describe()})", window, doses)

    # A DLT in the window settles it, however many doses were given: the
    # paper's replaced L1 patient had one dose and no DLT, not one dose and a DLT.
    in_window = sorted(d for d in confirmed_dlt_dates if window.contains(d))
    if in_window:
        return result(Evaluability.EVALUABLE_WITH_DLT, f"confirmed DLT on {in_window[0]}")
    if unadjudicated_candidates > 0:
        return result(
            Evaluability.PENDING,
            f"{unadjudicated_candidates} candidate DLT(s) await adjudication",
        )

    window_over = as_of > window.end  # the end day itself still counts as inside
    if doses < n_window:
        if treatment_ended is not None and treatment_ended <= as_of:
            return result(
                Evaluability.NON_EVALUABLE,
                f"received {doses} of {n_window} window doses; treatment ended {treatment_ended}",
            )
        if off_study is not None and off_study <= as_of:
            return result(
                Evaluability.NON_EVALUABLE,
                f"received {doses} of {n_window} window doses; off study {off_study}",
            )
        if window_over:
            return result(
                Evaluability.NON_EVALUABLE,
                f"window over with {doses} of {n_window} window doses received",
            )
        return result(
            Evaluability.PENDING,
            f"received {doses} of {n_window} window doses; window still open",
        )

    if off_study is not None and off_study <= window.end and off_study <= as_of:
        return result(
            Evaluability.NON_EVALUABLE,
            f"off study {off_study}, before the window was completed, without a DLT",
        )
    if window_over:
        return result(
            Evaluability.EVALUABLE_WITHOUT_DLT,
            f"received all {n_window} window doses and completed the window without a DLT",
        )
    return result(
        Evaluability.PENDING,
        f"received all {n_window} window doses; window runs to {window.end}",
    )


# ---------------------------------------------------------------- the evidence a decision rests on

# What an adjudication of an AE candidate rests on: the AE's values that the rules above
# read (term, grade, dates, attribution). A signed decision keeps a copy of them; a later
# edit of any of them means the decision was taken on other facts (issue 16 item 2).
EVIDENCE_FIELDS: tuple[str, ...] = ("term", "grade", "onset", "resolved", "attribution")


def evidence_changes(signed: dict[str, object], current: dict[str, object]) -> tuple[str, ...]:
    """The evidence fields that differ, in words ("grade 3 -> 2"), in EVIDENCE_FIELDS order.

    An empty ``signed`` (a decision without an AE, or one recorded before the copy was
    kept) has nothing to compare: no change.
    """
    if not signed:
        return ()
    changes = []
    for name in EVIDENCE_FIELDS:
        before, after = signed.get(name), current.get(name)
        if before != after:
            shown_before = "ongoing" if before is None and name == "resolved" else before
            shown_after = "ongoing" if after is None and name == "resolved" else after
            changes.append(f"{name} {shown_before} -> {shown_after}")
    return tuple(changes)
