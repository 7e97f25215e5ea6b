"""OpenAPI description of the API token scheme (drf-spectacular extension)."""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Per-user token issued by an admin: `Token <key>` (or `Bearer <key>`).",
        }


ERROR_SCHEMA = {
    "type": "object",
    "description": "The error format of docs/api.md (core.api.exception_handler).",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "errors": {
            "type": "object",
            "description": "Field name (or non_field_errors, or a query parameter) -> messages naming the rule.",
        },
        "current_version": {"type": "integer", "description": "409 only: the record's version now."},
        "lock_state": {"type": "string", "description": "423 only: frozen or locked."},
    },
    "required": ["detail", "errors"],
}

# Status -> (description, which operations can answer it).
ERROR_STATUSES = {
    "400": ("Bad input: a field or query parameter breaks a rule (named in errors).", "all"),
    "401": ("No credentials, or an expired, revoked or unknown token.", "all"),
    "403": ("The user's role does not allow this.", "all"),
    "404": ("No such record, or not in the user's scope.", "all"),
    "409": ("Edit conflict: the version sent is not the record's version now (current_version).", "writes"),
    "413": ("The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB).", "bodies"),
    "423": ("The casebook is frozen or locked (lock_state).", "writes"),
    # SQLite's busy timeout: a write, or a read that computes a result stored on first read.
    "503": ("The database is busy with other changes; retry after Retry-After seconds.", "all"),
}
WRITES = {"post", "put", "patch", "delete"}


VERSION_REQUIRED = " Required (or an If-Match header with the ETag): the version you read; a stale one is a 409."


# POSTs that change a record the client read (core.api_concurrency.expected_version).
VERSIONED_POSTS = {"/api/v1/patients/{id}/enrol/"}


def _strict_nested(schema, schemas, seen=None) -> None:  # type: ignore[no-untyped-def]
    """Objects nested in a request body (``designs: [{...}]``) refuse unknown fields too: their
    input serializers are strict (core.api.StrictInputMixin) at every depth."""
    seen = set() if seen is None else seen
    for prop in schema.get("properties", {}).values():
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else ""
        nested = schemas.get(name, {})
        if name in seen or nested.get("type", "object") != "object" or "properties" not in nested:
            continue
        seen.add(name)
        nested["additionalProperties"] = False
        _strict_nested(nested, schemas, seen)


def _describe_request_bodies(result) -> None:  # type: ignore[no-untyped-def]
    """Request bodies say what the API enforces (core.api.StrictInputMixin,
    core.api_concurrency): a field the endpoint does not take is a 400, so no
    additionalProperties; an edit (PUT/PATCH) sends the version it read, so ``version`` is
    required. Without this the schema called bodies valid that the API refuses (issue 16
    item 15: schemathesis' positive data acceptance on the write operations)."""
    schemas = result.get("components", {}).get("schemas", {})
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in WRITES:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                # The contract is JSON (docs/api.md): a form body cannot carry null or a
                # nested value, so "null" arrived as the text null and was refused. The form
                # parsers stay for the browsable API; the document offers JSON only.
                for media_type in [name for name in content if name != "application/json"]:
                    del content[media_type]
            for media in content.values():
                schema = media.get("schema", {})
                ref = schema.get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    schema = schemas.get(ref.rsplit("/", 1)[-1], {})
                if schema.get("type", "object") != "object" or "properties" not in schema:
                    continue
                schema["additionalProperties"] = False
                _strict_nested(schema, schemas)
                for prop in schema["properties"].values():
                    # DRF trims strings before its not-blank rule: "  " is blank, so a
                    # required text needs a non-space character, not only minLength 1.
                    if (
                        prop.get("type") == "string"
                        and prop.get("minLength", 0) >= 1
                        and not ({"format", "enum", "pattern"} & set(prop))
                    ):
                        prop["pattern"] = r"\S"
                edit = method in {"put", "patch"} or path in VERSIONED_POSTS
                if edit and "version" in schema["properties"]:
                    version = schema["properties"]["version"]
                    if VERSION_REQUIRED not in version.get("description", ""):
                        version["description"] = version.get("description", "") + VERSION_REQUIRED
                    if "version" not in schema.setdefault("required", []):
                        schema["required"].append("version")


def document_errors(result, generator, request, public):  # type: ignore[no-untyped-def]
    """drf-spectacular postprocessing hook: every operation documents the error statuses it
    can answer with the one error schema (issue 16 item 15), besides its own responses;
    request bodies refuse unknown fields and edits require their version."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    _describe_request_bodies(result)
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in WRITES | {"get"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, (description, where) in ERROR_STATUSES.items():
                if code in responses:
                    continue
                if where == "writes" and method not in WRITES:
                    continue
                if where == "bodies" and "requestBody" not in operation:
                    continue
                responses[code] = {"description": description, "content": content}
                if code == "503":
                    responses[code]["headers"] = {
                        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                    }
    return result


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema with decimal patterns that only match numbers DRF takes:
    its own ``^-?\\d{0,4}(?:\\.\\d{0,1})?$`` matched "", "-" and "." (refused as "A valid number
    is required") and a minus sign on a field with min_value 0 (issue 16 item 15)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):  # type: ignore[no-untyped-def]
        result = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and result.get("format") == "decimal" and "pattern" in result:
            result["pattern"] = decimal_pattern(field.max_digits, field.decimal_places, field.min_value)
        return result


def decimal_pattern(max_digits: int | None, decimal_places: int | None, min_value: object) -> str:
    """A number with at least one digit before the point, at most the digits the field allows."""
    sign = "" if min_value is not None and min_value >= 0 else "-?"  # type: ignore[operator]
    whole = r"\d+" if max_digits is None else r"\d{1,%d}".replace("%d", str(max(max_digits - (decimal_places or 0), 1)))
    if not decimal_places:
        return f"^{sign}{whole}$"
    return f"^{sign}{whole}(?:\\.\\d{{1,{decimal_places}}})?$"
