"""Cycles and lab panels through the API (docs/api.md `patients/{id}/cycles/`): the
same services and selectors as the screens."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from core.api import InputSerializer
from core.api_concurrency import expected_version, with_etag
from dosing import selectors, services
from dosing.models import Cycle, LabPanel
from patients import selectors as patient_selectors
from patients.models import Patient
from trial.permissions import API_WRITE_PERMISSIONS


class CycleOutput(serializers.ModelSerializer):
    dose_level = serializers.SlugRelatedField(slug_field="level", read_only=True)
    day1 = serializers.DateField(read_only=True)
    bsa_m2 = serializers.DecimalField(max_digits=4, decimal_places=2, coerce_to_string=False, read_only=True)
    dose_mg_m2 = serializers.DecimalField(max_digits=6, decimal_places=3, coerce_to_string=False, read_only=True)
    dose_mg = serializers.DecimalField(max_digits=7, decimal_places=2, coerce_to_string=False, read_only=True)
    height_cm = serializers.DecimalField(max_digits=5, decimal_places=1, coerce_to_string=False, read_only=True)
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, coerce_to_string=False, read_only=True)

    class Meta:
        model = Cycle
        fields = [
            "id",
            "number",
            "due_date",
            "day1",
            "dose_level",
            "height_cm",
            "weight_kg",
            "bsa_m2",
            "dose_mg_m2",
            "dose_mg",
            "reduced",
            "reduction_reason",
            "full_dose_restored",
            "delay_days",
            "delay_reason",
            "given",
            "not_given_reason",
            "acute_gvhd_grade",
            "liver_gvhd",
            "sos",
            "safety_check",
            "deviation",
            "version",
        ]


class CycleInput(InputSerializer):
    number = serializers.IntegerField(min_value=1, required=False)
    day1 = serializers.DateField()
    given = serializers.BooleanField(default=True)
    not_given_reason = serializers.CharField(required=False, allow_blank=True, max_length=200)
    height_cm = serializers.DecimalField(max_digits=6, decimal_places=1, required=False, allow_null=True)
    weight_kg = serializers.DecimalField(max_digits=6, decimal_places=1, required=False, allow_null=True)
    lab_date = serializers.DateField(required=False, allow_null=True)
    platelets = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    anc = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0, required=False, allow_null=True)
    hemoglobin = serializers.DecimalField(max_digits=5, decimal_places=1, min_value=0, required=False, allow_null=True)
    bilirubin = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=0, required=False, allow_null=True)
    alt = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    ast = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    acute_gvhd_grade = serializers.IntegerField(min_value=0, max_value=4, required=False, allow_null=True)
    liver_gvhd = serializers.BooleanField(required=False, allow_null=True, default=None)
    sos = serializers.BooleanField(required=False, allow_null=True, default=None)
    reduced = serializers.BooleanField(default=False)
    reduction_reason = serializers.ChoiceField(choices=Cycle.ReductionReason.choices, required=False, allow_blank=True)
    delay_reason = serializers.CharField(required=False, allow_blank=True, max_length=200)
    dose_mg = serializers.DecimalField(max_digits=7, decimal_places=2, min_value=0, required=False, allow_null=True)


class CycleUpdateInput(InputSerializer):
    """A correction after first entry (services.cycle_update): only the fields sent change;
    ``reason_for_change`` and the version read (If-Match or ``version``) are required."""

    day1 = serializers.DateField(required=False)
    given = serializers.BooleanField(required=False)
    not_given_reason = serializers.CharField(required=False, allow_blank=True, max_length=200)
    height_cm = serializers.DecimalField(max_digits=6, decimal_places=1, required=False, allow_null=True)
    weight_kg = serializers.DecimalField(max_digits=6, decimal_places=1, required=False, allow_null=True)
    dose_mg = serializers.DecimalField(max_digits=7, decimal_places=2, min_value=0, required=False, allow_null=True)
    reduced = serializers.BooleanField(required=False)
    reduction_reason = serializers.ChoiceField(choices=Cycle.ReductionReason.choices, required=False, allow_blank=True)
    delay_reason = serializers.CharField(required=False, allow_blank=True, max_length=200)
    acute_gvhd_grade = serializers.IntegerField(min_value=0, max_value=4, required=False, allow_null=True)
    liver_gvhd = serializers.BooleanField(required=False, allow_null=True)
    sos = serializers.BooleanField(required=False, allow_null=True)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)


class _PatientNested:
    """The patient of the URL, through the scoped selector: out of scope answers 404."""

    def patient(self) -> Patient:
        cached = getattr(self, "_patient", None)
        if cached is None:
            cached = patient_selectors.patient_get(self.request.user, self.kwargs["patient_id"])  # type: ignore[attr-defined]
            self._patient = cached
        return cached


class CycleViewSet(_PatientNested, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CycleOutput
    queryset = Cycle.objects.none()
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[Cycle]:
        return selectors.cycle_list(self.request.user, self.patient()).order_by("number")

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    @extend_schema(request=CycleInput, responses={201: CycleOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        patient = self.patient()
        data = CycleInput(data=request.data)
        data.is_valid(raise_exception=True)
        cycle = services.cycle_record(user=request.user, patient=patient, data=dict(data.validated_data))
        return with_etag(Response(CycleOutput(cycle).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=CycleUpdateInput, responses={200: CycleOutput})
    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Correct a cycle (PATCH): the same rules as the correction screen; a stale version
        answers 409, a frozen or locked casebook 423, and nothing is written."""
        cycle = self.get_object()
        data = CycleUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        services.cycle_update(user=request.user, cycle=cycle, changes=values, reason=reason, expected_version=version)
        return with_etag(Response(CycleOutput(selectors.cycle_get(request.user, cycle.pk)).data))


