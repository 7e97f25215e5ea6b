"""Safety through the API: the same services and selectors as the screens."""

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response

from core.api import CursorPagination, InputSerializer
from core.api_concurrency import expected_version, with_etag
from patients.models import Patient
from safety import ctcae, selectors, services
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication
from trial import access
from trial.models import Trial
from trial.permissions import API_WRITE_PERMISSIONS


class AdverseEventOutput(serializers.ModelSerializer):
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    subject_id = serializers.CharField(source="patient.subject_id", read_only=True)
    trial = serializers.CharField(source="patient.trial.code", read_only=True)
    term = serializers.CharField(source="term.term", read_only=True)
    meddra_code = serializers.CharField(source="term.meddra_code", read_only=True)
    soc = serializers.CharField(source="term.soc", read_only=True)
    death = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    lab_panel = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    cycle = serializers.SerializerMethodField(help_text="Cycle the AE started in (from the cycles' day-1 dates).")
    sae_due = serializers.SerializerMethodField(help_text="SAE report due (created + trial.sae_report_hours).")
    sae_late = serializers.SerializerMethodField()

    def _row(self, obj: AdverseEvent) -> selectors.AeRow:
        row = (self.context.get("ae_rows") or {}).get(obj.pk)
        if row is None:
            # A single record: derive it here (one query), once for all three fields.
            row = self.__dict__.get("_single_row")
            if row is None or row.ae is not obj:
                row = self.__dict__["_single_row"] = selectors.ae_rows([obj])[0]
        return row

    def get_cycle(self, obj: AdverseEvent) -> int | None:
        return self._row(obj).cycle

    def get_sae_due(self, obj: AdverseEvent) -> str | None:
        sae = self._row(obj).sae
        return sae.due.isoformat() if sae else None

    def get_sae_late(self, obj: AdverseEvent) -> bool | None:
        sae = self._row(obj).sae
        return sae.late if sae else None

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "patient",
            "subject_id",
            "trial",
            "term",
            "meddra_code",
            "soc",
            "ctcae_version",
            "specify",
            "grade",
            "onset",
            "resolved",
            "attribution",
            "serious",
            "sae_death",
            "sae_life_threatening",
            "sae_hospitalisation",
            "sae_disability",
            "sae_congenital",
            "sae_important",
            "sae_reported_at",
            "expected",
            "action",
            "outcome",
            "source",
            "lab_panel",
            "death",
            "cycle",
            "sae_due",
            "sae_late",
            "created_at",
            "version",
        ]


class _AeFields(InputSerializer):
    meddra_code = serializers.CharField(help_text="CTCAE v5.0 term by MedDRA code")
    specify = serializers.CharField(required=False, allow_blank=True, max_length=200)
    grade = serializers.IntegerField(min_value=1, max_value=5)
    onset = serializers.DateField()
    resolved = serializers.DateField(required=False, allow_null=True)
    attribution = serializers.ChoiceField(choices=AdverseEvent.Attribution.choices)
    serious = serializers.BooleanField(required=False)
    sae_death = serializers.BooleanField(required=False)
    sae_life_threatening = serializers.BooleanField(required=False)
    sae_hospitalisation = serializers.BooleanField(required=False)
    sae_disability = serializers.BooleanField(required=False)
    sae_congenital = serializers.BooleanField(required=False)
    sae_important = serializers.BooleanField(required=False)
    sae_reported_at = serializers.DateTimeField(required=False, allow_null=True)
    expected = serializers.BooleanField(required=False, allow_null=True)
    action = serializers.ChoiceField(choices=AdverseEvent.Action.choices, required=False)
    outcome = serializers.ChoiceField(choices=AdverseEvent.Outcome.choices, required=False, allow_blank=True)

    def validate_meddra_code(self, value: str) -> CtcaeTerm:
        term = CtcaeTerm.objects.filter(version=ctcae.CTCAE_VERSION, meddra_code=value.strip()).first()
        if term is None:
            raise serializers.ValidationError(f"No CTCAE v{ctcae.CTCAE_VERSION} term has MedDRA code {value!r}.")
        return term


class AdverseEventCreateInput(_AeFields):
    patient = serializers.IntegerField()


class AdverseEventUpdateInput(_AeFields):
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        for name, f in self.fields.items():
            if name not in {"reason_for_change", "version"}:
                f.required = False


def _ae_values(validated: dict) -> dict:  # type: ignore[type-arg]
    values = dict(validated)
    if "meddra_code" in values:
        values["term"] = values.pop("meddra_code")
    return values


class AdverseEventViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """CTCAE adverse events. Filters: ``?patient=<id>``, ``?trial=<id>``."""

    serializer_class = AdverseEventOutput
    queryset = AdverseEvent.objects.none()
    filterset_fields = ["patient"]
    pagination_class = CursorPagination
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        qs = selectors.ae_list(self.request.user)
        trial = self.request.query_params.get("trial", "")
        if trial:
            qs = (
                qs.filter(patient__trial_id=trial)
                if (trial.isascii() and trial.isdigit())
                else qs.filter(patient__trial__code=trial)
            )
        return qs

    def list(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Cycle and SAE clock of a whole page in one extra query (selectors.ae_rows).
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = {row.ae.pk: row for row in selectors.ae_rows(list(page or []))}
        serializer = self.get_serializer(page, many=True, context={**self.get_serializer_context(), "ae_rows": rows})
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    @extend_schema(request=AdverseEventCreateInput, responses={201: AdverseEventOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        data = AdverseEventCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = _ae_values(data.validated_data)
        # Only patients the user enters data for; anyone else's is "not found" (no leak).
        patient = (
            access.scope(request.user, Patient.objects.select_related("trial", "site"), "enter_data")
            .filter(pk=values.pop("patient"))
            .first()
        )
        if patient is None:
            raise ApiValidationError({"patient": ["No patient with this id at a site where you enter data."]})
        ae = services.ae_record(user=request.user, patient=patient, data=values)
        return with_etag(Response(AdverseEventOutput(ae).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=AdverseEventUpdateInput, responses={200: AdverseEventOutput})
    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        ae = self.get_object()
        data = AdverseEventUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = _ae_values(data.validated_data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        ae = services.ae_update(user=request.user, ae=ae, changes=values, reason=reason, expected_version=version)
        return with_etag(Response(AdverseEventOutput(selectors.ae_get(request.user, ae.pk)).data))


class DltAdjudicationOutput(serializers.ModelSerializer):
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    subject_id = serializers.CharField(source="patient.subject_id", read_only=True)
    adverse_event = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    superseded_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    signed_by = serializers.SerializerMethodField()
    signed_at = serializers.SerializerMethodField()
    meaning = serializers.SerializerMethodField()
    evidence_changes = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What changed in the AE since signing (e.g. 'grade 3 -> 2'); empty when nothing did.",
    )
    needs_readjudication = serializers.BooleanField(
        read_only=True, help_text="Standing, but its AE was edited after signing: the signature is invalidated."
    )

    class Meta:
        model = DltAdjudication
        fields = [
            "id",
            "patient",
            "subject_id",
            "adverse_event",
            "rule",
            "event_date",
            "is_dlt",
            "rationale",
            "signed_by",
            "signed_at",
            "meaning",
            "superseded_by",
            "version",
            "evidence",
            "evidence_changes",
            "needs_readjudication",
        ]

    def get_signed_by(self, obj: DltAdjudication) -> str | None:
        return obj.signature.printed_name if obj.signature else (obj.signed_by_name or None)

    def get_signed_at(self, obj: DltAdjudication) -> str | None:
        if obj.signature:
            return obj.signature.signed_at.isoformat()
        return obj.signed_on.isoformat() if obj.signed_on else None

    def get_meaning(self, obj: DltAdjudication) -> str | None:
        return obj.signature.get_meaning_display() if obj.signature else None


class DltAdjudicationInput(InputSerializer):
    patient = serializers.IntegerField()
    adverse_event = serializers.IntegerField(required=False, allow_null=True)
    rule = serializers.ChoiceField(choices=DltAdjudication.Rule.choices)
    event_date = serializers.DateField()
    is_dlt = serializers.BooleanField()
    rationale = serializers.CharField()
    supersedes = serializers.IntegerField(required=False, allow_null=True)
    password = serializers.CharField(write_only=True, help_text="The signer re-enters the password.")


class DltAdjudicationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Signed DLT adjudications. Create = sign (``password`` in the body; 400 if wrong).
    A signed adjudication is never edited: create a new one with ``supersedes``."""

    serializer_class = DltAdjudicationOutput
    queryset = DltAdjudication.objects.none()
    filterset_fields = ["patient"]
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[DltAdjudication]:
        qs = selectors.adjudication_list(self.request.user)
        trial = self.request.query_params.get("trial", "")
        if trial.isascii() and trial.isdigit():
            qs = qs.filter(patient__trial_id=trial)
        return qs

    @extend_schema(request=DltAdjudicationInput, responses={201: DltAdjudicationOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        data = DltAdjudicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        patient = (
            access.scope(request.user, Patient.objects.select_related("trial"), "view_clinical")
            .filter(pk=values.pop("patient"))
            .first()
        )
        if patient is None:
            raise ApiValidationError({"patient": ["No patient with this id in your trials."]})
        ae_id = values.pop("adverse_event", None)
        values["adverse_event"] = None
        if ae_id is not None:
            values["adverse_event"] = AdverseEvent.objects.filter(pk=ae_id, patient=patient).first()
            if values["adverse_event"] is None:
                raise ApiValidationError({"adverse_event": ["No AE with this id for this patient."]})
        supersedes_id = values.pop("supersedes", None)
        supersedes = None
        if supersedes_id is not None:
            supersedes = DltAdjudication.objects.filter(pk=supersedes_id, patient=patient).first()
            if supersedes is None:
                raise ApiValidationError({"supersedes": ["No adjudication with this id for this patient."]})
        password = values.pop("password")
        adjudication = services.adjudication_sign(
            user=request.user, patient=patient, data=values, password=password, supersedes=supersedes
        )
        return Response(
            DltAdjudicationOutput(selectors.adjudication_get(request.user, adjudication.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        services.adjudication_edit(user=request.user, adjudication=self.get_object())

    def update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        services.adjudication_edit(user=request.user, adjudication=self.get_object())


class AeSummaryViewSet(viewsets.ViewSet):
    """``GET /api/v1/trials/{trial_id}/ae-summary/``: the paper's Table 2 (per patient the
    worst grade per term; patients with grade 1/2, 3/4, 5) by dose level and overall."""

    queryset = Trial.objects.none()

    @extend_schema(
        parameters=[OpenApiParameter("trial_id", int, OpenApiParameter.PATH)],
        responses={200: dict},
    )
    def list(self, request, trial_id: str, format: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
        trial = get_object_or_404(access.trials_for(request.user, "view_trial"), pk=trial_id)
        capability = selectors.ae_summary_capability(request.user, trial)
        if capability is None:
            raise Http404
        return Response(selectors.ae_summary(request.user, trial, capability))
