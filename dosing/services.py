"""Writes for dosing: a cycle (labs, safety check, dose, administration), deviations,
the return to full dose. Each checks access, validates with the pure rules, writes
audited inside one transaction and asks for the escalation and survival recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from core.audit import record_create, record_update
from core.errors import EditConflict, ReasonRequired
from core.locks import ensure_writable
from dosing import bsa, predose, reduction, schedule
from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
from dosing.params import bsa_params, predose_params, schedule_params, trial_schedule_params
from patients.clinical_dates import not_before
from patients.lab_plausibility import entry_problems
from patients.models import Patient, PatientEvent
from patients.services import clinical_date_problems
from trial import access
from trial.models import TrialComputation
from trial.services import computation_request

LAB_FIELDS = ("platelets", "anc", "hemoglobin", "bilirubin", "alt", "ast")
# PROTOCOL 3: nothing is dosed after these.
STOPPING_EVENTS = (
    PatientEvent.Kind.END_OF_TREATMENT,
    PatientEvent.Kind.RELAPSE,
    PatientEvent.Kind.DEATH,
    PatientEvent.Kind.WITHDRAWAL,
)
# The administered dose may differ from the computed one by rounding at the pharmacy,
# not by more: a larger difference is a wrong dose or a wrong computation.
ADMINISTERED_TOLERANCE = Decimal("0.05")


# --- the evaluation shared by the screen's "check" and the record ---------------------


@dataclass
class CycleEvaluation:
    """Everything the coordinator's screen shows before saving, and what is saved."""

    number: int | None = None
    next_cycle: schedule.NextCycle | None = None
    timing: schedule.CycleTiming | None = None
    check: predose.PredoseCheck | None = None
    carried: reduction.ReductionInForce = reduction.NO_REDUCTION
    reduced: bool = False
    reduction_reason: str = ""
    calculation: bsa.DoseCalculation | None = None
    dose_text: str = ""
    bsa_text: str = ""
    deviation: Deviation | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    # A correction only: what else the corrected day 1 changes (the next cycle's due date
    # and delay, the DLT window), shown before saving and written with the correction.
    followers: list[tuple[Cycle, dict[str, Any]]] = field(default_factory=list)
    effects: list[str] = field(default_factory=list)

    def error(self, name: str, message: str) -> None:
        """``name`` is a field of the cycle form, or "__all__" for the whole entry."""
        self.errors.setdefault(name, []).append(message)

    @property
    def safety_rows(self) -> list[dict[str, str]]:
        if self.check is None:
            return []
        return [{"key": c.key, "label": c.label, "status": c.status, "detail": c.detail} for c in self.check.conditions]


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def lab_value_problems(data: dict[str, Any]) -> dict[str, list[str]]:
    """Field -> messages for lab values no patient has (a count per uL typed where
    x10^9/L is asked, g/dL for g/L): the one plausibility rule (patients.lab_plausibility)
    for the pre-dose labs of a cycle and for a lab panel alike."""
    errors: dict[str, list[str]] = {}
    for name in LAB_FIELDS:
        if data.get(name) in (None, ""):
            continue  # not measured
        for message in entry_problems(name, data.get(name)):
            errors.setdefault(name, []).append(message)
    return errors


def _day1_date_problems(ev: CycleEvaluation, patient: Patient, day1: date, hct: date) -> bool:
    """The clinical-date rule for day 1, and its order: on or after the HCT (the C1D1
    window after HCT is the schedule's, dosing.schedule). True when day 1 was refused."""
    problems = (
        *clinical_date_problems(patient, "day-1 date", day1),
        *not_before("day-1 date", day1, "HCT date (day 0)", hct),
    )
    for message in problems:
        ev.error("day1", message)
    return bool(problems)


