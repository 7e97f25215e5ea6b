"""Reads for dosing screens, the API and the trial-level computations.

Scoped reads take the user and go through ``trial.access``; the two trial-level reads
used by the survival computation are unscoped (the caller shows results only to users
who may see the trial). Every function costs a fixed number of queries.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Prefetch, QuerySet

from dosing import carry_forward, schedule
from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
from dosing.params import trial_schedule_params
from patients.models import Assessment, Consent, Patient, PatientEvent
from safety.models import GvhdEpisode  # read only: the carried-forward GVHD status (pyproject)
from trial import access
from trial.models import Site, Trial

# --- one patient ---------------------------------------------------------------------


def patient_for_dosing(user, patient_id: int, capability: str = "view_clinical") -> Patient:  # type: ignore[no-untyped-def]
    """The patient with everything the dosing rules read (404 when out of scope)."""
    # The lock rows come along for the casebook's lock banner (issue 12).
    queryset = Patient.objects.select_related(
        "trial", "site", "dose_level", "transplant", "casebook_lock", "trial__lock"
    ).prefetch_related(
        "events",
        "cycles",
        "consents__protocol_version",
        "lab_panels",
        "deviations",
        "medications",
        "trial__protocol_versions",
    )
    return access.get_scoped_or_404(user, queryset, capability, pk=patient_id)  # type: ignore[return-value]


def cycle_list(user, patient: Patient | None = None) -> QuerySet[Cycle]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, Cycle.objects.select_related("patient", "dose_level", "deviation", "lab_panel"))
    return qs.filter(patient=patient) if patient is not None else qs


def cycle_get(user, cycle_id: int) -> Cycle:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, Cycle.objects.select_related("patient__trial", "patient__site", "dose_level"), pk=cycle_id
    )


def lab_panel_list(user, patient: Patient | None = None) -> QuerySet[LabPanel]:  # type: ignore[no-untyped-def]
    qs = access.scope(user, LabPanel.objects.select_related("patient"))
    return qs.filter(patient=patient) if patient is not None else qs


def lab_panel_get(user, lab_panel_id: int) -> LabPanel:  # type: ignore[no-untyped-def]
    """One lab panel in the user's scope (404 otherwise)."""
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, LabPanel.objects.select_related("patient__trial", "patient__site"), pk=lab_panel_id
    )


def lab_panel_cycle(panel: LabPanel) -> Cycle | None:
    """The cycle whose visit entered ``panel`` (None: an unscheduled panel)."""
    return Cycle.objects.filter(lab_panel=panel).first()


@dataclass(frozen=True)
class DeviationRow:
    """One protocol deviation, whichever record holds it (issue 16 item 4): a Deviation an
    investigator recorded (delay beyond the allowance, dosing with a failed safety check,
    other), or an enrolment outside the open slot (``Patient.enrolment_deviation``, set by
    the enrolment service and the bundle import). ``record`` is the holding record, for
    query badges and SDV marks."""

    date: datetime.date
    patient: Patient
    kind: str
    kind_label: str
    cycle_number: int | None
    reason: str
    record: Any

    @property
    def patient_id(self) -> int:
        return self.patient.pk

    def get_kind_display(self) -> str:
        return self.kind_label


def _rows(recorded: Any, enrolments: Any) -> list[DeviationRow]:
    rows = [
        DeviationRow(d.date, d.patient, d.kind, d.get_kind_display(), d.cycle_number, d.reason, d) for d in recorded
    ]
    enrolment_label = str(Deviation.Kind.ENROLMENT.label)
    rows += [
        DeviationRow(p.enrolled_on, p, Deviation.Kind.ENROLMENT, enrolment_label, None, p.enrolment_deviation, p)
        for p in enrolments
        if p.enrolled_on is not None and p.enrolment_deviation
    ]
    rows.sort(key=lambda r: (r.date, r.patient.subject_id, r.kind, getattr(r.record, "pk", 0)))
    return rows


