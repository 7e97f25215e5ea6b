"""Reads for views, API and exports: scoped, with the related rows fetched up front."""

from datetime import date
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
from patients.table1 import Table1, Table1Patient
from patients.table1 import table1 as table1_rule
from trial import access
from trial.models import Trial

# The lock rows come along so banners and the API show the lock state without a query.
_PATIENT_RELATED = ("trial", "site", "dose_level", "transplant", "casebook_lock", "trial__lock")


def patient_list(user, trial: Trial | None = None) -> QuerySet[Patient]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, Patient.objects.select_related(*_PATIENT_RELATED))
    return qs.filter(trial=trial) if trial is not None else qs


def patient_list_with_status(  # type: ignore[no-untyped-def]
    user, trial: Trial, subject_id: str = ""
) -> QuerySet[Patient]:
    """The list page: each patient with the result of the latest screening (one query),
    by subject ID (unique in a trial, so pages are stable); ``subject_id`` narrows it to
    the subject IDs containing that text."""
    latest = Screening.objects.filter(patient=OuterRef("pk")).order_by("-date", "-id")
    # Only the relations the page shows: the lock joins cost PostgreSQL more planning than the rows.
    qs = access.scope(user, Patient.objects.select_related("site", "dose_level", "transplant")).filter(trial=trial)
    if subject_id:
        qs = qs.filter(subject_id__icontains=subject_id)
    return qs.annotate(
        latest_screening_result=Subquery(latest.values("result")[:1]),
        latest_screening_date=Subquery(latest.values("date")[:1]),
    ).order_by("subject_id", "pk")


def patient_get(user, patient_id: int) -> Patient:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, Patient.objects.select_related(*_PATIENT_RELATED), pk=patient_id
    )


def patient_casebook(user, patient_id: int) -> Patient:  # type: ignore[no-untyped-def]
    """One patient with everything the casebook pages show, in a fixed number of queries."""
    qs = Patient.objects.select_related(*_PATIENT_RELATED).prefetch_related(
        Prefetch("consents", queryset=Consent.objects.select_related("protocol_version").order_by("date", "id")),
        Prefetch("screenings", queryset=Screening.objects.order_by("-date", "-id")),
        Prefetch("assessments", queryset=Assessment.objects.order_by("-date", "-id")),
        Prefetch("events", queryset=PatientEvent.objects.order_by("date", "id")),
    )
    return access.get_scoped_or_404(user, qs, pk=patient_id)  # type: ignore[return-value]


def transplant_of(patient: Patient) -> Transplant | None:
    """The patient's transplant or None (the caller has already scoped the patient)."""
    try:
        return patient.transplant
    except Transplant.DoesNotExist:
        return None


def screening_list(user, patient_id: int | None = None) -> QuerySet[Screening]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, Screening.objects.select_related("patient", "patient__site")).order_by("date", "id")
    return qs.filter(patient_id=patient_id) if patient_id is not None else qs


def screening_get(user, screening_id: int) -> Screening:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, Screening.objects.select_related("patient", "patient__trial", "patient__site"), pk=screening_id
    )


def assessment_list(user, patient_id: int | None = None) -> QuerySet[Assessment]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, Assessment.objects.select_related("patient", "patient__site")).order_by(
        "patient_id", "date", "id"
    )
    return qs.filter(patient_id=patient_id) if patient_id is not None else qs


def assessment_get(user, assessment_id: int) -> Assessment:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, Assessment.objects.select_related("patient", "patient__trial", "patient__site"), pk=assessment_id
    )


def event_list(user, patient_id: int | None = None) -> QuerySet[PatientEvent]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, PatientEvent.objects.select_related("patient", "patient__site")).order_by(
        "patient_id", "date", "id"
    )
    return qs.filter(patient_id=patient_id) if patient_id is not None else qs


def event_get(user, patient_event_id: int) -> PatientEvent:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, PatientEvent.objects.select_related("patient", "patient__trial", "patient__site"), pk=patient_event_id
    )


def enrolment_counts(trial: Trial) -> dict[str, Any]:
    """Registered and enrolled patients per site and per dose level (unscoped: for the
    trial-level computation; views show it only to users who may see the trial)."""
    enrolled = Q(patients__enrolled_on__isnull=False)
    sites = trial.sites.order_by("code").annotate(
        registered=Count("patients"), enrolled=Count("patients", filter=enrolled)
    )
    levels = trial.dose_levels.order_by("level").annotate(enrolled=Count("patients", filter=enrolled))
    return {
        "sites": [{"code": s.code, "registered": s.registered, "enrolled": s.enrolled} for s in sites],
        "dose_levels": [
            {"dose_level": lv.level, "dose_mg_m2": float(lv.dose_mg_m2), "enrolled": lv.enrolled} for lv in levels
        ],
        "registered": sum(s.registered for s in sites),
        "enrolled": sum(s.enrolled for s in sites),
    }


def _mrd_positive(transplant: Transplant | None) -> bool | None:
    if transplant is None:
        return None
    if transplant.mrd_before or transplant.mrd_after:
        return True
    if transplant.mrd_before is False and transplant.mrd_after is False:
        return False
    return None


