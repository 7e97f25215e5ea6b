"""Writes for patients: registration, transplant, consent, screening, enrolment,
assessments and outcome events. Each checks scope, validates with the pure rules,
writes audited inside one transaction and asks for the trial-level recomputations
the change affects. Nothing is written when anything is refused."""

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import record_create, record_update
from core.errors import Problems
from core.models import Signature
from core.recorded_times import future_time_problems
from core.signatures import password_reentry_check, signature_apply, signature_link
from patients import selectors, subject_ids
from patients.clinical_dates import DateBounds, birth_year_problems, date_problems, not_before
from patients.eligibility import (
    EligibilityParams,
    ScreeningFacts,
    anc_problems,
    assess_eligibility,
    platelets_problems,
    screening_validity,
)
from patients.models import Assessment, CasebookLock, Consent, Patient, PatientEvent, Screening, Transplant
from patients.outcome_dates import PatientOutcome, outcome_date_problems
from trial import access
from trial.models import DoseLevel, ProtocolVersion, Trial, TrialComputation, TrialLock
from trial.selectors import escalation_backfill_slots, escalation_open_slots
from trial.services import computation_ensure, computation_request

Errors = dict[str, list[str]]

DISEASE_FIELDS = (
    "diagnosis",
    "cd22_positive",
    "ph_positive",
    "cytogenetic_risk",
    "prior_lines",
    "prior_asparaginase",
    "prior_blinatumomab",
    "prior_inotuzumab",
    "prior_car_t",
    "prior_hct",
    "hct_ci",
)
EDITABLE_FIELDS = ("sex", "race", "birth_year", *DISEASE_FIELDS)
TRANSPLANT_FIELDS = (
    "date",
    "disease_status",
    "conditioning",
    "regimen",
    "atg",
    "donor_type",
    "graft_source",
    "gvhd_prophylaxis",
    "mrd_before",
    "mrd_after",
    "cr_at_day30",
)
SCREENING_FIELDS = ("date", "lab_date", "platelets_10e9_l", "anc_10e9_l", "agvhd_grade", "liver_gvhd", "sos_history")
ASSESSMENT_FIELDS = ("kind", "date", "method", "result", "level", "blasts_pct", "response", "extramedullary")
EVENT_FIELDS = ("kind", "date", "cause", "reason", "blasts_pct", "relapse_site", "details")

# Which trial-level results an outcome event changes (PROTOCOL s6, s8): every event
# moves survival; a death or an end of treatment also moves DLT evaluability.
EVENT_COMPUTATIONS = {
    PatientEvent.Kind.DEATH: (TrialComputation.Kind.SURVIVAL, TrialComputation.Kind.ESCALATION),
    PatientEvent.Kind.END_OF_TREATMENT: (TrialComputation.Kind.SURVIVAL, TrialComputation.Kind.ESCALATION),
}


def _today(trial: Trial) -> date:
    """Today where the trial runs (Trial.time_zone, else the server's TIME_ZONE)."""
    return trial.local_today()


def _raise(*parts: Errors) -> None:
    """Raise every problem of every part together (core.errors.Problems), or nothing."""
    problems = Problems()
    for part in parts:
        problems.extend(part)
    problems.raise_if_any()


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def date_bounds(patient: Patient) -> DateBounds:
    """What every clinical date of ``patient`` is checked against (patients.clinical_dates)."""
    trial = patient.trial
    return DateBounds(today=trial.local_today(), birth_year=patient.birth_year, zone=trial.zone_name)


def clinical_date_problems(patient: Patient, label: str, value: date | None) -> tuple[str, ...]:
    """The one rule for a clinical date of ``patient`` (not in the future, not before the
    birth year), for every service of every app (dosing, safety call it too)."""
    return date_problems(label, value, date_bounds(patient))


def _check_date(errors: Errors, patient: Patient, field: str, label: str, value: date | None) -> None:
    for message in clinical_date_problems(patient, label, value):
        _add(errors, field, message)


def _unknown_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> Errors:
    """A field the service does not take, as problems reported with the others."""
    return {field: ["This field cannot be set here."] for field in sorted(set(data) - set(allowed))}


def _require_data_entry(user: Any, patient: Patient) -> None:
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")


def _transplant_of(patient: Patient) -> Transplant | None:
    return Transplant.objects.filter(patient=patient).first()


def eligibility_params(trial: Trial) -> EligibilityParams:
    """The trial's own thresholds (PROTOCOL s2 *(param)*): never hard-coded."""
    return EligibilityParams(
        min_age=trial.age_min,
        max_age=trial.age_max,
        enrolment_day_min=trial.enrol_day_min,
        enrolment_day_max=trial.enrol_day_max,
        platelets_above=float(trial.min_platelets),
        anc_above=float(trial.min_anc),
        lab_max_age_days=trial.screening_lab_days,
    )


# --- registration -------------------------------------------------------------------


def patient_register_check(*, user: Any, trial: Trial, data: dict[str, Any]) -> None:
    """Every registration rule at once (site, subject ID shape and uniqueness, birth
    year): one ValidationError with all the problems, nothing written. Also run by the
    form and the API on the fields that passed their own checks (core.forms.form_submit),
    so a submission shows its type errors and its rule errors together."""
    if not access.can(user, "enter_data", trial):
        raise PermissionDenied("You do not enter data in this trial.")
    problems = Problems()
    site = data.get("site")
    if site is None or not access.sites_for(user, trial).filter(pk=site.pk).exists():
        problems.add("site", "You can register patients only at your own site(s).")
    subject_id = subject_ids.normalise(str(data.get("subject_id") or ""))
    shape = subject_ids.shape_problems(subject_id)
    for message in shape:
        problems.add("subject_id", message)
    if not shape:
        with problems.collect():
            _subject_id_taken(trial, subject_id)
    birth_year = data.get("birth_year")
    if birth_year is not None and birth_year > _today(trial).year:
        problems.add("birth_year", f"The birth year {birth_year} is in the future.")
    problems.raise_if_any()


