"""Optimistic concurrency for API edits: ETag out, If-Match (or a version field) in."""

from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response


def with_etag(response: Response) -> Response:
    version = response.data.get("version") if isinstance(response.data, dict) else None
    if version is not None:
        response["ETag"] = f'"{version}"'
    return response


def expected_version(request: Request, body_version: int | None) -> int:
    """The version the client read: ``If-Match: "3"`` or a ``version`` field; required,
    so that no API edit can overwrite a change its author never saw."""
    header = request.headers.get("If-Match", "").strip().removeprefix("W/").strip('"')
    if header.isdigit():
        return int(header)
    if body_version is None:
        raise ValidationError(
            {"version": ["Send the version you read: an If-Match header with the ETag, or a version field."]}
        )
    return body_version
