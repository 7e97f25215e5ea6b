"""The 3+3 dose-escalation rule (PROTOCOL section 6), as a pure function of the data.

Pure module: no Django import. Frozen dataclasses in, frozen dataclasses out; the
same inputs always give the same answer, so the state is simply recomputed from
the whole history whenever a DLT, an evaluability or a sign-off changes.

Inputs
  `EscalationDesign`  the dose levels and the 3+3 variant (a trial setting).
  `PatientOutcome`    per enrolled patient: id, dose level, enrolment order and
                      DLT status (`dlt`, `no_dlt`, `pending`, `non_evaluable`).
  `SignedDecision`    the decisions an investigator has signed so far.

How the history is read (the cohorts)
  At each level the patients are taken in enrolment order (ties broken by id).
  Non-evaluable patients are replaced (section 5), so they hold no place: the
  first three others form the level's first cohort, the next three its
  expansion cohort, anyone after that is an extra (e.g. treated at a declared
  MTD). The escalation decision at a level is taken on its first cohort, or on
  both cohorts when the first had 1 DLT (or six are needed, `six_at_mtd`).
  A level with >= 2 DLTs among *all* its patients is too toxic: later patients'
  DLTs still count (section 6, the expansion at the MTD), and the second DLT
  decides even while other patients are still in their window.

  The engine replays the rule from level 1 upward on the current data. A DLT
  reported late for a level already passed therefore changes the replay; the
  engine says which signed decisions, and which treated levels, the rule no
  longer supports ("a past decision no longer holds: ..." in `warnings`).

Sign-off (section 6: "a decision takes effect only when an investigator signs it")
  Every rule decision that changes the course of the trial -- escalate, expand,
  de_escalate, mtd_declared, stop_no_mtd -- needs a signature. A signature is a
  `SignedDecision(decision, dose_level)` where `dose_level` is the level the
  decision opens or declares: escalate -> the new, higher level; expand -> the
  level expanded; de_escalate -> the lower level reopened; mtd_declared -> the
  MTD; stop_no_mtd -> level 1 (the level found too toxic). The same pair is what
  `EscalationState.awaiting_signoff` asks for, so the service stores exactly
  that. The engine reports both views:
  - the rule's view: `decision`, `recommended_dose_level`, `recommended_slots`
    (what the rule says, whether or not signed);
  - what is in effect: `open_slots`, `current_dose_level`, `mtd_dose_level`.
    Slots are open only when the decision that opened the cohort has been
    signed (level 1's first cohort needs no signature: it opens with the
    trial). The MTD is reported only once its declaration is signed.
  Signed decisions that the rule no longer gives, and patients enrolled in a
  cohort whose decision was never signed, are reported in `warnings`.

Cost: one sort of the patients plus one pass over them and over the levels,
O(n log n + K).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum


class Variant(StrEnum):
    """The 3+3 variant, a trial setting (PROTOCOL section 6)."""

    # Storer 1989 design A; R escalation::get_three_plus_three() and clintrials.
    STORER_A = "storer_a"
    # An MTD needs six evaluable patients with <= 1 DLT.
    SIX_AT_MTD = "six_at_mtd"


class DltStatus(StrEnum):
    DLT = "dlt"
    NO_DLT = "no_dlt"  # completed the DLT window without a DLT
    PENDING = "pending"  # still inside the DLT window
    NON_EVALUABLE = "non_evaluable"  # replaced (section 5)


class Decision(StrEnum):
    """docs/api.md decision vocabulary for `trials/{id}/escalation/`."""

    ENROLL = "enroll"
    WAIT = "wait"
    ESCALATE = "escalate"
    EXPAND = "expand"
    DE_ESCALATE = "de_escalate"
    MTD_DECLARED = "mtd_declared"
    STOP_NO_MTD = "stop_no_mtd"


# The decisions that take effect only once signed (section 6).
SIGNABLE_DECISIONS: frozenset[Decision] = frozenset(
    {
        Decision.ESCALATE,
        Decision.EXPAND,
        Decision.DE_ESCALATE,
        Decision.MTD_DECLARED,
        Decision.STOP_NO_MTD,
    }
)

COHORT_SIZE = 3
# Section 6: ">= 2 DLT (of 3 or 6)" makes a level too toxic.
TOO_TOXIC_DLTS = 2


@dataclass(frozen=True)
class EscalationDesign:
    """Trial settings the rule needs: dose levels (level i is `dose_levels[i-1]`)."""

    dose_levels: tuple[float, ...]
    variant: Variant = Variant.STORER_A
    # Section 6: "after an MTD is declared, further patients may be treated at the MTD".
    # How many, beyond the cohort(s) that decided it, is a trial setting
    # (Trial.expansion_cohort_size); once the declaration is signed they are open slots
    # at the MTD. 0 = no expansion.
    expansion_cohort_size: int = 0

    def __post_init__(self) -> None:
        if not self.dose_levels:
            raise ValueError("a 3+3 design needs at least one dose level")
        if self.expansion_cohort_size < 0:
            raise ValueError("the expansion cohort size cannot be negative")
        object.__setattr__(self, "variant", Variant(self.variant))

    @property
    def top_level(self) -> int:
        return len(self.dose_levels)


@dataclass(frozen=True)
class PatientOutcome:
    """One enrolled patient as the 3+3 rule sees him or her."""

    patient_id: str
    dose_level: int  # numbered from 1
    enrolment_order: int  # position in the trial's enrolment sequence
    status: DltStatus

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", DltStatus(self.status))
        if self.dose_level < 1:
            raise ValueError(f"patient {self.patient_id}: dose levels are numbered from 1")


@dataclass(frozen=True)
class SignedDecision:
    """An investigator-signed decision; `dose_level` is the level it opens or declares."""

    decision: Decision
    dose_level: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", Decision(self.decision))
        if self.decision not in SIGNABLE_DECISIONS:
            raise ValueError(f"{self.decision} is not a decision that is signed")


def deciding_levels(decision: Decision | str, dose_level: int) -> tuple[int, ...]:
    """The levels whose cohorts a signed decision about ``dose_level`` (the level it opens
    or declares) was made on: an escalation on the level below, a de-escalation on the
    level above, an expansion or a stop on the level itself, an MTD on the level and the
    one above it (the MTD may be declared because the level above is too toxic). The other
    designs' ``stay`` (analysis.designs) was made on the level itself, as an expansion."""
    if decision == Decision.ESCALATE:
        return (dose_level - 1,)
    if decision == Decision.DE_ESCALATE:
        return (dose_level + 1,)
    if decision == Decision.MTD_DECLARED:
        return (dose_level, dose_level + 1)
    return (dose_level,)