def patient_register(*, user: Any, trial: Trial, data: dict[str, Any]) -> Patient:
    """Register a patient at a site where ``user`` enters data. Nothing is written on error;
    every problem is reported at once."""
    patient_register_check(user=user, trial=trial, data=data)
    patient = Patient(trial=trial, **{k: v for k, v in data.items() if k in {"site", "subject_id", *EDITABLE_FIELDS}})
    patient.subject_id = subject_ids.normalise(str(patient.subject_id or ""))
    try:
        with transaction.atomic():
            # Registrations of one trial queue on the trial row, so two look-alike IDs
            # (UHC-901, UHC-0901) cannot both pass the check at the same moment.
            Trial.objects.select_for_update().filter(pk=trial.pk).first()
            _subject_id_taken(trial, patient.subject_id)
            record_create(patient, user=user)
            computation_request(trial.pk, TrialComputation.Kind.ENROLMENT)
    except IntegrityError as exc:  # a concurrent registration of the same ID
        raise ValidationError({"subject_id": ["This subject ID was registered meanwhile."]}) from exc
    return patient


def _subject_id_taken(trial: Trial, subject_id: str) -> None:
    """Refuse an ID already registered in the trial, or a look-alike of one (same site
    code and number ignoring case and leading zeros: UHC-901 and UHC-0901)."""
    site_code = subject_id.rsplit("-", 1)[0]
    same_site = Patient.objects.filter(trial=trial, subject_id__istartswith=f"{site_code}-")
    existing = list(same_site.values_list("subject_id", flat=True))
    other = subject_ids.look_alike_of(subject_id, existing)
    if other == subject_id:
        raise ValidationError({"subject_id": [f"Subject ID {subject_id} is already registered in this trial."]})
    if other is not None:
        raise ValidationError(
            {
                "subject_id": [
                    f"Subject ID {subject_id} looks like {other}, already registered in this trial (same site and "
                    "number once leading zeros are ignored): use that patient, or another number."
                ]
            }
        )


def patient_update(
    *, user: Any, patient: Patient, changes: dict[str, Any], reason: str | None, expected_version: int | None = None
) -> Patient:
    """Edit demographics and disease after first entry: needs a reason; a stale version is refused."""
    _require_data_entry(user, patient)
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    errors: Errors = {field: ["This field cannot be changed here."] for field in unknown}
    if changes.get("birth_year") is not None and changes["birth_year"] > _today(patient.trial).year:
        _add(errors, "birth_year", f"The birth year {changes['birth_year']} is in the future.")
    elif changes.get("birth_year") is not None and changes["birth_year"] != patient.birth_year:
        # The records already entered were checked against the old year: none may now
        # fall before the new one (patients.clinical_dates, the birth-year floor).
        for message in birth_year_problems(changes["birth_year"], selectors.earliest_clinical_date(patient)):
            _add(errors, "birth_year", message)
    _raise(errors)
    with transaction.atomic():
        patient = record_update(patient, changes, user=user, reason=reason, expected_version=expected_version)  # type: ignore[assignment]
        computation_request(patient.trial_id, TrialComputation.Kind.ENROLMENT)
        if patient.enrolled_on is not None:
            # Disease facts feed the survival subgroups of enrolled patients.
            computation_request(patient.trial_id, TrialComputation.Kind.SURVIVAL)
    return patient


# --- transplant ---------------------------------------------------------------------


def _transplant_problems(patient: Patient, values: dict[str, Any]) -> Errors:
    errors: Errors = {}
    hct = values.get("date")
    _check_date(errors, patient, "date", "HCT date", hct)
    if hct is not None:
        first_screening = Screening.objects.filter(patient=patient).order_by("date").first()
        if first_screening is not None and first_screening.date < hct:
            _add(errors, "date", f"The HCT date {hct} is after the screening of {first_screening.date}.")
        if patient.enrolled_on is not None and patient.enrolled_on < hct:
            _add(errors, "date", f"The HCT date {hct} is after enrolment on {patient.enrolled_on}.")
        early = PatientEvent.objects.filter(patient=patient, date__lt=hct).order_by("date").first()
        if early is not None:
            _add(errors, "date", f"The HCT date {hct} is after the {early.get_kind_display().lower()} of {early.date}.")
    return errors


def transplant_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> Transplant:
    """First entry of the allo-HCT (day 0 = stem cell infusion)."""
    _require_data_entry(user, patient)
    if _transplant_of(patient) is not None:
        raise ValidationError({"date": ["The transplant is already recorded; edit it with a reason for change."]})
    _raise(_unknown_fields(data, TRANSPLANT_FIELDS), _transplant_problems(patient, data))
    transplant = Transplant(patient=patient, **data)
    try:
        with transaction.atomic():
            record_create(transplant, user=user)
            computation_request(patient.trial_id, TrialComputation.Kind.SURVIVAL)
    except IntegrityError as exc:
        raise ValidationError({"date": ["The transplant was recorded meanwhile; reload the page."]}) from exc
    return transplant


def transplant_update(
    *, user: Any, transplant: Transplant, changes: dict[str, Any], reason: str | None, expected_version: int | None
) -> Transplant:
    patient = transplant.patient
    _require_data_entry(user, patient)
    _raise(
        _unknown_fields(changes, TRANSPLANT_FIELDS),
        _transplant_problems(patient, {"date": changes.get("date", transplant.date)}),
    )
    with transaction.atomic():
        transplant = record_update(transplant, changes, user=user, reason=reason, expected_version=expected_version)  # type: ignore[assignment]
        computation_request(patient.trial_id, TrialComputation.Kind.SURVIVAL)
        if patient.enrolled_on is not None:
            computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return transplant


# --- consent ------------------------------------------------------------------------


