"""The record status grid (issue 16 item 17; REDCap's record status dashboard): one row per
patient, one cell per form (screening, enrolment, each cycle, adverse events, assessments),
each marked complete / incomplete / query open / verified / locked, linking to the record.

A fixed number of SQL queries whatever the number of patients: the patients (with their
latest screening and lock state by join and subquery), then one query each for cycles,
adverse events, assessments, the live data queries, the SDV marks, the protocol's
number of cycles and the stored dashboard lists (assessments overdue). Nothing reads a
record one at a time.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.urls import reverse

from cleaning.models import DataQuery, SourceVerification
from cleaning.selectors import OPEN_STATES
from dosing.models import Cycle
from patients.models import Assessment, CasebookLock, Patient, Screening
from safety.models import AdverseEvent
from trial import access
from trial.models import Site, Trial, TrialComputation, TrialLock

# The marks, worst first: the cell shows the first that applies.
LOCKED, QUERY, INCOMPLETE, COMPLETE, VERIFIED, EMPTY = "locked", "query", "incomplete", "complete", "verified", "empty"
MARK_LABELS = {
    LOCKED: "Locked",
    QUERY: "Query open",
    INCOMPLETE: "Incomplete",
    COMPLETE: "Complete",
    VERIFIED: "Verified",
    EMPTY: "Not started",
}


@dataclass(frozen=True)
class Cell:
    mark: str
    text: str  # what the cell says besides its mark ("2 AEs", "given 2024-03-01")
    url: str

    @property
    def mark_label(self) -> str:
        return MARK_LABELS[self.mark]


@dataclass
class Row:
    patient: Patient
    cells: list[Cell] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The row's worst mark among the forms started: the patient list's completeness marker."""
        marks = {c.mark for c in self.cells if c.mark != EMPTY}
        for mark in (LOCKED, QUERY, INCOMPLETE, COMPLETE, VERIFIED):
            if mark in marks:
                return mark
        return EMPTY

    @property
    def summary_label(self) -> str:
        return MARK_LABELS[self.summary]


@dataclass
class Grid:
    columns: list[str]
    rows: list[Row]
    marks: dict[str, str] = field(default_factory=lambda: dict(MARK_LABELS))


def _record_mark(
    records: Iterable[Any], key: str, queried: set[tuple[str, int]], verified: set[tuple[str, int, int]]
) -> str | None:
    """QUERY if any record has a live query, VERIFIED if every record's current version is verified."""
    records = list(records)
    if any((key, r.pk) in queried for r in records):
        return QUERY
    if records and all((key, r.pk, r.version) in verified for r in records):
        return VERIFIED
    return None


def _mark(records: Iterable[Any], key: str, complete: bool, ctx: "_Context") -> str:
    return _record_mark(records, key, ctx.queried, ctx.verified) or (COMPLETE if complete else INCOMPLETE)


@dataclass
class _Context:
    locked: bool  # the casebook (or the whole trial) is locked
    queried: set[tuple[str, int]]
    verified: set[tuple[str, int, int]]


def grid_patients(user, trial: Trial, site: Site | None = None) -> QuerySet[Patient]:  # type: ignore[no-untyped-def]
    """The patients the grid shows: the user's (coordinators: their sites), by subject ID."""
    latest = Screening.objects.filter(patient=OuterRef("pk")).order_by("-date", "-id")
    qs = access.scope(user, Patient.objects.select_related("site")).filter(trial=trial)
    if site is not None:
        qs = qs.filter(site=site)
    lock_state = CasebookLock.objects.filter(patient=OuterRef("pk")).values("state")[:1]
    return qs.annotate(
        latest_screening_id=Subquery(latest.values("id")[:1]),
        latest_screening_version=Subquery(latest.values("version")[:1]),
        latest_screening_result=Subquery(latest.values("result")[:1]),
        latest_screening_date=Subquery(latest.values("date")[:1]),
        casebook_state=Subquery(lock_state),
    ).order_by("subject_id", "pk")