@dataclass(frozen=True)
class CohortCounts:
    """Per-level counts, with the keys of the API's `cohorts` entries."""

    dose_level: int
    dose_mg_m2: float
    enrolled: int
    evaluable: int
    non_evaluable: int
    pending: int
    dlts: int


@dataclass(frozen=True)
class Step:
    """One rule decision in the replayed history, in the order the rule takes them."""

    decision: Decision
    dose_level: int  # the level the decision opens or declares (see module doc)
    from_dose_level: int  # the level whose patients' data led to it
    signed: bool
    reason: str


@dataclass(frozen=True)
class EscalationState:
    variant: Variant
    # The rule's view.
    decision: Decision
    recommended_dose_level: int | None  # None only for stop_no_mtd
    recommended_slots: tuple[tuple[int, int], ...]
    # What is in effect, given the signatures.
    current_dose_level: int
    mtd_dose_level: int | None
    open_slots: tuple[tuple[int, int], ...]  # (dose level, slots)
    awaiting_signoff: SignedDecision | None
    cohorts: tuple[CohortCounts, ...]
    history: tuple[Step, ...]
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]


# ---------------------------------------------------------------- internals


@dataclass
class _Level:
    """One level's patients, gathered in enrolment order."""

    level: int
    enrolled: int = 0
    non_evaluable: int = 0
    pending: int = 0
    dlts: int = 0
    # Statuses of the patients who hold a place (all but the non-evaluable).
    places: list[DltStatus] = field(default_factory=list)
    # For each non-evaluable patient, how many places were taken before him or
    # her: tells which cohort the replaced patient had started.
    non_evaluable_at: list[int] = field(default_factory=list)

    @property
    def evaluable(self) -> int:
        return self.enrolled - self.non_evaluable - self.pending

    def cohort_touched(self, cohort: int) -> bool:
        start = cohort * COHORT_SIZE
        return len(self.places) > start or any(start <= k < start + COHORT_SIZE for k in self.non_evaluable_at)