def cycle_evaluate(patient: Patient, data: dict[str, Any]) -> CycleEvaluation:
    """Run every dosing rule on a proposed cycle; nothing is written.

    ``data``: day1, number (optional: the next one), given, not_given_reason, height_cm,
    weight_kg, lab_date and the LAB_FIELDS, acute_gvhd_grade, liver_gvhd, sos, reduced,
    reduction_reason, delay_reason, dose_mg (administered; optional).
    """
    ev = CycleEvaluation()
    trial = patient.trial
    day1: date | None = data.get("day1")
    given = data.get("given", True)
    # The checks that need no schedule come first, so that a missing day 1 or transplant
    # is reported together with them (every problem in one round, issue 19).
    # A lab value no patient has (platelets 50000 typed in cells/uL) is refused, and never
    # clears the pre-dose check ("platelets > 50"): it is missing to the check.
    implausible = lab_value_problems(data)
    for name, messages in implausible.items():
        for message in messages:
            ev.error(name, message)
    if data.get("lab_date"):
        for message in clinical_date_problems(patient, "lab date", data["lab_date"]):
            ev.error("lab_date", message)
    if day1 is None:
        ev.error("day1", "Enter the day-1 date (the date of the dose, or of the visit when not given).")
        return ev

    transplant = getattr(patient, "transplant", None)
    if transplant is None:
        ev.error("day1", "Record the patient's transplant (HCT date) before any cycle.")
        return ev
    if patient.dose_level_id is None:
        ev.error("day1", "The patient is not enrolled at a dose level: enrol before dosing.")
        return ev
    if _day1_date_problems(ev, patient, day1, transplant.date):
        return ev

    if _stopping_event_error(ev, patient, day1):
        return ev

    # Schedule: number, order, protocol maximum, timing (dosing.schedule).
    versions = [(v.version, v.max_cycles) for v in trial.protocol_versions.all()]
    params = schedule_params(trial, versions)
    existing = sorted(patient.cycles.all(), key=lambda c: c.number)
    past = [schedule.PastCycle(c.number, c.day1) for c in existing if c.day1 is not None]
    # C1 is never due before enrolment (dosing.schedule.next_cycle).
    nxt = schedule.next_cycle(transplant.date, 0, past, params, enrolled_on=patient.enrolled_on)
    ev.next_cycle = nxt
    number = data.get("number") or nxt.number
    ev.number = number
    if any(c.number == number for c in existing):
        ev.error("number", f"Cycle {number} is already recorded for {patient.subject_id}.")
        return ev
    if number != nxt.number:
        ev.error("number", f"The next cycle is cycle {nxt.number}, not {number}.")
        return ev
    consents = [schedule.Consent(c.protocol_version.version, c.date) for c in patient.consents.all()]
    scheduling = [
        problem
        for problem in schedule.validate_cycles([*past, schedule.PastCycle(number, day1)], consents, params)
        if problem.field.startswith(f"cycles[{len(past)}].")
    ]
    for problem in scheduling:
        ev.error(problem.field.rsplit(".", 1)[1], problem.message)
    if scheduling:
        return ev
    ev.timing = schedule.cycle_timing(day1, nxt)
    if given and ev.timing.status == "too_early":
        ev.error("day1", ev.timing.message)
        return ev

    panels = [predose.LabValues(p.date, p.platelets, p.anc) for p in patient.lab_panels.all()]
    if data.get("lab_date"):
        usable = {name: None if name in implausible else _dec(data.get(name)) for name in ("platelets", "anc")}
        panels.append(predose.LabValues(data["lab_date"], usable["platelets"], usable["anc"]))
        if data["lab_date"] > day1:
            ev.error("lab_date", "Labs drawn after day 1 cannot clear the dose; enter the pre-dose labs.")
    _visit_rules(ev, patient, data, panels, existing, patient.dose_level.dose_mg_m2)
    return ev


def _stopping_event_error(ev: CycleEvaluation, patient: Patient, day1: date) -> bool:
    """PROTOCOL 3: nothing is dosed after EOT, relapse, death or withdrawal."""
    for event in patient.events.all():
        if event.kind in STOPPING_EVENTS and event.date <= day1:
            ev.error(
                "day1",
                f"No dosing after {event.get_kind_display().lower()} on {event.date.isoformat()}: "
                "dosing is closed for this patient.",
            )
            return True
    return False


