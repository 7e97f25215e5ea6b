"""The trial-level results through the API: escalation (state, pathways, sign-off),
survival, and the planning tool's operating characteristics (docs/api.md).

The actions extend trial.api.TrialViewSet (the trial's configuration, read-only), so the
paths and URL names stay those of the one ``trials`` resource (trials/{id}/escalation/,
``trial-escalation``, ...); analysis.urls registers it, as trial imports no analysis module.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import selectors, services
from analysis.designs.comparison import (
    DEFAULT_SEED,
    DEFAULT_TRIALS,
    MAX_DESIGNS,
    MAX_LEVELS,
    MAX_SEED,
    MAX_TRIALS,
    MIN_LEVELS,
    MIN_TRIALS,
    VARIANTS,
)
from analysis.models import SimulationRun
from analysis.operating_characteristics import exact_operating_characteristics, simulate_operating_characteristics
from core.api import InputSerializer, validated_input
from trial import access
from trial import selectors as trial_selectors
from trial.api import TrialViewSet as TrialConfigurationViewSet
from trial.configuration import CRM_MODELS, DESIGNS
from trial.models import Trial, TrialComputation


class EscalationSignInput(InputSerializer):
    decision = serializers.CharField(help_text="The decision you reviewed (awaiting_signoff.decision)")
    dose_level = serializers.IntegerField(help_text="Its dose level (awaiting_signoff.dose_level)")
    rationale = serializers.CharField()
    password = serializers.CharField(help_text="Your password, re-entered: the electronic signature")


def computation_response(request, trial: Trial, kind: str) -> Response:  # type: ignore[no-untyped-def]
    """A trial-level result with ``computed_at`` and ``stale``; patient-level parts only
    for roles that see every site (a coordinator sees counts, not other sites' IDs)."""
    payload = trial_selectors.computation_payload(trial, kind)
    if not access.can(request.user, "view_clinical", trial) or "coordinator" in access.roles_in(request.user, trial):
        payload = trial_selectors.without_patient_rows(payload)
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


# The trials resource: the configuration (trial.api) and the trial-level results. (No
# docstring: the schema's descriptions of list/retrieve stay those of trial.api.)
class TrialViewSet(TrialConfigurationViewSet):
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


class SimulationDesignInput(InputSerializer):
    """One design to simulate; absent parameters take the R packages' defaults."""

    design = serializers.ChoiceField(
        choices=DESIGNS,
        required=False,
        help_text="Default: the planned trial's own design (with its parameters), else 3+3.",
    )
    variant = serializers.ChoiceField(choices=VARIANTS, required=False, help_text="3+3 only (default storer_a).")
    target_dlt_rate = serializers.FloatField(min_value=0.05, max_value=0.6, required=False)
    cohort_size = serializers.IntegerField(min_value=1, max_value=12, required=False)
    max_sample_size = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, help_text="At least the cohort size."
    )
    boin_p_saf = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True, help_text="Default 0.6 x target."
    )
    boin_p_tox = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True, help_text="Default 1.4 x target."
    )
    boin_n_earlystop = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    crm_skeleton = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1),
        required=False,
        max_length=MAX_LEVELS,
        help_text="CRM: one prior DLT probability per dose level, increasing.",
    )
    crm_model = serializers.ChoiceField(choices=CRM_MODELS, required=False)
    crm_prior_sd = serializers.FloatField(min_value=0, max_value=10, required=False)


class SimulationRunInput(InputSerializer):
    true_dlt_probabilities = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1),
        min_length=MIN_LEVELS,
        max_length=MAX_LEVELS,
        help_text="The assumed true DLT probability of each dose level, lowest first.",
    )
    # A ListField (not many=True) so that the schema states minItems/maxItems.
    designs = serializers.ListField(child=SimulationDesignInput(), min_length=1, max_length=MAX_DESIGNS)
    n_trials = serializers.IntegerField(min_value=MIN_TRIALS, max_value=MAX_TRIALS, default=DEFAULT_TRIALS)
    seed = serializers.IntegerField(min_value=0, max_value=MAX_SEED, default=DEFAULT_SEED)
    overdose_threshold = serializers.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        help_text="A level with a true DLT probability above this is an overdose (default: the first target).",
    )
    trial = serializers.CharField(
        required=False, max_length=50, help_text="Tie the run to a trial you plan (its code); omit for free-standing."
    )