def current_protocol_version(trial_id: int, on: date) -> ProtocolVersion | None:
    """The version in effect on ``on``: the latest one effective on or before it."""
    return ProtocolVersion.objects.filter(trial_id=trial_id, effective__lte=on).order_by("-effective", "-pk").first()


def consent_record(
    *,
    user: Any,
    patient: Patient,
    protocol_version: ProtocolVersion,
    on: date,
    version_override_reason: str = "",
) -> Consent:
    """Consent, or re-consent to a later protocol version (PROTOCOL s1): the patient is
    bound to the version last consented to.

    The version must be the one in effect on the consent date: a consent to a superseded
    version would bind the patient to rules no longer in force (v1's 4 cycles years after
    v2). Only an investigator may record it anyway, with the reason
    (``version_override_reason``), which is stored with the consent and in its history.
    """
    override = (version_override_reason or "").strip()
    if override:
        if not access.can(user, "sign", patient.trial_id):
            raise PermissionDenied("Only an investigator may record consent to a version other than the current one.")
    else:
        _require_data_entry(user, patient)
    errors: Errors = {}
    _check_date(errors, patient, "date", "consent date", on)
    if protocol_version.trial_id != patient.trial_id:
        _add(errors, "protocol_version", "This protocol version belongs to another trial.")
    elif on is not None and on < protocol_version.effective:
        _add(
            errors,
            "date",
            f"Version {protocol_version.version} takes effect on {protocol_version.effective}; "
            f"a consent on {on} cannot be to it.",
        )
    if protocol_version.trial_id == patient.trial_id and on is not None and on >= protocol_version.effective:
        current = current_protocol_version(patient.trial_id, on)
        if current is not None and current.pk != protocol_version.pk and not override:
            _add(
                errors,
                "protocol_version",
                f"Version {protocol_version.version} was superseded by version {current.version} on "
                f"{current.effective}: a consent on {on} is to version {current.version}. Only an investigator "
                "may record consent to another version, giving the reason (version_override_reason).",
            )
        elif current is not None and current.pk == protocol_version.pk and override:
            _add(
                errors,
                "version_override_reason",
                f"Version {protocol_version.version} is the current one on {on}: no override reason is needed.",
            )
    latest = Consent.objects.filter(patient=patient).select_related("protocol_version").order_by("date", "id").last()
    if latest is not None and protocol_version.trial_id == patient.trial_id:
        if latest.protocol_version_id == protocol_version.pk:
            _add(errors, "protocol_version", f"Consent to version {protocol_version.version} is already recorded.")
        elif protocol_version.effective <= latest.protocol_version.effective:
            _add(
                errors,
                "protocol_version",
                f"Re-consent must be to a later version than {latest.protocol_version.version}.",
            )
        if on is not None and on < latest.date:
            _add(errors, "date", f"A re-consent cannot be dated before the previous consent ({latest.date}).")
    _raise(errors)
    consent = Consent(patient=patient, protocol_version=protocol_version, date=on, version_override_reason=override)
    try:
        with transaction.atomic():
            record_create(
                consent,
                user=user,
                reason=f"consent to superseded version {protocol_version.version}: {override}" if override else "",
            )
            if patient.enrolled_on is not None:
                # The bound version sets the maximum number of cycles (PROTOCOL s1, s3).
                computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    except IntegrityError as exc:
        raise ValidationError({"protocol_version": ["This consent was recorded meanwhile."]}) from exc
    return consent


# --- screening ----------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def screening_facts(
    patient: Patient, transplant: Transplant | None, consent: Consent | None, values: dict[str, Any]
) -> ScreeningFacts:
    """What the rule sees: the patient, transplant, first consent and the screening values.
    Eligibility is judged for the screening date; enrolment re-checks the dates."""
    return ScreeningFacts(
        birth_year=patient.birth_year,
        consent_date=consent.date if consent is not None else None,
        diagnosis=patient.diagnosis or None,
        cd22_positive=patient.cd22_positive,
        cr_at_day30=transplant.cr_at_day30 if transplant else None,
        mrd_before=transplant.mrd_before if transplant else None,
        mrd_after=transplant.mrd_after if transplant else None,
        disease_status=transplant.disease_status if transplant else None,
        conditioning=transplant.conditioning if transplant else None,
        hct_date=transplant.date if transplant else None,
        enrolment_date=values.get("date"),
        lab_date=values.get("lab_date"),
        platelets_10e9_l=_as_float(values.get("platelets_10e9_l")),
        anc_10e9_l=_as_float(values.get("anc_10e9_l")),
        agvhd_grade=values.get("agvhd_grade"),
        liver_gvhd=values.get("liver_gvhd"),
        sos_history=values.get("sos_history"),
    )


def _screening_problems(patient: Patient, transplant: Transplant | None, values: dict[str, Any]) -> Errors:
    errors: Errors = {}
    params = eligibility_params(patient.trial)
    on, lab_date = values.get("date"), values.get("lab_date")
    if on is None:
        _add(errors, "date", "The screening date is required.")
    _check_date(errors, patient, "date", "screening date", on)
    _check_date(errors, patient, "lab_date", "lab date", lab_date)
    if transplant is not None:
        if on is not None and on < transplant.date:
            _add(errors, "date", f"The screening date {on} is before the HCT date {transplant.date}.")
        if lab_date is not None and lab_date < transplant.date:
            _add(errors, "lab_date", f"The lab date {lab_date} is before the HCT date {transplant.date}.")
    if on is not None and lab_date is not None and lab_date > on:
        _add(errors, "lab_date", f"The labs ({lab_date}) cannot be drawn after the screening date ({on}).")
    # Unit slips (50000 typed for 50 x10^9/L) are refused here with a hint, so that an
    # implausible count never reaches the rule (which would call it missing).
    for field, check in (("platelets_10e9_l", platelets_problems), ("anc_10e9_l", anc_problems)):
        if values.get(field) is not None:
            for message in check(float(values[field]), params):
                _add(errors, field, message)
    grade = values.get("agvhd_grade")
    if grade is not None and not 0 <= grade <= 4:
        _add(errors, "agvhd_grade", "The acute GVHD grade is 0 (none) to 4.")
    return errors