def patient_deviations(patient: Patient) -> list[DeviationRow]:
    """One casebook's deviations, from ``patient_for_dosing``'s prefetched rows (no query)."""
    return _rows(patient.deviations.all(), [patient])


def deviation_list(user, trial: Trial, patient: Patient | None = None) -> list[DeviationRow]:  # type: ignore[no-untyped-def]
    """Every protocol deviation of a trial (or of one patient), scoped (coordinators see
    their sites'), by date: the one list the deviations page, the dosing tab and the
    ``dv`` export (exchange.exports) show. Two queries."""
    recorded = access.scope(user, Deviation.objects.select_related("patient", "patient__site")).filter(
        patient__trial=trial
    )
    enrolments = access.scope(user, Patient.objects.select_related("site")).filter(
        trial=trial, enrolled_on__isnull=False
    )
    enrolments = enrolments.exclude(enrolment_deviation="")
    if patient is not None:
        recorded, enrolments = recorded.filter(patient=patient), enrolments.filter(pk=patient.pk)
    return _rows(recorded, enrolments)


# --- trial level, unscoped (survival computation) ------------------------------------


def first_dose_dates(trial: Trial) -> dict[int, datetime.date]:
    """patient_id -> day 1 of the first cycle actually given. One query."""
    result: dict[int, datetime.date] = {}
    rows = (
        Cycle.objects.filter(patient__trial=trial, given=True, day1__isnull=False)
        .order_by("patient_id", "number")
        .values_list("patient_id", "day1")
    )
    for patient_id, day1 in rows:
        result.setdefault(patient_id, day1)
    return result


def cycles_by_patient(trial: Trial) -> dict[int, list[tuple[int, datetime.date]]]:
    """patient_id -> [(number, day 1)] of the given cycles, by number. One query."""
    result: dict[int, list[tuple[int, datetime.date]]] = {}
    rows = (
        Cycle.objects.filter(patient__trial=trial, given=True, day1__isnull=False)
        .order_by("patient_id", "number")
        .values_list("patient_id", "number", "day1")
    )
    for patient_id, number, day1 in rows:
        result.setdefault(patient_id, []).append((number, day1))
    return result


# --- visit calendar and worklist (PROTOCOL 7) ----------------------------------------


def _event_date(patient: Patient, kind: str) -> datetime.date | None:
    return next((e.date for e in patient.events.all() if e.kind == kind), None)


def follow_up_facts(patient: Patient) -> schedule.FollowUpFacts | None:
    """The calendar's inputs from a patient read with ``_calendar_prefetch`` (None
    without a transplant: nothing is anchored yet)."""
    transplant = getattr(patient, "transplant", None)
    if transplant is None:
        return None
    return schedule.FollowUpFacts(
        hct_date=transplant.date,
        cycles=tuple(
            schedule.PastCycle(c.number, c.day1) for c in patient.cycles.all() if c.given and c.day1 is not None
        ),
        end_of_treatment=_event_date(patient, PatientEvent.Kind.END_OF_TREATMENT),
        death=_event_date(patient, PatientEvent.Kind.DEATH),
        withdrawal=_event_date(patient, PatientEvent.Kind.WITHDRAWAL),
        assessments=tuple(schedule.DoneAssessment(a.kind, a.date) for a in patient.assessments.all()),
    )


def _calendar_queryset() -> QuerySet[Patient]:
    return Patient.objects.select_related("trial", "site", "dose_level", "transplant").prefetch_related(
        "events", "assessments", "consents__protocol_version", Prefetch("cycles", Cycle.objects.order_by("number"))
    )


def patient_calendar(  # type: ignore[no-untyped-def]
    user, patient_id: int, today: datetime.date
) -> tuple[Patient, tuple[schedule.PlannedAssessment, ...]]:
    patient: Patient = access.get_scoped_or_404(user, _calendar_queryset(), pk=patient_id)  # type: ignore[assignment]
    facts = follow_up_facts(patient)
    if facts is None:
        return patient, ()
    return patient, schedule.visit_calendar(facts, today, trial_schedule_params(patient.trial))


