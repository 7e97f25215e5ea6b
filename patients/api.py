"""Patients through the API: the same services and selectors as the screens."""

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import CursorPagination, InputSerializer, ModelInputSerializer, validated_input
from core.api_concurrency import expected_version, with_etag
from core.locks import LockInfo
from patients import selectors, services
from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
from trial import access
from trial.models import DoseLevel, ProtocolVersion, Site
from trial.permissions import API_WRITE_PERMISSIONS

# --- output ---------------------------------------------------------------------------


class TransplantOutput(serializers.ModelSerializer):
    class Meta:
        model = Transplant
        fields = ["id", *services.TRANSPLANT_FIELDS, "version"]


class ConsentOutput(serializers.ModelSerializer):
    protocol_version = serializers.SlugRelatedField(slug_field="version", read_only=True)

    class Meta:
        model = Consent
        fields = ["id", "protocol_version", "date", "version"]


class LockOutput(serializers.Serializer):
    """A casebook's effective lock (issue 12); a trial lock shows as locked with by_trial."""

    # Plain text with the choices in the help: "state" names other choice sets too (queries).
    state = serializers.CharField(help_text="One of: open, frozen, locked")
    by_trial = serializers.BooleanField(help_text="Locked because the whole trial is locked.")
    changed_at = serializers.DateTimeField(allow_null=True)
    changed_by = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(help_text="What a refused write answers.")


def lock_output(info: LockInfo) -> dict[str, Any]:
    return {
        "state": info.state,
        "by_trial": info.by_trial,
        "changed_at": info.changed_at.isoformat() if info.changed_at else None,
        "changed_by": info.changed_by,
        "reason": info.reason,
        "message": info.message,
    }


class PatientOutput(serializers.ModelSerializer):
    trial = serializers.SlugRelatedField(slug_field="code", read_only=True)
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    dose_level = serializers.SlugRelatedField(slug_field="level", read_only=True)
    transplant = serializers.SerializerMethodField()
    lock = serializers.SerializerMethodField()

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
            *services.DISEASE_FIELDS,
            "transplant",
            "dose_level",
            "enrolled_on",
            "enrolment_deviation",
            "enrolled_as_backfill",
            "lock",
            "version",
        ]

    @extend_schema_field(LockOutput)
    def get_lock(self, patient: Patient) -> dict[str, Any]:
        return lock_output(patient.lock)

    @extend_schema(responses=TransplantOutput)
    def get_transplant(self, patient: Patient) -> dict[str, Any] | None:
        transplant = selectors.transplant_of(patient)
        return TransplantOutput(transplant).data if transplant is not None else None


# "kind" and "result" name different choice sets in several models; plain strings with
# the choices in the help text keep the OpenAPI enum names unambiguous (the services
# and the models' full_clean validate the values).
def _choice_text(choices: list[tuple[str, str]], **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(help_text="One of: " + ", ".join(value for value, _ in choices), **kwargs)


class ScreeningOutput(serializers.ModelSerializer):
    result = _choice_text(Screening.Result.choices, read_only=True)

    class Meta:
        model = Screening
        fields = ["id", "patient", *services.SCREENING_FIELDS, "result", "criteria", "version"]


class AssessmentOutput(serializers.ModelSerializer):
    kind = _choice_text(Assessment.Kind.choices, read_only=True)
    result = _choice_text(Assessment.Result.choices, read_only=True)

    class Meta:
        model = Assessment
        fields = ["id", "patient", *services.ASSESSMENT_FIELDS, "version"]


class PatientEventOutput(serializers.ModelSerializer):
    kind = _choice_text(PatientEvent.Kind.choices, read_only=True)

    class Meta:
        model = PatientEvent
        fields = ["id", "patient", *services.EVENT_FIELDS, "version"]


# --- input ----------------------------------------------------------------------------


class _DiseaseInput(InputSerializer):
    diagnosis = serializers.ChoiceField(choices=Patient.Diagnosis.choices, required=False, allow_blank=True)
    cd22_positive = serializers.BooleanField(required=False, allow_null=True)
    ph_positive = serializers.BooleanField(required=False, allow_null=True)
    cytogenetic_risk = serializers.ChoiceField(
        choices=Patient.CytogeneticRisk.choices, required=False, allow_blank=True
    )
    prior_lines = serializers.IntegerField(min_value=0, max_value=20, required=False, allow_null=True)
    prior_asparaginase = serializers.BooleanField(required=False, allow_null=True)
    prior_blinatumomab = serializers.BooleanField(required=False, allow_null=True)
    prior_inotuzumab = serializers.BooleanField(required=False, allow_null=True)
    prior_car_t = serializers.BooleanField(required=False, allow_null=True)
    prior_hct = serializers.BooleanField(required=False, allow_null=True)
    hct_ci = serializers.IntegerField(min_value=0, max_value=30, required=False, allow_null=True)


class PatientRegisterInput(_DiseaseInput):
    trial = serializers.CharField(help_text="Trial code")
    site = serializers.CharField(help_text="Site code")
    subject_id = serializers.CharField(max_length=30)
    sex = serializers.ChoiceField(choices=Patient.Sex.choices)
    race = serializers.ChoiceField(choices=Patient.Race.choices, default=Patient.Race.UNREPORTED)
    birth_year = serializers.IntegerField(min_value=1900, max_value=2100)


class PatientUpdateInput(_DiseaseInput):
    sex = serializers.ChoiceField(choices=Patient.Sex.choices, required=False)
    race = serializers.ChoiceField(choices=Patient.Race.choices, required=False)
    birth_year = serializers.IntegerField(min_value=1900, max_value=2100, required=False)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)


