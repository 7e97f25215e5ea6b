"""Automatic data queries: rules that cannot block entry, checked by a periodic sweep.

Pure module: no Django import. Each rule reads plain values and returns ``Finding``s
(rule code, field, question); the sweep (``cleaning.services``) raises an automatic
query for each new finding and closes the automatic queries whose finding is gone
(the data were fixed). ``reconcile`` is that decision, so it is tested here too.

The rules, and why none of them refuses the entry:
- ``lab_plausibility:<analyte>``: a lab value outside the plausible range. Such a value
  is possible to type but almost surely a slip; refusing it would stop a coordinator
  who has the real (extreme) value in front of them, so it is asked instead.
- ``assessment_overdue:<key>``: an expected assessment of the visit calendar
  (PROTOCOL 7, ``dosing.schedule.visit_calendar``) whose window has closed without it:
  the calendar's status "overdue", i.e. overdue by more than its window (due date +
  the window's days after). Nothing can be refused: it is data that is missing.
- ``ae_ongoing_at_eot``: an AE with no resolution date whose onset is on or before the
  end of treatment, once the end of treatment is recorded (PROTOCOL 3 and 4: every AE
  has a resolution date or is ongoing). The site fixes it with the resolution date,
  or confirms it ongoing with the outcome "not recovered" (or "fatal", whose end is
  the death record): both are data, so the query closes itself.

Not swept: ``ae_lab_regrade`` (``cleaning.services.lab_panel_regrade``) is raised by a lab
panel correction on each AE confirmed from that panel whose grade the corrected values no
longer meet (``safety.lab_grading.regrade_mismatches``), and closed when the AE is corrected
or the panel agrees again. The AE itself is never changed by the correction.

A query closed by a person (the value was confirmed at source) is not raised again for
the same record unless the record is edited afterwards (``reconcile``'s ``confirmed``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from dosing.schedule import PlannedAssessment
from patients.lab_plausibility import PLAUSIBLE_RANGES, PlausibleRange

Number = Decimal | int | float | str

LAB_PLAUSIBILITY = "lab_plausibility"
ASSESSMENT_OVERDUE = "assessment_overdue"
AE_LAB_REGRADE = "ae_lab_regrade"  # raised and closed by lab panel corrections, not by the sweep
AE_ONGOING_AT_EOT = "ae_ongoing_at_eot"
RULE_FAMILIES = (LAB_PLAUSIBILITY, ASSESSMENT_OVERDUE, AE_ONGOING_AT_EOT)


@dataclass(frozen=True, slots=True)
class Finding:
    """What an automatic query asks. ``rule_code`` is unique per record among the
    record's non-closed queries; ``field_name`` is "" for the whole record."""

    rule_code: str
    field_name: str
    question: str


def rule_family(rule_code: str) -> str:
    """The family of a rule code: "lab_plausibility:platelets" -> "lab_plausibility"."""
    return rule_code.split(":", 1)[0]


# --- lab values outside the plausible range ----------------------------------------


# The ranges are shared with the refusal on entry (patients.lab_plausibility): one table,
# two uses. Values the entry refuses (unit slips of counts and haemoglobin) never reach
# the sweep through a service; the sweep still asks about them in older data and about
# the extreme-but-possible values (bilirubin, transaminases) the entry lets through.


