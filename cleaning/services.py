"""Writes for data queries: raise, answer (with an optional data correction), close, re-open.

Every step is one transaction that writes a QueryMessage and moves the query's state
through record_create/record_update, so the query's own history is its audit trail.
A correction is not written here: it goes through the record's normal update service
(its rules, its recomputation requests, the casebook lock guard) with the reason
"Query #<id>: <reason>", and the message keeps the history row that service wrote, so
the trail links raise -> correction -> close (issue 12).
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from cleaning import rules as cleaning_rules
from cleaning.models import DataQuery, QueryMessage, SourceVerification
from cleaning.rules import Finding
from core.audit import record_create, record_update
from core.errors import RecordLocked
from core.models import AuditedModel
from core.recorded_times import future_time_problems
from dosing import services as dosing_services
from dosing.models import ConcomitantMedication, Cycle, LabPanel
from dosing.params import trial_schedule_params
from dosing.schedule import visit_calendar
from dosing.selectors import follow_up_facts
from dosing.services import LAB_FIELDS
from patients import services as patient_services
from patients.models import Assessment, Patient, PatientEvent, Transplant
from safety import lab_grading
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.models import AdverseEvent
from trial import access

State = DataQuery.State
Kind = QueryMessage.Kind

# Fields that are bookkeeping, not data a query can be about.
_NOT_QUERYABLE = {"id", "created_at", "updated_at", "version", "patient", "trial", "site"}


@dataclass(frozen=True)
class Corrector:
    """How a record type is corrected: the fields its update service accepts, and the call."""

    fields: tuple[str, ...]
    update: Callable[[Any, Any, dict[str, Any], str], AuditedModel]


def _correctors() -> dict[type[models.Model], Corrector]:
    return {
        AdverseEvent: Corrector(
            safety_services.AE_FIELDS,
            lambda user, obj, changes, reason: safety_services.ae_update(
                user=user, ae=obj, changes=changes, reason=reason
            ),
        ),
        Patient: Corrector(
            patient_services.EDITABLE_FIELDS,
            lambda user, obj, changes, reason: patient_services.patient_update(
                user=user, patient=obj, changes=changes, reason=reason
            ),
        ),
        Transplant: Corrector(
            patient_services.TRANSPLANT_FIELDS,
            lambda user, obj, changes, reason: patient_services.transplant_update(
                user=user, transplant=obj, changes=changes, reason=reason, expected_version=None
            ),
        ),
        Assessment: Corrector(
            patient_services.ASSESSMENT_FIELDS,
            lambda user, obj, changes, reason: patient_services.assessment_update(
                user=user, assessment=obj, changes=changes, reason=reason, expected_version=None
            ),
        ),
        PatientEvent: Corrector(
            patient_services.EVENT_FIELDS,
            lambda user, obj, changes, reason: patient_services.event_update(
                user=user, event=obj, changes=changes, reason=reason, expected_version=None
            ),
        ),
        ConcomitantMedication: Corrector(
            ("agent", "other_agent", "start", "stop"),
            lambda user, obj, changes, reason: dosing_services.medication_update(
                user=user, medication=obj, changes=changes, reason=reason
            ),
        ),
        LabPanel: Corrector(
            dosing_services.LAB_PANEL_CORRECTABLE_FIELDS,
            lambda user, obj, changes, reason: dosing_services.lab_panel_update(
                user=user, panel=obj, changes=changes, reason=reason
            ),
        ),
        Cycle: Corrector(
            dosing_services.CYCLE_CORRECTABLE_FIELDS,
            lambda user, obj, changes, reason: dosing_services.cycle_update(
                user=user, cycle=obj, changes=changes, reason=reason
            ),
        ),
    }


def corrector_for(model: type[models.Model]) -> Corrector | None:
    """The update service that corrects ``model`` here, or None (corrected on its own page)."""
    return _correctors().get(model)


def casebook_record_get(user: Any, target_type: str, target_id: int, capability: str, where: str) -> models.Model:
    """The casebook record named "<app>.<model>" + id that ``user`` may act on with
    ``capability`` (raise_query, verify); anything else reads as "not found" (no leak).
    ``where`` ends the refusal: "No such record in a trial where you <where>." """
    app_label, _, model_name = target_type.strip().lower().partition(".")
    try:
        model = ContentType.objects.get_by_natural_key(app_label, model_name).model_class()
    except ContentType.DoesNotExist:
        model = None
    if model is None or not is_queryable_model(model):
        raise ValidationError({"target_type": ["Not a casebook record type (e.g. safety.adverseevent)."]})
    target = access.scope(user, model._default_manager.all(), capability).filter(pk=target_id).first()
    if target is None:
        raise ValidationError({"target_id": [f"No such record in a trial where you {where}."]})
    return target


def is_queryable_model(model: type[models.Model]) -> bool:
    """Casebook records: the patient itself and every audited record hanging off one."""
    if model is Patient:
        return True
    if not issubclass(model, AuditedModel) or model._meta.app_label not in {"patients", "dosing", "safety"}:
        return False
    try:
        field = model._meta.get_field("patient")
    except FieldDoesNotExist:
        return False
    return getattr(field, "related_model", None) is Patient


def queryable_fields(model: type[models.Model]) -> list[tuple[str, str]]:
    """(name, label) of the fields of ``model`` a query can be raised on."""
    return [
        (f.name, str(f.verbose_name))
        for f in model._meta.concrete_fields
        if f.editable and f.name not in _NOT_QUERYABLE and not f.name.startswith("history")
    ]


def field_label(model: type[models.Model] | None, field_name: str) -> str:
    if not field_name:
        return ""
    if model is None:
        return field_name
    try:
        return str(model._meta.get_field(field_name).verbose_name)
    except FieldDoesNotExist:
        return field_name


def patient_of(target: models.Model) -> Patient:
    if isinstance(target, Patient):
        return target
    patient = getattr(target, "patient", None)
    if not isinstance(patient, Patient):
        raise ValidationError({"target": ["Queries are raised on a patient's casebook records."]})
    return patient


def query_target(query: DataQuery) -> models.Model:
    """The queried record (fetched fresh: a correction reads its current version)."""
    model = ContentType.objects.get_for_id(query.content_type_id).model_class()
    if model is None:
        raise ValidationError({"target": ["The queried record type no longer exists."]})
    # A voided record (issue 19) keeps its queries: read it among all records.
    return getattr(model, "all_objects", model._default_manager).get(pk=query.object_id)


def _check_field(model: type[models.Model], field_name: str) -> None:
    if field_name and field_name not in {name for name, _ in queryable_fields(model)}:
        raise ValidationError(
            {"field_name": [f"A {model._meta.verbose_name} has no field {field_name!r} that can be queried."]}
        )


def _text(value: str, field: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError({field: [f"{what} is required."]})
    if len(text) > 4000:
        raise ValidationError({field: [f"{what} is too long (at most 4000 characters)."]})
    return text


def _message(query: DataQuery, kind: str, text: str, user: Any, **extra: Any) -> QueryMessage:
    message = QueryMessage(query=query, kind=kind, text=text, author=user, **extra)
    record_create(message, user=user, reason=f"Query #{query.pk}: {kind}")
    return message


def _move(query: DataQuery, state: str, user: Any, reason: str) -> DataQuery:
    changes: dict[str, Any] = {"state": state, "closed_at": timezone.now() if state == State.CLOSED else None}
    return record_update(query, changes, user=user, reason=reason)  # type: ignore[return-value]


# --- manual queries ------------------------------------------------------------------


def query_raise(*, user: Any, target: models.Model, field_name: str, question: str) -> DataQuery:
    """Raise a query on ``target`` (from a scoped lookup) or on one of its fields."""
    model = type(target)
    if not is_queryable_model(model):
        raise ValidationError({"target": [f"Queries cannot be raised on a {model._meta.verbose_name}."]})
    patient = patient_of(target)
    if not access.can(user, "raise_query", patient.trial_id, patient.site_id):
        raise PermissionDenied("Your role does not raise queries in this trial.")
    field_name = (field_name or "").strip()
    _check_field(model, field_name)
    question = _text(question, "question", "A question")
    with transaction.atomic():
        query = DataQuery(
            trial_id=patient.trial_id,
            site_id=patient.site_id,
            patient=patient,
            content_type=ContentType.objects.get_for_model(model),
            object_id=target.pk,
            field_name=field_name,
            question=question,
            raised_by=user,
        )
        record_create(query, user=user, reason="query raised")
        _message(query, Kind.QUESTION, question, user)
    return query


def _parse_value(model: type[models.Model], field_name: str, raw: Any) -> Any:
    """A new value as the form field of the model field cleans it (dates, choices, FKs)."""
    field = model._meta.get_field(field_name)
    form_field = field.formfield()  # type: ignore[union-attr]
    if form_field is None:
        raise ValidationError({"new_value": [f"{field.verbose_name} cannot be corrected here."]})  # type: ignore[union-attr]
    if raw is None:
        raw = ""
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    try:
        return form_field.clean(raw if not isinstance(raw, int | float) else str(raw))
    except ValidationError as exc:
        label = str(field.verbose_name)  # type: ignore[union-attr]
        raise ValidationError({"new_value": [f"{label}: {m}" for m in exc.messages]}) from exc


def _display(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return str(value)


def query_answer(
    *, user: Any, query: DataQuery, text: str, correction: dict[str, Any] | None = None, reason: str = ""
) -> QueryMessage:
    """The site's answer; with ``correction`` ({field: new value}) the record is corrected
    through its own update service in the same transaction (all or nothing)."""
    if not access.can(user, "enter_data", query.trial_id, query.site_id):
        raise PermissionDenied("Queries are answered by the site's coordinators.")
    if query.state == State.CLOSED:
        raise ValidationError({"text": [f"Query #{query.pk} is closed; it must be re-opened before an answer."]})
    text = _text(text, "text", "An answer")
    correction = {k: v for k, v in (correction or {}).items() if k}
    with transaction.atomic():
        query = DataQuery.objects.select_for_update().get(pk=query.pk)
        if query.state == State.CLOSED:
            raise ValidationError({"text": [f"Query #{query.pk} was closed meanwhile."]})
        if not correction:
            message = _message(query, Kind.ANSWER, text, user)
        else:
            message = _correct(user, query, text, correction, reason)
        _move(query, State.ANSWERED, user, f"Query #{query.pk} answered")
    return message


def _correct(user: Any, query: DataQuery, text: str, correction: dict[str, Any], reason: str) -> QueryMessage:
    if len(correction) != 1:
        raise ValidationError({"new_value": ["Correct one field per answer (the queried one)."]})
    target = query_target(query)
    model = type(target)
    if getattr(target, "voided_at", None) is not None:
        raise ValidationError({"new_value": [f"This {model._meta.verbose_name} was voided as entered in error."]})
    corrector = corrector_for(model)
    if corrector is None:
        raise ValidationError(
            {
                "new_value": [
                    f"A {model._meta.verbose_name} is not corrected from a query: correct it on its own page "
                    f"with the reason 'Query #{query.pk}: ...' and say so in the answer."
                ]
            }
        )
    ((field_name, raw),) = correction.items()
    if field_name not in corrector.fields:
        raise ValidationError({"new_value": [f"{field_label(model, field_name)} cannot be corrected here."]})
    if query.field_name and field_name != query.field_name:
        raise ValidationError(
            {"new_value": [f"This query is on {field_label(model, query.field_name)}; correct that field."]}
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason for change is required for a correction."]})
    value = _parse_value(model, field_name, raw)
    old = getattr(target, field_name)
    if old == value:
        raise ValidationError({"new_value": [f"{field_label(model, field_name)} is already {_display(value)}."]})
    try:
        updated = corrector.update(user, target, {field_name: value}, f"Query #{query.pk}: {reason}")
    except RecordLocked:
        raise  # the lock message as it is (the API answers 423)
    except ValidationError as exc:
        raise _as_answer_errors(exc, field_name) from exc
    history = updated.history.order_by("-history_id").first()  # type: ignore[attr-defined]
    return _message(
        query,
        Kind.CORRECTION,
        text,
        user,
        target_history_id=history.history_id if history is not None else None,
        target_version=updated.version,
        corrected_field=field_name,
        old_value=_display(old),
        new_value=_display(getattr(updated, field_name)),
    )


def _as_answer_errors(exc: ValidationError, field_name: str) -> ValidationError:
    """The update service's errors under the answer form's names (the lock message stays on top)."""
    if not hasattr(exc, "error_dict"):
        return exc
    errors: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        key = {field_name: "new_value", "reason_for_change": "reason"}.get(name, name)
        errors.setdefault(key, []).extend(messages)
    return ValidationError(errors)


def query_close(*, user: Any, query: DataQuery, note: str = "") -> DataQuery:
    """The raiser (or anyone who raises queries in the trial) closes the query."""
    if not access.can(user, "raise_query", query.trial_id, query.site_id):
        raise PermissionDenied("Queries are closed by those who raise them.")
    with transaction.atomic():
        query = DataQuery.objects.select_for_update().get(pk=query.pk)
        if query.state == State.CLOSED:
            raise ValidationError({"note": [f"Query #{query.pk} is already closed."]})
        _message(query, Kind.CLOSE, (note or "").strip(), user)
        return _move(query, State.CLOSED, user, f"Query #{query.pk} closed")


def query_reopen(*, user: Any, query: DataQuery, text: str) -> DataQuery:
    """Re-open an answered or closed query with what is still wrong."""
    if not access.can(user, "raise_query", query.trial_id, query.site_id):
        raise PermissionDenied("Queries are re-opened by those who raise them.")
    text = _text(text, "text", "What is still wrong")
    with transaction.atomic():
        query = DataQuery.objects.select_for_update().get(pk=query.pk)
        if query.state == State.OPEN:
            raise ValidationError({"text": [f"Query #{query.pk} is already open."]})
        _message(query, Kind.REOPEN, text, user)
        try:
            with transaction.atomic():
                return _move(query, State.OPEN, user, f"Query #{query.pk} re-opened")
        except IntegrityError as exc:  # an automatic rule raised the same query again meanwhile
            raise ValidationError({"text": ["The rule has raised this query again; answer that one."]}) from exc


# --- automatic queries (raised by the periodic rules task) ---------------------------


def query_raise_automatic(*, target: models.Model, rule_code: str, field_name: str, question: str) -> DataQuery:
    """Raise a rule's query on ``target`` unless one is live already (idempotent)."""
    if not rule_code:
        raise ValueError("an automatic query needs its rule_code")
    patient = patient_of(target)
    content_type = ContentType.objects.get_for_model(type(target))
    live = DataQuery.objects.filter(content_type=content_type, object_id=target.pk, rule_code=rule_code).exclude(
        state=State.CLOSED
    )
    existing = live.first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            query = DataQuery(
                trial_id=patient.trial_id,
                site_id=patient.site_id,
                patient=patient,
                content_type=content_type,
                object_id=target.pk,
                field_name=field_name,
                question=question,
                origin=DataQuery.Origin.AUTOMATIC,
                rule_code=rule_code,
            )
            record_create(query, user=None, reason=f"raised by rule {rule_code}")
            _message(query, Kind.QUESTION, question, None)
            return query
    except IntegrityError:  # a concurrent run raised it first (query_one_live_per_rule)
        return live.get()