def assessment_due(user, patient_id: int, today: datetime.date) -> schedule.PlannedAssessment | None:  # type: ignore[no-untyped-def]
    """The first expected assessment (PROTOCOL 7) still to record on ``today``: due or overdue."""
    _, entries = patient_calendar(user, patient_id, today)
    return next((e for e in entries if e.status in ("due", "overdue")), None)


@dataclass(frozen=True)
class DueCycle:
    number: int
    due: datetime.date
    window_end: datetime.date
    overdue: bool
    reason: str = ""


@dataclass(frozen=True)
class WorklistRow:
    patient: Patient
    cycle: DueCycle | None
    assessments: tuple[schedule.PlannedAssessment, ...]


@dataclass(frozen=True)
class SiteWorklist:
    site: Site
    rows: tuple[WorklistRow, ...]


_DOSING_STOPS = frozenset({"end_of_treatment", "relapse", "death", "withdrawal"})


@dataclass
class _WorklistInputs:
    """What the worklist reads of one patient, from plain rows (no model instances:
    at a few hundred patients, building the related objects was most of the page)."""

    events: list[tuple[str, datetime.date]] = field(default_factory=list)  # by date, id
    cycles: list[tuple[int, datetime.date | None, bool]] = field(default_factory=list)  # by number
    assessments: list[schedule.DoneAssessment] = field(default_factory=list)
    consents: list[schedule.Consent] = field(default_factory=list)  # by date, id

    def first(self, kind: str) -> datetime.date | None:
        return next((day for k, day in self.events if k == kind), None)

    def facts(self, hct_date: datetime.date) -> schedule.FollowUpFacts:
        """As ``follow_up_facts``; assessments as loaded so far."""
        return schedule.FollowUpFacts(
            hct_date=hct_date,
            cycles=tuple(schedule.PastCycle(n, day1) for n, day1, given in self.cycles if given and day1 is not None),
            end_of_treatment=self.first(PatientEvent.Kind.END_OF_TREATMENT),
            death=self.first(PatientEvent.Kind.DEATH),
            withdrawal=self.first(PatientEvent.Kind.WITHDRAWAL),
            assessments=tuple(self.assessments),
        )


def _due_cycle(
    patient: Patient,
    inputs: _WorklistInputs,
    hct_date: datetime.date,
    params: schedule.ScheduleParams,
    week_end: datetime.date,
    today: datetime.date,
) -> DueCycle | None:
    if patient.dose_level_id is None or any(kind in _DOSING_STOPS for kind, _ in inputs.events):
        return None
    recorded = [schedule.PastCycle(n, day1) for n, day1, _ in inputs.cycles if day1 is not None]
    maximum = schedule.max_cycles_on(inputs.consents, today, params) or 0
    nxt = schedule.next_cycle(hct_date, maximum, recorded, params, enrolled_on=patient.enrolled_on)
    if nxt.max_reached or nxt.due > week_end:
        return None
    return DueCycle(nxt.number, nxt.due, nxt.window_end, today > nxt.window_end, nxt.reason)