class LabPanelOutput(serializers.ModelSerializer):
    class Meta:
        model = LabPanel
        fields = ["id", "date", "platelets", "anc", "hemoglobin", "bilirubin", "alt", "ast", "version"]


class LabPanelInput(InputSerializer):
    date = serializers.DateField()
    platelets = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    anc = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0, required=False, allow_null=True)
    hemoglobin = serializers.DecimalField(max_digits=5, decimal_places=1, min_value=0, required=False, allow_null=True)
    bilirubin = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=0, required=False, allow_null=True)
    alt = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    ast = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)


class LabPanelUpdateInput(serializers.Serializer):
    """A lab panel correction (services.lab_panel_update): only the fields sent change;
    ``reason_for_change`` and the version read (If-Match or ``version``) are required."""

    date = serializers.DateField(required=False)
    platelets = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    anc = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0, required=False, allow_null=True)
    hemoglobin = serializers.DecimalField(max_digits=5, decimal_places=1, min_value=0, required=False, allow_null=True)
    bilirubin = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=0, required=False, allow_null=True)
    alt = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    ast = serializers.DecimalField(max_digits=7, decimal_places=1, min_value=0, required=False, allow_null=True)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["This field cannot be corrected here."] for name in unknown})
        return attrs


class LabPanelViewSet(_PatientNested, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LabPanelOutput
    queryset = LabPanel.objects.none()
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[LabPanel]:
        return selectors.lab_panel_list(self.request.user, self.patient()).order_by("date", "id")

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    @extend_schema(request=LabPanelInput, responses={201: LabPanelOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        patient = self.patient()
        data = LabPanelInput(data=request.data)
        data.is_valid(raise_exception=True)
        panel = services.lab_panel_record(user=request.user, patient=patient, data=dict(data.validated_data))
        return with_etag(Response(LabPanelOutput(panel).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=LabPanelUpdateInput, responses={200: LabPanelOutput})
    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Correct a lab panel (PATCH): the same rules as the correction screen; a stale
        version answers 409, a frozen or locked casebook 423, and nothing is written."""
        panel = self.get_object()
        data = LabPanelUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        services.lab_panel_update(
            user=request.user, panel=panel, changes=values, reason=reason, expected_version=version
        )
        return with_etag(Response(LabPanelOutput(selectors.lab_panel_get(request.user, panel.pk)).data))
