"""API plumbing shared by every app: the error format of docs/api.md, strict input."""

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import BUSY_MESSAGE, BUSY_RETRY_AFTER, EditConflict, RecordLocked, database_busy


def exception_handler(exc, context):  # type: ignore[no-untyped-def]
    """Every error as ``{"detail": ..., "errors": {field: [messages]}}``.

    Services raise Django's ValidationError (one rule, one place, for forms, API and
    import alike); here it becomes a 400 naming the field. A stale version is a 409.
    """
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE when the view reads it:
        # 413 in the error format, not Django's HTML 400 page.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than {limit // (1024 * 1024)} MB ({limit} bytes); nothing was read."
        return Response(
            {"detail": message, "errors": {"non_field_errors": [message]}},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. too many form fields: bad input, not a server error
        return Response(
            {"detail": str(exc) or "Bad request.", "errors": {"non_field_errors": [str(exc) or "Bad request."]}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, RecordLocked):
        # A frozen or locked casebook (core.locks): 423 Locked, the message as the detail.
        return Response(
            {"detail": str(exc), "errors": {"non_field_errors": [str(exc)]}, "lock_state": exc.state},
            status=status.HTTP_423_LOCKED,
        )
    if isinstance(exc, EditConflict):
        return Response(
            {"detail": str(exc), "errors": {"version": [str(exc)]}, "current_version": exc.current_version},
            status=status.HTTP_409_CONFLICT,
        )
    if database_busy(exc):
        # SQLite's busy timeout ran out (config/settings.py): a temporary condition, so 503
        # with Retry-After rather than a 500. A retried edit carries its version: if the
        # first attempt did commit, the retry answers 409 instead of writing twice.
        # (Browser pages: core.middleware.DatabaseBusyMiddleware, the same answer as a page.)
        return Response(
            {"detail": BUSY_MESSAGE, "errors": {}},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": BUSY_RETRY_AFTER},
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        if "__all__" in errors:
            errors["non_field_errors"] = errors.pop("__all__")
        response.data = {"detail": "Invalid input: see errors.", "errors": errors}
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        response.data = {"detail": detail, "errors": {}}
    return response


MAX_OFFSET = 2_147_483_647  # far beyond any list; a larger offset is refused, not sent to the database


def query_int(request: Any, name: str, *, minimum: int, maximum: int, default: int | None) -> int | None:
    """An integer query parameter of an API list, or ``default`` when absent (a blank is a 400).

    Anything else than ASCII digits in [minimum, maximum] is a 400 naming the parameter
    (a 25-digit ``?limit=`` was a 500: the database's bigint overflowed)."""
    if name not in request.query_params:
        return default
    raw = request.query_params[name].strip()
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= maximum:
        raise exceptions.ValidationError(
            {name: [f"A whole number from {minimum} to {maximum} is expected, not {raw[:30]!r}."]}
        )
    return int(raw)


def _bounded(parameters: list[dict[str, Any]], bounds: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    for parameter in parameters:
        if parameter["name"] in bounds:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {**parameter.get("schema", {}), "type": "integer", "minimum": low, "maximum": high}
    return parameters


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """The default pagination of API lists: ``?limit=`` 1..1000 (default 100), ``?offset=``
    0..MAX_OFFSET; a value out of range or not a whole number is a 400 naming it."""

    default_limit = 100
    max_limit = 1000

    def get_limit(self, request):  # type: ignore[no-untyped-def]
        return query_int(request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit)

    def get_offset(self, request):  # type: ignore[no-untyped-def]
        return query_int(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view):  # type: ignore[no-untyped-def]
        parameters = super().get_schema_operation_parameters(view)
        return _bounded(
            parameters, {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, MAX_OFFSET)}
        )


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination for the large lists (``patients/``, ``adverse-events/``).

    A cursor stays stable while rows are added (no skipped or repeated rows between
    pages) and costs the same on page 1,000 as on page 1, unlike LIMIT/OFFSET. Ordered by
    ``id`` (unique, never changes). ``count`` is kept so the list shape of the other
    endpoints (``count``, ``next``, ``previous``, ``results``) does not change for clients.
    """

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):  # type: ignore[no-untyped-def]
        self.count = queryset.count()
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):  # type: ignore[no-untyped-def]
        return query_int(
            request, self.page_size_query_param, minimum=1, maximum=self.max_page_size, default=self.page_size
        )

    def get_schema_operation_parameters(self, view):  # type: ignore[no-untyped-def]
        parameters = super().get_schema_operation_parameters(view)
        return _bounded(parameters, {self.page_size_query_param: (1, self.max_page_size)})

    def get_paginated_response(self, data):  # type: ignore[no-untyped-def]
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema):  # type: ignore[no-untyped-def]
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["count", "results"]
        response["properties"] = {"count": {"type": "integer", "example": 123}, **response["properties"]}
        return response


UNKNOWN_FIELD = "This endpoint does not take this field (unknown, or not changeable here): nothing was written."


class StrictInputMixin:
    """Every API input serializer: a field the endpoint does not take is a 400 naming it,
    never silently dropped. A client that sends ``site`` or ``dose_level`` in a PATCH
    learns that they did not change, instead of reading a 200 (issue 16). Reported with
    the other field errors of the same body."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            accepted = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            unknown = {str(key): [UNKNOWN_FIELD] for key in data if key not in accepted}
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except exceptions.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise exceptions.ValidationError({**unknown, **exc.detail}) from exc
            raise
        if unknown:
            raise exceptions.ValidationError(unknown)
        return value


class InputSerializer(StrictInputMixin, serializers.Serializer):  # type: ignore[type-arg]
    """Base of every API input that is not a model's fields."""


class ModelInputSerializer(StrictInputMixin, serializers.ModelSerializer):  # type: ignore[type-arg]
    """Base of every API input built from a model's fields."""


def validated_input(
    serializer_class: type[serializers.Serializer],  # type: ignore[type-arg]
    data: Any,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The input's validated values, or one 400 with every problem (issue 19).

    When the serializer refuses some fields, ``check`` (the service's own validation,
    which writes nothing) still runs on the fields that did validate, and its problems
    on the other fields join the answer: a client learns about "not a date" and "labs
    after the screening date" in the same response, not one per request.
    """
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    errors = dict(serializer.errors)
    if check is not None and isinstance(data, Mapping):
        partial: dict[str, Any] = {}
        for name, field in serializer.fields.items():
            if name in errors or name not in data or field.read_only:
                continue
            try:
                partial[name] = field.run_validation(data[name])
            except (exceptions.ValidationError, DjangoValidationError):
                continue
        try:
            check(partial)
        except RecordLocked:
            raise
        except DjangoValidationError as exc:
            for name, messages in as_serializer_error(exc).items():
                if name not in errors:
                    errors[name] = messages
    raise exceptions.ValidationError(errors)
