from django.urls import path

from dosing import views
from dosing.api import CycleViewSet, LabPanelViewSet

urlpatterns = [
    path("patients/<int:patient_id>/dosing/", views.patient_dosing, name="patient_dosing"),
    path("patients/<int:patient_id>/cycles/new/", views.cycle_create, name="cycle_create"),
    path("patients/<int:patient_id>/deviations/new/", views.deviation_create, name="deviation_create"),
    path("patients/<int:patient_id>/calendar/", views.patient_calendar, name="patient_calendar"),
    path("patients/<int:patient_id>/medications/new/", views.medication_create, name="medication_create"),
    path(
        "medications/<int:concomitantmedication_id>/edit/", views.medication_edit, name="medication_edit"
    ),  # kwarg named for the site-wall walker: <model>_id
    path("cycles/<int:cycle_id>/full-dose/", views.cycle_full_dose, name="cycle_full_dose"),
    path("cycles/<int:cycle_id>/correct/", views.cycle_correct, name="cycle_correct"),
    path("labs/<int:lab_panel_id>/", views.lab_panel_detail, name="lab_panel_detail"),
    path("labs/<int:lab_panel_id>/correct/", views.lab_panel_correct, name="lab_panel_correct"),
    path("cycles/<int:cycle_id>/history/", views.cycle_history, name="cycle_history"),
    path("trials/<int:trial_id>/deviations/", views.trial_deviations, name="trial_deviations"),
    path("trials/<int:trial_id>/worklist/", views.site_worklist, name="site_worklist"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""
    router.register(r"patients/(?P<patient_id>[0-9]+)/cycles", CycleViewSet, basename="patient-cycle")
    router.register(r"patients/(?P<patient_id>[0-9]+)/lab-panels", LabPanelViewSet, basename="patient-lab-panel")