def query_close_automatic(*, query: DataQuery, text: str) -> DataQuery:
    """Close a rule's query because the data are fixed (no-op if already closed)."""
    with transaction.atomic():
        query = DataQuery.objects.select_for_update().get(pk=query.pk)
        if query.state == State.CLOSED:
            return query
        _message(query, Kind.AUTO_CLOSE, text, None)
        return _move(query, State.CLOSED, None, f"Query #{query.pk} closed automatically: data fixed")


# --- lab panel corrections: the AEs confirmed from the panel (issue 19 item 2) ----------


def _lab_value(value: Any) -> str:
    return "none" if value is None else _display(value)


def lab_panel_regrade(*, panel: LabPanel, before: dict[str, Any] | None = None) -> None:
    """Compare the AEs confirmed from ``panel`` (source=lab) with the grades its values
    meet now (the entry path's grading, safety.selectors.lab_panel_grades): an AE whose
    grade no longer matches gets one automatic query on its grade naming the panel, the
    old and new value and the grade the value meets (the AE is not edited: a clinical
    judgement and perhaps a signed DLT decision rest on it); an AE that matches again has
    its query closed automatically. ``before``: the panel's values before a correction.
    Called inside the correction's transaction (dosing.services.lab_panel_update) and
    after an AE edit (safety.services.ae_update)."""
    aes = list(AdverseEvent.objects.filter(lab_panel_id=panel.pk).select_related("term").order_by("id"))
    if not aes:
        return
    panel = LabPanel.objects.get(pk=panel.pk)  # the values as stored (decimal places)
    grades = tuple(safety_selectors.lab_panel_grades(panel))
    confirmed = tuple(lab_grading.ConfirmedLabAe(ae.pk, ae.term.meddra_code, ae.grade) for ae in aes)
    mismatches = lab_grading.regrade_mismatches(confirmed, grades)
    content_type = ContentType.objects.get_for_model(AdverseEvent)
    live = {
        query.object_id: query
        for query in DataQuery.objects.filter(
            content_type=content_type, object_id__in=[ae.pk for ae in aes], rule_code=cleaning_rules.AE_LAB_REGRADE
        ).exclude(state=State.CLOSED)
    }
    for ae in aes:
        if ae.pk in mismatches and ae.pk not in live:
            query_raise_automatic(
                target=ae,
                rule_code=cleaning_rules.AE_LAB_REGRADE,
                field_name="grade",
                question=_regrade_question(panel, ae, mismatches[ae.pk], before),
            )
        elif ae.pk in mismatches and _value_changed(ae, before):
            # Corrected again while its query is live: the thread says what the value meets now.
            _message(live[ae.pk], Kind.QUESTION, _regrade_question(panel, ae, mismatches[ae.pk], before), None)
        elif ae.pk not in mismatches and ae.pk in live:
            query_close_automatic(query=live[ae.pk], text=cleaning_rules.auto_close_text(cleaning_rules.AE_LAB_REGRADE))


