"""Reads the casebook into the pure inputs of :mod:`exchange.cdisc.mapping`.

Scoped like the sponsor exports (exchange/exports.py): the caller names the sites
(``trial.access.sites_for(user, trial, "export")``, or every site of the trial for the
operator's ``manage.py export_sdtm``). Voided records (entered in error) are left out,
as in every export. A fixed number of queries whatever the trial's size.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from dosing.models import ConcomitantMedication, Cycle, LabPanel
from dosing.params import trial_schedule_params
from exchange.cdisc import mapping
from exchange.exports import STUDY_DRUG, export_trial
from patients.models import Assessment, Consent, Patient, PatientEvent, Screening
from patients.selectors import transplant_of
from patients.services import eligibility_params
from safety.models import AdverseEvent, DltAdjudication
from safety.selectors import REFERENCE_LIMITS, is_active_adjudication, patient_dlt_outcomes
from trial import access
from trial.models import Trial, TrialLock

_EVALUABLE = {"dlt", "no_dlt"}


def design_of(trial: Trial) -> mapping.TrialDesign:
    """The trial configuration the trial design domains describe (four small queries)."""
    lock = TrialLock.objects.filter(trial=trial, state=TrialLock.State.LOCKED).first()
    return mapping.TrialDesign(
        title=trial.title,
        sponsor=trial.sponsor,
        dose_levels=tuple((d.level, d.dose_mg_m2) for d in trial.dose_levels.order_by("level")),
        design=trial.design,
        planned_subjects=trial.max_sample_size,
        countries=tuple(c for c in trial.sites.values_list("country", flat=True) if c),
        lock_date=lock.changed_at.astimezone(ZoneInfo(trial.zone_name)).date()
        if lock is not None and lock.changed_at is not None
        else None,
        schedule=trial_schedule_params(trial),
        eligibility=eligibility_params(trial),
        protocol_versions=tuple(v.version for v in trial.protocol_versions.all()),
    )


def study_of(trial: Trial) -> mapping.Study:
    return mapping.Study(
        code=trial.code,
        drug=STUDY_DRUG,
        survival_origin=trial.survival_origin,  # type: ignore[arg-type]
        lab_limits=tuple(REFERENCE_LIMITS.items()),
        design=design_of(trial),
    )


def _dlt_decisions(trial: Trial) -> dict[int, DltAdjudication]:
    """adverse_event_id -> the decision that counts on it (signed, not superseded)."""
    decisions: dict[int, DltAdjudication] = {}
    qs = DltAdjudication.objects.filter(
        patient__trial=trial, adverse_event__isnull=False, superseded_by__isnull=True
    ).order_by("event_date", "id")
    for a in qs:
        if is_active_adjudication(a) and a.adverse_event_id is not None:
            decisions[a.adverse_event_id] = a
    return decisions


def _subject(p: Patient, decisions: dict[int, DltAdjudication], evaluable: dict[int, str]) -> mapping.Subject:
    transplant = transplant_of(p)
    events: dict[str, list[PatientEvent]] = {}
    for e in p.events.all():
        events.setdefault(e.kind, []).append(e)
    first = {kind: rows[0] for kind, rows in events.items()}
    contacts = events.get(PatientEvent.Kind.LAST_CONTACT, [])
    dispositions = [
        mapping.Disposition("consent", c.pk, c.date, protocol_version=c.protocol_version.version)
        for c in p.consents.all()
    ]
    dispositions += [mapping.Disposition("screening_failure", s.pk, s.date) for s in p.screenings.all()]
    if p.enrolled_on is not None:
        dispositions.append(mapping.Disposition("enrolment", p.pk, p.enrolled_on))
    for kind, source in (
        (PatientEvent.Kind.END_OF_TREATMENT, "end_of_treatment"),
        (PatientEvent.Kind.WITHDRAWAL, "withdrawal"),
        (PatientEvent.Kind.DEATH, "death"),
    ):
        for e in events.get(kind, []):
            dispositions.append(mapping.Disposition(source, e.pk, e.date, reason=e.reason, cause=e.cause))  # type: ignore[arg-type]
    doses = tuple(
        mapping.Dose(
            cycle=c.number,
            day1=c.day1,  # type: ignore[arg-type]  # filtered: not null
            level=c.dose_level.level,
            dose_mg=c.dose_mg,
            dose_mg_m2=c.dose_mg_m2,
            bsa_m2=c.bsa_m2,
            reduced=c.reduced,
            reduction_reason=c.reduction_reason,
            delay_days=c.delay_days,
        )
        for c in p.cycles.all()
    )
    visit_of = {c.lab_panel_id: c.number for c in p.cycles.all() if c.lab_panel_id is not None}
    labs = tuple(
        mapping.LabDraw(
            record_id=lp.pk,
            date=lp.date,
            cycle=visit_of.get(lp.pk),
            platelets=lp.platelets,
            anc=lp.anc,
            hemoglobin=lp.hemoglobin,
            bilirubin=lp.bilirubin,
            alt=lp.alt,
            ast=lp.ast,
        )
        for lp in p.lab_panels.all()
    )
    aes = []
    for a in p.adverse_events.all():
        decision = decisions.get(a.pk)
        aes.append(
            mapping.AdverseEvent(
                record_id=a.pk,
                term=a.term.term,
                meddra_code=a.term.meddra_code,
                soc=a.term.soc,
                grade=a.grade,
                onset=a.onset,
                resolved=a.resolved,
                attribution=a.attribution,
                specify=a.specify,
                serious=a.serious,
                sae_death=a.sae_death,
                sae_life_threatening=a.sae_life_threatening,
                sae_hospitalisation=a.sae_hospitalisation,
                sae_disability=a.sae_disability,
                sae_congenital=a.sae_congenital,
                sae_important=a.sae_important,
                action=a.action,
                outcome=a.outcome,
                dlt=decision.is_dlt if decision is not None else None,
                dlt_rule=decision.rule if decision is not None else "",
            )
        )
    level = p.dose_level
    death = first.get(PatientEvent.Kind.DEATH)
    relapse = first.get(PatientEvent.Kind.RELAPSE)
    status = evaluable.get(p.pk)
    return mapping.Subject(
        subject_id=p.subject_id,
        site_code=p.site.code,
        birth_year=p.birth_year,
        sex=p.sex,
        race=p.race,
        level=level.level if level is not None else None,
        level_dose_mg_m2=level.dose_mg_m2 if level is not None else None,
        enrolled_on=p.enrolled_on,
        hct_date=transplant.date if transplant is not None else None,
        relapse_date=relapse.date if relapse is not None else None,
        death_date=death.date if death is not None else None,
        death_cause=death.cause if death is not None else "",
        last_contact_date=contacts[-1].date if contacts else None,
        dlt_evaluable=None if status is None else status in _EVALUABLE,
        backfill=p.enrolled_as_backfill,
        doses=doses,
        adverse_events=tuple(aes),
        dispositions=tuple(dispositions),
        labs=labs,
        medications=tuple(
            mapping.Medication(m.pk, m.agent, m.start, m.stop, m.other_agent) for m in p.medications.all()
        ),
        diagnosis=p.diagnosis,
        country=p.site.country,
        assessments=tuple(
            mapping.ResponseAssessment(
                record_id=a.pk,
                kind=a.kind,
                date=a.date,
                method=a.method,
                result=a.result,
                level=a.level,
                blasts_pct=a.blasts_pct,
                response=a.response,
                extramedullary=a.extramedullary,
            )
            for a in p.assessments.all()
        ),
    )


# A batch holds patients until their AEs and lab panels (the casebook's bulk) reach this
# many rows (and at least one patient): the package's memory is bounded by the batch, not
# by the trial (docs/exports.md, "CDISC packages").
BATCH_ROWS = 10_000


def _patients(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """``patients`` with everything :func:`_subject` reads, prefetched (a fixed number of queries)."""
    return (
        patients.select_related("site", "dose_level", "transplant")
        .prefetch_related(
            Prefetch("events", queryset=PatientEvent.objects.order_by("date", "id")),
            Prefetch("consents", queryset=Consent.objects.select_related("protocol_version").order_by("date", "id")),
            Prefetch(
                "screenings",
                queryset=Screening.objects.filter(result=Screening.Result.NOT_ELIGIBLE).order_by("date", "id"),
            ),
            Prefetch(
                "cycles",
                queryset=Cycle.objects.filter(given=True, day1__isnull=False)
                .select_related("dose_level")
                .order_by("number"),
            ),
            Prefetch("adverse_events", queryset=AdverseEvent.objects.select_related("term").order_by("onset", "id")),
            Prefetch("lab_panels", queryset=LabPanel.objects.order_by("date", "id")),
            Prefetch("medications", queryset=ConcomitantMedication.objects.order_by("start", "id")),
            Prefetch("assessments", queryset=Assessment.objects.order_by("date", "id")),
        )
        .order_by("subject_id")
    )


def _batches(trial: Trial, site_ids: Sequence[int], batch_rows: int) -> list[list[int]]:
    """The patients' ids in subject ID order, cut into batches of about ``batch_rows`` rows."""
    ids = list(
        Patient.objects.filter(trial=trial, site_id__in=list(site_ids))
        .order_by("subject_id")
        .values_list("pk", flat=True)
    )
    rows = dict.fromkeys(ids, 1)
    for model in (AdverseEvent, LabPanel):
        counted = model.objects.filter(patient__trial=trial).values_list("patient_id").annotate(n=Count("id"))
        for patient_id, n in counted.order_by():
            if patient_id in rows:
                rows[patient_id] += n
    batches: list[list[int]] = []
    size = batch_rows
    for pk in ids:
        if size + rows[pk] > batch_rows and (not batches or batches[-1]):
            batches.append([])
            size = 0
        batches[-1].append(pk)
        size += rows[pk]
    return batches