class TransplantInput(ModelInputSerializer):
    class Meta:
        model = Transplant
        fields = list(services.TRANSPLANT_FIELDS)
        validators: list[Any] = []  # uniqueness and the rules are the service's


class TransplantUpdateInput(TransplantInput):
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)

    class Meta(TransplantInput.Meta):
        fields = [*services.TRANSPLANT_FIELDS, "reason_for_change", "version"]


class ConsentInput(InputSerializer):
    protocol_version = serializers.CharField(help_text="Protocol version, e.g. '2'")
    date = serializers.DateField()
    version_override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Investigators only: why the consent is to a version other than the one in effect on its date.",
    )


class EnrolInput(InputSerializer):
    enrolled_on = serializers.DateField()
    dose_level = serializers.IntegerField(
        required=False, allow_null=True, help_text="Investigators only: a chosen level (a protocol deviation)."
    )
    deviation_reason = serializers.CharField(required=False, allow_blank=True, default="")
    backfill = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Enrol into an open backfill place (escalation backfill_slots); dose_level picks the level.",
    )
    version = serializers.IntegerField(required=False)


class ScreeningInput(InputSerializer):
    date = serializers.DateField()
    lab_date = serializers.DateField(required=False, allow_null=True)
    # Wider than the model on purpose: a unit slip (50000) reaches the service, which
    # answers "did you mean 50 x10^9/L?" instead of a digit-count error.
    platelets_10e9_l = serializers.DecimalField(max_digits=12, decimal_places=1, required=False, allow_null=True)
    anc_10e9_l = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    agvhd_grade = serializers.IntegerField(required=False, allow_null=True)
    liver_gvhd = serializers.BooleanField(required=False, allow_null=True)
    sos_history = serializers.BooleanField(required=False, allow_null=True)


class AssessmentInput(ModelInputSerializer):
    patient = serializers.IntegerField()
    kind = _choice_text(Assessment.Kind.choices)
    result = _choice_text(Assessment.Result.choices, required=False, allow_blank=True)

    class Meta:
        model = Assessment
        fields = ["patient", *services.ASSESSMENT_FIELDS]
        validators: list[Any] = []


class AssessmentUpdateInput(ModelInputSerializer):
    kind = _choice_text(Assessment.Kind.choices, required=False)
    result = _choice_text(Assessment.Result.choices, required=False, allow_blank=True)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)

    class Meta:
        model = Assessment
        fields = [*services.ASSESSMENT_FIELDS, "reason_for_change", "version"]
        extra_kwargs = {f: {"required": False} for f in services.ASSESSMENT_FIELDS}
        validators: list[Any] = []


class PatientEventInput(ModelInputSerializer):
    patient = serializers.IntegerField()
    kind = _choice_text(PatientEvent.Kind.choices)

    class Meta:
        model = PatientEvent
        fields = ["patient", *services.EVENT_FIELDS]
        validators: list[Any] = []