class _Verdict(Enum):
    CLEARED = "cleared"  # the level may be left upward (or declared, at the top)
    OPEN = "open"  # places still to fill in the deciding cohort
    WAIT = "wait"  # all places filled, someone still in the DLT window
    TOO_TOXIC = "too_toxic"


@dataclass(frozen=True)
class _Assessment:
    verdict: _Verdict
    expanded: bool  # the expansion cohort (places 4-6) is part of the decision
    cohort: int  # 0 = first cohort, 1 = expansion cohort (for OPEN/WAIT)
    slots: int
    dlts: int  # DLTs in the deciding cohort(s)
    evaluable: int  # evaluable patients in the deciding cohort(s)


def _assess(lv: _Level, needs_six: bool) -> _Assessment:
    """Apply the section 6 table to one level's deciding cohort(s)."""
    first = lv.places[:COHORT_SIZE]
    first_dlts = first.count(DltStatus.DLT)
    first_evaluable = sum(s is not DltStatus.PENDING for s in first)
    if first_dlts >= TOO_TOXIC_DLTS:
        # The second DLT decides at once, even with others pending (section 6).
        return _Assessment(_Verdict.TOO_TOXIC, False, 0, 0, first_dlts, first_evaluable)
    if len(first) < COHORT_SIZE:
        return _Assessment(
            _Verdict.OPEN,
            False,
            0,
            COHORT_SIZE - len(first),
            first_dlts,
            first_evaluable,
        )
    if DltStatus.PENDING in first:
        # "fewer evaluable than needed: wait" -- no new slot while in the window.
        return _Assessment(_Verdict.WAIT, False, 0, 0, first_dlts, first_evaluable)
    if first_dlts == 0 and not needs_six:
        return _Assessment(_Verdict.CLEARED, False, 0, 0, 0, COHORT_SIZE)
    second = lv.places[COHORT_SIZE : 2 * COHORT_SIZE]
    dlts = first_dlts + second.count(DltStatus.DLT)
    evaluable = COHORT_SIZE + sum(s is not DltStatus.PENDING for s in second)
    if dlts >= TOO_TOXIC_DLTS:
        return _Assessment(_Verdict.TOO_TOXIC, True, 1, 0, dlts, evaluable)
    if len(second) < COHORT_SIZE:
        return _Assessment(_Verdict.OPEN, True, 1, COHORT_SIZE - len(second), dlts, evaluable)
    if DltStatus.PENDING in second:
        return _Assessment(_Verdict.WAIT, True, 1, 0, dlts, evaluable)
    return _Assessment(_Verdict.CLEARED, True, 1, 0, dlts, evaluable)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _counts(lv: _Level) -> str:
    text = f"{_plural(lv.dlts, 'DLT')} in {_plural(lv.evaluable, 'evaluable patient')}"
    if lv.pending:
        text += f" ({lv.pending} pending)"
    return text


def _replaced(lv: _Level) -> str:
    if not lv.non_evaluable:
        return ""
    return f" ({_plural(lv.non_evaluable, 'non-evaluable patient')} replaced, section 5)"


def _decided_on(a: _Assessment) -> str:
    return f"{a.dlts} of {a.evaluable}"


@dataclass(frozen=True)
class _RuleStep:
    decision: Decision
    dose_level: int
    from_dose_level: int
    reason: str


@dataclass(frozen=True)
class _Terminal:
    level: int
    final: Decision | None  # mtd_declared / stop_no_mtd, else None
    slots: int
    waiting: bool
    opening: _RuleStep | None  # the decision that opened the cohort
    untouched: bool  # nobody enrolled in that cohort yet


@dataclass
class _Walk:
    """The rule replayed from level 1 on the current data (built by `_Rule.replay`)."""

    steps: list[_RuleStep] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    terminal: _Terminal | None = None
    # The level above which the rule no longer goes (None: it reached the top).
    blocker: int | None = None

    def add(self, decision: Decision, dose_level: int, from_level: int, reason: str) -> _RuleStep:
        step = _RuleStep(decision, dose_level, from_level, reason)
        self.steps.append(step)
        self.reasons.append(reason)
        return step


