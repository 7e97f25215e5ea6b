"""Patients through the API: the same services and selectors as the screens."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from core.api_concurrency import expected_version, with_etag
from patients import selectors, services
from patients.models import Patient
from trial import access
from trial.models import Site


class PatientOutput(serializers.ModelSerializer):
    trial = serializers.SlugRelatedField(slug_field="code", read_only=True)
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    dose_level = serializers.SlugRelatedField(slug_field="level", read_only=True)

    class Meta:
        model = Patient
        fields = [
            "id",
            "trial",
            "site",
            "subject_id",
            "sex",
            "race",
            "birth_year",
            "dose_level",
            "enrolled_on",
            "version",
        ]


class PatientRegisterInput(serializers.Serializer):
    trial = serializers.CharField(help_text="Trial code")
    site = serializers.CharField(help_text="Site code")
    subject_id = serializers.CharField(max_length=30)
    sex = serializers.ChoiceField(choices=Patient.Sex.choices)
    race = serializers.ChoiceField(choices=Patient.Race.choices, default=Patient.Race.UNREPORTED)
    birth_year = serializers.IntegerField(min_value=1900, max_value=2100)


class PatientUpdateInput(serializers.Serializer):
    sex = serializers.ChoiceField(choices=Patient.Sex.choices, required=False)
    race = serializers.ChoiceField(choices=Patient.Race.choices, required=False)
    birth_year = serializers.IntegerField(min_value=1900, max_value=2100, required=False)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)


class PatientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PatientOutput
    queryset = Patient.objects.none()
    filterset_fields = ["trial", "site"]

    def get_queryset(self) -> QuerySet[Patient]:
        return selectors.patient_list(self.request.user)

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    @extend_schema(request=PatientRegisterInput, responses={201: PatientOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        data = PatientRegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        trial = get_object_or_404(access.trials_for(request.user, "enter_data"), code=values.pop("trial"))
        site = Site.objects.filter(trial=trial, code=values.pop("site")).first()
        patient = services.patient_register(user=request.user, trial=trial, data={**values, "site": site})
        return with_etag(Response(PatientOutput(patient).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=PatientUpdateInput, responses={200: PatientOutput})
    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        patient = self.get_object()
        data = PatientUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        patient = services.patient_update(
            user=request.user, patient=patient, changes=values, reason=reason, expected_version=version
        )
        return with_etag(Response(PatientOutput(patient).data))
