from django.urls import path

from patients import views
from patients.api import AssessmentViewSet, PatientEventViewSet, PatientViewSet

urlpatterns = [
    path("trials/<int:trial_id>/patients/", views.patient_list, name="patient_list"),
    path("trials/<int:trial_id>/patients/new/", views.patient_create, name="patient_create"),
    path("trials/<int:trial_id>/table1/", views.trial_table1, name="trial_table1"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/history/", views.patient_history, name="patient_history"),
    path("patients/<int:patient_id>/sign/", views.patient_sign, name="patient_sign"),
    path("patients/<int:patient_id>/eligibility/", views.patient_eligibility, name="patient_eligibility"),
    path("patients/<int:patient_id>/transplant/", views.transplant_edit, name="transplant_edit"),
    path("patients/<int:patient_id>/consents/new/", views.consent_create, name="consent_create"),
    path("patients/<int:patient_id>/screenings/new/", views.screening_create, name="screening_create"),
    path("screenings/<int:screening_id>/", views.screening_detail, name="screening_detail"),
    path("patients/<int:patient_id>/enrol/", views.patient_enrol, name="patient_enrol"),
    path("patients/<int:patient_id>/assessments/", views.patient_assessments, name="patient_assessments"),
    path("patients/<int:patient_id>/assessments/new/", views.assessment_create, name="assessment_create"),
    path("assessments/<int:assessment_id>/edit/", views.assessment_edit, name="assessment_edit"),
    path("patients/<int:patient_id>/events/", views.patient_events, name="patient_events"),
    path("patients/<int:patient_id>/events/new/", views.event_create, name="event_create"),
    path("events/<int:patient_event_id>/edit/", views.event_edit, name="event_edit"),
    path("trials/<int:trial_id>/lock/", views.trial_lock_view, name="trial_lock"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    router.register("patients", PatientViewSet, basename="patient")
    router.register("assessments", AssessmentViewSet, basename="assessment")
    router.register("patient-events", PatientEventViewSet, basename="patient-event")