class PatientEventUpdateInput(ModelInputSerializer):
    kind = _choice_text(PatientEvent.Kind.choices, required=False)
    reason_for_change = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False)

    class Meta:
        model = PatientEvent
        fields = [*services.EVENT_FIELDS, "reason_for_change", "version"]
        extra_kwargs = {f: {"required": False} for f in services.EVENT_FIELDS}
        validators: list[Any] = []


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- views ----------------------------------------------------------------------------


class PatientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PatientOutput
    queryset = Patient.objects.none()
    filterset_fields = ["trial", "site"]
    pagination_class = CursorPagination
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self) -> QuerySet[Patient]:
        return selectors.patient_list(self.request.user)

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    @extend_schema(request=PatientRegisterInput, responses={201: PatientOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        def check(partial: dict[str, Any]) -> None:  # the service's rules on the fields that validated
            trial = access.trials_for(request.user, "enter_data").filter(code=partial.pop("trial", None)).first()
            if trial is not None:
                site = Site.objects.filter(trial=trial, code=partial.pop("site", None)).first()
                services.patient_register_check(user=request.user, trial=trial, data={**partial, "site": site})

        values = validated_input(PatientRegisterInput, request.data, check)
        trial = get_object_or_404(access.trials_for(request.user, "enter_data"), code=values.pop("trial"))
        site = Site.objects.filter(trial=trial, code=values.pop("site")).first()
        patient = services.patient_register(user=request.user, trial=trial, data={**values, "site": site})
        return with_etag(Response(PatientOutput(patient).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=PatientUpdateInput, responses={200: PatientOutput})
    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        patient = self.get_object()
        values = _valid(PatientUpdateInput, request.data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        patient = services.patient_update(
            user=request.user, patient=patient, changes=values, reason=reason, expected_version=version
        )
        return with_etag(Response(PatientOutput(patient).data))

    @extend_schema(request=ScreeningInput, responses={200: ScreeningOutput(many=True), 201: ScreeningOutput})
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # the whole list, unpaginated
    def screenings(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        """Eligibility screenings with per-criterion results; POST screens again."""
        patient = self.get_object()
        if request.method == "GET":
            return Response(ScreeningOutput(selectors.screening_list(request.user, patient.pk), many=True).data)
        values = validated_input(
            ScreeningInput,
            request.data,
            lambda partial: services.screening_check(user=request.user, patient=patient, data=partial),
        )
        screening = services.screening_record(user=request.user, patient=patient, data=values)
        return Response(ScreeningOutput(screening).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses={200: TransplantOutput})
    @extend_schema(methods=["POST"], request=TransplantInput, responses={201: TransplantOutput})
    @extend_schema(methods=["PATCH"], request=TransplantUpdateInput, responses={200: TransplantOutput})
    @action(detail=True, methods=["get", "post", "patch"])
    def transplant(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        """GET the transplant; POST its first entry; PATCH it with reason and version."""
        patient = self.get_object()
        current = selectors.transplant_of(patient)
        if request.method == "GET":
            if current is None:
                return Response({"detail": "No transplant recorded.", "errors": {}}, status=404)
            return with_etag(Response(TransplantOutput(current).data))
        if request.method == "POST":
            data = _valid(TransplantInput, request.data)
            transplant = services.transplant_record(user=request.user, patient=patient, data=data)
            return with_etag(Response(TransplantOutput(transplant).data, status=status.HTTP_201_CREATED))
        if current is None:
            return Response({"detail": "No transplant recorded; POST it first.", "errors": {}}, status=404)
        serializer = TransplantUpdateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason_for_change", "")
        version = expected_version(request, changes.pop("version", None))
        transplant = services.transplant_update(
            user=request.user, transplant=current, changes=changes, reason=reason, expected_version=version
        )
        return with_etag(Response(TransplantOutput(transplant).data))

    @extend_schema(request=ConsentInput, responses={200: ConsentOutput(many=True), 201: ConsentOutput})
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # the whole list, unpaginated
    def consents(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        patient = self.get_object()
        if request.method == "GET":
            rows = Consent.objects.filter(patient=patient).select_related("protocol_version").order_by("date", "id")
            return Response(ConsentOutput(rows, many=True).data)
        values = _valid(ConsentInput, request.data)
        version = ProtocolVersion.objects.filter(trial_id=patient.trial_id, version=values["protocol_version"]).first()
        if version is None:
            return Response(
                {"detail": "Invalid input: see errors.", "errors": {"protocol_version": ["No such protocol version."]}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        consent = services.consent_record(
            user=request.user,
            patient=patient,
            protocol_version=version,
            on=values["date"],
            version_override_reason=values.get("version_override_reason", ""),
        )
        return Response(ConsentOutput(consent).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EnrolInput, responses={200: PatientOutput})
    @action(detail=True, methods=["post"])
    def enrol(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        """Enrol at the lowest open level; investigators may choose a level with a reason."""
        patient = self.get_object()
        values = _valid(EnrolInput, request.data)
        level = None
        if values.get("dose_level") is not None:
            level = DoseLevel.objects.filter(trial_id=patient.trial_id, level=values["dose_level"]).first()
            if level is None:
                return Response(
                    {"detail": "Invalid input: see errors.", "errors": {"dose_level": ["No such dose level."]}},
                    status=status.HTTP_400_BAD_REQUEST,
                )
        version = expected_version(request, values.get("version"))
        patient = services.patient_enrol(
            user=request.user,
            patient=patient,
            on=values["enrolled_on"],
            dose_level=level,
            deviation_reason=values.get("deviation_reason", ""),
            expected_version=version,
            backfill=values.get("backfill", False),
        )
        return with_etag(Response(PatientOutput(patient).data))


class _PatientRecordViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """List (``?patient=``), read, create and edit one kind of patient record."""

    filterset_fields = ["patient"]
    permission_classes = API_WRITE_PERMISSIONS
    input_class: type[serializers.Serializer]
    update_class: type[serializers.Serializer]

    def retrieve(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return with_etag(super().retrieve(request, *args, **kwargs))

    def record(self, user, patient, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def update_record(self, user, obj, changes, reason, version):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        values = _valid(self.input_class, request.data)
        patient = selectors.patient_get(request.user, values.pop("patient"))  # 404 outside scope
        obj = self.record(request.user, patient, values)
        return with_etag(Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED))

    def partial_update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        obj = self.get_object()
        serializer = self.update_class(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        reason = values.pop("reason_for_change", "")
        version = expected_version(request, values.pop("version", None))
        obj = self.update_record(request.user, obj, values, reason, version)
        return with_etag(Response(self.get_serializer(obj).data))


# The edit's own input (with version and reason_for_change), not the create's: the schema said
# PATCH took the create fields, and a body it called valid was refused (issue 16 item 15).
@extend_schema_view(
    create=extend_schema(request=AssessmentInput), partial_update=extend_schema(request=AssessmentUpdateInput)
)
class AssessmentViewSet(_PatientRecordViewSet):
    serializer_class = AssessmentOutput
    queryset = Assessment.objects.none()
    input_class = AssessmentInput
    update_class = AssessmentUpdateInput

    def get_queryset(self) -> QuerySet[Assessment]:
        return selectors.assessment_list(self.request.user)

    def record(self, user, patient, data):  # type: ignore[no-untyped-def]
        return services.assessment_record(user=user, patient=patient, data=data)

    def update_record(self, user, obj, changes, reason, version):  # type: ignore[no-untyped-def]
        return services.assessment_update(
            user=user, assessment=obj, changes=changes, reason=reason, expected_version=version
        )


# The edit's own input (with version and reason_for_change), not the create's: the schema said
# PATCH took the create fields, and a body it called valid was refused (issue 16 item 15).
@extend_schema_view(
    create=extend_schema(request=PatientEventInput), partial_update=extend_schema(request=PatientEventUpdateInput)
)
class PatientEventViewSet(_PatientRecordViewSet):
    serializer_class = PatientEventOutput
    queryset = PatientEvent.objects.none()
    input_class = PatientEventInput
    update_class = PatientEventUpdateInput

    def get_queryset(self) -> QuerySet[PatientEvent]:
        return selectors.event_list(self.request.user)

    def record(self, user, patient, data):  # type: ignore[no-untyped-def]
        return services.event_record(user=user, patient=patient, data=data)

    def update_record(self, user, obj, changes, reason, version):  # type: ignore[no-untyped-def]
        return services.event_update(user=user, event=obj, changes=changes, reason=reason, expected_version=version)