def _visit_rules(
    ev: CycleEvaluation,
    patient: Patient,
    data: dict[str, Any],
    panels: list[predose.LabValues],
    earlier: list[Cycle],
    dose_mg_m2: Decimal,
) -> None:
    """The rules after the schedule, shared by first entry and correction: delay and
    deviation, pre-dose safety check on ``panels`` (the labs on file and any entered
    now), the reduction carried from the ``earlier`` cycles, BSA and dose."""
    assert ev.number is not None and ev.timing is not None  # noqa: S101
    trial, number, day1 = patient.trial, ev.number, data["day1"]
    given = data.get("given", True)
    deviations = [d for d in patient.deviations.all() if d.cycle_number == number]

    def deviation_of(kind: str) -> Deviation | None:
        return next((d for d in deviations if d.kind == kind), None)

    # A dose not given is not late: delay rules apply to doses only.
    if given and ev.timing.status == "within_allowance" and not (data.get("delay_reason") or "").strip():
        ev.error("delay_reason", f"{ev.timing.message}.")
    if given and ev.timing.status == "deviation":
        ev.deviation = deviation_of(Deviation.Kind.DELAY)
        if ev.deviation is None:
            ev.error(
                "day1",
                f"Refused, {ev.timing.message} (more than {trial.max_delay_days} days late). "
                f"An investigator must first record a protocol deviation (delay) for cycle {number}.",
            )
        elif not (data.get("delay_reason") or "").strip():
            ev.error("delay_reason", "Give the reason for the delay.")

    # Pre-dose safety check (dosing.predose).
    status = predose.GvhdSosStatus(data.get("acute_gvhd_grade"), data.get("liver_gvhd"), data.get("sos"))
    ev.check = predose.predose_check(panels, status, day1, predose_params(trial))

    if not given:
        if not (data.get("not_given_reason") or "").strip():
            ev.error("not_given_reason", "Give the reason the dose was not given.")
        return

    if not ev.check.passed:
        safety_deviation = deviation_of(Deviation.Kind.SAFETY_CHECK)
        if safety_deviation is None:
            failed = "; ".join(f"{c.label}: {c.status} ({c.detail})" for c in ev.check.problems)
            ev.error(
                "__all__",
                f"The pre-dose safety check did not pass ({failed}). Dosing is refused unless an "
                f"investigator records a protocol deviation (safety check) for cycle {number}.",
            )
        else:
            ev.deviation = ev.deviation or safety_deviation

    # Reduction (dosing.reduction): an earlier reduction carries over.
    ev.carried = reduction.reduction_in_force(
        [reduction.CycleReduction(c.number, c.reduced, c.reduction_reason, c.full_dose_restored) for c in earlier]
    )
    ev.reduced = bool(data.get("reduced")) or ev.carried.reduced
    ev.reduction_reason = data.get("reduction_reason") or (ev.carried.reason if ev.carried.reduced else "")
    if ev.reduced and ev.reduction_reason not in Cycle.ReductionReason.values:
        ev.error("reduction_reason", "A reduced dose needs its reason: cytopenia or unresolved symptoms.")

    # Dose (dosing.bsa), with the unit hints for implausible measurements.
    height, weight = _dec(data.get("height_cm")), _dec(data.get("weight_kg"))
    if height is None:
        ev.error("height_cm", "Enter the height in cm measured at the cycle's start.")
    if weight is None:
        ev.error("weight_kg", "Enter the weight in kg measured at the cycle's start.")
    if height is None or weight is None:
        return
    measured = bsa.check_measurements(height, weight, bsa_params(trial))
    for message in measured.height_cm:
        ev.error("height_cm", message)
    for message in measured.weight_kg:
        ev.error("weight_kg", message)
    if not measured.ok:
        return
    ev.calculation = bsa.cycle_dose(dose_mg_m2, height, weight, reduced=ev.reduced, params=bsa_params(trial))
    ev.dose_text = bsa.dose_arithmetic_text(ev.calculation)
    ev.bsa_text = bsa.bsa_arithmetic_text(ev.calculation)
    administered = _dec(data.get("dose_mg"))
    computed = ev.calculation.dose_mg
    if administered is not None and abs(administered - computed) > computed * ADMINISTERED_TOLERANCE:
        ev.error(
            "dose_mg",
            f"The administered dose {administered} mg differs from the computed dose {computed} mg "
            f"by more than {ADMINISTERED_TOLERANCE * 100:.0f}%: check the dose ({ev.dose_text}).",
        )


def _stored_values(ev: CycleEvaluation, data: dict[str, Any], dose_mg_m2: Decimal) -> dict[str, Any]:
    """What a cycle stores after its rules passed: the entered values and what the rules
    computed from them (the same for first entry and correction)."""
    assert ev.next_cycle is not None and ev.timing is not None  # noqa: S101
    given = data.get("given", True)
    calc = ev.calculation
    return {
        "due_date": ev.next_cycle.due,
        "day1": data["day1"],
        "height_cm": _dec(data.get("height_cm")),
        "weight_kg": _dec(data.get("weight_kg")),
        "bsa_m2": calc.bsa_m2 if calc else None,
        "dose_mg_m2": dose_mg_m2 if given else None,
        "dose_mg": (_dec(data.get("dose_mg")) or calc.dose_mg) if (given and calc) else None,
        "reduced": ev.reduced if given else False,
        "reduction_reason": ev.reduction_reason if given and ev.reduced else "",
        "delay_days": max(ev.timing.delay_days, 0),
        "delay_reason": (data.get("delay_reason") or "").strip(),
        "given": given,
        "not_given_reason": "" if given else (data.get("not_given_reason") or "").strip(),
        "safety_check": ev.safety_rows,
        "deviation": ev.deviation,
        "acute_gvhd_grade": data.get("acute_gvhd_grade"),
        "liver_gvhd": data.get("liver_gvhd"),
        "sos": data.get("sos"),
    }


def _patient_for_update(patient: Patient) -> Patient:
    # Locks the patient so two cycles cannot take the same number at once; reads the
    # related rows the rules need in a fixed number of queries.
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    return (
        Patient.objects.select_related("trial", "site", "dose_level", "transplant")
        .prefetch_related("events", "cycles", "consents__protocol_version", "lab_panels", "deviations")
        .prefetch_related("trial__protocol_versions")
        .get(pk=patient.pk)
    )


