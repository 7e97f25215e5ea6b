"""Sponsor exports over the API: ``GET /api/v1/exports/{dataset}/`` (docs/api.md, issue 8).

One URL per dataset (``exports/dm/`` ... ``exports/adtte/``): the walkers of the test
suite fill URL arguments from their names, and a fixed path per dataset also gives each
its own operation in the OpenAPI document. Read-only: every other method answers 405.
"""

from django.http import StreamingHttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange import exports
from exchange.odm.selectors import odm_stream


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through DRF's content negotiation; the body is streamed by
    the view, so this renders only error bodies (as JSON text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # type: ignore[no-untyped-def]
        return renderers.JSONRenderer().render(data)


_EXPORT_JSON = inline_serializer(
    name="ExportDocument",
    fields={
        "dataset": serializers.CharField(),
        "label": serializers.CharField(),
        "study": serializers.CharField(),
        "generated_at": serializers.DateTimeField(),
        "updated_since": serializers.DateTimeField(allow_null=True),
        "deletions_note": serializers.CharField(),
        "columns": serializers.ListField(child=serializers.CharField()),
        "deletions": serializers.ListField(
            child=serializers.CharField(), help_text="Always empty: nothing is deleted."
        ),
        "rows": serializers.ListField(child=serializers.DictField()),
    },
)
_ERROR = inline_serializer(
    name="ExportError",
    fields={"detail": serializers.CharField(), "errors": serializers.DictField()},
)


class ExportView(APIView):
    """Stream one de-identified dataset of one trial as CSV or JSON."""

    dataset = ""
    http_method_names = ["get", "head", "options"]
    renderer_classes = [renderers.JSONRenderer, CsvRenderer]

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        params = request.query_params
        trial, chunks, headers = exports.export_stream(
            request.user,
            self.dataset,
            trial_ref=params.get("trial", "").strip(),
            fmt=params.get("format", "csv"),
            updated_since=params.get("updated_since", ""),
        )
        content_type = "text/csv; charset=utf-8" if params.get("format", "csv") == "csv" else "application/json"
        response = StreamingHttpResponse(chunks, content_type=content_type)
        for name, value in headers.items():
            response[name] = value
        return response

    def perform_content_negotiation(self, request, force=False):  # type: ignore[no-untyped-def]
        # An unknown ?format= is a 400 naming the parameter (exports.export_stream), not DRF's 404.
        return super().perform_content_negotiation(request, force=True)

    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Errors are JSON whatever format was asked for (docs/api.md error format).
        if isinstance(response, Response):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


def _view(dataset: exports.Dataset):  # type: ignore[no-untyped-def]
    description = (
        f"{dataset.label}. Columns: {', '.join(dataset.columns)} (docs/exports.md). "
        "Sponsors and investigators of the trial only; streamed. Records are never deleted: "
        "the `deletions` list is always empty and `X-Export-Deletions` says so."
    )
    schema = extend_schema(
        operation_id=f"exports_{dataset.name}",
        summary=f"Export {dataset.name}",
        description=description,
        tags=["exports"],
        parameters=[
            OpenApiParameter(
                "trial", OpenApiTypes.STR, required=True, pattern=r"\S", description="Trial code or id (not blank)."
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "json"], description="Default csv."),
            OpenApiParameter(
                "updated_since",
                OpenApiTypes.DATETIME,
                description="Only rows changed after this moment (ISO 8601; a date means its midnight UTC).",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header line."),
            (200, "application/json"): _EXPORT_JSON,
            (400, "application/json"): _ERROR,
            (401, "application/json"): _ERROR,
            (403, "application/json"): _ERROR,
            (404, "application/json"): _ERROR,
        },
    )

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return ExportView.get(self, request, *args, **kwargs)

    attributes = {"dataset": dataset.name, "get": schema(get)}
    return type(f"Export{dataset.name.capitalize()}View", (ExportView,), attributes).as_view()


class XmlRenderer(CsvRenderer):
    """Lets ``Accept: application/xml`` through; the body is streamed by the view."""

    media_type = "application/xml"
    format = "xml"


class OdmExportView(ExportView):
    """The trial's casebooks with their audit trail as one CDISC ODM 1.3.2 document."""

    renderer_classes = [renderers.JSONRenderer, XmlRenderer]

    @extend_schema(
        operation_id="exports_odm",
        summary="Export the casebooks as CDISC ODM 1.3.2",
        description=(
            "Every casebook of the trial (the sites the user may export) as one CDISC ODM 1.3.2 XML document, "
            "FileType Transactional: metadata generated from the record types, users as pseudonymous OIDs with "
            "their roles, every version of every record as an Insert / Update / Remove item group with its "
            "AuditRecord (who, site, when, reason), voided records as Remove, electronic signatures as Signature "
            "elements (docs/exports.md, ODM). Sponsors and investigators of the trial only; streamed."
        ),
        tags=["exports"],
        parameters=[
            OpenApiParameter(
                "trial", OpenApiTypes.STR, required=True, pattern=r"\S", description="Trial code or id (not blank)."
            ),
        ],
        responses={
            (200, "application/xml"): OpenApiResponse(OpenApiTypes.STR, description="ODM 1.3.2 XML (UTF-8)."),
            (400, "application/json"): _ERROR,
            (401, "application/json"): _ERROR,
            (403, "application/json"): _ERROR,
            (404, "application/json"): _ERROR,
        },
    )
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        _, chunks, headers = odm_stream(request.user, request.query_params.get("trial", "").strip())
        response = StreamingHttpResponse(chunks, content_type="application/xml; charset=utf-8")
        for name, value in headers.items():
            response[name] = value
        return response


export_urlpatterns = [
    path(f"exports/{name}/", _view(dataset), name=f"export-{name}") for name, dataset in exports.DATASETS.items()
]
export_urlpatterns.append(path("exports/odm/", OdmExportView.as_view(), name="export-odm"))
