"""Errors the services raise; views and the API turn them into clear answers."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import OperationalError

# SQLite only: a write that waited its whole busy timeout (SQLITE_BUSY_SECONDS) still finds
# the database locked. A temporary condition: 503 with Retry-After, for the API (core.api)
# and for browser pages (core.middleware.DatabaseBusyMiddleware) alike, never a 500.
BUSY_MESSAGE = "The database is busy with other changes; try again in a moment."
BUSY_RETRY_AFTER = "2"


def database_busy(exc: BaseException | None) -> bool:
    """A "database is locked" error, raised directly or wrapped (a task retry's cause)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError) and "locked" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "exc", None)
        seen += 1
    return False


class ReasonRequired(ValidationError):
    """An edit after first entry without a reason for change (GCP: who, when, why)."""

    def __init__(self) -> None:
        super().__init__(
            {"reason_for_change": ["A reason for change is required when editing a record after first entry."]}
        )


class EditConflict(Exception):
    """The record changed since the client read it (optimistic concurrency, API 409)."""

    def __init__(self, current_version: int, sent_version: int) -> None:
        self.current_version = current_version
        self.sent_version = sent_version
        super().__init__(
            f"The record changed since you read it (you sent version {sent_version}, "
            f"it is now at version {current_version}). Reload it and apply your change again."
        )


class SignatureRefused(ValidationError):
    """A signature could not be applied (wrong password, wrong role, already signed)."""


class RecordLocked(ValidationError):
    """A write to a record whose casebook (or trial) is frozen or locked (issue 12).

    A ValidationError, so every form, service caller and the bundle import already show
    it as a message; the API answers 423 with ``{"detail": message}`` (core.api).
    """

    def __init__(self, message: str, *, state: str = "locked") -> None:
        self.state = state
        self.lock_message = message
        super().__init__({"__all__": [message]})

    def __str__(self) -> str:
        return self.lock_message


class Problems:
    """Every problem of one submission, field -> messages, raised together (issue 19).

    A service adds what its own checks find (``add``), runs each helper that raises on
    its own (``collect``) and raises once at the end (``raise_if_any``): the form, the
    API (400 with every field in ``errors``) and the bundle import (every path) then show
    all of them in one round, never one per submit. A lock refusal is not a problem of
    the input and is never collected (it goes through as the 423 it is).
    """

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        messages = self.errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    def extend(self, exc: ValidationError | dict[str, list[str]]) -> None:
        if isinstance(exc, dict):
            items = exc.items()
        elif hasattr(exc, "error_dict"):
            items = exc.message_dict.items()
        else:
            items = (("__all__", exc.messages),)
        for field, messages in items:
            for message in messages:
                self.add(field, message)

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Run a check that raises ValidationError; its messages join the others."""
        try:
            yield
        except RecordLocked:
            raise
        except ValidationError as exc:
            self.extend(exc)

    def __contains__(self, field: object) -> bool:
        return field in self.errors

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError({field: list(messages) for field, messages in self.errors.items()})
