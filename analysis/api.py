"""Planning simulations through the API (issue 17): the same services and selectors as the page.

POST /api/v1/planning/simulations/ starts a run (201, queued; a worker simulates it),
GET lists the runs the user may see (newest first) and GET {id}/ one run with its result;
POST {id}/cancel/ cancels a queued or running run.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

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
from core.api import InputSerializer, validated_input
from trial import access
from trial.configuration import CRM_MODELS, DESIGNS


class SimulationDesignInput(InputSerializer):
    """One design to simulate; absent parameters take the R packages' defaults."""

    design = serializers.ChoiceField(choices=DESIGNS)
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
