from django.urls import path

from cleaning import views, views_sdv
from cleaning.api import DataQueryViewSet
from cleaning.api_sdv import SourceVerificationViewSet

urlpatterns = [
    path("trials/<int:trial_id>/queries/", views.query_list, name="query_list"),
    path("patients/<int:patient_id>/queries/new/", views.query_raise, name="query_raise"),
    path("queries/<int:data_query_id>/", views.query_detail, name="query_detail"),
    path("adverse-events/<int:adverse_event_id>/void/", views.ae_void, name="ae_void"),
    path("labs/<int:lab_panel_id>/void/", views.lab_panel_void, name="lab_panel_void"),
    path("patients/<int:patient_id>/lock/", views.casebook_lock_view, name="casebook_lock"),
    path("patients/<int:patient_id>/source-verification/", views_sdv.patient_sdv, name="patient_sdv"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""
    router.register("queries", DataQueryViewSet, basename="data-query")
    router.register("source-verifications", SourceVerificationViewSet, basename="source-verification")