def screening_check(*, user: Any, patient: Patient, data: dict[str, Any]) -> None:
    """Every screening rule at once (fields taken, not yet enrolled, dates, lab units,
    GVHD grade): one ValidationError with all the problems, nothing written. The form and
    the API also run it on the fields that passed their own checks (core.forms.form_submit)."""
    _require_data_entry(user, patient)
    errors = _unknown_fields(data, SCREENING_FIELDS)
    if patient.enrolled_on is not None:
        _add(errors, "date", f"{patient.subject_id} is already enrolled; no further screening.")
    _raise(errors, _screening_problems(patient, _transplant_of(patient), data))


def screening_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> Screening:
    """A new eligibility screening (PROTOCOL s2), stored with every criterion's result.
    A re-screening is another call: earlier screenings stay as they were. Every problem
    of the submission is reported at once."""
    screening_check(user=user, patient=patient, data=data)
    transplant = _transplant_of(patient)
    consent = Consent.objects.filter(patient=patient).order_by("date", "id").first()
    result = assess_eligibility(screening_facts(patient, transplant, consent, data), eligibility_params(patient.trial))
    screening = Screening(
        patient=patient,
        result=result.overall,
        criteria=[
            {"number": c.number, "key": c.key, "status": c.status, "reason": c.reason, "paths": list(c.paths)}
            for c in result.criteria
        ],
        **data,
    )
    with transaction.atomic():
        record_create(screening, user=user)
    return screening


# --- enrolment ----------------------------------------------------------------------


def enrolment_level(trial: Trial) -> int | None:
    """The lowest dose level with an open slot (PROTOCOL s6), or None when none is open."""
    open_slots = escalation_open_slots(trial)
    return min(open_slots) if open_slots else None


def _enrolment_problems(patient: Patient, on: date | None) -> Errors:
    """Everything enrolment requires of the patient on ``on`` (PROTOCOL s2): one place for
    the screen's enrolment and the bundle import's."""
    errors: Errors = {}
    if patient.enrolled_on is not None:
        return {"enrolled_on": [f"{patient.subject_id} was enrolled on {patient.enrolled_on}."]}
    if PatientEvent.objects.filter(patient=patient, kind__in=["death", "withdrawal"]).exists():
        return {"enrolled_on": ["A patient who died or withdrew consent cannot be enrolled."]}
    if on is None:
        return {"enrolled_on": ["The enrolment date is required."]}
    _check_date(errors, patient, "enrolled_on", "enrolment date", on)
    consent = Consent.objects.filter(patient=patient, date__lte=on).order_by("date", "id").first()
    if consent is None:
        _add(errors, "enrolled_on", "No consent is recorded on or before the enrolment date.")
    screening = Screening.objects.filter(patient=patient).order_by("date", "id").last()
    transplant = _transplant_of(patient)
    params = eligibility_params(patient.trial)
    if screening is None:
        _add(errors, "enrolled_on", "The patient has not been screened.")
    elif screening.result != Screening.Result.ELIGIBLE:
        # In words (the criteria's reasons), failed and missing apart: missing data is not a failure.
        parts = [
            f"{word}: "
            + "; ".join(str(c.get("reason") or c["key"]) for c in screening.criteria if c["status"] == status)
            for status, word in (("fail", "failed"), ("missing", "missing"))
            if any(c["status"] == status for c in screening.criteria)
        ]
        _add(
            errors,
            "enrolled_on",
            f"The latest screening ({screening.date}) is {screening.get_result_display().lower()} "
            f"({'; '.join(parts)}). Re-screen first.",
        )
    elif on < screening.date:
        _add(errors, "enrolled_on", f"The enrolment date {on} is before the screening of {screening.date}.")
    else:
        validity = screening_validity(transplant.date if transplant else None, screening.lab_date, on, params)
        if not validity.valid:
            window = f" (it was valid {validity.valid_from} to {validity.valid_until})" if validity.valid_from else ""
            _add(
                errors,
                "enrolled_on",
                f"The screening of {screening.date} is not valid on {on}{window}: "
                f"{'; '.join(validity.reasons)}. Re-screen.",
            )
        else:
            # Everything else judged at screening must still hold on the enrolment date.
            facts = screening_facts(patient, transplant, consent, screening_values(screening))
            now = assess_eligibility(dataclasses.replace(facts, enrolment_date=on), params)
            if not now.eligible:
                _add(
                    errors,
                    "enrolled_on",
                    "The patient is not eligible on this date: "
                    + "; ".join(f"{c.key}: {c.reason}" for c in now.criteria if c.status != "pass"),
                )
    return errors


def enrolment_ready(patient: Patient, on: date | None = None) -> Screening | None:
    """The screening an "Enrol" button offers: the latest one, when ``patient_enrol`` would
    accept enrolment on ``on`` (default: today in the trial's time zone), i.e. not enrolled,
    consented, the latest screening passed and still within its validity window (PROTOCOL s2).
    None otherwise. Reads only: the same checks as enrolment, from one place."""
    if patient.enrolled_on is not None:
        return None
    if _enrolment_problems(patient, on or _today(patient.trial)):
        return None
    return Screening.objects.filter(patient=patient).order_by("date", "id").last()


