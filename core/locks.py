"""Casebook locks (issue 12): which casebook a record belongs to, and whether it may change.

A patient's casebook is open, frozen (no data changes; query threads and SDV marks still
move) or locked (nothing changes); a trial lock locks every casebook of the trial. The
guard in ``core.models.AuditedModel.save`` asks :func:`lock_refusal` before every save,
so no write path (form, API, import, shell) can skip it.

Core knows no trial or patient: a model says how to reach its casebook's owner with class
attributes, and the owner model (``patients.Patient``) answers the lock state:

- ``lock_patient_path``: ``"patient"``, ``"query__patient"``... (``""`` = the record is
  the casebook owner itself; ``None`` = not casebook data, never refused). Default:
  derived from ``scope_trial_path`` (``"patient__trial"`` -> ``"patient"``, the owner's
  own ``"trial"`` -> ``""``), else a direct ``patient`` foreign key, else ``None``.
- ``lock_level``: ``"data"`` (refused when frozen or locked, the default) or ``"query"``
  (query threads and SDV marks: refused only when locked).
- The owner model defines ``lock_owner = True`` and the classmethods
  ``lock_info_for(pk) -> LockInfo`` and ``lock_info_for_new(instance) -> LockInfo``
  (a new owner row, e.g. a patient registered into a locked trial).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.db import models

from core.errors import RecordLocked

OPEN, FROZEN, LOCKED = "open", "frozen", "locked"
DATA, QUERY = "data", "query"


@dataclass(frozen=True)
class LockInfo:
    """The effective lock of one casebook, with what a banner or message shows."""

    state: str = OPEN  # "open" | "frozen" | "locked"
    subject_id: str = ""
    by_trial: bool = False  # locked because the whole trial is locked
    trial_code: str = ""
    changed_at: datetime | None = None
    changed_by: str = ""
    reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    def refuses(self, level: str = DATA) -> bool:
        """Would a write at ``level`` ("data" or "query") be refused?"""
        if self.state == LOCKED:
            return True
        return self.state == FROZEN and level != QUERY

    @property
    def when(self) -> str:
        if self.changed_at is None:
            return ""
        return self.changed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def _stamp(self) -> str:
        parts = [p for p in (self.when, f"by {self.changed_by}" if self.changed_by else "") if p]
        return f" ({' '.join(parts)})" if parts else ""

    @property
    def message(self) -> str:
        """What a refused write shows, e.g. "Casebook SA-001 is locked (2026-11-26 14:02 UTC
        by Dana Datamanager): no changes are allowed."."""
        casebook = f"Casebook {self.subject_id}" if self.subject_id else "This casebook"
        if self.by_trial:
            return f"{casebook} is locked: trial {self.trial_code} is locked{self._stamp()}; no changes are allowed."
        if self.state == LOCKED:
            return f"{casebook} is locked{self._stamp()}: no changes are allowed."
        if self.state == FROZEN:
            return (
                f"{casebook} is frozen{self._stamp()}: no data changes are allowed; open queries can still be answered."
            )
        return f"{casebook} is open."


OPEN_INFO = LockInfo()
_PATHS: dict[type[models.Model], str | None] = {}
_OWNER: list[type[models.Model] | None] = []


def _owner_model() -> type[models.Model] | None:
    if not _OWNER:
        _OWNER.append(next((m for m in apps.get_models() if getattr(m, "lock_owner", False)), None))
    return _OWNER[0]


def _model_at(model: type[models.Model], path: str) -> type[models.Model] | None:
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except Exception:  # noqa: BLE001 - not a field: no such path
            return None
        if not field.is_relation or field.related_model is None:
            return None
        model = field.related_model
    return model


def lock_patient_path(model: type[models.Model]) -> str | None:
    """Where ``model`` finds its casebook owner (see the module docstring); cached."""
    if model in _PATHS:
        return _PATHS[model]
    path: str | None
    owner = _owner_model()
    if "lock_patient_path" in {k for klass in model.__mro__ for k in vars(klass)}:
        path = model.lock_patient_path  # type: ignore[attr-defined]
    elif owner is not None and issubclass(model, owner):
        path = ""
    else:
        path = None
        trial_path = getattr(model, "scope_trial_path", None) or ""
        candidates = []
        if trial_path.endswith("__trial"):
            candidates.append(trial_path[: -len("__trial")])
        candidates.append("patient")
        for candidate in candidates:
            target = _model_at(model, candidate)
            if owner is not None and target is owner:
                path = candidate
                break
            if target is not None and target is not model:
                inner = lock_patient_path(target)
                if inner:
                    path = f"{candidate}__{inner}"
                    break
    _PATHS[model] = path
    return path


