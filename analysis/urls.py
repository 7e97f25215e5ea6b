from django.urls import path

from analysis import views
from analysis.api import OperatingCharacteristicsView, SimulationRunViewSet, TrialViewSet

urlpatterns = [
    path("trials/<int:trial_id>/escalation/", views.escalation, name="escalation"),
    path("trials/<int:trial_id>/survival/", views.survival, name="survival"),
    path("planning/operating-characteristics/", views.operating_characteristics, name="operating_characteristics"),
    path("planning/simulations/", views.planning, name="planning"),
    path("planning/simulations/<int:simulation_run_id>/", views.simulation_run_detail, name="simulation_run_detail"),
    path(
        "planning/simulations/<int:simulation_run_id>/status/",
        views.simulation_run_status,
        name="simulation_run_status",
    ),
    path(
        "planning/simulations/<int:simulation_run_id>/cancel/",
        views.simulation_run_cancel,
        name="simulation_run_cancel",
    ),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    # The one trials resource: trial.api's configuration with the results' actions
    # (analysis.api.TrialViewSet), registered here because trial imports no analysis module.
    router.register("trials", TrialViewSet, basename="trial")
    # /api/v1/planning/simulations/ (+ {id}/, {id}/cancel/)
    router.register("planning/simulations", SimulationRunViewSet, basename="simulation-run")


api_urlpatterns = [
    path("operating-characteristics/", OperatingCharacteristicsView.as_view(), name="operating-characteristics"),
]
