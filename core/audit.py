"""The audit trail's write helper and its reader (old and new values side by side)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
            return locked
        locked._history_user = user  # type: ignore[attr-defined]
        locked._change_reason = reason.strip()  # type: ignore[attr-defined,union-attr]
        locked.save()
    return locked


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
    return str(value)


def record_history(instance: models.Model) -> list[HistoryRow]:
    """Every version of ``instance``, newest first, with the fields that changed."""
    model = type(instance)
    versions = list(instance.history.select_related("history_user").order_by("history_date", "history_id"))  # type: ignore[attr-defined]
    fields = [f for f in model._meta.concrete_fields if f.name not in _HIDDEN and f.name != "id"]
    rows: list[HistoryRow] = []
    names: dict[Any, str] = {}
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
            HistoryRow(
                at=version.history_date,
                user=(user.get_full_name() or user.get_username()) if user else "system",
                action={"+": "created", "~": "changed", "-": "deleted"}[version.history_type],
                reason=version.history_change_reason or "",
                version=getattr(version, "version", None),
                changes=tuple(changes),
            )
        )
        previous = version
    rows.reverse()
    return rows
