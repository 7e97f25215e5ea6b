from django.urls import path

from trial import views

urlpatterns = [
    path("trials/<int:trial_id>/", views.trial_detail, name="trial_detail"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    # The trials resource (trial.api.TrialViewSet) is registered by analysis.urls, with the
    # trial-level results' actions added (escalation, survival).
    return None


api_urlpatterns: list = []  # type: ignore[type-arg]
