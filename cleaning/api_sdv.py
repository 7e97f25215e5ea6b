"""Source data verification through the API (monitors): the same service as the worksheet."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from cleaning import services
from cleaning.models import SourceVerification
from core.api import CursorPagination, InputSerializer
from trial import access
from trial.permissions import API_WRITE_PERMISSIONS


class SourceVerificationOutput(serializers.ModelSerializer):
    trial = serializers.CharField(source="trial.code", read_only=True)
    site = serializers.CharField(source="site.code", read_only=True)
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    subject_id = serializers.CharField(source="patient.subject_id", read_only=True)
    target_type = serializers.SerializerMethodField(help_text="The verified record's type, e.g. safety.adverseevent.")
    target_id = serializers.IntegerField(source="object_id", read_only=True)
    verified_by = serializers.SerializerMethodField()
    current = serializers.SerializerMethodField(
        help_text="The record is still at the verified version; false once an edit cleared the verification."
    )

    class Meta:
        model = SourceVerification
        fields = [
            "id",
            "trial",
            "site",
            "patient",
            "subject_id",
            "target_type",
            "target_id",
            "record_version",
            "verified_by",
            "verified_at",
            "current",
        ]

    def get_target_type(self, obj: SourceVerification) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

    def get_verified_by(self, obj: SourceVerification) -> str:
        return str(obj.verified_by.get_full_name() or obj.verified_by.get_username())

    def get_current(self, obj: SourceVerification) -> bool:
        versions = self.context.get("versions") or _versions([obj])
        return versions.get((obj.content_type_id, obj.object_id)) == obj.record_version


def _versions(marks: list[SourceVerification]) -> dict[tuple[int, int], int]:
    """(content type, record id) -> the record's current version: one SQL query per record type."""
    by_type: dict[int, set[int]] = {}
    for mark in marks:
        by_type.setdefault(mark.content_type_id, set()).add(mark.object_id)
    versions: dict[tuple[int, int], int] = {}
    for content_type_id, ids in by_type.items():
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is None:
            continue
        for pk, version in model._default_manager.filter(pk__in=ids).values_list("pk", "version"):
            versions[(content_type_id, pk)] = version
    return versions


class VerifyInput(InputSerializer):
    target_type = serializers.CharField(help_text="The record's type, e.g. safety.adverseevent or patients.patient.")
    target_id = serializers.IntegerField(min_value=1)
    version = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The version you checked against the source; refused if the record has changed since.",
    )


class SourceVerificationViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Source data verification marks. Filters: ``?trial=<id>``, ``?site=<id>``, ``?patient=<id>``.
    POST marks one version of a casebook record verified (capability ``verify``: monitors);
    ``current`` turns false when the record is edited afterwards."""

    serializer_class = SourceVerificationOutput
    queryset = SourceVerification.objects.none()
    filterset_fields = ["trial", "site", "patient"]
    pagination_class = CursorPagination
    permission_classes = API_WRITE_PERMISSIONS
    lock_level = "query"  # a frozen casebook still takes SDV marks; a locked one refuses (save guard)

    def get_queryset(self) -> QuerySet[SourceVerification]:
        return access.scope(
            self.request.user,
            SourceVerification.objects.select_related("trial", "site", "patient", "content_type", "verified_by"),
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["versions"] = getattr(self, "_versions", None)
        return context

    def paginate_queryset(self, queryset):  # type: ignore[no-untyped-def]
        page = super().paginate_queryset(queryset)
        if page is not None:
            self._versions = _versions(page)
        return page

    @extend_schema(request=VerifyInput, responses={201: SourceVerificationOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = VerifyInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        target = services.casebook_record_get(
            request.user, values["target_type"], values["target_id"], "verify", "verify source data"
        )
        mark = services.record_verify(user=request.user, target=target, expected_version=values.get("version"))
        fresh = self.get_queryset().get(pk=mark.pk)
        return Response(
            SourceVerificationOutput(fresh, context={"versions": _versions([fresh])}).data,
            status=status.HTTP_201_CREATED,
        )
