"""Voiding a record entered in error through the API (issue 19): one view for every
voidable record type, ``POST <records>/{<model>_id}/void/`` with ``{"reason", "version"}``.

The URL argument names the record type (as the lock gate and the site-wall walker read
it): the casebook lock answers 423 before the body is read (trial.permissions), a record
out of scope or already voided 404, a role without ``enter_data`` 403, a missing reason
400 naming ``reason``, a stale version 409. The write is cleaning.services.casebook_record_void,
as on the screens.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cleaning import selectors, services
from core.api import InputSerializer
from core.api_concurrency import expected_version, with_etag
from trial import access
from trial.permissions import API_WRITE_PERMISSIONS

REASON_REQUIRED = "Give the reason this record is voided (e.g. entered in error)."


class VoidInput(InputSerializer):
    reason = serializers.CharField(
        max_length=500,
        help_text="Why the record is voided (e.g. entered on the wrong patient); kept with the record.",
        error_messages={"required": REASON_REQUIRED, "blank": REASON_REQUIRED, "null": REASON_REQUIRED},
    )
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The record version you read (or send If-Match with the ETag); a stale one answers 409.",
    )


class VoidOutput(serializers.Serializer):  # type: ignore[type-arg]
    record_type = serializers.CharField(help_text="e.g. safety.adverseevent")
    id = serializers.IntegerField()
    patient = serializers.IntegerField()
    version = serializers.IntegerField()
    voided_at = serializers.DateTimeField()
    voided_by = serializers.CharField(help_text="Username of who voided it (or the name a trial bundle carried).")
    void_reason = serializers.CharField()


def void_output(record: Any) -> dict[str, Any]:
    return {
        "record_type": record._meta.label_lower,
        "id": record.pk,
        "patient": record.patient_id,
        "version": record.version,
        "voided_at": record.voided_at,
        "voided_by": record.voided_by_name or record.voided_by.get_username(),
        "void_reason": record.void_reason,
    }


_ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description='{"detail", "errors"} (docs/api.md)')


class RecordVoidView(APIView):
    """Void one record entered in error: kept (never deleted) with who, when and why,
    audited, and left out of every list, result and export. Adverse events, lab panels,
    assessments, patient events, concomitant medications and GVHD episodes."""

    permission_classes = API_WRITE_PERMISSIONS

    @extend_schema(
        request=VoidInput,
        responses={
            200: VoidOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="No reason, or no version: the field is named."),
            403: _ERROR,
            404: _ERROR,
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Stale version: current_version is given."),
            423: OpenApiResponse(OpenApiTypes.OBJECT, description="The casebook is frozen or locked."),
        },
    )
    def post(self, request: Request, **kwargs: int) -> Response:
        record = selectors.voidable_record_get(request.user, kwargs)
        patient = record.patient
        if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
            raise PermissionDenied("Records are voided by the site's coordinators.")
        serializer = VoidInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = expected_version(request, serializer.validated_data.get("version"))
        try:
            voided = services.casebook_record_void(
                user=request.user,
                target=record,
                reason=serializer.validated_data["reason"],
                expected_version=version,
            )
        except DjangoValidationError as exc:
            # The service names the screen's field (void_reason): the API's is "reason".
            if hasattr(exc, "error_dict") and "void_reason" in exc.error_dict:
                exc.error_dict["reason"] = exc.error_dict.pop("void_reason")
            raise
        return with_etag(Response(void_output(voided)))