def cycle_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> Cycle:
    """Record one cycle: labs, GVHD/SOS status, safety check, dose and administration.

    Refused whole (ValidationError naming the fields) when any rule fails.
    """
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    try:
        with transaction.atomic():
            locked = _patient_for_update(patient)
            ev = cycle_evaluate(locked, data)
            if ev.errors:
                raise ValidationError(ev.errors)
            assert ev.next_cycle is not None and ev.timing is not None and ev.number is not None  # noqa: S101
            panel = None
            if data.get("lab_date"):
                panel = LabPanel(patient=locked, date=data["lab_date"], **{f: data.get(f) for f in LAB_FIELDS})
                record_create(panel, user=user)
            cycle = Cycle(
                patient=locked,
                number=ev.number,
                dose_level=locked.dose_level,
                lab_panel=panel,
                **_stored_values(ev, data, locked.dose_level.dose_mg_m2),
            )
            record_create(cycle, user=user)
            computation_request(locked.trial_id, TrialComputation.Kind.ESCALATION)
            computation_request(locked.trial_id, TrialComputation.Kind.SURVIVAL)
    except IntegrityError as exc:  # a concurrent entry of the same cycle number
        raise ValidationError({"number": ["This cycle was recorded meanwhile; reload the page."]}) from exc
    return cycle


# --- correction after first entry (issue 12: a query on a cycle's day 1) ---------------

# What a coordinator may correct on a recorded cycle, and why only these: they are what
# the site entered (the visit date, the measurements, the dose given, the administration,
# the GVHD/SOS status at the visit). Everything else is computed from them and written
# again by the same rules (due date, delay days, BSA, dose per m², the safety check, the
# deviation that allowed the dose), or is not the coordinator's: the cycle number (the
# order of the cycles), the dose level (the patient's enrolment), the return to full dose
# (an investigator's, cycle_full_dose_restore), the labs (their own panel record).
CYCLE_CORRECTABLE_FIELDS = (
    "day1",
    "given",
    "not_given_reason",
    "height_cm",
    "weight_kg",
    "dose_mg",
    "reduced",
    "reduction_reason",
    "delay_reason",
    "acute_gvhd_grade",
    "liver_gvhd",
    "sos",
)
_NOT_CORRECTABLE = {
    "number": "The cycle number is the order of the cycles and cannot be corrected.",
    "due_date": "The due date follows from the previous cycle's day 1; correct that instead.",
    "dose_level": "The dose level is the patient's enrolment level and cannot be corrected on a cycle.",
    "full_dose_restored": "A return to full dose is documented by an investigator (Document return to full dose).",
    "lab_panel": "Labs are corrected on their own lab panel.",
}


def _past(cycles: list[Cycle]) -> list[schedule.PastCycle]:
    return [schedule.PastCycle(c.number, c.day1) for c in sorted(cycles, key=lambda c: c.number) if c.day1]


def _differs(cycle: Cycle, name: str, value: Any) -> bool:
    if name == "deviation":  # by id: the deviation rows are prefetched on the patient
        return cycle.deviation_id != (value.pk if value is not None else None)
    return bool(getattr(cycle, name) != value)


def _dlt_window(day1s: list[date], params: schedule.ScheduleParams) -> schedule.DltWindow | None:
    return schedule.dlt_window([schedule.PastCycle(n, d) for n, d in enumerate(sorted(day1s), start=1)], params)


def _window_text(window: schedule.DltWindow | None) -> str:
    if window is None:
        return "none"
    provisional = "" if window.closed_by_next_cycle else ", provisional"
    return f"{window.start.isoformat()} to {window.end.isoformat()} ({window.end_rule}{provisional})"