def outcome_rows(trial: Trial) -> list[dict[str, Any]]:
    """One row per enrolled patient of ``trial`` for the survival computation (PROTOCOL s8).

    Unscoped: trial-level use only. Two queries whatever the number of patients.
    ``relapse_date`` is the first relapse; ``last_contact_date`` the latest last-contact event.
    """
    patients = (
        Patient.objects.filter(trial=trial, enrolled_on__isnull=False)
        .select_related("site", "dose_level", "transplant")
        .prefetch_related(Prefetch("events", queryset=PatientEvent.objects.order_by("date", "id")))
        .order_by("subject_id")
    )
    rows = []
    for p in patients:
        transplant = transplant_of(p)
        by_kind: dict[str, list[PatientEvent]] = {}
        for event in p.events.all():
            by_kind.setdefault(event.kind, []).append(event)
        relapses = by_kind.get(PatientEvent.Kind.RELAPSE, [])
        deaths = by_kind.get(PatientEvent.Kind.DEATH, [])
        contacts = by_kind.get(PatientEvent.Kind.LAST_CONTACT, [])
        rows.append(
            {
                "patient_id": p.pk,
                "subject_id": p.subject_id,
                "site_code": p.site.code,
                "dose_level": p.dose_level.level if p.dose_level is not None else None,
                "enrolled_on": p.enrolled_on,
                "hct_date": transplant.date if transplant is not None else None,
                "relapse_date": relapses[0].date if relapses else None,
                "death_date": deaths[0].date if deaths else None,
                "death_cause": (deaths[0].cause or None) if deaths else None,
                "last_contact_date": contacts[-1].date if contacts else None,
                "mrd_positive": _mrd_positive(transplant),
                "conditioning": (transplant.conditioning or None) if transplant is not None else None,
            }
        )
    return rows


def table1(trial: Trial, user=None) -> Table1:  # type: ignore[no-untyped-def]
    """The paper's Table 1 over the treated (enrolled, with a dose level) patients of
    ``trial``; with ``user``, only those the user may see (a coordinator: own sites).
    One query whatever the number of patients."""
    qs = Patient.objects.filter(trial=trial, enrolled_on__isnull=False, dose_level__isnull=False).select_related(
        "transplant"
    )
    if user is not None:
        qs = access.scope(user, qs)
    rows = []
    for p in qs.order_by("subject_id"):
        t = transplant_of(p)
        rows.append(
            Table1Patient(
                age=(t.date.year - p.birth_year) if t is not None else None,
                sex=p.sex,
                race=p.race,
                cytogenetic_risk=p.cytogenetic_risk,
                ph_positive=p.ph_positive,
                prior_lines=p.prior_lines,
                prior_asparaginase=p.prior_asparaginase,
                prior_blinatumomab=p.prior_blinatumomab,
                prior_inotuzumab=p.prior_inotuzumab,
                prior_car_t=p.prior_car_t,
                prior_hct=p.prior_hct,
                disease_status=t.disease_status if t is not None else "",
                hct_ci=p.hct_ci,
                donor_type=t.donor_type if t is not None else "",
                graft_source=t.graft_source if t is not None else "",
                conditioning=t.conditioning if t is not None else "",
                regimen=t.regimen if t is not None else "",
                atg=t.atg if t is not None else None,
                gvhd_prophylaxis=t.gvhd_prophylaxis if t is not None else "",
                mrd_before=t.mrd_before if t is not None else None,
                mrd_after=t.mrd_after if t is not None else None,
            )
        )
    return table1_rule(rows)


def enrolment_slots(trial: Trial) -> dict[str, Any]:
    """What the enrol page says before Save (issue 16 item 18, issue 19 item 3): the open
    slots per dose level, the level a patient would be assigned (the lowest open one, as
    ``services.patient_enrol`` assigns it), and whether the 3+3 state is being recomputed.
    Read from the same stored escalation result the enrolment service assigns from."""
    from trial.models import DoseLevel, TrialComputation
    from trial.selectors import escalation_backfill_slots, escalation_open_slots
    from trial.services import computation_ensure

    slots = escalation_open_slots(trial)
    backfill = escalation_backfill_slots(trial)
    computation = computation_ensure(trial, TrialComputation.Kind.ESCALATION)
    levels = {lv.level: lv for lv in DoseLevel.objects.filter(trial=trial, level__in=[*slots, *backfill])}
    rows = [{"level": levels[n], "slots": slots[n]} for n in sorted(slots) if n in levels]
    return {
        "open_slots": rows,
        # Issue 17: backfill places, highest level first (where a backfill enrolment goes).
        "backfill_slots": [
            {"level": levels[n], "slots": backfill[n]} for n in sorted(backfill, reverse=True) if n in levels
        ],  # fmt: skip
        "assigned": rows[0]["level"] if rows else None,
        "decision": (computation.data or {}).get("decision") if computation else None,
        "mtd_dose_level": (computation.data or {}).get("mtd_dose_level") if computation else None,
        "stale": bool(computation is not None and computation.stale),
    }


def earliest_clinical_date(patient: Patient) -> tuple[str, date, str] | None:
    """The patient's earliest clinical date across all its records: (label, date, the
    record it is on), or None. Every model that lists ``clinical_date_fields`` counts
    (patients, dosing and safety records alike, found through the app registry so this
    app imports none of the later ones); current records only (voided ones are not
    data). One query per dated field: for a birth-year edit, not for lists."""
    from django.apps import apps

    from core.models import AuditedModel

    found: list[tuple[str, date, str]] = []
    if patient.enrolled_on is not None:
        found.append(("enrolment date", patient.enrolled_on, f"patient {patient.subject_id}"))
    for model in apps.get_models():
        fields = getattr(model, "clinical_date_fields", None)
        if not fields or not issubclass(model, AuditedModel):
            continue
        rows = model._default_manager.filter(patient=patient)
        for name, label in fields.items():
            row = rows.filter(**{f"{name}__isnull": False}).order_by(name, "pk").first()
            if row is not None:
                found.append((label, getattr(row, name), f"{model._meta.verbose_name} #{row.pk}: {row}"))
    return min(found, key=lambda item: item[1], default=None)