def _decimal(value: Number) -> Decimal | None:
    """Decimal through the shortest repr (as safety.lab_grading); None if not a number."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def lab_plausibility(
    values: Mapping[str, Number | None],
    ranges: Mapping[str, PlausibleRange] = PLAUSIBLE_RANGES,
) -> tuple[Finding, ...]:
    """One finding per analyte whose value is outside its plausible range (bounds
    included in the range); analytes without a value or without a range are skipped."""
    findings: list[Finding] = []
    for analyte, raw in values.items():
        bounds = ranges.get(analyte)
        if raw is None or bounds is None:
            continue
        value = _decimal(raw)
        if value is None:
            continue
        if bounds.low <= value <= bounds.high:
            continue
        findings.append(
            Finding(
                f"{LAB_PLAUSIBILITY}:{analyte}",
                analyte,
                f"{bounds.label} {value.normalize():f} {bounds.unit} is outside the plausible range "
                f"{bounds.low:f}-{bounds.high:f} {bounds.unit} ({bounds.why}). "
                "Please check the source and correct the value, or confirm it.",
            )
        )
    return tuple(findings)


# --- assessments overdue by more than their window ----------------------------------


def overdue_assessments(calendar: Iterable[PlannedAssessment], today: date) -> tuple[Finding, ...]:
    """One finding per calendar entry whose window closed without the assessment
    (status "overdue": ``today`` is after due date + window)."""
    findings: list[Finding] = []
    for planned in calendar:
        if planned.status != "overdue":
            continue
        late = (today - planned.window_end).days
        findings.append(
            Finding(
                f"{ASSESSMENT_OVERDUE}:{planned.key}",
                "",
                f"{planned.label} was due on {planned.due.isoformat()} (window "
                f"{planned.window_start.isoformat()} to {planned.window_end.isoformat()}) and is not "
                f"recorded; the window closed {late} day{'s' if late != 1 else ''} ago. "
                "Please enter the assessment, or say why it was not done.",
            )
        )
    return tuple(findings)


# --- AE ongoing at the end of treatment --------------------------------------------

# Outcomes that say the AE is still present (or ended with the death record) at EOT.
ONGOING_CONFIRMED_OUTCOMES = frozenset({"not_recovered", "fatal"})


@dataclass(frozen=True, slots=True)
class AeStatus:
    description: str  # term and grade, e.g. "Nausea G2"
    onset: date
    resolved: date | None
    outcome: str  # AdverseEvent.Outcome value, "" when not recorded


def ae_ongoing_at_eot(ae: AeStatus, end_of_treatment: date | None) -> Finding | None:
    """A finding when the AE began on or before the recorded end of treatment, has no
    resolution date and no outcome that confirms it is ongoing."""
    if end_of_treatment is None or ae.resolved is not None or ae.onset > end_of_treatment:
        return None
    if ae.outcome in ONGOING_CONFIRMED_OUTCOMES:
        return None
    return Finding(
        AE_ONGOING_AT_EOT,
        "resolved",
        f"The AE {ae.description} (onset {ae.onset.isoformat()}) has no resolution date and treatment "
        f"ended on {end_of_treatment.isoformat()}. Please enter the resolution date, or record the "
        "outcome 'Not recovered/not resolved' if it is ongoing.",
    )


# --- the sweep's decision ----------------------------------------------------------

_CLOSE_TEXTS = {
    LAB_PLAUSIBILITY: "Closed automatically: the value is now within the plausible range.",
    ASSESSMENT_OVERDUE: "Closed automatically: the assessment is recorded in its window, or no longer expected.",
    AE_ONGOING_AT_EOT: "Closed automatically: the AE has a resolution date, or its outcome confirms it ongoing.",
    AE_LAB_REGRADE: "Closed automatically: the AE's grade and its lab panel's values agree again.",
}


def auto_close_text(rule_code: str) -> str:
    """The thread's last message when the sweep closes a rule's query: the data were fixed."""
    return _CLOSE_TEXTS.get(rule_family(rule_code), "Closed automatically: the rule no longer finds a problem.")


@dataclass(frozen=True, slots=True)
class SweepPlan:
    to_raise: tuple[tuple[Hashable, Finding], ...]  # (record key, finding), in input order
    to_close: tuple[int, ...]  # ids of automatic queries whose finding is gone


def reconcile(
    findings: Sequence[tuple[Hashable, Finding]],
    unclosed: Mapping[tuple[Hashable, str], int],
    confirmed: Iterable[tuple[Hashable, str]] = (),
    families: Iterable[str] = RULE_FAMILIES,
) -> SweepPlan:
    """What one sweep does, given this sweep's findings per record key, the automatic
    queries not yet closed ((record key, rule code) -> query id) and the (record key,
    rule code) pairs a person closed after the record's last edit (confirmed at
    source: not asked again).

    A finding with an unclosed query is left alone (idempotent); an unclosed query of
    a rule family this sweep evaluated and without its finding any more is closed. A
    query of another family (a rule this sweep does not know) is never touched.
    """
    swept = set(families)
    found = {(key, f.rule_code) for key, f in findings}
    done = set(confirmed)
    to_raise: list[tuple[Hashable, Finding]] = []
    seen: set[tuple[Hashable, str]] = set()
    for key, finding in findings:
        pair = (key, finding.rule_code)
        if pair in unclosed or pair in done or pair in seen:
            continue
        seen.add(pair)
        to_raise.append((key, finding))
    to_close = sorted(
        query_id for pair, query_id in unclosed.items() if pair not in found and rule_family(pair[1]) in swept
    )
    return SweepPlan(tuple(to_raise), tuple(to_close))


# --- the pre-lock checklist (issue 19) -------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    key: str  # "open_queries" | "unverified_records" | "investigator_review"
    label: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class LockChecklist:
    """What a data manager sees before locking a casebook; locking with any item not ok
    needs an acknowledged override with a reason (cleaning.services.casebook_lock_checked)."""

    items: tuple[ChecklistItem, ...]

    @property
    def clear(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def problems(self) -> tuple[ChecklistItem, ...]:
        return tuple(item for item in self.items if not item.ok)

    def summary(self) -> str:
        """ "2 open queries; 19 of 21 records not source verified", or "" when clear."""
        return "; ".join(item.detail for item in self.problems)


def lock_checklist(*, open_queries: int, records: int, verified: int, review_signed: bool) -> LockChecklist:
    """The pre-lock checklist from counts: no open or answered (unclosed) query, every
    record source verified at its current version, and an investigator's valid
    "reviewed" signature on the casebook."""
    unverified = max(records - verified, 0)
    return LockChecklist(
        (
            ChecklistItem(
                "open_queries",
                "No unclosed data queries",
                open_queries == 0,
                "no unclosed query"
                if open_queries == 0
                else f"{open_queries} unclosed quer{'y' if open_queries == 1 else 'ies'}",
            ),
            ChecklistItem(
                "unverified_records",
                "Every record source verified at its current version",
                unverified == 0,
                f"all {records} records source verified"
                if unverified == 0
                else f"{unverified} of {records} record{'' if records == 1 else 's'} not source verified",
            ),
            ChecklistItem(
                "investigator_review",
                "Casebook signed as reviewed by an investigator",
                review_signed,
                "signed as reviewed" if review_signed else "no valid investigator review signature",
            ),
        )
    )
