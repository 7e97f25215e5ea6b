from django.urls import path

from safety import views
from safety.api import AdverseEventViewSet, AeSummaryViewSet, DltAdjudicationViewSet

urlpatterns = [
    path("ctcae/search/", views.ctcae_search, name="ctcae_search"),
    path("patients/<int:patient_id>/safety/", views.patient_safety, name="patient_safety"),
    path("patients/<int:patient_id>/adverse-events/new/", views.ae_create, name="ae_create"),
    path("patients/<int:patient_id>/gvhd/new/", views.gvhd_create, name="gvhd_create"),
    path("patients/<int:patient_id>/dlt/adjudicate/", views.adjudication_create, name="adjudication_create"),
    path("adverse-events/<int:adverse_event_id>/edit/", views.ae_edit, name="ae_edit"),
    path("adverse-events/<int:adverse_event_id>/history/", views.ae_history, name="ae_history"),
    path("lab-panels/<int:lab_panel_id>/proposals/", views.lab_proposal_act, name="lab_proposal_act"),
    path("dlt-adjudications/<int:dlt_adjudication_id>/", views.adjudication_detail, name="adjudication_detail"),
    path("trials/<int:trial_id>/dlt/", views.trial_dlt, name="trial_dlt"),
    path("trials/<int:trial_id>/ae-summary/", views.trial_ae_summary, name="trial_ae_summary"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""
    router.register("adverse-events", AdverseEventViewSet, basename="adverse-event")
    router.register("dlt-adjudications", DltAdjudicationViewSet, basename="dlt-adjudication")
    router.register(r"trials/(?P<trial_id>\d+)/ae-summary", AeSummaryViewSet, basename="ae-summary")
