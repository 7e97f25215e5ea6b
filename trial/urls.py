from django.urls import path

from trial import views
from trial.api import TrialViewSet

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<int:trial_id>/", views.trial_detail, name="trial_detail"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    router.register("trials", TrialViewSet, basename="trial")
