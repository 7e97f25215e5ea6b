from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<int:trial_id>/dashboard/", views.trial_dashboard, name="trial_dashboard"),
    path("patients/<int:patient_id>/timeline/", views.patient_timeline, name="patient_timeline"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """No viewsets: the dashboard's charts read the API the trial app serves."""