def _trial_wide(trial: Trial, as_of: datetime.date | None) -> tuple[dict[int, DltAdjudication], dict[int, str]]:
    """What every subject's mapping needs from the whole trial, small: the DLT decision on
    each adjudicated AE, and each patient's DLT-evaluability status on ``as_of`` (default:
    today in the server's zone)."""
    outcomes = patient_dlt_outcomes(trial, as_of or timezone.localdate())
    return _dlt_decisions(trial), {row["patient_id"]: row["status"] for row in outcomes}


class Batches:
    """The patients' subjects a batch at a time (iterable more than once; ``len`` the batches)."""

    def __init__(self, batches: list[list[int]], decisions: dict[int, DltAdjudication], evaluable: dict[int, str]):
        self._batches, self._decisions, self._evaluable = batches, decisions, evaluable

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[mapping.Subject]]:
        for batch in self._batches:
            patients = _patients(Patient.objects.filter(pk__in=batch))
            yield [_subject(p, self._decisions, self._evaluable) for p in patients]


def casebook_batches(
    trial: Trial, site_ids: Sequence[int], as_of: datetime.date | None = None, batch_rows: int = BATCH_ROWS
) -> tuple[mapping.Study, Batches]:
    """The study and its registered patients at ``site_ids`` in subject ID order, read
    lazily a batch at a time (:data:`BATCH_ROWS`; each batch its own fixed number of
    queries): what :func:`exchange.cdisc.mapping.datasets_in_batches` maps. ``as_of`` is
    the day DLT evaluability is judged on (default: today in the server's zone)."""
    decisions, evaluable = _trial_wide(trial, as_of)
    return study_of(trial), Batches(_batches(trial, site_ids, batch_rows), decisions, evaluable)