def site_worklist(user, trial: Trial, today: datetime.date, days: int = 7) -> list[SiteWorklist]:  # type: ignore[no-untyped-def]
    """What is due or overdue in the ``days`` from ``today``, per site of the user's scope:
    the next cycle when due by then, and assessments that are due or overdue.

    Only patients still in follow-up (``schedule.follow_up_over``): after death,
    withdrawal or the end of follow-up nothing is left to schedule (and dosing has
    stopped), and their missed assessments are data-cleaning queries. Seven queries at
    any size: patients, sites, protocol versions, then plain rows of events and cycles
    of all, assessments and consents of those in follow-up.
    """
    week_end = today + datetime.timedelta(days=days - 1)
    params = trial_schedule_params(trial)
    # Each patient with the site and the HCT date only (no dose level, transplant or trial
    # objects: the page shows none of them).
    patients = list(
        access.scope(user, Patient.objects.select_related("site"))
        .filter(trial=trial, transplant__isnull=False)  # nothing is anchored before the transplant
        .annotate(hct_date=F("transplant__date"))
        .order_by("site__code", "subject_id")
    )
    for patient in patients:
        patient.trial = trial  # the trial already read, not a query per patient if asked
    by_site: dict[int, tuple[Site, list[WorklistRow]]] = {}
    for site in access.scope(user, Site.objects.filter(trial=trial)).order_by("code"):
        by_site[site.pk] = (site, [])
    inputs = {p.pk: _WorklistInputs() for p in patients}
    # Explicit orders: the models' default orders join patient and trial to sort.
    events = PatientEvent.objects.filter(patient_id__in=list(inputs)).order_by("patient_id", "date", "id")
    for patient_id, kind, day in events.values_list("patient_id", "kind", "date"):
        inputs[patient_id].events.append((kind, day))
    cycles = Cycle.objects.filter(patient_id__in=list(inputs)).order_by("patient_id", "number")
    for patient_id, number, day1, given in cycles.values_list("patient_id", "number", "day1", "given"):
        inputs[patient_id].cycles.append((number, day1, given))
    following = [p for p in patients if not schedule.follow_up_over(inputs[p.pk].facts(p.hct_date), today, params)]
    ids = [p.pk for p in following]
    assessments = Assessment.objects.filter(patient_id__in=ids).order_by("patient_id", "date", "id")
    for patient_id, kind, day in assessments.values_list("patient_id", "kind", "date"):
        inputs[patient_id].assessments.append(schedule.DoneAssessment(kind, day))
    consents = Consent.objects.filter(patient_id__in=ids).order_by("patient_id", "date", "id")
    for patient_id, version, day in consents.values_list("patient_id", "protocol_version__version", "date"):
        inputs[patient_id].consents.append(schedule.Consent(version, day))
    for patient in following:
        hct_date = patient.hct_date
        calendar = schedule.visit_calendar(inputs[patient.pk].facts(hct_date), today, params)
        pending = tuple(
            a
            for a in calendar
            if a.status in ("due", "overdue") or (a.status == "upcoming" and a.window_start <= week_end)
        )
        cycle = _due_cycle(patient, inputs[patient.pk], hct_date, params, week_end, today)
        if cycle is None and not pending:
            continue
        by_site.setdefault(patient.site_id, (patient.site, []))[1].append(WorklistRow(patient, cycle, pending))
    return [SiteWorklist(site, tuple(rows)) for site, rows in by_site.values()]


def calendar_summary(entries: tuple[schedule.PlannedAssessment, ...]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    return counts


def medication_get(user, medication_id: int) -> ConcomitantMedication:  # type: ignore[no-untyped-def]
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, ConcomitantMedication.objects.select_related("patient__trial", "patient__site"), pk=medication_id
    )


def visit_status_carried(patient: Patient, visit_date: datetime.date) -> carry_forward.CarriedStatus:
    """The GVHD/SOS status the cycle screen proposes for a visit on ``visit_date``: from the
    previous cycle's visit status or the latest GVHD episode (dosing.carry_forward decides)."""
    visits = [
        carry_forward.VisitStatus(c.number, c.day1, c.acute_gvhd_grade, c.liver_gvhd, c.sos)
        for c in Cycle.objects.filter(patient=patient, day1__lt=visit_date).order_by("-day1", "-number")[:1]
    ]
    episodes = [
        carry_forward.GvhdEpisodeFacts(
            kind=e.kind,
            onset=e.onset,
            resolved=e.resolved,
            acute_grade=e.acute_grade,
            liver=e.liver_involved or bool(e.liver_stage),
        )
        for e in GvhdEpisode.objects.filter(patient=patient, onset__lte=visit_date)  # current (not voided) records
    ]
    return carry_forward.carried_forward(visit_date, visits, episodes)