def status_grid(user, trial: Trial, patients: Iterable[Patient]) -> Grid:  # type: ignore[no-untyped-def]
    """The grid for ``patients`` (from ``grid_patients``, possibly one page of them)."""
    patients = list(patients)
    ids = [p.pk for p in patients]
    cycles: dict[int, dict[int, Cycle]] = defaultdict(dict)
    for c in Cycle.objects.filter(patient_id__in=ids).only("id", "patient_id", "number", "day1", "given", "version"):
        cycles[c.patient_id][c.number] = c
    aes: dict[int, list[AdverseEvent]] = defaultdict(list)
    for ae in AdverseEvent.objects.filter(patient_id__in=ids).only("id", "patient_id", "outcome", "version"):
        aes[ae.patient_id].append(ae)
    assessments: dict[int, list[Assessment]] = defaultdict(list)
    for a in Assessment.objects.filter(patient_id__in=ids).only("id", "patient_id", "version"):
        assessments[a.patient_id].append(a)
    queried: set[tuple[str, int]] = set()
    for app, model, object_id in DataQuery.objects.filter(patient_id__in=ids, state__in=OPEN_STATES).values_list(
        "content_type__app_label", "content_type__model", "object_id"
    ):
        queried.add((f"{app}.{model}", object_id))
    verified: set[tuple[str, int, int]] = {
        (f"{app}.{model}", object_id, version)
        for app, model, object_id, version in SourceVerification.objects.filter(patient_id__in=ids).values_list(
            "content_type__app_label", "content_type__model", "object_id", "record_version"
        )
    }
    planned = trial.protocol_versions.aggregate(n=Max("max_cycles"))["n"] or 0
    recorded = max((n for by_number in cycles.values() for n in by_number), default=0)
    n_cycles = max(planned, recorded)
    trial_locked = TrialLock.objects.filter(trial=trial, state=TrialLock.State.LOCKED).exists()
    overdue: dict[int, int] = defaultdict(int)
    stored = (
        TrialComputation.objects.filter(trial=trial, kind=TrialComputation.Kind.DASHBOARD, computed_at__isnull=False)
        .values_list("data", flat=True)
        .first()
    )
    for o in (stored or {}).get("overdue", []):
        overdue[o["patient_id"]] += 1

    columns = [
        "Screening",
        "Enrolment",
        *[f"Cycle {n}" for n in range(1, n_cycles + 1)],
        "Adverse events",
        "Assessments",
    ]
    rows = []
    for p in patients:
        ctx = _Context(
            locked=trial_locked or p.casebook_state == CasebookLock.State.LOCKED, queried=queried, verified=verified
        )
        row = Row(patient=p)
        # Screening: the latest one; complete when it reached a result other than missing data.
        if p.latest_screening_id is None:
            row.cells.append(Cell(EMPTY, "not screened", reverse("screening_create", args=[p.pk])))
        else:
            screening = _Stub(p.latest_screening_id, p.latest_screening_version)
            complete = p.latest_screening_result != Screening.Result.INCOMPLETE
            result = Screening.Result(p.latest_screening_result).label
            row.cells.append(
                Cell(
                    _mark([screening], "patients.screening", complete, ctx),
                    f"{p.latest_screening_date.isoformat()}: {result}",
                    reverse("screening_detail", args=[p.latest_screening_id]),
                )
            )
        # Enrolment: the patient record itself carries it.
        if p.enrolled_on is None:
            row.cells.append(Cell(EMPTY, "not enrolled", reverse("patient_detail", args=[p.pk])))
        else:
            row.cells.append(
                Cell(
                    _mark([p], "patients.patient", True, ctx),
                    f"enrolled {p.enrolled_on.isoformat()}",
                    reverse("patient_detail", args=[p.pk]),
                )
            )
        dosing_url = reverse("patient_dosing", args=[p.pk])
        for n in range(1, n_cycles + 1):
            cycle = cycles[p.pk].get(n)
            if cycle is None:
                row.cells.append(Cell(EMPTY, "—", dosing_url))
                continue
            if cycle.day1 is not None:
                text, complete = f"given {cycle.day1.isoformat()}", True
            elif not cycle.given:
                text, complete = "not given", True
            else:
                text, complete = "no dose date", False
            row.cells.append(Cell(_mark([cycle], "dosing.cycle", complete, ctx), text, f"{dosing_url}#cycle-{n}"))
        safety_url = reverse("patient_safety", args=[p.pk])
        patient_aes = aes[p.pk]
        if not patient_aes:
            row.cells.append(Cell(EMPTY, "none recorded", safety_url))
        else:
            without_outcome = sum(1 for ae in patient_aes if not ae.outcome)
            text = f"{len(patient_aes)} AE{'s' if len(patient_aes) != 1 else ''}"
            if without_outcome:
                text += f", {without_outcome} without outcome"
            row.cells.append(
                Cell(_mark(patient_aes, "safety.adverseevent", not without_outcome, ctx), text, safety_url)
            )
        assessments_url = reverse("patient_assessments", args=[p.pk])
        recorded_assessments, due = assessments[p.pk], overdue[p.pk]
        text = f"{len(recorded_assessments)} recorded" + (f", {due} overdue" if due else "")
        if not recorded_assessments and not due:
            row.cells.append(Cell(EMPTY, "none due", assessments_url))
        else:
            row.cells.append(
                Cell(_mark(recorded_assessments, "patients.assessment", not due, ctx), text, assessments_url)
            )
        if ctx.locked:  # a locked casebook takes nothing more: every form shows the lock
            row.cells = [Cell(LOCKED, cell.text, cell.url) for cell in row.cells]
        rows.append(row)
    return Grid(columns=columns, rows=rows)


@dataclass(frozen=True)
class _Stub:
    """A record known only by id and version (the latest screening, read by subquery)."""

    pk: int
    version: int