def casebook_subjects(
    trial: Trial, site_ids: Sequence[int], as_of: datetime.date | None = None
) -> tuple[mapping.Study, list[mapping.Subject]]:
    """The study and every registered patient of ``trial`` at ``site_ids``, by subject ID,
    all at once (for small uses; the package reads :func:`casebook_batches`). ``as_of`` is
    the day DLT evaluability is judged on (default: today in the server's zone)."""
    patients = _patients(Patient.objects.filter(trial=trial, site_id__in=list(site_ids)))
    decisions, evaluable = _trial_wide(trial, as_of)
    return study_of(trial), [_subject(p, decisions, evaluable) for p in patients]


def casebook_subjects_for(
    user, trial_ref: str, as_of: datetime.date | None = None
) -> tuple[mapping.Study, list[mapping.Subject]]:  # type: ignore[no-untyped-def]
    """As :func:`casebook_subjects`, scoped like the sponsor exports: the trial by code or
    id if ``user`` holds "export" on it (else 404, its existence not revealed), only the
    sites :func:`trial.access.sites_for` grants for "export"."""
    trial = export_trial(user, trial_ref)
    site_ids = list(access.sites_for(user, trial, "export").values_list("pk", flat=True))
    return casebook_subjects(trial, site_ids, as_of)