class _Rule:
    def __init__(self, design: EscalationDesign, levels: dict[int, _Level]) -> None:
        self.top = design.top_level
        self.six = design.variant is Variant.SIX_AT_MTD
        self.expansion = design.expansion_cohort_size
        self.levels = levels

    def needs_six_going_up(self, level: int) -> bool:
        # six_at_mtd: "the top level is expanded to 6 before it is declared".
        return self.six and level == self.top

    def too_toxic_overall(self, level: int) -> bool:
        # Patients after the deciding cohort (e.g. at a declared MTD) still count.
        return self.levels[level].dlts >= TOO_TOXIC_DLTS

    def replay(self) -> _Walk:
        walk = _Walk()
        top_reached, a_top, expand_step = self._upward(walk, limit=self.top)
        lowest_toxic = next((lv for lv in range(1, top_reached + 1) if self.too_toxic_overall(lv)), None)
        if lowest_toxic is None:
            self._finish_without_toxic_level(walk, top_reached, a_top, expand_step)
            return walk
        if lowest_toxic == top_reached or a_top.verdict is _Verdict.TOO_TOXIC:
            # The faithful history: escalated to `top_reached`, found it too toxic,
            # came back down (levels in between may have been expanded and failed).
            walk.blocker = top_reached
            landing = self._downward(walk, too_toxic=top_reached)
            if landing is None or landing < lowest_toxic:
                return walk
        # A level passed on its deciding cohort now has >= 2 DLTs overall: nothing
        # above it can stand (never treat above a too-toxic level), so replay again
        # with the climb stopped there.
        walk = _Walk()
        self._upward(walk, limit=lowest_toxic)
        walk.blocker = lowest_toxic
        self._downward(walk, too_toxic=lowest_toxic)
        return walk

    def _upward(self, walk: _Walk, limit: int) -> tuple[int, _Assessment, _RuleStep | None]:
        """Climb while the deciding cohorts pass; return where the climb stops."""
        level = 1
        while True:
            lv = self.levels[level]
            a = _assess(lv, self.needs_six_going_up(level))
            expand_step = None
            if a.expanded:
                expand_step = self._expand_step(walk, level)
            if a.verdict is _Verdict.CLEARED and level < limit:
                walk.add(
                    Decision.ESCALATE,
                    level + 1,
                    level,
                    f"Level {level}: {_decided_on(a)} evaluable patients had a DLT"
                    f"{_replaced(lv)}, so escalate to level {level + 1} (section 6: "
                    f"{'1 of 6' if a.expanded else '0 of 3'} -> escalate).",
                )
                level += 1
                continue
            return level, a, expand_step

    def _expand_step(self, walk: _Walk, level: int) -> _RuleStep:
        first_dlts = self.levels[level].places[:COHORT_SIZE].count(DltStatus.DLT)
        if first_dlts == 1:
            why = "1 of 3 evaluable patients had a DLT, so expand to 6 (section 6: 1 of 3)"
        else:
            why = "0 of 3 at the top level; six_at_mtd expands the top level to 6 before declaring it (section 6)"
        return walk.add(Decision.EXPAND, level, level, f"Level {level}: {why}.")

    def _finish_without_toxic_level(
        self, walk: _Walk, level: int, a: _Assessment, expand_step: _RuleStep | None
    ) -> None:
        lv = self.levels[level]
        if a.verdict is _Verdict.CLEARED:  # only at the top level
            rule = "1 of 6" if a.expanded else "0 of 3"
            if self.six and a.expanded and lv.places[:COHORT_SIZE].count(DltStatus.DLT) == 0:
                rule = "six evaluable with <= 1 DLT (six_at_mtd)"
            walk.add(
                Decision.MTD_DECLARED,
                level,
                level,
                f"Level {level} (top level): {_decided_on(a)} evaluable patients had a "
                f"DLT, so the top level is the MTD (section 6: {rule} at the top level).",
            )
            slots = self._note_extras(walk, level, a)
            walk.terminal = _Terminal(level, Decision.MTD_DECLARED, slots, False, None, False)
            return
        walk.blocker = level
        opening = expand_step if a.expanded else self._last_escalation(walk, level)
        self._open_cohort(walk, level, a, opening)

    def _last_escalation(self, walk: _Walk, level: int) -> _RuleStep | None:
        if level == 1:
            return None  # level 1's first cohort opens with the trial
        return next(s for s in reversed(walk.steps) if s.decision is Decision.ESCALATE)

    def _open_cohort(self, walk: _Walk, level: int, a: _Assessment, opening: _RuleStep | None) -> None:
        lv = self.levels[level]
        cohort = "expansion cohort" if a.cohort else "first cohort"
        if a.verdict is _Verdict.OPEN:
            walk.reasons.append(
                f"Level {level}: {_counts(lv)}{_replaced(lv)}; {_plural(a.slots, 'place')} open in the {cohort}."
            )
        else:
            walk.reasons.append(
                f"Level {level}: {_counts(lv)}; the {cohort} is full; wait until the "
                f"{_plural(lv.pending, 'patient')} in the DLT window "
                "become evaluable or are replaced (section 6: no new slot meanwhile)."
            )
        walk.terminal = _Terminal(
            level,
            None,
            a.slots,
            a.verdict is _Verdict.WAIT,
            opening,
            not lv.cohort_touched(a.cohort),
        )

    def _downward(self, walk: _Walk, too_toxic: int) -> int | None:
        """From a too-toxic level, find the MTD (or the level to expand) below it.

        Returns the level where the rule lands, None when it stops without an MTD.
        """
        walk.reasons.append(
            f"Level {too_toxic}: {_counts(self.levels[too_toxic])}: too toxic "
            "(section 6: >= 2 DLTs); never re-escalate into it."
        )
        level = too_toxic - 1
        while level >= 1:
            lv = self.levels[level]
            if not self.six:
                if self.too_toxic_overall(level):
                    walk.reasons.append(f"Level {level}: {_counts(lv)}: too toxic as well (section 6).")
                    level -= 1
                    continue
                # storer_a: MTD = d-1 as it stands, no expansion of d-1.
                walk.add(
                    Decision.MTD_DECLARED,
                    level,
                    level + 1,
                    f"Level {level + 1} is too toxic, so the MTD is level {level}, the "
                    f"level below it ({_counts(lv)}; section 6, storer_a: MTD = d-1).",
                )
                slots = self._note_extras(walk, level, _assess(lv, needs_six=False))
                walk.terminal = _Terminal(level, Decision.MTD_DECLARED, slots, False, None, False)
                return level
            a = _assess(lv, needs_six=True)
            first_dlts = lv.places[:COHORT_SIZE].count(DltStatus.DLT)
            opening = None
            if a.expanded and first_dlts == 0:
                # The level passed at 0 of 3; six_at_mtd brings it to 6 first.
                opening = walk.add(
                    Decision.DE_ESCALATE,
                    level,
                    level + 1,
                    f"Level {level + 1} is too toxic and level {level} has only 3 "
                    f"evaluable patients, so de-escalate to level {level} and expand it "
                    "to 6 (section 6, six_at_mtd).",
                )
            if self.too_toxic_overall(level):
                walk.reasons.append(
                    f"Level {level}: {_counts(lv)}: too toxic as well, so repeat one "
                    "level lower (section 6, six_at_mtd)."
                )
                level -= 1
                continue
            if a.verdict is _Verdict.CLEARED:
                walk.add(
                    Decision.MTD_DECLARED,
                    level,
                    level if opening else level + 1,
                    f"Level {level + 1} is too toxic and level {level} has "
                    f"{_decided_on(a)} evaluable patients with a DLT, so the MTD is level "
                    f"{level} (section 6, six_at_mtd: 6 evaluable with <= 1 DLT).",
                )
                slots = self._note_extras(walk, level, a)
                walk.terminal = _Terminal(level, Decision.MTD_DECLARED, slots, False, None, False)
                return level
            self._open_cohort(walk, level, a, opening)
            return level
        walk.add(
            Decision.STOP_NO_MTD,
            1,
            1,
            "Level 1 is too toxic and there is no level below it: stop, no MTD (section 6).",
        )
        walk.terminal = _Terminal(1, Decision.STOP_NO_MTD, 0, False, None, False)
        return None

    def _note_extras(self, walk: _Walk, level: int, a: _Assessment) -> int:
        """Say who was treated at the MTD beyond the deciding cohort(s); return the
        expansion places still open (the design's expansion size minus those treated)."""
        lv = self.levels[level]
        deciding = 2 * COHORT_SIZE if a.expanded else COHORT_SIZE
        extras = max(0, len(lv.places) - deciding)
        slots = max(0, self.expansion - extras)
        if extras > 0:
            walk.reasons.append(
                f"Level {level}: {_plural(extras, 'further patient')} treated at the "
                f"MTD (expansion); their DLTs count: {_counts(lv)} in all "
                "(section 6)."
            )
        else:
            walk.reasons.append(
                "Further patients may be treated at the MTD as an expansion; their "
                "DLTs count, and >= 2 DLTs at the MTD undo the declaration (section 6)."
            )
        if self.expansion:
            walk.reasons.append(
                f"Expansion at the MTD: {_plural(self.expansion, 'place')} in the design, "
                f"{extras} taken, {_plural(slots, 'place')} open at level {level} once the MTD "
                "declaration is signed (section 6)."
            )
        return slots