def _value_changed(ae: AdverseEvent, before: dict[str, Any] | None) -> bool:
    test = lab_grading.lab_test_of_term(ae.term.meddra_code)
    return test is not None and test[0].value in (before or {})


def _close_regrade_queries(ae_ids: list[int], text: str) -> None:
    live = DataQuery.objects.filter(
        content_type=ContentType.objects.get_for_model(AdverseEvent),
        object_id__in=ae_ids,
        rule_code=cleaning_rules.AE_LAB_REGRADE,
    ).exclude(state=State.CLOSED)
    for query in live:
        query_close_automatic(query=query, text=text)


def _regrade_question(panel: LabPanel, ae: AdverseEvent, grade_now: int, before: dict[str, Any] | None) -> str:
    test = lab_grading.lab_test_of_term(ae.term.meddra_code)
    if test is None:  # a lab AE of a term the grading does not know: name the panel only
        value_text = "its values were corrected"
    else:
        name, label, unit = test
        new = getattr(panel, name.value)
        old = (before or {}).get(name.value, new)
        value_text = f"{label} corrected from {_lab_value(old)} to {_lab_value(new)} {unit}"
    meets = f"grade {grade_now}" if grade_now else "no grade (no AE)"
    return (
        f"The lab panel of {panel.date.isoformat()} (#{panel.pk}) this AE was confirmed from was corrected: "
        f"{value_text}, which now meets {meets} for {ae.term.term}; this AE is grade {ae.grade}. "
        "Review the AE's grade (correct it, or void it if there is no AE); it was not changed automatically."
    )