def cycle_correction_evaluate(patient: Patient, cycle: Cycle, data: dict[str, Any]) -> CycleEvaluation:
    """Run the first-entry rules again on ``cycle`` with ``data`` (its current values with
    the corrections), against the patient's other cycles; nothing is written.

    ``patient`` comes with the prefetches of ``_patient_for_update`` /
    ``selectors.patient_for_dosing``; ``data`` has every CYCLE_CORRECTABLE_FIELDS key.
    A moved day 1 also moves the next cycle's due date: its timing is checked under the
    same rules (a late dose needs its reason, a deviation an investigator's record) and
    its due date and delay are written with the correction (``ev.followers``).
    """
    ev = CycleEvaluation(number=cycle.number)
    trial = patient.trial
    day1: date | None = data.get("day1")
    if day1 is None:
        ev.error("day1", "A cycle's day-1 date cannot be removed: enter the corrected date.")
        return ev
    transplant = getattr(patient, "transplant", None)
    if transplant is None or patient.dose_level_id is None:
        ev.error("day1", "The patient has no transplant or dose level on file: the cycle cannot be re-checked.")
        return ev
    if _day1_date_problems(ev, patient, day1, transplant.date):
        return ev
    if _stopping_event_error(ev, patient, day1):
        return ev

    params = trial_schedule_params(trial)
    others = [c for c in patient.cycles.all() if c.pk != cycle.pk]
    earlier = sorted((c for c in others if c.number < cycle.number), key=lambda c: c.number)
    nxt = schedule.next_cycle(transplant.date, 0, _past(earlier), params, enrolled_on=patient.enrolled_on)
    ev.next_cycle = nxt

    # The order, the consent and the protocol maximum of every cycle (dosing.schedule),
    # with the corrected day 1 in place of the old one. Only problems the correction
    # makes count: an old problem elsewhere must not block correcting this cycle.
    consents = [schedule.Consent(c.protocol_version.version, c.date) for c in patient.consents.all()]
    before = _past([*others, cycle])
    after = sorted([*_past(others), schedule.PastCycle(cycle.number, day1)], key=lambda c: c.number)
    known = set(schedule.validate_cycles(before, consents, params))
    own = f"cycles[{next(i for i, c in enumerate(after) if c.number == cycle.number)}]."
    for problem in schedule.validate_cycles(after, consents, params):
        if problem in known or problem.field.startswith("consents["):
            continue
        message = problem.message if problem.field.startswith(own) else f"with this date, {problem.message}"
        ev.error("day1", message[0].upper() + message[1:] + ".")
    if ev.errors:
        return ev

    ev.timing = schedule.cycle_timing(day1, nxt)
    given = data.get("given", True)
    if given and ev.timing.status == "too_early":
        ev.error("day1", ev.timing.message[0].upper() + ev.timing.message[1:] + ".")
        return ev

    # The labs on file; the ones entered with this visit must still be pre-dose labs.
    panels = [predose.LabValues(p.date, p.platelets, p.anc) for p in patient.lab_panels.all()]
    own_panel = next((p for p in patient.lab_panels.all() if p.pk == cycle.lab_panel_id), None)
    if own_panel is not None and own_panel.date > day1:
        ev.error(
            "day1",
            f"The labs entered with this cycle were drawn on {own_panel.date.isoformat()}, after the corrected "
            "day 1: labs drawn after day 1 cannot clear the dose.",
        )
    _visit_rules(ev, patient, data, panels, earlier, cycle.dose_level.dose_mg_m2)

    # A reduction carries over to the later cycles (dosing.reduction): a correction that
    # changed the reduction in force for a later cycle would make that cycle's dose wrong.
    later = sorted((c for c in others if c.number > cycle.number), key=lambda c: c.number)
    if later and not ev.errors:
        reduced_now = ev.reduced if given else False
        reason_now = ev.reduction_reason if given and ev.reduced else ""

        def in_force(upto: int, reduced: bool, reason: str) -> reduction.ReductionInForce:
            rows = [
                reduction.CycleReduction(c.number, c.reduced, c.reduction_reason, c.full_dose_restored)
                for c in [*earlier, *later]
                if c.number < upto
            ]
            rows.append(reduction.CycleReduction(cycle.number, reduced, reason, cycle.full_dose_restored))
            return reduction.reduction_in_force(rows)

        for c in later:
            if in_force(c.number, cycle.reduced, cycle.reduction_reason) != in_force(c.number, reduced_now, reason_now):
                ev.error(
                    "reduced",
                    f"Cycle {c.number} was dosed with the reduction in force after this cycle; this change would "
                    f"make cycle {c.number}'s dose wrong. Correct the later cycles first, from the latest.",
                )
                break

    if day1 != cycle.day1 or bool(given) != cycle.given:
        _follower_effects(ev, patient, cycle, day1, bool(given), earlier, later, transplant.date, params)
    return ev


def _follower_effects(
    ev: CycleEvaluation,
    patient: Patient,
    cycle: Cycle,
    day1: date,
    given: bool,
    earlier: list[Cycle],
    later: list[Cycle],
    hct_date: date,
    params: schedule.ScheduleParams,
) -> None:
    """The next cycle is due one cycle length after this day 1 (PROTOCOL 3): its due date,
    delay and delay deviation follow; and the DLT window may move (PROTOCOL 5)."""
    follower = later[0] if later and later[0].number == cycle.number + 1 else None
    if follower is not None and follower.day1 is not None and day1 != cycle.day1:
        nxt = schedule.next_cycle(hct_date, 0, [*_past(earlier), schedule.PastCycle(cycle.number, day1)], params)
        timing = schedule.cycle_timing(follower.day1, nxt)
        what = f"cycle {follower.number} (day 1 {follower.day1.isoformat()}) would be {timing.message}"
        reason_first = f"With this date, {what}: first correct cycle {follower.number} with its delay reason."
        deviation = next((d for d in patient.deviations.all() if d.pk == follower.deviation_id), None)
        if follower.given and timing.status == "too_early":
            ev.error("day1", f"With this date, {what}.")
        elif follower.given and timing.status == "deviation":
            deviation = next(
                (
                    d
                    for d in patient.deviations.all()
                    if d.cycle_number == follower.number and d.kind == Deviation.Kind.DELAY
                ),
                None,
            )
            if deviation is None:
                ev.error(
                    "day1",
                    f"With this date, {what}. An investigator must first record a protocol deviation (delay) "
                    f"for cycle {follower.number}.",
                )
            elif not follower.delay_reason.strip():
                ev.error("day1", reason_first)
        elif follower.given and timing.status == "within_allowance" and not follower.delay_reason.strip():
            ev.error("day1", reason_first)
        elif deviation is not None and deviation.kind == Deviation.Kind.DELAY:
            deviation = None  # no longer late beyond the allowance: the delay deviation no longer applies
        changes = {"due_date": nxt.due, "delay_days": max(timing.delay_days, 0), "deviation": deviation}
        changes = {k: v for k, v in changes.items() if _differs(follower, k, v)}
        if changes:
            ev.followers.append((follower, changes))
            ev.effects.append(
                f"Cycle {follower.number} becomes due on {nxt.due.isoformat()} "
                f"(delay {max(timing.delay_days, 0)} days); it is corrected with this cycle."
            )
    # The window runs over the doses given, counted in order (as safety.dlt reads it).
    others_given = [c.day1 for c in [*earlier, *later] if c.given and c.day1]
    old = _dlt_window(others_given + ([cycle.day1] if cycle.given and cycle.day1 else []), params)
    new = _dlt_window(others_given + ([day1] if given else []), params)
    if old != new:
        ev.effects.append(
            f"The DLT window moves from {_window_text(old)} to {_window_text(new)}: the escalation is "
            "recomputed; review this patient's DLT adjudications."
        )