def patient_enrol(
    *,
    user: Any,
    patient: Patient,
    on: date,
    dose_level: DoseLevel | None = None,
    deviation_reason: str = "",
    expected_version: int | None = None,
    backfill: bool = False,
) -> Patient:
    """Enrol at the lowest dose level with an open slot.

    ``backfill``: enrol into an open backfill place instead (issue 17,
    analysis.designs.backfill): at ``dose_level`` if given, else at the highest level
    with a backfill place. A backfill place is an open slot: whoever enters data may
    use it, it is no protocol deviation, and the patient is marked ``enrolled_as_backfill``.

    Refused unless consent is recorded and the latest screening passed and is still
    valid on ``on`` (PROTOCOL s2). With no open slot, or at another level than the one
    open, only an investigator may enrol, at a chosen level and with a reason; the
    reason is stored as the protocol deviation (``Patient.enrolment_deviation``).
    """
    is_override = (dose_level is not None and not backfill) or bool(deviation_reason.strip())
    if backfill and deviation_reason.strip():
        raise ValidationError({"deviation_reason": ["A backfill place is an open slot: no deviation to give."]})
    if is_override:
        if not access.can(user, "sign", patient.trial_id):
            raise PermissionDenied("Only an investigator may enrol at a chosen dose level.")
    else:
        _require_data_entry(user, patient)
    _raise(_enrolment_problems(patient, on))
    computation_ensure(patient.trial, TrialComputation.Kind.ESCALATION)  # a new trial has its slots (issue 16)

    with transaction.atomic():
        # Lock the escalation result, then the patient, in this order: concurrent
        # enrolments queue here, so one open slot is never given twice, and a patient
        # is never enrolled twice.
        escalation = (
            TrialComputation.objects.select_for_update()
            .filter(trial_id=patient.trial_id, kind=TrialComputation.Kind.ESCALATION)
            .first()
        )
        if escalation is not None and escalation.stale:
            # An enrolment, DLT or decision changed the 3+3 state and the slots are
            # being recomputed (usually seconds): assigning from the old slots could
            # overfill a cohort.
            raise ValidationError(
                {
                    "dose_level": [
                        "The dose-escalation state is being recomputed after a recent change; try again in a moment."
                    ]
                }
            )
        if Patient.objects.select_for_update().get(pk=patient.pk).enrolled_on is not None:
            raise ValidationError({"enrolled_on": [f"{patient.subject_id} was enrolled meanwhile."]})
        open_level = enrolment_level(patient.trial)
        deviation = ""
        if backfill:
            level = _backfill_level(patient, dose_level)
        elif dose_level is None:
            if open_level is None:
                places = escalation_backfill_slots(patient.trial)
                listed = ", ".join(f"L{lv} ({n})" for lv, n in sorted(places.items()))
                backfill_text = f" Backfill places are open at {listed}." if places else ""
                raise ValidationError(
                    {
                        "dose_level": [
                            "No dose level has an open slot: enrolment waits for the escalation decision. "
                            "An investigator may enrol at a chosen level, recorded as a protocol deviation."
                            + backfill_text
                        ]
                    }
                )
            if deviation_reason.strip():
                raise ValidationError({"dose_level": ["Choose the dose level the deviation is for."]})
            level = DoseLevel.objects.get(trial_id=patient.trial_id, level=open_level)
        else:
            level = dose_level
            if level.trial_id != patient.trial_id:
                raise ValidationError({"dose_level": ["This dose level belongs to another trial."]})
            if level.level != open_level:
                if not deviation_reason.strip():
                    open_text = f"L{open_level} is the open level" if open_level else "no level is open"
                    raise ValidationError(
                        {
                            "deviation_reason": [
                                f"{open_text}: enrolling at L{level.level} is a protocol deviation; say why."
                            ]
                        }
                    )
                open_text = f"open slot at L{open_level}" if open_level else "no open slot"
                deviation = f"Enrolled at L{level.level} ({open_text}): {deviation_reason.strip()}"
        patient = record_update(  # type: ignore[assignment]
            patient,
            {
                "enrolled_on": on,
                "dose_level": level,
                "enrolment_deviation": deviation,
                "enrolled_as_backfill": backfill,
            },
            user=user,
            reason=f"enrolment at L{level.level}"
            + (" (protocol deviation)" if deviation else "")
            + (" (backfill)" if backfill else ""),
            expected_version=expected_version,
        )
        for kind in (
            TrialComputation.Kind.ENROLMENT,
            TrialComputation.Kind.ESCALATION,
            TrialComputation.Kind.SURVIVAL,
        ):
            computation_request(patient.trial_id, kind)
    return patient


def _backfill_level(patient: Patient, dose_level: DoseLevel | None) -> DoseLevel:
    """The level of a backfill enrolment (the escalation row is locked by the caller):
    the chosen one if it has an open backfill place, else the highest that has one."""
    places = escalation_backfill_slots(patient.trial)
    open_text = ", ".join(f"L{lv} ({n})" for lv, n in sorted(places.items())) or "none"
    if dose_level is not None and dose_level.trial_id != patient.trial_id:
        raise ValidationError({"dose_level": ["This dose level belongs to another trial."]})
    if not places:
        raise ValidationError(
            {"dose_level": ["No backfill place is open (backfill: only cleared levels below the current one)."]}
        )
    if dose_level is None:
        return DoseLevel.objects.get(trial_id=patient.trial_id, level=max(places))
    if dose_level.level not in places:
        raise ValidationError(
            {"dose_level": [f"L{dose_level.level} has no open backfill place (open backfill places: {open_text})."]}
        )
    return dose_level


def patient_enrol_import(
    *,
    user: Any,
    patient: Patient,
    on: date | None,
    dose_level: DoseLevel | None,
    deviation: str = "",
    backfill: bool = False,
) -> Patient:
    """Enrolment carried in by a trial bundle (docs/api.md "The trial bundle").

    The same eligibility checks as ``patient_enrol``; the dose level is the historic one
    the bundle records, not the slot open today (the importer decides, with the 3+3
    engine, whether the level had been opened, and passes the deviation text when not).
    Only a user who may sign (investigator) enrols at a chosen level.
    """
    if not access.can(user, "sign", patient.trial_id):
        raise PermissionDenied("Only an investigator may enrol at a chosen dose level.")
    errors = _enrolment_problems(patient, on)
    if dose_level is None:
        _add(errors, "dose_level", "The dose level is required.")
    elif dose_level.trial_id != patient.trial_id:
        _add(errors, "dose_level", "This dose level belongs to another trial.")
    _raise(errors)
    assert dose_level is not None  # noqa: S101 (checked above)
    with transaction.atomic():
        patient = record_update(  # type: ignore[assignment]
            patient,
            {
                "enrolled_on": on,
                "dose_level": dose_level,
                "enrolment_deviation": deviation.strip(),
                "enrolled_as_backfill": backfill,
            },
            user=user,
            reason=f"enrolment at L{dose_level.level} (trial bundle import)"
            + (" (protocol deviation)" if deviation.strip() else "")
            + (" (backfill)" if backfill else ""),
        )
        for kind in (
            TrialComputation.Kind.ENROLMENT,
            TrialComputation.Kind.ESCALATION,
            TrialComputation.Kind.SURVIVAL,
        ):
            computation_request(patient.trial_id, kind)
    return patient