# --- the periodic sweep of automatic queries (cleaning.rules) --------------------------


@dataclass(frozen=True)
class SweepResult:
    raised: int
    closed: int
    refused: int  # raise or close refused, e.g. a locked casebook: tried again next sweep


def _lab_findings(findings: list[tuple[Any, Finding]], updated: dict[Any, Any]) -> None:
    content_type = ContentType.objects.get_for_model(LabPanel).pk
    for row in LabPanel.objects.values("id", "updated_at", *LAB_FIELDS).iterator():
        key = (content_type, row["id"])
        updated[key] = row["updated_at"]
        findings.extend((key, f) for f in cleaning_rules.lab_plausibility({a: row[a] for a in LAB_FIELDS}))


def _overdue_findings(findings: list[tuple[Any, Finding]], updated: dict[Any, Any], today: date) -> None:
    # Enrolled patients only: the visit calendar (PROTOCOL 7) follows patients on study;
    # a screen failure has a transplant but no calendar to keep.
    content_type = ContentType.objects.get_for_model(Patient).pk
    patients = (
        Patient.objects.filter(enrolled_on__isnull=False, transplant__isnull=False)
        .select_related("trial", "transplant")
        .prefetch_related(
            "events", "assessments", "trial__protocol_versions", Prefetch("cycles", Cycle.objects.order_by("number"))
        )
    )
    params: dict[int, Any] = {}
    for patient in patients:
        facts = follow_up_facts(patient)
        if facts is None:
            continue
        if patient.trial_id not in params:
            params[patient.trial_id] = trial_schedule_params(patient.trial)
        key = (content_type, patient.pk)
        updated[key] = patient.updated_at
        calendar = visit_calendar(facts, today, params[patient.trial_id])
        findings.extend((key, f) for f in cleaning_rules.overdue_assessments(calendar, today))