def _refuse(errors: dict[str, list[str]]) -> None:
    """Every problem of a correction together; a missing reason alone stays ReasonRequired."""
    if set(errors) == {"reason_for_change"}:
        raise ReasonRequired()
    if errors:
        raise ValidationError(errors)


def cycle_update(
    *,
    user: Any,
    cycle: Cycle,
    changes: dict[str, Any],
    reason: str | None,
    expected_version: int | None = None,
) -> Cycle:
    """Correct a recorded cycle (e.g. its day-1 date, answering a query): the first-entry
    rules run again on the corrected values and the stored results are recomputed; the
    next cycle's due date and delay follow a moved day 1. Needs a reason; a stale
    ``expected_version`` is refused (EditConflict, API 409). All or nothing."""
    patient = cycle.patient
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    ensure_writable(cycle)  # a frozen or locked casebook says so before anything else
    unknown = set(changes) - set(CYCLE_CORRECTABLE_FIELDS)
    # Every problem in one answer (issue 19): unknown fields, the reason and the rules.
    problems = {name: [_NOT_CORRECTABLE.get(name, "This field cannot be corrected here.")] for name in sorted(unknown)}
    if not (reason or "").strip():
        problems.update(ReasonRequired().message_dict)
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = _patient_for_update(patient)
        current = next((c for c in locked.cycles.all() if c.pk == cycle.pk), None)
        if current is None:
            raise ValidationError({"__all__": ["This cycle no longer exists."]})
        if expected_version is not None and current.version != expected_version:
            raise EditConflict(current.version, expected_version)
        known = {name: value for name, value in changes.items() if name not in unknown}
        data = {name: getattr(current, name) for name in CYCLE_CORRECTABLE_FIELDS} | known
        ev = cycle_correction_evaluate(locked, current, data)
        for name, messages in ev.errors.items():
            problems.setdefault(name, []).extend(messages)
        _refuse(problems)
        values = _stored_values(ev, data, current.dose_level.dose_mg_m2)
        diff = {k: v for k, v in values.items() if _differs(current, k, v)}
        if not diff:
            raise ValidationError({"__all__": ["Nothing to correct: these are the values on file."]})
        updated = record_update(current, diff, user=user, reason=reason, expected_version=expected_version)
        for follower, follower_changes in ev.followers:
            record_update(
                follower,
                follower_changes,
                user=user,
                reason=f"{reason} (follows from the correction of cycle {current.number} day 1)",
            )
        computation_request(locked.trial_id, TrialComputation.Kind.ESCALATION)
        computation_request(locked.trial_id, TrialComputation.Kind.SURVIVAL)
    return updated  # type: ignore[return-value]


def lab_panel_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> LabPanel:
    """Labs drawn outside a dosing visit."""
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    errors = lab_panel_problems(patient, data)
    if errors:
        raise ValidationError(errors)
    panel = LabPanel(patient=patient, date=data["date"], **{f: data.get(f) for f in LAB_FIELDS})
    with transaction.atomic():
        record_create(panel, user=user)
        # Low counts can make a DLT candidate (cytopenia lasting > 28 days, from
        # consecutive labs): the patient's DLT status feeds the escalation engine, and
        # an escalation request also marks the dashboard lists stale.
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return panel


