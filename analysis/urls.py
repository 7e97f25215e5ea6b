from django.urls import path

from analysis import views
from analysis.api import SimulationRunViewSet

urlpatterns = [
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
    """/api/v1/planning/simulations/ (+ {id}/, {id}/cancel/)."""
    router.register("planning/simulations", SimulationRunViewSet, basename="simulation-run")