def _ae_findings(findings: list[tuple[Any, Finding]], updated: dict[Any, Any]) -> None:
    content_type = ContentType.objects.get_for_model(AdverseEvent).pk
    eot = dict(PatientEvent.objects.filter(kind=PatientEvent.Kind.END_OF_TREATMENT).values_list("patient_id", "date"))
    ongoing = AdverseEvent.objects.filter(resolved__isnull=True, patient_id__in=list(eot)).values(
        "id", "updated_at", "patient_id", "onset", "resolved", "outcome", "grade", "term__term"
    )
    for row in ongoing.iterator():
        key = (content_type, row["id"])
        updated[key] = row["updated_at"]
        status = cleaning_rules.AeStatus(
            f"{row['term__term']} G{row['grade']}", row["onset"], row["resolved"], row["outcome"]
        )
        finding = cleaning_rules.ae_ongoing_at_eot(status, eot.get(row["patient_id"]))
        if finding is not None:
            findings.append((key, finding))


def _confirmed_at_source(updated: dict[Any, Any]) -> set[tuple[Any, str]]:
    """(record key, rule code) of automatic queries a person closed after the record's
    last edit: the value was confirmed, so the rule does not ask again (cleaning.rules)."""
    last_closing = (
        QueryMessage.objects.filter(query=OuterRef("pk"), kind__in=[Kind.CLOSE, Kind.AUTO_CLOSE])
        .order_by("-created_at", "-id")
        .values("kind")[:1]
    )
    rows = (
        DataQuery.objects.filter(origin=DataQuery.Origin.AUTOMATIC, state=State.CLOSED)
        .annotate(last_closing=Subquery(last_closing))
        .filter(last_closing=Kind.CLOSE)
        .values_list("content_type_id", "object_id", "rule_code", "closed_at", "imported", "updated_at")
    )
    confirmed = set()
    for content_type, object_id, rule_code, closed_at, imported, entered in rows.iterator():
        key = (content_type, object_id)
        # An imported query keeps its historic closing time, older than the record's own
        # re-creation by the same import: the import time (its updated_at) stands for it.
        if key in updated and (closed_at >= updated[key] or imported and entered >= updated[key]):
            confirmed.add((key, rule_code))
    return confirmed


def query_sweep(*, today: date | None = None) -> SweepResult:
    """Raise the automatic queries the rules find and close those whose data were fixed.

    Idempotent (a second run changes nothing) and safe next to a concurrent run (the
    raise is guarded by the one-live-query-per-rule constraint, the close by a row
    lock). A refused write (a locked casebook) is counted and tried again next time.
    Reads cost a fixed number of SQL queries; each raise or close is its own transaction.
    """
    today = today or timezone.localdate()
    findings: list[tuple[Any, Finding]] = []
    updated: dict[Any, Any] = {}
    _lab_findings(findings, updated)
    _overdue_findings(findings, updated, today)
    _ae_findings(findings, updated)
    unclosed = {
        ((content_type, object_id), rule_code): query_id
        for query_id, content_type, object_id, rule_code in DataQuery.objects.filter(origin=DataQuery.Origin.AUTOMATIC)
        .exclude(state=State.CLOSED)
        .values_list("id", "content_type_id", "object_id", "rule_code")
    }
    plan = cleaning_rules.reconcile(findings, unclosed, _confirmed_at_source(updated))

    raised = closed = refused = 0
    targets = _sweep_targets([key for key, _ in plan.to_raise])
    for key, finding in plan.to_raise:
        try:
            query_raise_automatic(
                target=targets[key],
                rule_code=finding.rule_code,
                field_name=finding.field_name,
                question=finding.question,
            )
            raised += 1
        except (ValidationError, KeyError):  # a locked casebook; a record gone meanwhile
            refused += 1
    for query in DataQuery.objects.filter(pk__in=plan.to_close).order_by("id"):
        try:
            query_close_automatic(query=query, text=cleaning_rules.auto_close_text(query.rule_code))
            closed += 1
        except ValidationError:
            refused += 1
    return SweepResult(raised, closed, refused)