def _owner_pk(instance: models.Model, path: str) -> Any:
    obj: Any = instance
    parts = path.split("__")
    for part in parts[:-1]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return getattr(obj, f"{parts[-1]}_id", None)


def lock_info_of(instance: models.Model) -> LockInfo:
    """The lock of the casebook ``instance`` belongs to (OPEN_INFO for non-casebook data)."""
    path = lock_patient_path(type(instance))
    if path is None:
        return OPEN_INFO
    owner = _owner_model()
    if owner is None:
        return OPEN_INFO
    if path == "":
        if instance._state.adding or instance.pk is None:
            return owner.lock_info_for_new(instance)  # type: ignore[attr-defined,no-any-return]
        return owner.lock_info_for(instance.pk)  # type: ignore[attr-defined,no-any-return]
    pk = _owner_pk(instance, path)
    if pk is None:
        return OPEN_INFO
    return owner.lock_info_for(pk)  # type: ignore[attr-defined,no-any-return]


def lock_state_of(instance: models.Model) -> str:
    """ "open" | "frozen" | "locked": the effective state of ``instance``'s casebook
    (a patient, any record of one, or a query thread); "open" for trial-level data."""
    return lock_info_of(instance).state


def lock_level_of(model: type[models.Model] | models.Model) -> str:
    return str(getattr(model, "lock_level", DATA))


def lock_refusal(instance: models.Model) -> RecordLocked | None:
    """The error a save of ``instance`` must raise now, or None if it may be saved."""
    if lock_patient_path(type(instance)) is None:
        return None
    info = lock_info_of(instance)
    if info.refuses(lock_level_of(instance)):
        return RecordLocked(info.message, state=info.state)
    return None


def ensure_writable(instance: models.Model, level: str | None = None) -> None:
    """Raise RecordLocked if a write at ``level`` (default: the model's) to ``instance``'s
    casebook is refused. For views and services that want to refuse early."""
    info = lock_info_of(instance)
    if info.refuses(level or lock_level_of(instance)):
        raise RecordLocked(info.message, state=info.state)


def lock_gate(level: str | None):  # type: ignore[no-untyped-def]
    """Say at which lock level a view writes, for the lock gate in front of the views
    (patients.lock_gate): ``"query"`` for query threads and SDV marks (allowed while a
    casebook is frozen), ``None`` for views that are no casebook write (the lock screens
    themselves). Without it a view writes at the level of the model its URL names."""

    def mark(view):  # type: ignore[no-untyped-def]
        view.lock_level = level
        return view

    return mark


def data_entry_page(view):  # type: ignore[no-untyped-def]
    """Mark a view whose page is a data-entry form (issue 19): on a casebook that refuses
    its write, even the GET answers the lock page, so a frozen or locked casebook shows
    no editable form (patients.lock_gate; walked by tests/integration/test_lock_checklist)."""
    view.lock_form = True
    return view


def owner_pk_of(instance: models.Model) -> Any:
    """The casebook owner's (patient's) id of ``instance``, or None."""
    path = lock_patient_path(type(instance))
    if path is None:
        return None
    return instance.pk if path == "" else _owner_pk(instance, path)


UNSET: Any = object()
_MODELS_BY_NAME: dict[str, type[models.Model]] = {}


def model_named(kwarg: str) -> type[models.Model] | None:
    """The model a URL argument names (``<model>_id``, as the site-wall walker reads it)."""
    if not kwarg.endswith("_id"):
        return None
    if not _MODELS_BY_NAME:
        _MODELS_BY_NAME.update({str(m._meta.model_name): m for m in apps.get_models()})
    return _MODELS_BY_NAME.get(kwarg[: -len("_id")].replace("_", ""))


def url_lock_refusal(
    kwargs: dict[str, Any], level: Any, visible: Callable[[type[models.Model], Any], models.Model | None]
) -> tuple[LockInfo, models.Model] | None:
    """For a write request: the lock that refuses it, judged from the URL's object
    arguments, or None. ``visible(model, pk)`` returns the object if the user may see it
    (else None: the view answers 404, nothing leaks); ``level`` is the view's lock level
    (UNSET: the model's own)."""
    if level is None:
        return None
    for kwarg, value in kwargs.items():
        model = model_named(kwarg)
        if model is None or not getattr(model, "scope_trial_path", None) or lock_patient_path(model) is None:
            continue
        obj = visible(model, value)
        if obj is None:
            continue
        info = lock_info_of(obj)
        if info.refuses(lock_level_of(model) if level is UNSET else level):
            return info, obj
    return None