def screening_values(screening: Screening) -> dict[str, Any]:
    return {field: getattr(screening, field) for field in SCREENING_FIELDS}


# --- assessments --------------------------------------------------------------------


def _assessment_problems(patient: Patient, values: dict[str, Any]) -> Errors:
    errors: Errors = {}
    kind = values.get("kind")
    _check_date(errors, patient, "date", "assessment date", values.get("date"))
    if values.get("date") is None:
        _add(errors, "date", "The assessment date is required.")
    if kind == Assessment.Kind.MRD:
        if not values.get("method"):
            _add(errors, "method", "An MRD assessment needs its method (flow, PCR or NGS).")
        if not values.get("result"):
            _add(errors, "result", "An MRD assessment needs its result.")
        level = values.get("level")
        if level is not None and not Decimal(0) <= Decimal(level) <= Decimal(1):
            _add(errors, "level", "The MRD level is a fraction between 0 and 1 (e.g. 0.0001 for 10^-4).")
        for field in ("blasts_pct", "response"):
            if values.get(field) not in (None, ""):
                _add(errors, field, "This belongs to a bone-marrow assessment, not to MRD.")
    elif kind == Assessment.Kind.BONE_MARROW:
        blasts = values.get("blasts_pct")
        if blasts is None:
            _add(errors, "blasts_pct", "A bone-marrow assessment needs the marrow blast percentage.")
        elif not Decimal(0) <= Decimal(blasts) <= Decimal(100):
            _add(errors, "blasts_pct", "Marrow blasts are a percentage from 0 to 100.")
        if not values.get("response"):
            _add(errors, "response", "A bone-marrow assessment needs the response (CR, CRi or relapse).")
        if values.get("level") is not None:
            _add(errors, "level", "The MRD level belongs to an MRD assessment.")
    else:
        _add(errors, "kind", "Choose MRD or bone-marrow assessment.")
    return errors


def assessment_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> Assessment:
    """An MRD or bone-marrow disease assessment (PROTOCOL s7)."""
    _require_data_entry(user, patient)
    errors = _assessment_problems(patient, data)
    transplant = _transplant_of(patient)
    if transplant is not None and data.get("date") is not None and data["date"] < transplant.date:
        _add(errors, "date", f"The assessment date {data['date']} is before the HCT date {transplant.date}.")
    _raise(_unknown_fields(data, ASSESSMENT_FIELDS), errors)
    assessment = Assessment(patient=patient, **data)
    with transaction.atomic():
        record_create(assessment, user=user)
        # The dashboard's overdue-assessment list (no other trial-level result reads assessments).
        computation_request(patient.trial_id, TrialComputation.Kind.DASHBOARD)
    return assessment


def assessment_update(
    *, user: Any, assessment: Assessment, changes: dict[str, Any], reason: str | None, expected_version: int | None
) -> Assessment:
    patient = assessment.patient
    _require_data_entry(user, patient)
    merged = {**{f: getattr(assessment, f) for f in ASSESSMENT_FIELDS}, **changes}
    _raise(_unknown_fields(changes, ASSESSMENT_FIELDS), _assessment_problems(patient, merged))
    with transaction.atomic():
        updated = record_update(assessment, changes, user=user, reason=reason, expected_version=expected_version)
        computation_request(patient.trial_id, TrialComputation.Kind.DASHBOARD)
        return updated  # type: ignore[return-value]


# --- outcome events -----------------------------------------------------------------