def _sweep_targets(keys: list[Any]) -> dict[Any, models.Model]:
    """The records new automatic queries go on, with their patients (a query per type)."""
    by_type: dict[int, list[int]] = defaultdict(list)
    for content_type, object_id in keys:
        by_type[content_type].append(object_id)
    targets: dict[Any, models.Model] = {}
    for content_type, ids in by_type.items():
        model = ContentType.objects.get_for_id(content_type).model_class()
        if model is None:
            continue
        queryset = model._default_manager.all()
        if model is not Patient:
            queryset = queryset.select_related("patient")
        for obj in queryset.filter(pk__in=ids):
            targets[(content_type, obj.pk)] = obj
    return targets


# --- source data verification (SDV) -------------------------------------------------


def record_verify(*, user: Any, target: models.Model, expected_version: int | None = None) -> SourceVerification:
    """A monitor marks one version of a casebook record verified against the source.

    ``expected_version`` is the version the monitor looked at: if the record changed
    since, nothing is marked (they verified something else). Verifying a version that is
    already verified returns its mark. A later edit clears the mark by version alone
    (cleaning.selectors.sdv_status); nothing hooks the record's writes.
    """
    model = type(target)
    if not is_queryable_model(model):
        raise ValidationError({"target": [f"A {model._meta.verbose_name} is not a casebook record to verify."]})
    patient = patient_of(target)
    if not access.can(user, "verify", patient.trial_id, patient.site_id):
        raise PermissionDenied("Source data verification is done by the trial's monitors.")
    content_type = ContentType.objects.get_for_model(model)
    with transaction.atomic():
        # The record's row lock: an edit cannot slip between the version check and the mark.
        current = model._default_manager.select_for_update().get(pk=target.pk)
        if expected_version is not None and current.version != expected_version:
            raise ValidationError(
                {
                    "version": [
                        f"This {model._meta.verbose_name} changed after you opened it (version {current.version} "
                        f"now, you saw version {expected_version}): reload it and check the new version."
                    ]
                }
            )
        existing = SourceVerification.objects.filter(
            content_type=content_type, object_id=target.pk, record_version=current.version
        ).first()
        if existing is not None:
            return existing
        mark = SourceVerification(
            trial_id=patient.trial_id,
            site_id=patient.site_id,
            patient=patient,
            content_type=content_type,
            object_id=target.pk,
            record_version=current.version,
            verified_by=user,
            verified_at=timezone.now(),
        )
        record_create(
            mark,
            user=user,
            reason=f"source verified: {model._meta.verbose_name} #{target.pk} version {current.version}",
        )
    return mark


def sdv_target(patient: Patient, key: str) -> models.Model:
    """The casebook record a verify form names ("safety.adverseevent:12"), of this patient
    only; a bad or foreign key is a ValidationError naming the field."""
    label, _, raw_id = (key or "").partition(":")
    app_label, _, model_name = label.partition(".")
    try:
        model = ContentType.objects.get_by_natural_key(app_label, model_name).model_class()
    except ContentType.DoesNotExist:
        model = None
    if model is None or not is_queryable_model(model) or not raw_id.isdigit():
        raise ValidationError({"record": ["Choose a record of this casebook to verify."]})
    queryset = model._default_manager.filter(pk=int(raw_id))
    queryset = queryset.filter(pk=patient.pk) if model is Patient else queryset.filter(patient=patient)
    record = queryset.first()
    if record is None:
        raise ValidationError({"record": ["This record is not in this patient's casebook."]})
    return record


# --- trial bundle import (exchange/bundle.py only) -------------------------------------

BUNDLE_IMPORT_REASON = "trial bundle import"


