from django.urls import path

from dashboard import views, views_grid

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<int:trial_id>/dashboard/", views.trial_dashboard, name="trial_dashboard"),
    path("trials/<int:trial_id>/status/", views_grid.status_grid, name="status_grid"),
    path("patients/<int:patient_id>/timeline/", views.patient_timeline, name="patient_timeline"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """No viewsets: the dashboard's survival charts draw the stored result the trial app's
    survival API serves (dashboard.selectors.survival_charts, printed in the page)."""
