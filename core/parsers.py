"""The JSON parser of every API endpoint (settings REST_FRAMEWORK DEFAULT_PARSER_CLASSES).

DRF's own JSONParser lets a body nested ~1,000 deep through to a RecursionError (a 500);
this one parses through core.json_limits and answers 400 in the error format of
docs/api.md. The body's size is limited by DATA_UPLOAD_MAX_MEMORY_SIZE (413, core.api).
"""

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings

from core.json_limits import MAX_DEPTH, JsonTooDeep, json_loads_limited


class JSONParser(parsers.JSONParser):
    max_depth = MAX_DEPTH

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"The request body is not valid {encoding} text: {exc}") from exc
        kwargs = {"parse_constant": _refuse_constant} if api_settings.STRICT_JSON else {}
        try:
            return json_loads_limited(text, self.max_depth, **kwargs)
        except JsonTooDeep as exc:
            raise ParseError(f"The request body was refused: {exc} Nothing was written.") from exc
        except ValueError as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