def query_import(*, user: Any, target: models.Model, spec: dict[str, Any]) -> DataQuery:
    """Re-create a query and its whole thread from a trial bundle, as recorded there.

    ``spec``: field_name, question, state, origin, rule_code, raised_by_name, raised_at,
    closed_at, messages [{kind, text, author_name, at, corrected_field, old_value,
    new_value}]. Names are historic (no user is looked up), times are kept (``created_at``
    of the query and of each message is set to the recorded time in the same transaction;
    the history's own time is the import's). A correction's data change is not re-applied:
    the record arrives corrected; its old and new values stay in the message. Every rule
    the raise and answer services keep is checked; errors name the bundle's keys.
    """
    model = type(target)
    if not is_queryable_model(model):
        raise ValidationError({"record": [f"Queries cannot be on a {model._meta.verbose_name}."]})
    patient = patient_of(target)
    errors: dict[str, list[str]] = defaultdict(list)
    field_name = spec.get("field_name") or ""
    try:
        _check_field(model, field_name)
    except ValidationError as exc:
        errors["field_name"].extend(exc.messages)
    if not (spec.get("question") or "").strip():
        errors["question"].append("A question is required.")
    state, origin, rule_code = spec["state"], spec["origin"], spec.get("rule_code") or ""
    if origin == DataQuery.Origin.AUTOMATIC and not rule_code:
        errors["rule_code"].append("An automatic query names the rule that raised it.")
    if origin == DataQuery.Origin.MANUAL and rule_code:
        errors["rule_code"].append("Only an automatic query has a rule_code.")
    if origin == DataQuery.Origin.MANUAL and not spec.get("raised_by_name"):
        errors["raised_by"].append("A query raised by a person names who raised it.")
    if (state == State.CLOSED) != (spec.get("closed_at") is not None):
        errors["closed_at"].append("A closed query has its closing time; an open or answered one has none.")
    content_type = ContentType.objects.get_for_model(model)
    if (
        rule_code
        and state != State.CLOSED
        and DataQuery.objects.filter(content_type=content_type, object_id=target.pk, rule_code=rule_code)
        .exclude(state=State.CLOSED)
        .exists()
    ):
        errors["rule_code"].append(f"Another open query of rule {rule_code} is on this record (one per rule).")
    messages = spec.get("messages") or []
    # Recorded times happened: none after now (shown in the trial's time zone).
    now, zone = timezone.now(), patient.trial.zone_name
    times = [("raised_at", "query's raising time", spec.get("raised_at"))]
    times.append(("closed_at", "query's closing time", spec.get("closed_at")))
    times.extend((f"messages[{k}].at", "message time", m.get("at")) for k, m in enumerate(messages))
    for key, label, value in times:
        for problem in future_time_problems(label, value, now, zone):
            errors[key].append(problem)
    if not messages or messages[0]["kind"] != Kind.QUESTION:
        errors["messages"].append("A query's thread starts with its question.")
    correctable = {name for name, _ in queryable_fields(model)}
    for k, m in enumerate(messages):
        changed = [m.get(key) for key in ("corrected_field", "old_value", "new_value")]
        if m["kind"] == Kind.CORRECTION:
            if m.get("corrected_field") not in correctable:
                errors[f"messages[{k}].field"].append(
                    f"A {model._meta.verbose_name} has no field {m.get('corrected_field')!r} to correct."
                )
        elif any(v not in (None, "") for v in changed):
            errors[f"messages[{k}].field"].append("Only a correction carries field, old and new.")
    if errors:
        raise ValidationError(dict(errors))
    with transaction.atomic():
        query = DataQuery(
            trial_id=patient.trial_id,
            site_id=patient.site_id,
            patient=patient,
            content_type=content_type,
            object_id=target.pk,
            field_name=field_name,
            question=spec["question"].strip(),
            state=state,
            origin=origin,
            rule_code=rule_code,
            raised_by=None,
            raised_by_name=spec.get("raised_by_name") or "",
            imported=True,
            closed_at=spec.get("closed_at"),
        )
        record_create(query, user=user, reason=BUNDLE_IMPORT_REASON)
        DataQuery.objects.filter(pk=query.pk).update(created_at=spec["raised_at"])
        for m in messages:
            message = QueryMessage(
                query=query,
                kind=m["kind"],
                text=m.get("text") or "",
                author=None,
                author_name=m.get("author_name") or "",
                corrected_field=m.get("corrected_field") or "",
                old_value=m.get("old_value") or "",
                new_value=m.get("new_value") or "",
            )
            record_create(message, user=user, reason=BUNDLE_IMPORT_REASON)
            QueryMessage.objects.filter(pk=message.pk).update(created_at=m["at"])
    query.refresh_from_db()
    return query


def verification_import(
    *, user: Any, target: models.Model, current: bool, verified_by_name: str, verified_at: Any
) -> SourceVerification:
    """Re-create a source verification mark from a trial bundle.

    Record versions are this server's (an import renumbers them), so the bundle carries
    whether the mark was of the record's current version: a current mark is re-created
    at the imported record's version (still "verified"), a cleared one at version 0 (a
    version from before the import: "cleared", and the import's first entry is the edit
    that shows as clearing it). The monitor's name is historic; ``verified_by`` is the
    import service user.
    """
    model = type(target)
    if not is_queryable_model(model):
        raise ValidationError({"record": [f"A {model._meta.verbose_name} is not a casebook record to verify."]})
    if not (verified_by_name or "").strip():
        raise ValidationError({"by": ["A source verification names the monitor who made it."]})
    patient = patient_of(target)
    future = future_time_problems("verification time", verified_at, timezone.now(), patient.trial.zone_name)
    if future:
        raise ValidationError({"at": list(future)})
    current_version = model._default_manager.values_list("version", flat=True).get(pk=target.pk)
    mark = SourceVerification(
        trial_id=patient.trial_id,
        site_id=patient.site_id,
        patient=patient,
        content_type=ContentType.objects.get_for_model(model),
        object_id=target.pk,
        record_version=current_version if current else 0,
        verified_by=user,
        verified_by_name=verified_by_name.strip(),
        verified_at=verified_at,
        imported=True,
    )
    with transaction.atomic():
        record_create(mark, user=user, reason=BUNDLE_IMPORT_REASON)
    return mark