def lab_panel_problems(patient: Patient, values: dict[str, Any], panel: LabPanel | None = None) -> dict[str, list[str]]:
    """The checks of a lab panel's values, shared by first entry (lab_panel_record) and
    correction (lab_panel_update), so a rule added here holds on both paths. ``panel``
    is the panel being corrected (None at first entry)."""
    errors: dict[str, list[str]] = {}
    if not values.get("date"):
        errors["date"] = ["Enter the date the labs were drawn."]
    else:
        drawn = list(clinical_date_problems(patient, "lab date", values["date"]))
        if drawn:
            errors["date"] = drawn
    for name in LAB_FIELDS:
        value = _dec(values.get(name)) if values.get(name) not in (None, "") else None
        if values.get(name) not in (None, "") and value is None:
            errors[name] = [f"{LabPanel._meta.get_field(name).verbose_name}: not a number."]
    # The one plausibility rule (negative values and unit slips), as for a cycle's labs.
    for name, messages in lab_value_problems(values).items():
        errors.setdefault(name, messages)
    return errors


# What a lab panel correction may change: the draw date and the values (SI units).
LAB_PANEL_CORRECTABLE_FIELDS = ("date", *LAB_FIELDS)


def _visit_cycle_of(panel: LabPanel) -> Cycle | None:
    """The cycle whose visit entered ``panel`` (its pre-dose labs), if any."""
    return Cycle.objects.select_related("patient__trial").filter(lab_panel=panel).first()


def lab_panel_update(
    *,
    user: Any,
    panel: LabPanel,
    changes: dict[str, Any],
    reason: str | None,
    expected_version: int | None = None,
) -> LabPanel:
    """Correct a lab panel (visit or unscheduled), e.g. answering a query: the first-entry
    checks run on the corrected values; a visit panel must still be drawn on or before its
    cycle's day 1 (labs after day 1 cannot clear the dose), and the cycle's stored
    pre-dose safety check is re-computed from the corrected labs (audited on the cycle).
    Lab AE proposals are graded from the panel when shown, so they follow the new values; an
    AE confirmed from the panel whose grade the new values no longer meet gets an automatic
    query on its grade (cleaning.services.lab_panel_regrade), closed when they agree again.
    Needs a reason; a stale ``expected_version`` is refused (EditConflict, API 409)."""
    patient = panel.patient
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    ensure_writable(panel)
    unknown = set(changes) - set(LAB_PANEL_CORRECTABLE_FIELDS)
    # Every problem in one answer (issue 19): unknown fields, the reason and the values.
    errors: dict[str, list[str]] = {name: ["This field cannot be corrected on a lab panel."] for name in unknown}
    if not (reason or "").strip():
        errors.update(ReasonRequired().message_dict)
    reason = (reason or "").strip()
    with transaction.atomic():
        current = LabPanel.objects.select_for_update().select_related("patient__trial").get(pk=panel.pk)
        if expected_version is not None and current.version != expected_version:
            raise EditConflict(current.version, expected_version)
        known = {name: value for name, value in changes.items() if name not in unknown}
        values = {name: getattr(current, name) for name in LAB_PANEL_CORRECTABLE_FIELDS} | known
        for name, messages in lab_panel_problems(current.patient, values, panel=current).items():
            errors.setdefault(name, []).extend(messages)
        cycle = _visit_cycle_of(current)
        if cycle is not None and cycle.day1 is not None and values.get("date") and values["date"] > cycle.day1:
            errors.setdefault("date", []).append(
                f"These are the pre-dose labs of cycle {cycle.number} (day 1 {cycle.day1.isoformat()}): "
                "labs drawn after day 1 cannot clear the dose."
            )
        _refuse(errors)
        diff = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not diff:
            raise ValidationError({"__all__": ["Nothing to correct: these are the values on file."]})
        before = {name: getattr(current, name) for name in diff}
        updated = record_update(current, diff, user=user, reason=reason, expected_version=expected_version)
        if cycle is not None and cycle.day1 is not None:
            _recheck_visit_cycle(cycle, user=user, reason=reason)
        # The AEs confirmed from this panel's proposals are re-graded (issue 19 item 2): one
        # whose grade the corrected values no longer meet gets an automatic query, never an
        # edit. Imported here: cleaning sits above dosing (pyproject.toml's one exception).
        from cleaning.services import lab_panel_regrade

        lab_panel_regrade(panel=updated, before=before)  # type: ignore[arg-type]
        # As at first entry: counts feed the DLT candidates (cytopenia) -> escalation.
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return updated  # type: ignore[return-value]


def _recheck_visit_cycle(cycle: Cycle, *, user: Any, reason: str) -> None:
    """The stored pre-dose safety check of ``cycle`` as the corrected labs give it."""
    patient = cycle.patient
    panels = [predose.LabValues(p.date, p.platelets, p.anc) for p in LabPanel.objects.filter(patient=patient)]
    status = predose.GvhdSosStatus(cycle.acute_gvhd_grade, cycle.liver_gvhd, cycle.sos)
    check = predose.predose_check(panels, status, cycle.day1, predose_params(patient.trial))  # type: ignore[arg-type]
    rows = [{"key": c.key, "label": c.label, "status": c.status, "detail": c.detail} for c in check.conditions]
    if rows != cycle.safety_check:
        record_update(
            cycle,
            {"safety_check": rows},
            user=user,
            reason=f"{reason} (pre-dose safety check re-computed after the correction of its labs)",
        )


