"""Reads for data cleaning: query lists, threads and the casebook badges.

Every list costs a fixed number of SQL queries whatever its length: rows carry their
patient, site, raiser and record type by join, and nothing reads the queried records
themselves (the record type and field label come from the model registry).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Min, Model, Q, QuerySet
from django.utils import timezone

from cleaning.models import DataQuery, QueryMessage, SourceVerification
from cleaning.rules import AE_LAB_REGRADE
from patients.models import Patient
from safety.models import AdverseEvent
from trial import access
from trial.models import Site, Trial

# The casebook page that shows a record of each type (the badge's "back to the record").
RECORD_PAGES = {
    "patients.patient": "patient_detail",
    "patients.transplant": "patient_detail",
    "patients.consent": "patient_detail",
    "patients.screening": "patient_detail",
    "patients.assessment": "patient_assessments",
    "patients.patientevent": "patient_events",
    "dosing.cycle": "patient_dosing",
    "dosing.labpanel": "patient_dosing",  # each panel also has its own page (lab_panel_detail)
    "dosing.deviation": "patient_dosing",
    "dosing.concomitantmedication": "patient_dosing",
    "safety.adverseevent": "patient_safety",
    "safety.gvhdepisode": "patient_safety",
    "safety.dltadjudication": "patient_safety",
    "safety.labproposaldismissal": "patient_safety",
}
# The record's own edit page, for record types corrected there rather than from the query:
# (url name, "record" = the record's id / "patient" = the patient's id).
EDIT_PAGES = {
    "safety.adverseevent": ("ae_edit", "record"),
    "patients.patient": ("patient_edit", "patient"),
    "patients.transplant": ("transplant_edit", "patient"),
    "patients.assessment": ("assessment_edit", "record"),
    "patients.patientevent": ("event_edit", "record"),
    "dosing.concomitantmedication": ("medication_edit", "record"),
    "dosing.cycle": ("cycle_correct", "record"),
    "dosing.labpanel": ("lab_panel_correct", "record"),
}
# The record's own view page, for the SDV worksheet's "open the record" link.
VIEW_PAGES = {
    "dosing.labpanel": "lab_panel_detail",
    "dosing.cycle": "cycle_history",
}

OPEN_STATES = (DataQuery.State.OPEN, DataQuery.State.ANSWERED)


def target_label(query: DataQuery) -> str:
    """ "adverse event #12", from the record type (no read of the record)."""
    content_type = query.content_type  # joined by the selectors (no SQL)
    model = content_type.model_class()
    name = model._meta.verbose_name if model is not None else content_type.model
    return f"{name} #{query.object_id}"


def target_key(query: DataQuery) -> str:
    content_type = query.content_type
    return f"{content_type.app_label}.{content_type.model}"


def query_list(
    user: Any,
    *,
    trial: int | None = None,
    state: str = "",
    site: int | None = None,
    patient: int | None = None,
    origin: str = "",
    capability: str = "view_clinical",
) -> QuerySet[DataQuery]:
    """The user's queries, filtered; newest first. One SQL query (plus a count if paged)."""
    qs = access.scope(user, DataQuery.objects.all(), capability).select_related(
        "patient", "site", "trial", "raised_by", "content_type"
    )
    if trial is not None:
        qs = qs.filter(trial_id=trial)
    if state == "live":
        qs = qs.filter(state__in=OPEN_STATES)
    elif state:
        qs = qs.filter(state=state)
    if site is not None:
        qs = qs.filter(site_id=site)
    if patient is not None:
        qs = qs.filter(patient_id=patient)
    if origin:
        qs = qs.filter(origin=origin)
    return qs.order_by("created_at", "id")


def query_get(user: Any, data_query_id: int) -> DataQuery:
    """One query in the user's scope (404 otherwise)."""
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user,
        DataQuery.objects.select_related("patient", "site", "trial", "raised_by", "content_type"),
        pk=data_query_id,
    )


def query_thread(query: DataQuery) -> list[QueryMessage]:
    return list(QueryMessage.objects.filter(query=query).select_related("author").order_by("created_at", "id"))


def age_days(query: DataQuery, now: datetime | None = None) -> int:
    return max(0, ((now or timezone.now()) - query.created_at).days)


@dataclass
class QueryIndex:
    """A patient's unclosed queries by record and field, read in one SQL query per page."""

    patient: Patient | None = None
    by_record: dict[tuple[int, int], list[DataQuery]] = field(default_factory=dict)

    def for_record(self, record: Model) -> list[DataQuery]:
        content_type = ContentType.objects.get_for_model(type(record))
        return self.by_record.get((content_type.pk, record.pk), [])

    def for_field(self, record: Model, field_name: str) -> list[DataQuery]:
        return [q for q in self.for_record(record) if q.field_name == field_name]

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_record.values())


