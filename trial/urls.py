from django.urls import path

from trial import views
from trial.api import OperatingCharacteristicsView, TrialViewSet

urlpatterns = [
    path("trials/<int:trial_id>/", views.trial_detail, name="trial_detail"),
    path("trials/<int:trial_id>/escalation/", views.escalation, name="escalation"),
    path("trials/<int:trial_id>/survival/", views.survival, name="survival"),
    path("planning/operating-characteristics/", views.operating_characteristics, name="operating_characteristics"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    router.register("trials", TrialViewSet, basename="trial")


api_urlpatterns = [
    path("operating-characteristics/", OperatingCharacteristicsView.as_view(), name="operating-characteristics"),
]