def deviation_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> Deviation:
    """An investigator records a protocol deviation (PROTOCOL 3), which then allows the
    late dose or the dose with a failed safety check of ``cycle_number``."""
    if not access.can(user, "adjudicate", patient.trial_id):
        raise PermissionDenied("Only an investigator records protocol deviations.")
    errors: dict[str, list[str]] = {}
    if not (data.get("reason") or "").strip():
        errors["reason"] = ["Give the reason for the deviation."]
    kind = data.get("kind")
    if kind in (Deviation.Kind.DELAY, Deviation.Kind.SAFETY_CHECK) and not data.get("cycle_number"):
        errors["cycle_number"] = ["Name the cycle this deviation allows."]
    dated = list(clinical_date_problems(patient, "deviation date", data.get("date")))
    if dated:
        errors["date"] = dated
    if errors:
        raise ValidationError(errors)
    deviation = Deviation(
        patient=patient,
        kind=kind,
        date=data.get("date"),
        reason=data["reason"].strip(),
        cycle_number=data.get("cycle_number"),
    )
    with transaction.atomic():
        record_create(deviation, user=user)
    return deviation


def cycle_full_dose_restore(*, user: Any, cycle: Cycle, reason: str, expected_version: int | None = None) -> Cycle:
    """An investigator documents a return to full dose after ``cycle`` (PROTOCOL 3)."""
    if not access.can(user, "adjudicate", cycle.patient.trial_id):
        raise PermissionDenied("Only an investigator documents a return to full dose.")
    if not (reason or "").strip():
        raise ValidationError({"reason_for_change": ["Give the reason for the return to full dose."]})
    cycles = list(Cycle.objects.filter(patient_id=cycle.patient_id).order_by("number"))
    if cycles[-1].pk != cycle.pk:
        raise ValidationError(
            {"__all__": [f"Document the return to full dose on the latest cycle (C{cycles[-1].number})."]}
        )
    in_force = reduction.reduction_in_force(
        [reduction.CycleReduction(c.number, c.reduced, c.reduction_reason, c.full_dose_restored) for c in cycles]
    )
    if not in_force.reduced:
        raise ValidationError({"__all__": [f"No dose reduction is in force after cycle {cycle.number}."]})
    with transaction.atomic():
        cycle = record_update(  # type: ignore[assignment]
            cycle, {"full_dose_restored": True}, user=user, reason=reason, expected_version=expected_version
        )
        computation_request(cycle.patient.trial_id, TrialComputation.Kind.ESCALATION)
        computation_request(cycle.patient.trial_id, TrialComputation.Kind.SURVIVAL)
    return cycle


# --- concomitant medications (PROTOCOL 3: TKI for Ph+ ALL) -----------------------------

TKI_AGENTS = ("imatinib", "dasatinib", "nilotinib", "ponatinib")


def _medication_problems(patient: Patient, values: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    agent, start, stop = values.get("agent"), values.get("start"), values.get("stop")
    if agent == ConcomitantMedication.Agent.OTHER and not (values.get("other_agent") or "").strip():
        errors["other_agent"] = ["Name the agent when it is not in the list."]
    if agent in TKI_AGENTS and patient.ph_positive is False:
        errors["agent"] = ["A concomitant TKI is allowed for Ph+ ALL only; this patient is recorded as Ph negative."]
    if start and stop and stop < start:
        errors["stop"] = [f"The stop date must be on or after the start date ({start.isoformat()})."]
    for name, label in (("start", "start date"), ("stop", "stop date")):
        for message in clinical_date_problems(patient, label, values.get(name)):
            errors.setdefault(name, []).append(message)
    return errors


def medication_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> ConcomitantMedication:
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    errors = _medication_problems(patient, data)
    if errors:
        raise ValidationError(errors)
    fields = ("agent", "other_agent", "start", "stop")
    medication = ConcomitantMedication(patient=patient, **{f: data.get(f) for f in fields if f in data})
    with transaction.atomic():
        record_create(medication, user=user)
    return medication


def medication_update(
    *,
    user: Any,
    medication: ConcomitantMedication,
    changes: dict[str, Any],
    reason: str | None,
    expected_version: int | None = None,
) -> ConcomitantMedication:
    """Correct or stop a medication after first entry: needs a reason; stale versions refused."""
    patient = medication.patient
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    values = {f: getattr(medication, f) for f in ("agent", "other_agent", "start", "stop")} | changes
    errors = _medication_problems(patient, values)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        return record_update(  # type: ignore[return-value]
            medication, changes, user=user, reason=reason, expected_version=expected_version
        )