def open_query_index(patient: Patient) -> QueryIndex:
    """Every unclosed query of ``patient`` (the view already scoped the patient)."""
    grouped: dict[tuple[int, int], list[DataQuery]] = defaultdict(list)
    for query in DataQuery.objects.filter(patient=patient, state__in=OPEN_STATES).order_by("created_at", "id"):
        grouped[(query.content_type_id, query.object_id)].append(query)
    return QueryIndex(patient, dict(grouped))


def open_counts_by_site(user: Any, trial: int) -> dict[int, int]:
    """Unclosed queries per site id (for a dashboard), one SQL query."""
    rows = (
        query_list(user, trial=trial, state="live")
        .order_by()
        .values("site_id")
        .annotate(n=Count("id"))
        .values_list("site_id", "n")
    )
    return dict(rows)


# --- source data verification: the mark a record shows -------------------------------


@dataclass(frozen=True)
class SdvStatus:
    """A record's verification, derived from its marks and its current version.

    "verified": a mark of the current version; "cleared": the latest mark is of an older
    version, and ``cleared_at`` / ``cleared_version`` name the edit that came after it;
    "none": never verified.
    """

    state: str
    version: int
    mark: SourceVerification | None = None
    cleared_at: datetime | None = None
    cleared_version: int | None = None

    @property
    def text(self) -> str:
        if self.mark is None:
            return "Not source verified."
        who = self.mark.verified_by_name or _person(self.mark.verified_by)  # an imported mark: as recorded
        verified = (
            f"verified by {who} on {self.mark.verified_at:%Y-%m-%d %H:%M} UTC (version {self.mark.record_version})"
        )
        if self.state == "verified":
            return f"Source {verified}."
        when = f"{self.cleared_at:%Y-%m-%d %H:%M} UTC" if self.cleared_at is not None else "a later edit"
        return f"Verification cleared by the edit of {when}, version {self.cleared_version}: was {verified}."


