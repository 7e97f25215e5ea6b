"""CDISC packages over the API (issue 18, docs/api.md "CDISC packages"):

* ``POST /api/v1/trials/{trial_id}/cdisc-packages/``: build a new version (202), or get
  the build already queued or running back (200): one open build per trial;
* ``GET  .../cdisc-packages/``: every version, newest first (paginated);
* ``GET  .../cdisc-packages/{cdisc_package_id}/``: one version, with its progress (the
  packages page polls it);
* ``GET  .../cdisc-packages/{cdisc_package_id}/download/``: the zip, streamed from disk.

Capability "export" (sponsors and investigators of the trial); anyone else gets 404.
Asking for a package is open to sponsors although they are read-only everywhere else
(trial.permissions.WritesNeedAWritingRole): it changes no trial data, it records a
request and builds a file from the data as they are.
"""

from typing import Any

from django.http import FileResponse, Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import InputSerializer, validated_input
from exchange import selectors, services
from exchange.models import CdiscPackage
from trial import access
from trial.models import Trial


class CdiscPackageOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    trial = serializers.IntegerField()
    number = serializers.IntegerField(help_text="The package version: 1, 2, 3... per trial.")
    requested_by = serializers.CharField(help_text="Name and role; a sponsor sees the role only.")
    requested_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=CdiscPackage.Status.choices)
    progress = serializers.FloatField(min_value=0, max_value=1)
    step = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    size = serializers.IntegerField(allow_null=True, help_text="Bytes of the zip (done only).")
    sha256 = serializers.CharField(allow_null=True, help_text="SHA-256 of the zip, hex (done only).")
    dataset_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Records per dataset.")
    conformance = serializers.DictField(allow_null=True, help_text="The conformance report's summary (done only).")
    error = serializers.CharField(allow_null=True, help_text="Why the build failed (failed only).")
    download = serializers.CharField(allow_null=True, help_text="The zip's URL (done only).")


class CdiscPackageRequestInput(InputSerializer):
    """No fields: the package always holds every dataset of the trial, as of now."""


def _trial(request: Request, trial_id: int) -> Trial:
    return access.get_scoped_or_404(request.user, Trial.objects.all(), "export", pk=trial_id)  # type: ignore[return-value]


class CdiscPackageListView(generics.GenericAPIView):  # type: ignore[type-arg]
    # Not the default write gate: a sponsor may ask for a package (module docstring).
    permission_classes = [permissions.IsAuthenticated]
    queryset = CdiscPackage.objects.none()  # scoped per request (exchange.selectors)
    serializer_class = CdiscPackageOutput

    @extend_schema(
        operation_id="cdisc_packages_list",
        summary="List CDISC packages",
        description="Every package version of the trial, newest first (docs/api.md).",
        responses={200: CdiscPackageOutput(many=True)},
        tags=["exports"],
    )
    def get(self, request: Request, trial_id: int) -> Response:
        trial = _trial(request, trial_id)
        page = self.paginate_queryset(selectors.cdisc_packages_of(request.user, trial))
        return self.get_paginated_response([selectors.cdisc_package_payload(request.user, p) for p in page or []])

    @extend_schema(
        operation_id="cdisc_packages_create",
        summary="Build a CDISC package",
        description=(
            "Queue a new package version (202). While one is queued or running, that one is "
            "returned instead (200): one build per trial at a time. Body: `{}`."
        ),
        request=CdiscPackageRequestInput,
        responses={202: CdiscPackageOutput, 200: CdiscPackageOutput},
        tags=["exports"],
    )
    def post(self, request: Request, trial_id: int) -> Response:
        trial = _trial(request, trial_id)
        validated_input(CdiscPackageRequestInput, request.data if request.data else {})
        package, created = services.cdisc_package_request(trial, request.user)
        return Response(
            selectors.cdisc_package_payload(request.user, package),
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )


class CdiscPackageDetailView(APIView):
    @extend_schema(
        operation_id="cdisc_packages_retrieve",
        summary="One CDISC package",
        description="One package version with its status and progress (the packages page polls it).",
        responses={200: CdiscPackageOutput},
        tags=["exports"],
    )
    def get(self, request: Request, trial_id: int, cdisc_package_id: int) -> Response:
        package = selectors.cdisc_package_get(request.user, _trial(request, trial_id), cdisc_package_id)
        return Response(selectors.cdisc_package_payload(request.user, package))


class CdiscPackageDownloadView(APIView):
    @extend_schema(
        operation_id="cdisc_packages_download",
        summary="Download a CDISC package",
        description=(
            "The zip (XPT v5, Dataset-JSON v1.1, define.xml 2.1, conformance.json/.txt), streamed. "
            "`X-Content-SHA256` repeats the job's sha256. 404 until the build is done."
        ),
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The package.")},
        tags=["exports"],
    )
    def get(self, request: Request, trial_id: int, cdisc_package_id: int) -> Any:
        package = selectors.cdisc_package_get(request.user, _trial(request, trial_id), cdisc_package_id)
        path = services.cdisc_package_path(package)
        if path is None:
            raise Http404("This package has no file: it is not built (see its status).")
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=package.download_name)  # noqa: SIM115
        response["Content-Type"] = "application/zip"
        response["X-Content-SHA256"] = package.sha256
        return response


# <cdisc_package_id>: the URL walkers of the test suite find the model from the argument's name.
package_urlpatterns = [
    path("trials/<int:trial_id>/cdisc-packages/", CdiscPackageListView.as_view(), name="api-cdisc-packages"),
    path(
        "trials/<int:trial_id>/cdisc-packages/<int:cdisc_package_id>/",
        CdiscPackageDetailView.as_view(),
        name="api-cdisc-package",
    ),
    path(
        "trials/<int:trial_id>/cdisc-packages/<int:cdisc_package_id>/download/",
        CdiscPackageDownloadView.as_view(),
        name="api-cdisc-package-download",
    ),
]
