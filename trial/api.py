"""Trials through the API: configuration (read-only), escalation, survival, planning."""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import InputSerializer
from trial import access, selectors, services
from trial.models import DoseLevel, ProtocolVersion, Site, Trial, TrialComputation
from trial.operating_characteristics import exact_operating_characteristics, simulate_operating_characteristics
from trial.permissions import API_WRITE_PERMISSIONS


class TrialOutput(serializers.ModelSerializer):
    class SiteOut(serializers.ModelSerializer):
        class Meta:
            model = Site
            fields = ["code", "name"]

    class DoseLevelOut(serializers.ModelSerializer):
        dose_mg_m2 = serializers.FloatField()

        class Meta:
            model = DoseLevel
            fields = ["level", "dose_mg_m2"]

    class ProtocolVersionOut(serializers.ModelSerializer):
        class Meta:
            model = ProtocolVersion
            fields = ["version", "effective", "max_cycles"]

    sites = SiteOut(many=True, read_only=True)
    dose_levels = DoseLevelOut(many=True, read_only=True)
    protocol_versions = ProtocolVersionOut(many=True, read_only=True)

    class Meta:
        model = Trial
        fields = [
            "id", "code", "title", "design", "target_dlt_rate", "cohort_size", "max_sample_size", "boin_p_saf",
            "boin_p_tox", "boin_n_earlystop", "crm_skeleton", "crm_model", "crm_prior_sd", "backfill_enabled",
            "backfill_max_per_level", "backfill_levels", "escalation_variant",
            "expansion_cohort_size", "cycle_length_days",
            "dlt_window_cycles", "bsa_method", "age_min", "age_max", "enrol_day_min", "enrol_day_max", "min_platelets",
            "min_anc",
            "screening_lab_days", "max_delay_days", "reduction_percent", "dlt_min_grade", "dlt_cytopenia_days",
            "sae_report_hours", "survival_origin", "landmark_days", "sites", "dose_levels", "protocol_versions",
        ]  # fmt: skip


class EscalationSignInput(InputSerializer):
    decision = serializers.CharField(help_text="The decision you reviewed (awaiting_signoff.decision)")
    dose_level = serializers.IntegerField(help_text="Its dose level (awaiting_signoff.dose_level)")
    rationale = serializers.CharField()
    password = serializers.CharField(help_text="Your password, re-entered: the electronic signature")


def computation_response(request, trial: Trial, kind: str) -> Response:  # type: ignore[no-untyped-def]
    """A trial-level result with ``computed_at`` and ``stale``; patient-level parts only
    for roles that see every site (a coordinator sees counts, not other sites' IDs)."""
    payload = selectors.computation_payload(trial, kind)
    if not access.can(request.user, "view_clinical", trial) or "coordinator" in access.roles_in(request.user, trial):
        payload = selectors.without_patient_rows(payload)
    if not access.can(request.user, "view_clinical", trial):
        payload = _signers_as_roles(payload)  # a sponsor sees who signed only as a role (issue 8)
    return Response(payload)


def _signers_as_roles(payload):  # type: ignore[no-untyped-def]
    """Sign-offs are by investigators (PROTOCOL s6): their names become the role."""
    if isinstance(payload, dict):
        return {k: ("investigator" if k == "signed_by" and v else _signers_as_roles(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_signers_as_roles(v) for v in payload]
    return payload


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TrialOutput
    queryset = Trial.objects.none()  # the real queryset is scoped per request
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.trial_list(self.request.user)

    @extend_schema(
        responses={200: dict}, description="The current escalation state of the trial's design (docs/api.md)."
    )
    @action(detail=True, methods=["get"])
    def escalation(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        return computation_response(request, self.get_object(), TrialComputation.Kind.ESCALATION)

    @extend_schema(
        parameters=[OpenApiParameter("cohorts", int, enum=[1, 2], description="How many cohorts ahead (1 or 2)")],
        responses={200: dict},
        description="Dose-transition pathways: every DLT outcome of the next cohort(s) and the decision (docs/api.md).",
    )
    @action(detail=True, methods=["get"], url_path="escalation/pathways")
    def escalation_pathways(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        return Response(services.escalation_pathways(self.get_object(), request.query_params.get("cohorts", "2")))

    @extend_schema(request=EscalationSignInput, responses={201: dict})
    @action(detail=True, methods=["post"], url_path="escalation/sign")
    def escalation_sign(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        trial = self.get_object()
        data = EscalationSignInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        signoff = services.escalation_sign(
            trial=trial,
            user=request.user,
            password=values["password"],
            rationale=values["rationale"],
            expected={"decision": values["decision"], "dose_level": values["dose_level"]},
        )
        return Response(
            {"decision": signoff.decision, "dose_level": signoff.dose_level, "signed_by": signoff.signed_by_name,
             "signed_at": signoff.signed_at.isoformat()},
            status=status.HTTP_201_CREATED,
        )  # fmt: skip

    @extend_schema(responses={200: dict}, description="OS, PFS, NRM summaries (docs/api.md).")
    @action(detail=True, methods=["get"])
    def survival(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        return computation_response(request, self.get_object(), TrialComputation.Kind.SURVIVAL)


# What services.oc_parameters accepts, for the schema: 1 to 10 probabilities from 0 to 1.
OC_P_PATTERN = r"^(0(\.[0-9]{1,6})?|1)(,(0(\.[0-9]{1,6})?|1)){0,9}$"


class OperatingCharacteristicsView(APIView):
    """Exact 3+3 operating characteristics for planning a trial (and a seeded simulation)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "p",
                {"type": "string", "pattern": OC_P_PATTERN},
                required=True,
                description="True DLT probabilities per level (1 to 10, each 0 to 1), comma-separated, e.g. 0.1,0.2",
            ),
            OpenApiParameter("variant", str, enum=["storer_a", "six_at_mtd"]),
            OpenApiParameter(
                "simulations",
                {"type": "integer", "minimum": 0, "maximum": 20000},
                description="Also simulate this many trials (max 20000)",
            ),
        ],
        responses={200: dict},
    )
    def get(self, request):  # type: ignore[no-untyped-def]
        if not access.active_grants(request.user):
            raise PermissionDenied("Planning tools are for users with a role in a trial.")
        params = services.oc_parameters(request.query_params)
        exact = exact_operating_characteristics(params["p"], params["variant"])
        body = {
            "variant": str(exact.variant),
            "true_dlt_probabilities": list(exact.true_dlt_probabilities),
            "exact": {
                "prob_no_mtd": exact.prob_no_mtd,
                "prob_mtd": list(exact.prob_mtd),
                "expected_patients": exact.expected_patients,
                "expected_dlts": exact.expected_dlts,
                "expected_patients_per_level": list(exact.expected_patients_per_level),
            },
        }
        if params["simulations"]:
            sim = simulate_operating_characteristics(params["p"], params["variant"], n_trials=params["simulations"])
            body["simulated"] = {
                "n_trials": sim.n_trials,
                "seed": sim.seed,
                "prob_no_mtd": sim.prob_no_mtd,
                "prob_mtd": list(sim.prob_mtd),
                "expected_patients": sim.expected_patients,
                "se_prob_no_mtd": sim.se_prob_no_mtd,
                "se_prob_mtd": list(sim.se_prob_mtd),
                "se_expected_patients": sim.se_expected_patients,
            }
        return Response(body)