def _gather(design: EscalationDesign, patients: Iterable[PatientOutcome]) -> dict[int, _Level]:
    levels = {lv: _Level(lv) for lv in range(1, design.top_level + 1)}
    seen: set[str] = set()
    ordered = sorted(patients, key=lambda p: (p.enrolment_order, p.patient_id))
    for p in ordered:
        if p.patient_id in seen:
            raise ValueError(f"patient {p.patient_id} is listed twice")
        seen.add(p.patient_id)
        if p.dose_level > design.top_level:
            raise ValueError(
                f"patient {p.patient_id}: dose level {p.dose_level} is above the top level {design.top_level}"
            )
        lv = levels[p.dose_level]
        lv.enrolled += 1
        if p.status is DltStatus.NON_EVALUABLE:
            lv.non_evaluable += 1
            lv.non_evaluable_at.append(len(lv.places))
            continue
        lv.places.append(p.status)
        if p.status is DltStatus.PENDING:
            lv.pending += 1
        elif p.status is DltStatus.DLT:
            lv.dlts += 1
    return levels


_PHRASES: dict[Decision, str] = {
    Decision.ESCALATE: "the escalation to level {}",
    Decision.EXPAND: "the expansion of level {}",
    Decision.DE_ESCALATE: "the de-escalation to level {}",
    Decision.MTD_DECLARED: "the MTD declaration at level {}",
    Decision.STOP_NO_MTD: "the stop (no MTD) at level {}",
}