def _event_problems(patient: Patient, values: dict[str, Any], exclude_pk: int | None = None) -> Errors:
    errors: Errors = {}
    kind, on = values.get("kind"), values.get("date")
    if kind not in PatientEvent.Kind.values:
        _add(errors, "kind", "Choose the kind of event.")
    if on is None:
        _add(errors, "date", "The event date is required.")
    _check_date(errors, patient, "date", "event date", on)
    if kind not in PatientEvent.Kind.values or on is None:  # the rules below read both
        return errors
    if kind == PatientEvent.Kind.DEATH and not values.get("cause"):
        _add(errors, "cause", "A death needs its cause.")
    if kind != PatientEvent.Kind.DEATH and values.get("cause"):
        _add(errors, "cause", "A cause is recorded for a death only.")
    if kind == PatientEvent.Kind.END_OF_TREATMENT and not values.get("reason"):
        _add(errors, "reason", "An end of treatment needs its reason.")
    if kind != PatientEvent.Kind.END_OF_TREATMENT and values.get("reason"):
        _add(errors, "reason", "A reason is recorded for an end of treatment only.")
    blasts = values.get("blasts_pct")
    if blasts is not None:
        if kind != PatientEvent.Kind.RELAPSE:
            _add(errors, "blasts_pct", "Blasts are recorded for a relapse only.")
        elif not Decimal(0) <= Decimal(blasts) <= Decimal(100):
            _add(errors, "blasts_pct", "Blasts are a percentage from 0 to 100.")
    others = PatientEvent.objects.filter(patient=patient)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    others_list = list(others)
    once = {PatientEvent.Kind.DEATH, PatientEvent.Kind.END_OF_TREATMENT, PatientEvent.Kind.WITHDRAWAL}
    for other in others_list:
        if kind in once and other.kind == kind:
            _add(errors, "kind", f"A {other.get_kind_display().lower()} is already recorded ({other.date}).")
    transplant = _transplant_of(patient)
    if transplant is None:
        _add(errors, "date", "Record the transplant (HCT date) before outcome events.")
        return errors
    # Every outcome event follows the HCT the trial follows (PROTOCOL s8: times from day 0);
    # checked per event, as the survival rule below reads only the first and last dates.
    label = f"{PatientEvent.Kind(kind).label.lower()} date"
    for message in not_before(label, on, "HCT date (day 0)", transplant.date):
        _add(errors, "date", message)
    # The survival rule's own consistency checks (patients.outcome_dates, which analysis.endpoints
    # applies too; PROTOCOL s8).
    everything = [*[(e.kind, e.date) for e in others_list], (kind, on)]

    def first(k: str) -> date | None:
        dates = [d for kk, d in everything if kk == k]
        return min(dates) if dates else None

    def last(k: str) -> date | None:
        dates = [d for kk, d in everything if kk == k]
        return max(dates) if dates else None

    outcome = PatientOutcome(
        subject_id=patient.subject_id,
        hct_date=transplant.date,
        first_dose_date=None,
        relapse_date=first(PatientEvent.Kind.RELAPSE),
        death_date=first(PatientEvent.Kind.DEATH),
        last_known_alive=last(PatientEvent.Kind.LAST_CONTACT),
    )
    for problem in outcome_date_problems(outcome):
        _add(errors, "date", problem[0].upper() + problem[1:] + ".")
    late_kinds = (PatientEvent.Kind.END_OF_TREATMENT, PatientEvent.Kind.WITHDRAWAL)
    if outcome.death_date is not None and kind in late_kinds and on > outcome.death_date:
        _add(errors, "date", f"The date {on} is after death on {outcome.death_date}.")
    return errors


def event_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> PatientEvent:
    """Relapse, death, last known alive, end of treatment or withdrawal (PROTOCOL s3, s8)."""
    _require_data_entry(user, patient)
    _raise(_unknown_fields(data, EVENT_FIELDS), _event_problems(patient, data))
    event = PatientEvent(patient=patient, **data)
    try:
        with transaction.atomic():
            record_create(event, user=user)
            for kind in EVENT_COMPUTATIONS.get(event.kind, (TrialComputation.Kind.SURVIVAL,)):
                computation_request(patient.trial_id, kind)
    except IntegrityError as exc:  # the same once-only event recorded concurrently
        raise ValidationError({"kind": ["This event was recorded meanwhile."]}) from exc
    return event


def event_update(
    *, user: Any, event: PatientEvent, changes: dict[str, Any], reason: str | None, expected_version: int | None
) -> PatientEvent:
    patient = event.patient
    _require_data_entry(user, patient)
    merged = {**{f: getattr(event, f) for f in EVENT_FIELDS}, **changes}
    _raise(_unknown_fields(changes, EVENT_FIELDS), _event_problems(patient, merged, exclude_pk=event.pk))
    kinds = {*EVENT_COMPUTATIONS.get(event.kind, ()), *EVENT_COMPUTATIONS.get(merged["kind"], ())}
    kinds.add(TrialComputation.Kind.SURVIVAL)
    with transaction.atomic():
        event = record_update(event, changes, user=user, reason=reason, expected_version=expected_version)  # type: ignore[assignment]
        for kind in sorted(kinds):
            computation_request(patient.trial_id, kind)
    return event


# --- casebook and trial locks (issue 12) ----------------------------------------------
#
# A data manager freezes, locks and unlocks a casebook, and locks or unlocks the whole
# trial, each with an e-signature (password re-entry) on the new state of the lock row;
# every change is a version of that row in the audit history (who, when, reason). The
# guard in core.models.AuditedModel.save enforces the state on every write path.

LOCK_TRANSITIONS = {
    # (from, to): needs a reason (an unlock, or a step back from locked to frozen)
    (CasebookLock.State.OPEN, CasebookLock.State.FROZEN): False,
    (CasebookLock.State.OPEN, CasebookLock.State.LOCKED): False,
    (CasebookLock.State.FROZEN, CasebookLock.State.LOCKED): False,
    (CasebookLock.State.LOCKED, CasebookLock.State.FROZEN): True,
    (CasebookLock.State.FROZEN, CasebookLock.State.OPEN): True,
    (CasebookLock.State.LOCKED, CasebookLock.State.OPEN): True,
}


def _require_lock_right(user: Any, trial_id: int) -> None:
    if not access.can(user, "lock", trial_id):
        raise PermissionDenied("Only a data manager of this trial freezes, locks and unlocks casebooks.")


def _check_password(user: Any, password: str) -> None:
    # Counted with failed sign-ins and locked out like them (core.signatures).
    password_reentry_check(user, password, wrong="The password is not correct; nothing was changed.")


def _printed_name(user: Any) -> str:
    return str(user.get_full_name() or user.get_username())


def casebook_lock_get(patient: Patient) -> CasebookLock | None:
    return CasebookLock.objects.filter(patient=patient).first()


def _lock_row_write(lock: Any, state: str, *, user: Any, password: str, reason: str, audit_reason: str) -> Any:
    """Write a casebook or trial lock row (new or existing) in its new state, audited,
    then sign it. Call inside the caller's transaction, after its checks."""
    values = {
        "state": state,
        "changed_at": timezone.now().replace(microsecond=0),
        "changed_by": user,
        "changed_by_name": _printed_name(user),
        "reason": reason,
    }
    if lock.pk is None:
        for name, value in values.items():
            setattr(lock, name, value)
        record_create(lock, user=user, reason=audit_reason)
    else:
        lock = record_update(lock, values, user=user, reason=audit_reason)
    signature = signature_apply(lock, user=user, password=password, meaning=Signature.Meaning.LOCK)
    # The link to its signature is not signed content (core.signatures._signed).
    signature_link(lock, signature, user=user)
    return lock


