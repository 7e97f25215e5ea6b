from django.urls import path

from cleaning import views, views_sdv
from cleaning.api import DataQueryViewSet
from cleaning.api_sdv import SourceVerificationViewSet
from cleaning.api_void import RecordVoidView

urlpatterns = [
    path("trials/<int:trial_id>/queries/", views.query_list, name="query_list"),
    path("patients/<int:patient_id>/queries/new/", views.query_raise, name="query_raise"),
    path("queries/<int:data_query_id>/", views.query_detail, name="query_detail"),
    # Voiding a record entered in error: one view, the URL argument names the record type.
    path("adverse-events/<int:adverse_event_id>/void/", views.record_void, name="ae_void"),
    path("labs/<int:lab_panel_id>/void/", views.record_void, name="lab_panel_void"),
    path("assessments/<int:assessment_id>/void/", views.record_void, name="assessment_void"),
    path("events/<int:patient_event_id>/void/", views.record_void, name="event_void"),
    path("medications/<int:concomitantmedication_id>/void/", views.record_void, name="medication_void"),
    path("gvhd/<int:gvhd_episode_id>/void/", views.record_void, name="gvhd_void"),
    path("patients/<int:patient_id>/lock/", views.casebook_lock_view, name="casebook_lock"),
    path("patients/<int:patient_id>/source-verification/", views_sdv.patient_sdv, name="patient_sdv"),
]

# /api/v1/: void a record entered in error; one view, the URL argument names the record type.
api_urlpatterns = [
    path("adverse-events/<int:adverse_event_id>/void/", RecordVoidView.as_view(), name="api-ae-void"),
    path("lab-panels/<int:lab_panel_id>/void/", RecordVoidView.as_view(), name="api-lab-panel-void"),
    path("assessments/<int:assessment_id>/void/", RecordVoidView.as_view(), name="api-assessment-void"),
    path("patient-events/<int:patient_event_id>/void/", RecordVoidView.as_view(), name="api-patient-event-void"),
    path(
        "concomitant-medications/<int:concomitantmedication_id>/void/",
        RecordVoidView.as_view(),
        name="api-medication-void",
    ),
    path("gvhd-episodes/<int:gvhd_episode_id>/void/", RecordVoidView.as_view(), name="api-gvhd-void"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""
    router.register("queries", DataQueryViewSet, basename="data-query")
    router.register("source-verifications", SourceVerificationViewSet, basename="source-verification")