def _person(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "system"


def _first_edits_after(model: type[Model], marks: dict[int, SourceVerification]) -> dict[int, tuple[datetime, int]]:
    """record id -> (time, version) of the first edit after each record's mark: the edit
    that cleared it. One SQL query on the record type's history table."""
    if not marks:
        return {}
    wanted = Q()
    for object_id, mark in marks.items():
        wanted |= Q(id=object_id, version=mark.record_version + 1)
    rows = model.history.filter(wanted).values_list("id", "history_date", "version")  # type: ignore[attr-defined]
    return {object_id: (at, version) for object_id, at, version in rows}


def _status(record: Model, mark: SourceVerification | None, edit: tuple[datetime, int] | None) -> SdvStatus:
    version = record.version  # type: ignore[attr-defined]
    if mark is None:
        return SdvStatus("none", version)
    if mark.record_version == version:
        return SdvStatus("verified", version, mark)
    at, cleared_version = edit if edit is not None else (None, mark.record_version + 1)
    return SdvStatus("cleared", version, mark, at, cleared_version)


def _latest_marks(queryset: QuerySet[SourceVerification]) -> dict[tuple[int, int], SourceVerification]:
    latest: dict[tuple[int, int], SourceVerification] = {}
    for mark in queryset.select_related("verified_by").order_by("record_version", "verified_at", "id"):
        latest[(mark.content_type_id, mark.object_id)] = mark
    return latest


def sdv_status(record: Model) -> SdvStatus:
    """The verification of one record (the view already scoped it). Two SQL queries."""
    content_type = ContentType.objects.get_for_model(type(record))
    marks = _latest_marks(SourceVerification.objects.filter(content_type=content_type, object_id=record.pk))
    mark = marks.get((content_type.pk, record.pk))
    stale = {record.pk: mark} if mark is not None and mark.record_version != record.version else {}  # type: ignore[attr-defined]
    edits = _first_edits_after(type(record), stale)
    return _status(record, mark, edits.get(record.pk))


@dataclass(frozen=True)
class SdvRow:
    record: Model
    kind: str  # the record type, e.g. "adverse event"
    key: str  # "safety.adverseevent:12", the value the verify form posts
    status: SdvStatus
    url: str = ""  # the record's own page, where the monitor sees what they verify


def _casebook_records(patient: Patient) -> list[tuple[type[Model], list[Model]]]:
    from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
    from patients.models import Assessment, Consent, PatientEvent, Screening, Transplant
    from safety.models import AdverseEvent, GvhdEpisode

    related: dict[type[Model], tuple[str, ...]] = {
        Consent: ("protocol_version",),
        AdverseEvent: ("term",),
    }
    groups: list[tuple[type[Model], list[Model]]] = [(Patient, [patient])]
    for model in (
        Transplant, Consent, Screening, Assessment, PatientEvent, LabPanel, Cycle, Deviation,
        ConcomitantMedication, AdverseEvent, GvhdEpisode,
    ):  # fmt: skip
        rows = list(model._default_manager.filter(patient=patient).select_related(*related.get(model, ())))
        for row in rows:
            row.patient = patient  # type: ignore[attr-defined]  # str() names the patient: no query per row
        groups.append((model, rows))
    return groups


def sdv_casebook(patient: Patient) -> list[SdvRow]:
    """Every record of the casebook with its verification (the monitor's worksheet).
    A SQL query per record type and one for the marks, plus one per record type that
    has a cleared mark (the edits that cleared them)."""
    marks = _latest_marks(SourceVerification.objects.filter(patient=patient))
    rows: list[SdvRow] = []
    for model, records in _casebook_records(patient):
        content_type = ContentType.objects.get_for_model(model)
        found = {r.pk: marks.get((content_type.pk, r.pk)) for r in records}
        stale = {pk: m for pk, m in found.items() if m is not None and m.record_version != _version(records, pk)}
        edits = _first_edits_after(model, stale)
        for record in records:
            rows.append(
                SdvRow(
                    record,
                    str(model._meta.verbose_name),
                    f"{content_type.app_label}.{content_type.model}:{record.pk}",
                    _status(record, found[record.pk], edits.get(record.pk)),
                    _view_url(content_type, record.pk),
                )
            )
    return rows


def _view_url(content_type: ContentType, pk: int) -> str:
    from django.urls import reverse

    name = VIEW_PAGES.get(f"{content_type.app_label}.{content_type.model}")
    return reverse(name, args=[pk]) if name else ""


def _version(records: list[Model], pk: int) -> int:
    return next(r.version for r in records if r.pk == pk)  # type: ignore[attr-defined]


# --- the site worklist of unclosed queries and the counts per site ---------------------


@dataclass(frozen=True)
class WorklistRow:
    query: DataQuery
    age_days: int
    target: str  # "adverse event #12 · grade"


def worklist_rows(queries: list[DataQuery], now: datetime | None = None) -> list[WorklistRow]:
    """A page of the worklist: age and target label of each query, no SQL (the record
    type comes from the content-type cache, filled by the list's join)."""
    now = now or timezone.now()
    rows = []
    for query in queries:
        model = query.content_type.model_class()
        label = f"{model._meta.verbose_name if model else query.content_type.model} #{query.object_id}"
        if query.field_name:
            label = f"{label} · {_field_label(model, query.field_name)}"
        rows.append(WorklistRow(query, age_days(query, now), label))
    return rows


def _field_label(model: type[Model] | None, field_name: str) -> str:
    try:
        return str(model._meta.get_field(field_name).verbose_name) if model is not None else field_name
    except FieldDoesNotExist:
        return field_name


@dataclass(frozen=True)
class SiteQueryCount:
    site: Site
    open: int  # awaiting the site's answer
    answered: int  # awaiting the raiser's close
    oldest_days: int | None  # age of the oldest unclosed query


def query_counts_by_site(user: Any, trial: Trial, site_code: str | None = None) -> list[SiteQueryCount]:
    """Unclosed queries per site of the user's scope, sites without any included. Two
    SQL queries whatever the number of queries."""
    sites = access.scope(user, Site.objects.filter(trial=trial)).order_by("code")
    if site_code:
        sites = sites.filter(code=site_code)
    counts = {
        row["site_id"]: row
        for row in query_list(user, trial=trial.pk, state="live")
        .order_by()
        .values("site_id")
        .annotate(
            open=Count("id", filter=Q(state=DataQuery.State.OPEN)),
            answered=Count("id", filter=Q(state=DataQuery.State.ANSWERED)),
            oldest=Min("created_at"),
        )
    }
    now = timezone.now()
    result = []
    for site in sites:
        row = counts.get(site.pk)
        if row is None:
            result.append(SiteQueryCount(site, 0, 0, None))
        else:
            result.append(SiteQueryCount(site, row["open"], row["answered"], max(0, (now - row["oldest"]).days)))
    return result


@dataclass
class SdvIndex:
    """A patient's verification marks, read once per page (one SQL query), so every record
    on a casebook page shows its mark at a fixed cost. The time of a clearing edit comes
    from the audit trail (as the history page shows it): the history of a record type is
    read once per page, and only when one of its marks was cleared."""

    marks: dict[tuple[int, int], SourceVerification]
    _edits: dict[type[Model], dict[int, tuple[datetime, int]]] = field(default_factory=dict)

    def status(self, record: Model) -> SdvStatus:
        model = type(record)
        content_type = ContentType.objects.get_for_model(model)
        mark = self.marks.get((content_type.pk, record.pk))
        version = record.version  # type: ignore[attr-defined]
        if mark is None or mark.record_version == version:
            return _status(record, mark, None)
        if model not in self._edits:
            stale = {pk: m for (ct, pk), m in self.marks.items() if ct == content_type.pk}
            self._edits[model] = _first_edits_after(model, stale)
        return _status(record, mark, self._edits[model].get(record.pk))


def sdv_index(patient: Patient) -> SdvIndex:
    return SdvIndex(_latest_marks(SourceVerification.objects.filter(patient=patient)))


@dataclass(frozen=True)
class OpenQueries:
    count: int
    oldest: list[WorklistRow]


def open_queries_for_site_staff(user: Any, trial: Trial, limit: int = 10) -> OpenQueries:
    """The queries awaiting an answer from the user's sites, the oldest first (the
    coordinator's home page). Two SQL queries."""
    queries = query_list(user, trial=trial.pk, state=DataQuery.State.OPEN)
    return OpenQueries(queries.count(), worklist_rows(list(queries[:limit])))


# --- the pre-lock checklist (issue 19) ---------------------------------------------


def lock_checklist(patient: Patient) -> Any:
    """The casebook's pre-lock checklist (cleaning.rules.lock_checklist) from its counts:
    unclosed queries, records not verified at their current version (the SDV worksheet's
    rows), and whether the casebook carries a valid investigator review signature."""
    from cleaning.rules import lock_checklist as rule
    from core.models import Signature
    from core.signatures import signature_verify

    rows = sdv_casebook(patient)
    content_type = ContentType.objects.get_for_model(Patient)
    reviews = Signature.objects.filter(
        content_type=content_type, object_id=patient.pk, meaning=Signature.Meaning.REVIEWED
    ).select_related("content_type")
    return rule(
        open_queries=DataQuery.objects.filter(patient=patient, state__in=OPEN_STATES).count(),
        records=len(rows),
        verified=sum(1 for r in rows if r.status.state == "verified"),
        review_signed=any(signature_verify(s, patient).valid for s in reviews),
    )


def lab_regrade_queries(panel: Any) -> list[tuple[Any, DataQuery]]:
    """(AE, query) of the AEs confirmed from lab panel ``panel`` whose grade its corrected
    values no longer meet (the unclosed ``ae_lab_regrade`` queries): "graded AEs to review".
    Two SQL queries. The panel is in the caller's scope, so are its patient's AEs."""
    aes = {ae.pk: ae for ae in AdverseEvent.objects.filter(lab_panel_id=panel.pk).select_related("term")}
    if not aes:
        return []
    queries = (
        DataQuery.objects.filter(
            content_type=ContentType.objects.get_for_model(AdverseEvent),
            object_id__in=list(aes),
            rule_code=AE_LAB_REGRADE,
        )
        .exclude(state=DataQuery.State.CLOSED)
        .order_by("id")
    )
    return [(aes[q.object_id], q) for q in queries]


# --- records voided as entered in error (issue 19) ---------------------------------------

# The record types that can be voided (services.voidable_models): every
# core.models.Voidable record of a casebook.
VOIDABLE_TYPES = (
    "safety.adverseevent",
    "dosing.labpanel",
    "patients.assessment",
    "patients.patientevent",
    "dosing.concomitantmedication",
    "safety.gvhdepisode",
)


def voidable_model(label: str) -> type[Model]:
    """The voidable model of ``label`` ("safety.adverseevent"); LookupError if none."""
    from django.apps import apps

    if label not in VOIDABLE_TYPES:
        raise LookupError(f"{label} cannot be voided")
    return apps.get_model(label)


def voidable_record_get(user: Any, url_kwargs: dict[str, Any]) -> Any:
    """The current (not voided) record a void URL names (its ``<model>_id`` argument), in
    the user's scope; 404 otherwise (out of scope, already voided, not a voidable type)."""
    from django.http import Http404

    from core.locks import model_named

    for kwarg, pk in url_kwargs.items():
        model = model_named(kwarg)
        if model is not None and model._meta.label_lower in VOIDABLE_TYPES:
            queryset = model._default_manager.select_related("patient", "patient__trial", "patient__site")
            return access.get_scoped_or_404(user, queryset, "view_clinical", pk=pk)
    raise Http404("No record to void matches the given query.")


def voided_records(patient: Patient, label: str) -> list[Any]:
    """The patient's records of type ``label`` voided as entered in error, newest first,
    with who voided them (the caller scoped the patient). Kept out of every clinical list;
    the casebook pages show them struck through, with the reason."""
    model = voidable_model(label)
    return list(
        model.all_objects.filter(patient=patient, voided_at__isnull=False)  # type: ignore[attr-defined]
        .select_related("voided_by", "patient")
        .order_by("-voided_at", "-id")
    )
