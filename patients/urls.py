from django.urls import path

from patients import views
from patients.api import PatientViewSet

urlpatterns = [
    path("trials/<int:trial_id>/patients/", views.patient_list, name="patient_list"),
    path("trials/<int:trial_id>/patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/history/", views.patient_history, name="patient_history"),
    path("patients/<int:patient_id>/sign/", views.patient_sign, name="patient_sign"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    router.register("patients", PatientViewSet, basename="patient")
