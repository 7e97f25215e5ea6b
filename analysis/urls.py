from django.urls import path

from analysis import views
from analysis.api import OperatingCharacteristicsView, TrialViewSet

urlpatterns = [
    path("trials/<int:trial_id>/escalation/", views.escalation, name="escalation"),
    path("trials/<int:trial_id>/survival/", views.survival, name="survival"),
    path("planning/operating-characteristics/", views.operating_characteristics, name="operating_characteristics"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    # The one trials resource: trial.api's configuration with the results' actions
    # (analysis.api.TrialViewSet), registered here because trial imports no analysis module.
    router.register("trials", TrialViewSet, basename="trial")


api_urlpatterns = [
    path("operating-characteristics/", OperatingCharacteristicsView.as_view(), name="operating-characteristics"),
]
