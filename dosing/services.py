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
from dosing import bsa, predose, reduction, schedule
from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
from dosing.params import bsa_params, predose_params, schedule_params
from patients.models import Patient, PatientEvent
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

    for event in patient.events.all():
        if event.kind in STOPPING_EVENTS and event.date <= day1:
            ev.error(
                "day1",
                f"No dosing after {event.get_kind_display().lower()} on {event.date.isoformat()}: "
                "dosing is closed for this patient.",
            )
            return ev

    # Schedule: number, order, protocol maximum, timing (dosing.schedule).
    versions = [(v.version, v.max_cycles) for v in trial.protocol_versions.all()]
    params = schedule_params(trial, versions)
    existing = sorted(patient.cycles.all(), key=lambda c: c.number)
    past = [schedule.PastCycle(c.number, c.day1) for c in existing if c.day1 is not None]
    nxt = schedule.next_cycle(transplant.date, 0, past, params)
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
    for problem in schedule.validate_cycles([*past, schedule.PastCycle(number, day1)], consents, params):
        if problem.field.startswith(f"cycles[{len(past)}]."):
            ev.error(problem.field.rsplit(".", 1)[1], problem.message)
    if ev.errors:
        return ev
    ev.timing = schedule.cycle_timing(day1, nxt)
    if given and ev.timing.status == "too_early":
        ev.error("day1", ev.timing.message)
        return ev

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

    # Pre-dose safety check (dosing.predose) on the stored labs plus the ones entered now.
    panels = [predose.LabValues(p.date, p.platelets, p.anc) for p in patient.lab_panels.all()]
    if data.get("lab_date"):
        panels.append(predose.LabValues(data["lab_date"], _dec(data.get("platelets")), _dec(data.get("anc"))))
        if data["lab_date"] > day1:
            ev.error("lab_date", "Labs drawn after day 1 cannot clear the dose; enter the pre-dose labs.")
    status = predose.GvhdSosStatus(data.get("acute_gvhd_grade"), data.get("liver_gvhd"), data.get("sos"))
    ev.check = predose.predose_check(panels, status, day1, predose_params(trial))

    if not given:
        if not (data.get("not_given_reason") or "").strip():
            ev.error("not_given_reason", "Give the reason the dose was not given.")
        return ev

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
        [reduction.CycleReduction(c.number, c.reduced, c.reduction_reason, c.full_dose_restored) for c in existing]
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
        return ev
    measured = bsa.check_measurements(height, weight, bsa_params(trial))
    for message in measured.height_cm:
        ev.error("height_cm", message)
    for message in measured.weight_kg:
        ev.error("weight_kg", message)
    if not measured.ok:
        return ev
    ev.calculation = bsa.cycle_dose(
        patient.dose_level.dose_mg_m2, height, weight, reduced=ev.reduced, params=bsa_params(trial)
    )
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
    return ev


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
            given = data.get("given", True)
            calc = ev.calculation
            cycle = Cycle(
                patient=locked,
                number=ev.number,
                due_date=ev.next_cycle.due,
                day1=data["day1"],
                dose_level=locked.dose_level,
                height_cm=_dec(data.get("height_cm")),
                weight_kg=_dec(data.get("weight_kg")),
                bsa_m2=calc.bsa_m2 if calc else None,
                dose_mg_m2=locked.dose_level.dose_mg_m2 if given else None,
                dose_mg=(_dec(data.get("dose_mg")) or calc.dose_mg) if (given and calc) else None,
                reduced=ev.reduced if given else False,
                reduction_reason=ev.reduction_reason if given and ev.reduced else "",
                delay_days=max(ev.timing.delay_days, 0),
                delay_reason=(data.get("delay_reason") or "").strip(),
                given=given,
                not_given_reason="" if given else (data.get("not_given_reason") or "").strip(),
                safety_check=ev.safety_rows,
                deviation=ev.deviation,
                acute_gvhd_grade=data.get("acute_gvhd_grade"),
                liver_gvhd=data.get("liver_gvhd"),
                sos=data.get("sos"),
                lab_panel=panel,
            )
            record_create(cycle, user=user)
            computation_request(locked.trial_id, TrialComputation.Kind.ESCALATION)
            computation_request(locked.trial_id, TrialComputation.Kind.SURVIVAL)
    except IntegrityError as exc:  # a concurrent entry of the same cycle number
        raise ValidationError({"number": ["This cycle was recorded meanwhile; reload the page."]}) from exc
    return cycle


def lab_panel_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> LabPanel:
    """Labs drawn outside a dosing visit."""
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    if not data.get("date"):
        raise ValidationError({"date": ["Enter the date the labs were drawn."]})
    panel = LabPanel(patient=patient, date=data["date"], **{f: data.get(f) for f in LAB_FIELDS})
    with transaction.atomic():
        record_create(panel, user=user)
    return panel


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