# --- locking a casebook behind the pre-lock checklist (issue 19) -----------------------


def casebook_lock_checked(
    *,
    user: Any,
    patient: Patient,
    password: str,
    reason: str = "",
    override: bool = False,
    override_reason: str = "",
) -> Any:
    """The data manager locks a casebook: refused while the pre-lock checklist
    (cleaning.rules.lock_checklist: unclosed queries, unverified records, no investigator
    review signature) is not clear, unless ``override`` is acknowledged with a reason;
    the override, what it overrode and its reason are kept with the lock (its reason,
    in the audit trail and under the lock signature)."""
    from cleaning.selectors import lock_checklist

    checklist = lock_checklist(patient)
    if not checklist.clear:
        override_reason = (override_reason or "").strip()
        if not override:
            raise ValidationError(
                {
                    "override": [
                        f"The pre-lock checklist is not clear ({checklist.summary()}): resolve it, or acknowledge "
                        "the override and give its reason."
                    ]
                }
            )
        if not override_reason:
            raise ValidationError({"override_reason": ["Give the reason for locking over the pre-lock checklist."]})
        note = f"Locked over the pre-lock checklist ({checklist.summary()}): {override_reason}"
        reason = f"{reason.strip()} — {note}" if (reason or "").strip() else note
    return patient_services.casebook_lock(user=user, patient=patient, password=password, reason=reason)


# --- voiding a record entered in error (issue 19) --------------------------------------


def voidable_models() -> tuple[type[models.Model], ...]:
    """The clinical records where "entered in error" is a real thing: an AE, a lab panel,
    an assessment, a patient event (death, relapse, EOT...), a concomitant medication, a
    GVHD episode. Cycles are corrected (given / not given), never voided: a dose record
    drives the schedule, the reductions and the DLT window."""
    from dosing.models import ConcomitantMedication as Med
    from safety.models import GvhdEpisode

    return (AdverseEvent, LabPanel, Assessment, PatientEvent, Med, GvhdEpisode)


def casebook_record_void(*, user: Any, target: models.Model, reason: str, expected_version: int | None = None) -> Any:
    """A coordinator voids a record of their casebook entered in error, with a reason
    (core.audit.record_void: kept, audited, refused on a frozen or locked casebook).
    The trial-level results are recomputed without it; a signed DLT adjudication of a
    voided AE is flagged for re-adjudication (safety.selectors: the patient's DLT status
    is pending until an investigator signs a superseding decision)."""
    from core.audit import record_void
    from core.locks import ensure_writable
    from trial.models import TrialComputation
    from trial.services import computation_request

    if not isinstance(target, voidable_models()):
        raise ValidationError({"record": [f"A {target._meta.verbose_name} cannot be voided."]})
    patient = patient_of(target)
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("Records are voided by the site's coordinators.")
    ensure_writable(target)
    with transaction.atomic():
        voided = record_void(target, user=user, reason=reason, expected_version=expected_version)  # type: ignore[arg-type]
        if isinstance(target, AdverseEvent):  # a lab AE voided on review: its grade query is answered
            _close_regrade_queries([target.pk], "Closed automatically: the AE was voided as entered in error.")
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
        computation_request(patient.trial_id, TrialComputation.Kind.SURVIVAL)
    return voided


def casebook_record_void_import(
    *, user: Any, target: models.Model, voided_at: Any, voided_by_name: str, reason: str
) -> Any:
    """A void carried in by a trial bundle (docs/bundle.md): kept as recorded, like a
    historic signature: the time, the voider's name (``voided_by_name``; the user need
    not exist here, ``voided_by`` stays empty) and the reason. An audited edit under the
    import user, refused on a locked casebook like every write."""
    from core.audit import record_update
    from trial.models import TrialComputation
    from trial.services import computation_request

    if not isinstance(target, voidable_models()):
        raise ValidationError({"voided": [f"A {target._meta.verbose_name} cannot be voided."]})
    patient = patient_of(target)
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("Records are voided by the site's coordinators.")
    errors: dict[str, list[str]] = {}
    reason, name = (reason or "").strip(), (voided_by_name or "").strip()
    if not reason:
        errors["reason"] = ["Give the reason this record was voided."]
    if not name:
        errors["by"] = ["Give who voided it."]
    if voided_at is None:
        errors["at"] = ["Give when it was voided."]
    if errors:
        raise ValidationError(errors)
    changes = {"voided_at": voided_at, "voided_by": None, "voided_by_name": name, "void_reason": reason}
    with transaction.atomic():
        voided = record_update(target, changes, user=user, reason=f"voided: {reason} (trial bundle import)")  # type: ignore[arg-type]
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
        computation_request(patient.trial_id, TrialComputation.Kind.SURVIVAL)
    return voided
