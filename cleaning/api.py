"""Data queries through the API (sponsors' monitors): the same services and selectors as the screens."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from cleaning import selectors, services
from cleaning.models import DataQuery, QueryMessage
from core.api import CursorPagination, InputSerializer
from core.api_concurrency import with_etag
from trial.permissions import API_WRITE_PERMISSIONS


class QueryMessageOutput(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = QueryMessage
        fields = [
            "id",
            "kind",
            "text",
            "author",
            "created_at",
            "corrected_field",
            "old_value",
            "new_value",
            "target_history_id",
            "target_version",
        ]

    def get_author(self, obj: QueryMessage) -> str | None:
        if obj.author is None:
            return None
        return str(obj.author.get_full_name() or obj.author.get_username())


class DataQueryOutput(serializers.ModelSerializer):
    trial = serializers.CharField(source="trial.code", read_only=True)
    site = serializers.CharField(source="site.code", read_only=True)
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    subject_id = serializers.CharField(source="patient.subject_id", read_only=True)
    target_type = serializers.SerializerMethodField(help_text="The queried record's type, e.g. safety.adverseevent.")
    target_id = serializers.IntegerField(source="object_id", read_only=True)
    target = serializers.SerializerMethodField(help_text="The queried record, e.g. 'adverse event #12'.")
    raised_by = serializers.SerializerMethodField()
    age_days = serializers.SerializerMethodField(help_text="Whole days since the query was raised.")

    class Meta:
        model = DataQuery
        fields = [
            "id",
            "trial",
            "site",
            "patient",
            "subject_id",
            "target_type",
            "target_id",
            "target",
            "field_name",
            "question",
            "state",
            "origin",
            "rule_code",
            "raised_by",
            "created_at",
            "closed_at",
            "age_days",
            "version",
        ]

    def get_target_type(self, obj: DataQuery) -> str:
        return selectors.target_key(obj)

    def get_target(self, obj: DataQuery) -> str:
        return selectors.target_label(obj)

    def get_raised_by(self, obj: DataQuery) -> str | None:
        if obj.raised_by is None:
            return None
        return str(obj.raised_by.get_full_name() or obj.raised_by.get_username())

    def get_age_days(self, obj: DataQuery) -> int:
        return selectors.age_days(obj)


class DataQueryDetailOutput(DataQueryOutput):
    messages = serializers.SerializerMethodField()

    class Meta(DataQueryOutput.Meta):
        fields = [*DataQueryOutput.Meta.fields, "messages"]

    @extend_schema_field(QueryMessageOutput(many=True))
    def get_messages(self, obj: DataQuery) -> list[dict[str, Any]]:
        return QueryMessageOutput(selectors.query_thread(obj), many=True).data  # type: ignore[return-value]


class RaiseInput(InputSerializer):
    target_type = serializers.CharField(help_text="The record's type, e.g. safety.adverseevent or patients.patient.")
    target_id = serializers.IntegerField(min_value=1)
    field_name = serializers.CharField(required=False, allow_blank=True, default="")
    question = serializers.CharField(max_length=4000)


class AnswerInput(InputSerializer):
    text = serializers.CharField(max_length=4000)
    correction = serializers.DictField(
        required=False,
        help_text='The queried field and its new value, e.g. {"grade": 2}; corrected through the record\'s '
        "own update service.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class CloseInput(InputSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class ReopenInput(InputSerializer):
    text = serializers.CharField(max_length=4000)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class DataQueryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Data queries. Filters: ``?state=open|answered|closed``, ``?site=<id>``, ``?patient=<id>``,
    ``?origin=manual|automatic``, ``?trial=<id>``. Raise with POST; answer, close and re-open
    with the actions. Threads are never deleted."""

    serializer_class = DataQueryOutput
    queryset = DataQuery.objects.none()
    filterset_fields = ["state", "site", "patient", "origin", "trial"]
    pagination_class = CursorPagination
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[DataQuery]:
        return selectors.query_list(self.request.user)

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return DataQueryDetailOutput if self.action != "list" else DataQueryOutput

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    def _detail(self, query: DataQuery, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.query_get(self.request.user, query.pk)
        return with_etag(Response(DataQueryDetailOutput(fresh).data, status=code))

    @extend_schema(request=RaiseInput, responses={201: DataQueryDetailOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        values = _valid(RaiseInput, request.data)
        target = services.casebook_record_get(
            request.user, values["target_type"], values["target_id"], "raise_query", "raise queries"
        )
        query = services.query_raise(
            user=request.user, target=target, field_name=values["field_name"], question=values["question"]
        )
        return self._detail(query, status.HTTP_201_CREATED)

    @extend_schema(request=AnswerInput, responses={200: DataQueryDetailOutput})
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        """The site's answer, optionally with a correction of the queried field (and its reason)."""
        query = self.get_object()
        values = _valid(AnswerInput, request.data)
        services.query_answer(
            user=request.user,
            query=query,
            text=values["text"],
            correction=values.get("correction") or None,
            reason=values["reason"],
        )
        return self._detail(query)

    @extend_schema(request=CloseInput, responses={200: DataQueryDetailOutput})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        query = self.get_object()
        services.query_close(user=request.user, query=query, note=_valid(CloseInput, request.data)["note"])
        return self._detail(query)

    @extend_schema(request=ReopenInput, responses={200: DataQueryDetailOutput})
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        query = self.get_object()
        services.query_reopen(user=request.user, query=query, text=_valid(ReopenInput, request.data)["text"])
        return self._detail(query)