class CancelInput(InputSerializer):
    """No body, or ``{}``: the body is still read, so an oversized or too deep one is refused."""


class SimulationRunOutput(serializers.ModelSerializer):
    trial = serializers.CharField(source="trial.code", read_only=True, allow_null=True, default=None)
    requested_by = serializers.SerializerMethodField(help_text="'you', the planner's name, or 'a planner'.")
    cancelled_by = serializers.SerializerMethodField()

    class Meta:
        model = SimulationRun
        fields = [
            "id",
            "trial",
            "requested_by",
            "requested_at",
            "designs",
            "true_dlt_probabilities",
            "n_trials",
            "seed",
            "overdose_threshold",
            "status",
            "progress",
            "started_at",
            "finished_at",
            "cancelled_by",
            "error",
        ]

    def _who(self, run: SimulationRun, user_obj: Any) -> str | None:
        if user_obj is None:
            return None
        viewer = self.context["request"].user
        if user_obj.pk == viewer.pk:
            return "you"
        # Sponsors see the role, never a name (issue 8): only the trial's planners see who.
        if run.trial_id is not None and access.can(viewer, "plan", run.trial_id):
            return str(user_obj.get_full_name() or user_obj.get_username())
        return "a planner"

    def get_requested_by(self, run: SimulationRun) -> str | None:
        return self._who(run, run.requested_by)

    def get_cancelled_by(self, run: SimulationRun) -> str | None:
        return self._who(run, run.cancelled_by)


class SimulationRunDetailOutput(SimulationRunOutput):
    result = serializers.SerializerMethodField(
        help_text="When done: levels, and one column per design (P(select), patients, DLTs, overdose "
        "fraction, mean N, each with its standard error; for 3+3 the exact values and the agreement)."
    )

    class Meta(SimulationRunOutput.Meta):
        fields = [*SimulationRunOutput.Meta.fields, "result"]

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_result(self, run: SimulationRun) -> dict[str, Any]:
        return dict(run.result or {})


class SimulationRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Planning simulations: operating characteristics of several designs by seeded simulation,
    run by a worker (poll GET {id}/ for ``status`` and ``progress``). Start and cancel: investigators
    and trial admins; read: also sponsors (runs of their trials). Free-standing runs: their requester."""

    serializer_class = SimulationRunOutput
    queryset = SimulationRun.objects.none()

    def get_queryset(self) -> QuerySet[SimulationRun]:
        return selectors.simulation_runs(self.request.user)

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return SimulationRunOutput if self.action == "list" else SimulationRunDetailOutput

    def _detail(self, run: SimulationRun, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.simulation_run_get(self.request.user, run.pk)
        return Response(SimulationRunDetailOutput(fresh, context={"request": self.request}).data, status=code)

    @extend_schema(request=SimulationRunInput, responses={201: SimulationRunDetailOutput})
    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        values = validated_input(SimulationRunInput, request.data)
        values["designs"] = [dict(d) for d in values["designs"]]
        if values.get("trial"):
            values["trial"] = selectors.planning_trial(request.user, values["trial"])
        else:
            values.pop("trial", None)
        run = services.simulation_run_request(user=request.user, data=values)
        return self._detail(run, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: SimulationRunDetailOutput})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, **kwargs):  # type: ignore[no-untyped-def]
        """Cancel a queued or running simulation (a cancelled one stays cancelled; a finished one is a 400)."""
        run = self.get_object()
        validated_input(CancelInput, request.data)
        services.simulation_run_cancel(user=request.user, run=run)
        return self._detail(run)