def _casebook_set(*, user: Any, patient: Patient, state: str, password: str, reason: str) -> CasebookLock:
    _require_lock_right(user, patient.trial_id)
    reason = (reason or "").strip()
    with transaction.atomic():
        lock = CasebookLock.objects.select_for_update().filter(patient=patient).first()
        current = lock.state if lock is not None else CasebookLock.State.OPEN
        label = CasebookLock.State(state).label.lower()
        if current == state:
            raise ValidationError({"state": [f"Casebook {patient.subject_id} is already {label}."]})
        if TrialLock.objects.filter(trial_id=patient.trial_id, state=TrialLock.State.LOCKED).exists():
            raise ValidationError(
                {"state": [f"Trial {patient.trial.code} is locked: unlock the trial before changing a casebook."]}
            )
        if LOCK_TRANSITIONS[(current, state)] and not reason:  # type: ignore[index]
            raise ValidationError({"reason": ["A reason is required to unlock a casebook (kept in the audit trail)."]})
        _check_password(user, password)
        lock = _lock_row_write(
            lock or CasebookLock(patient=patient),
            state,
            user=user,
            password=password,
            reason=reason,
            audit_reason=reason or f"casebook {label}",
        )
    lock.refresh_from_db()
    return lock


def casebook_freeze(*, user: Any, patient: Patient, password: str, reason: str = "") -> CasebookLock:
    """Freeze: no data changes; queries can still be answered (a reason is needed only
    when stepping back from locked)."""
    return _casebook_set(user=user, patient=patient, state=CasebookLock.State.FROZEN, password=password, reason=reason)


def casebook_lock(*, user: Any, patient: Patient, password: str, reason: str = "") -> CasebookLock:
    """Lock: nothing in the casebook changes, queries and SDV marks included."""
    return _casebook_set(user=user, patient=patient, state=CasebookLock.State.LOCKED, password=password, reason=reason)


def casebook_unlock(*, user: Any, patient: Patient, password: str, reason: str) -> CasebookLock:
    """Back to open; the reason is required and kept in the audit trail."""
    return _casebook_set(user=user, patient=patient, state=CasebookLock.State.OPEN, password=password, reason=reason)


def trial_lock_get(trial: Trial) -> TrialLock | None:
    return TrialLock.objects.filter(trial=trial).first()


def _trial_set(*, user: Any, trial: Trial, state: str, password: str, reason: str) -> TrialLock:
    _require_lock_right(user, trial.pk)
    reason = (reason or "").strip()
    with transaction.atomic():
        lock = TrialLock.objects.select_for_update().filter(trial=trial).first()
        current = lock.state if lock is not None else TrialLock.State.OPEN
        if current == state:
            raise ValidationError({"state": [f"Trial {trial.code} is already {TrialLock.State(state).label.lower()}."]})
        if state == TrialLock.State.OPEN and not reason:
            raise ValidationError({"reason": ["A reason is required to unlock the trial (kept in the audit trail)."]})
        _check_password(user, password)
        lock = _lock_row_write(
            lock or TrialLock(trial=trial),
            state,
            user=user,
            password=password,
            reason=reason,
            audit_reason=reason or "trial locked for the analysis",
        )
    lock.refresh_from_db()
    return lock


def trial_lock(*, user: Any, trial: Trial, password: str, reason: str = "") -> TrialLock:
    """Lock every casebook of the trial for the analysis (recomputations keep running)."""
    return _trial_set(user=user, trial=trial, state=TrialLock.State.LOCKED, password=password, reason=reason)


def trial_unlock(*, user: Any, trial: Trial, password: str, reason: str) -> TrialLock:
    """Lift the trial lock (each casebook returns to its own state); a reason is required."""
    return _trial_set(user=user, trial=trial, state=TrialLock.State.OPEN, password=password, reason=reason)


def _lock_import(model: Any, owner: dict[str, Any], *, user: Any, spec: dict[str, Any], label: str) -> Any:
    """Re-apply a lock state carried by a trial bundle (the signer's printed name and time
    as recorded; no live signature: the import itself is audited under the importer)."""
    state = spec.get("state") or "open"
    if state not in model.State.values:
        raise ValidationError({"state": [f"Unknown {label} lock state {state!r}; use one of {model.State.values}."]})
    changed_at = spec.get("at")
    if isinstance(changed_at, str) and changed_at:
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(changed_at)
        if parsed is None:
            raise ValidationError({"at": [f"Not a date and time: {changed_at!r}."]})
        changed_at = parsed
    trial = owner["trial"] if "trial" in owner else owner["patient"].trial
    future = future_time_problems(f"{label} lock time", changed_at or None, timezone.now(), trial.zone_name)
    if future:
        raise ValidationError({"at": list(future)})
    values = {
        "state": state,
        "changed_at": changed_at or None,
        "changed_by": None,
        "changed_by_name": str(spec.get("by") or ""),
        "reason": str(spec.get("reason") or ""),
    }
    with transaction.atomic():
        lock = model.objects.select_for_update().filter(**owner).first()
        reason = f"imported from a trial bundle ({label} {state})"
        if lock is None:
            lock = model(**owner, **values)
            record_create(lock, user=user, reason=reason)
        else:
            lock = record_update(lock, values, user=user, reason=reason)
    return lock


def casebook_lock_import(*, user: Any, patient: Patient, spec: dict[str, Any]) -> CasebookLock:
    return _lock_import(CasebookLock, {"patient": patient}, user=user, spec=spec, label="casebook")  # type: ignore[no-any-return]


def trial_lock_import(*, user: Any, trial: Trial, spec: dict[str, Any]) -> TrialLock:
    return _lock_import(TrialLock, {"trial": trial}, user=user, spec=spec, label="trial")  # type: ignore[no-any-return]
