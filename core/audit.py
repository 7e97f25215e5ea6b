"""The audit trail's write helper and its reader (old and new values side by side)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from core.errors import EditConflict, ReasonRequired
from core.models import AuditedModel


def record_create(instance: AuditedModel, *, user: Any, reason: str = "") -> AuditedModel:
    """First entry of a clinical record: audited, no reason required."""
    instance.full_clean()
    instance._history_user = user  # type: ignore[attr-defined]
    instance._change_reason = reason.strip() or "first entry"  # type: ignore[attr-defined]
    instance.save()
    return instance


def record_update(
    instance: AuditedModel,
    changes: dict[str, Any],
    *,
    user: Any,
    reason: str | None,
    expected_version: int | None = None,
) -> AuditedModel:
    """Apply ``changes`` to an existing record, with who and why, or refuse whole.

    The row is locked while checked so two editors of the same version cannot both
    win; ``expected_version`` is the version the editor read (None: do not check).
    Call inside the caller's ``transaction.atomic()`` when more than one row changes.
    Changes that change nothing (every value already on file) write nothing: no new
    version, no history row (an audit trail of real edits only, issue 16).
    """
    if not (reason or "").strip():
        raise ReasonRequired()
    with transaction.atomic():
        locked = type(instance).objects.select_for_update().get(pk=instance.pk)
        if expected_version is not None and locked.version != expected_version:
            raise EditConflict(locked.version, expected_version)
        before = _content(locked)
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.full_clean()
        if _content(locked) == before:
            # Nothing to write, but a locked or frozen casebook still refuses the attempt:
            # the caller must learn the record is not editable, not that the edit "took".
            from core.locks import lock_refusal

            refusal = lock_refusal(locked)
            if refusal is not None:
                raise refusal
            return locked
        locked._history_user = user  # type: ignore[attr-defined]
        locked._change_reason = reason.strip()  # type: ignore[attr-defined,union-attr]
        locked.save()
    return locked


def record_void(instance: AuditedModel, *, user: Any, reason: str | None, expected_version: int | None = None) -> Any:
    """Void a record entered in error (issue 19): never deleted; who, when and why are
    written on the record (an audited edit, its history row carries the reason). The
    casebook lock guard refuses it like any edit. A voided record is left out of every
    clinical read (core.models.CurrentRecordManager). Call through the domain service,
    which checks who may void and asks for the recomputations."""
    from django.utils import timezone

    if not hasattr(instance, "voided_at"):
        raise ValueError(f"A {instance._meta.verbose_name} cannot be voided.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"void_reason": ["Give the reason this record is voided (e.g. entered in error)."]})
    if type(instance).all_objects.filter(pk=instance.pk, voided_at__isnull=False).exists():  # type: ignore[attr-defined]
        raise ValidationError({"void_reason": [f"This {instance._meta.verbose_name} is already voided."]})
    changes = {"voided_at": timezone.now(), "voided_by": user, "void_reason": reason}
    return record_update(instance, changes, user=user, reason=f"voided: {reason}", expected_version=expected_version)


def _content(record: AuditedModel) -> dict[str, Any]:
    """The stored values (after ``full_clean``'s conversions), automatic ones aside."""
    return {f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields if f.name not in _HIDDEN}


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    user: str
    action: str  # "created", "changed", "deleted"
    reason: str
    version: int | None
    changes: tuple[FieldChange, ...]


_HIDDEN = {"updated_at", "created_at", "version"}


def _json_text(value: Any) -> str:
    """A stored JSON value as words: a list of checks reads "label: status (detail); ..."."""
    if isinstance(value, list):
        return "; ".join(_json_text(item) for item in value) or "—"
    if isinstance(value, dict):
        if "label" in value and "status" in value:
            detail = f" ({value['detail']})" if value.get("detail") else ""
            return f"{value['label']}: {value['status']}{detail}"
        return ", ".join(f"{k}: {_json_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _display(model: type[models.Model], field_name: str, value: Any, cache: dict[Any, str]) -> str:
    if value is None or value == "":
        return "—"
    field = model._meta.get_field(field_name)
    if field.is_relation:
        # History rows keep the related id; show what it names (read once per page).
        key = (field.related_model, value)
        if key not in cache:
            related = field.related_model._default_manager.filter(pk=value).first()
            cache[key] = str(related) if related is not None else f"#{value} (deleted)"
        return cache[key]
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(field, models.JSONField) or isinstance(value, list | dict):
        return _json_text(value)
    return str(value)


def _version_rows(
    model: type[models.Model], versions: list[Any], names: dict[Any, str]
) -> list[tuple[Any, HistoryRow]]:
    """(version, row) for the consecutive versions of one record, oldest first."""
    fields = [f for f in model._meta.concrete_fields if f.name not in _HIDDEN and f.name != "id"]
    rows: list[tuple[Any, HistoryRow]] = []
    previous = None
    for version in versions:
        changes = []
        for field in fields:
            attname = field.attname
            new = getattr(version, attname)
            old = getattr(previous, attname) if previous is not None else None
            if previous is None and new in (None, ""):
                continue
            if previous is None or old != new:
                changes.append(
                    FieldChange(
                        field.name,
                        str(field.verbose_name),
                        _display(model, field.name, old, names) if previous is not None else "",
                        _display(model, field.name, new, names),
                    )
                )
        user = version.history_user
        rows.append(
            (
                version,
                HistoryRow(
                    at=version.history_date,
                    user=(user.get_full_name() or user.get_username()) if user else "system",
                    action={"+": "created", "~": "changed", "-": "deleted"}[version.history_type],
                    reason=version.history_change_reason or "",
                    version=getattr(version, "version", None),
                    changes=tuple(changes),
                ),
            )
        )
        previous = version
    return rows


def record_history(instance: models.Model) -> list[HistoryRow]:
    """Every version of ``instance``, newest first, with the fields that changed."""
    model = type(instance)
    versions = list(instance.history.select_related("history_user").order_by("history_date", "history_id"))  # type: ignore[attr-defined]
    rows = [row for _, row in _version_rows(model, versions, {})]
    rows.reverse()
    return rows


# --- one casebook's audit trail (issue 19) -------------------------------------------


@dataclass(frozen=True)
class CasebookHistoryRow:
    """One version of one record of a casebook, with what changed."""

    record_type: str  # "app.model", the filter's value
    record_type_label: str  # "lab panel"
    record_id: int
    user_id: int | None
    row: HistoryRow

    @property
    def record_label(self) -> str:
        return f"{self.record_type_label} #{self.record_id}"


def casebook_models() -> list[tuple[type[models.Model], str]]:
    """(model, path to the casebook owner) of every audited model that names a casebook
    (core.locks.lock_patient_path), the owner first."""
    from django.apps import apps

    from core.locks import lock_patient_path

    found = []
    for model in apps.get_models():
        if not hasattr(model, "history") or model.__name__.startswith("Historical"):
            continue
        path = lock_patient_path(model)
        if path is not None:
            found.append((model, path))
    found.sort(key=lambda mp: (mp[1] != "", mp[0]._meta.label_lower))
    return found


def _prefill_names(model: type[models.Model], versions: list[Any], names: dict[Any, str]) -> None:
    """Read the display of every related row the versions name: one query per related
    model (so a casebook's audit trail costs a fixed number of queries)."""
    for field in model._meta.concrete_fields:
        if not field.is_relation or field.related_model is None:
            continue
        related = field.related_model
        wanted = {getattr(v, field.attname) for v in versions} - {None, ""}
        wanted = {pk for pk in wanted if (related, pk) not in names}
        if not wanted:
            continue
        # select_related(): a name like "SA-001 labs 2024-03-01" reads its patient in the same query.
        found = {obj.pk: str(obj) for obj in related._default_manager.filter(pk__in=wanted).select_related()}
        for pk in wanted:
            names[(related, pk)] = found.get(pk, f"#{pk} (deleted)")


def casebook_record_types() -> list[tuple[str, str]]:
    """("app.model", "verbose name") of every record type of a casebook, for the filter."""
    return [(m._meta.label_lower, str(m._meta.verbose_name)) for m, _ in casebook_models()]


def casebook_history(owner_pk: Any, *, record_type: str = "") -> list[CasebookHistoryRow]:
    """Every version of every record of one casebook (the owner itself, transplant,
    consents, screenings, cycles, labs, AEs, adjudications, queries...), newest first,
    with old and new values as words (labels for choices, ISO dates, related rows by
    their names). The caller scopes the owner. Queries: one per record type plus one
    per related model whose names are shown, whatever the number of rows."""
    names: dict[Any, str] = {}
    result: list[CasebookHistoryRow] = []
    for model, path in casebook_models():
        label = model._meta.label_lower
        if record_type and record_type != label:
            continue
        lookup = {"id": owner_pk} if path == "" else {path: owner_pk}
        versions = list(
            model.history.filter(**lookup)  # type: ignore[attr-defined]
            .select_related("history_user")
            .order_by("id", "history_date", "history_id")
        )
        if not versions:
            continue
        _prefill_names(model, versions, names)
        by_record: dict[Any, list[Any]] = {}
        for version in versions:
            by_record.setdefault(version.id, []).append(version)
        for record_id, record_versions in by_record.items():
            for version, row in _version_rows(model, record_versions, names):
                result.append(
                    CasebookHistoryRow(label, str(model._meta.verbose_name), record_id, version.history_user_id, row)
                )
    result.sort(key=lambda r: (r.row.at, r.record_type, r.record_id), reverse=True)
    return result


def casebook_history_filter(
    rows: list[CasebookHistoryRow],
    *,
    record_type: str = "",
    user_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[CasebookHistoryRow]:
    """Narrow a casebook's audit rows by record type, the user who made the change, and
    a date range (UTC days, inclusive). Old values were read from the previous version,
    so a row keeps them even when that version is outside the range."""

    def keep(r: CasebookHistoryRow) -> bool:
        day = r.row.at.astimezone(UTC).date()
        return (
            (not record_type or r.record_type == record_type)
            and (user_id is None or r.user_id == user_id)
            and (since is None or day >= since)
            and (until is None or day <= until)
        )

    return [r for r in rows if keep(r)]