def describe_decision(decision: Decision, dose_level: int) -> str:
    """A signable decision in words, e.g. "the escalation to level 3"."""
    return _PHRASES[decision].format(dose_level)


def _key(decision: Decision, dose_level: int) -> tuple[Decision, int]:
    return (decision, dose_level)


def _describe(levels: dict[int, _Level], level: int) -> str:
    return f"level {level} now has {_counts(levels[level])}"


def _why_no_longer(signed: SignedDecision, levels: dict[int, _Level], blocker: int | None, top: int) -> str:
    """Pick the level whose current data contradict a signed decision."""
    lv = signed.dose_level
    decision = signed.decision
    if decision is Decision.ESCALATE:
        # The climb stopped below the level this escalation opened.
        at = blocker if blocker is not None and blocker < lv else lv - 1
    elif decision in (Decision.EXPAND, Decision.STOP_NO_MTD) or (
        decision is Decision.MTD_DECLARED and levels[lv].dlts >= TOO_TOXIC_DLTS
    ):
        at = lv  # the level's own data changed
    elif blocker is not None and blocker <= lv:
        at = blocker  # the rule now stops at or below it
    else:
        at = min(lv + 1, top)  # the level above is no longer too toxic
    return _describe(levels, at)


def escalation_state(
    design: EscalationDesign,
    patients: Iterable[PatientOutcome],
    signed: Iterable[SignedDecision] = (),
) -> EscalationState:
    """The 3+3 state of a trial: the rule's recommendation and what is in effect."""
    levels = _gather(design, patients)
    walk = _Rule(design, levels).replay()
    terminal = walk.terminal
    if terminal is None:  # every path of the replay ends in a terminal state
        raise RuntimeError("3+3 replay ended without a decision")

    signed_list = list(signed)
    for s in signed_list:
        lowest = 2 if s.decision is Decision.ESCALATE else 1
        if not lowest <= s.dose_level <= design.top_level:
            raise ValueError(f"signed {s.decision} at impossible dose level {s.dose_level}")
    signed_keys = {_key(s.decision, s.dose_level) for s in signed_list}
    history = tuple(
        Step(
            s.decision,
            s.dose_level,
            s.from_dose_level,
            _key(s.decision, s.dose_level) in signed_keys,
            s.reason,
        )
        for s in walk.steps
    )

    # The decision that needs a signature now: the final one, or the one that
    # opened the cohort the rule is filling.
    pending_step = walk.steps[-1] if terminal.final is not None else terminal.opening
    pending_signed = pending_step is None or _key(pending_step.decision, pending_step.dose_level) in signed_keys
    awaiting = (
        None
        if pending_step is None or pending_signed
        else SignedDecision(pending_step.decision, pending_step.dose_level)
    )

    if terminal.final is not None:
        decision = terminal.final
    elif terminal.untouched and terminal.opening is not None:
        decision = terminal.opening.decision
    elif terminal.waiting:
        decision = Decision.WAIT
    else:
        decision = Decision.ENROLL
    recommended_level = None if decision is Decision.STOP_NO_MTD else terminal.level
    recommended_slots = ((terminal.level, terminal.slots),) if terminal.slots else ()
    open_slots = recommended_slots if pending_signed else ()
    # Until its decision is signed, the trial stays where that decision was taken.
    current = terminal.level if pending_signed or pending_step is None else pending_step.from_dose_level
    mtd = terminal.level if terminal.final is Decision.MTD_DECLARED and pending_signed else None

    reasons = list(walk.reasons)
    if awaiting is not None:
        what = describe_decision(awaiting.decision, awaiting.dose_level)
        reasons.append(f"Awaiting an investigator's signature: {what} takes effect only once signed (section 6).")
    warnings = _warnings(design, levels, walk, history, signed_list, terminal)

    cohorts = tuple(
        CohortCounts(
            dose_level=lv.level,
            dose_mg_m2=design.dose_levels[lv.level - 1],
            enrolled=lv.enrolled,
            evaluable=lv.evaluable,
            non_evaluable=lv.non_evaluable,
            pending=lv.pending,
            dlts=lv.dlts,
        )
        for lv in levels.values()
    )
    return EscalationState(
        variant=design.variant,
        decision=decision,
        recommended_dose_level=recommended_level,
        recommended_slots=recommended_slots,
        current_dose_level=current,
        mtd_dose_level=mtd,
        open_slots=open_slots,
        awaiting_signoff=awaiting,
        cohorts=cohorts,
        history=history,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def _warnings(
    design: EscalationDesign,
    levels: dict[int, _Level],
    walk: _Walk,
    history: Sequence[Step],
    signed: Sequence[SignedDecision],
    terminal: _Terminal,
) -> list[str]:
    warnings: list[str] = []
    in_history = {_key(s.decision, s.dose_level) for s in history}
    reported: set[tuple[Decision, int]] = set()
    for s in signed:
        key = _key(s.decision, s.dose_level)
        if key in in_history or key in reported:
            continue
        reported.add(key)
        why = _why_no_longer(s, levels, walk.blocker, design.top_level)
        warnings.append(
            f"a past decision no longer holds: {why}, so "
            f"{describe_decision(s.decision, s.dose_level)} (signed) is not what the "
            "3+3 rule gives on the current data."
        )
    if walk.blocker is not None:
        for lv in levels.values():
            if lv.level > walk.blocker and lv.enrolled:
                if _key(Decision.ESCALATE, lv.level) in reported:
                    continue
                warnings.append(
                    f"a past decision no longer holds: "
                    f"{_describe(levels, walk.blocker)}, yet "
                    f"{_plural(lv.enrolled, 'patient')} were treated at level "
                    f"{lv.level}, above where the rule now stands."
                )
    # Patients enrolled in a cohort whose opening decision was never signed.
    for step in history:
        if step.signed or step.decision in (
            Decision.MTD_DECLARED,
            Decision.STOP_NO_MTD,
        ):
            continue
        is_pending = (
            terminal.opening is not None
            and _key(step.decision, step.dose_level) == _key(terminal.opening.decision, terminal.opening.dose_level)
            and terminal.untouched
        )
        if is_pending:
            continue
        warnings.append(
            f"protocol deviation: patients were enrolled at level {step.dose_level} "
            f"although {describe_decision(step.decision, step.dose_level)} was never "
            "signed (section 6)."
        )
    return warnings
