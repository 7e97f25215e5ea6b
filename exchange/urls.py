"""URLs of the exchange app: sponsor exports and trial-bundle import/export."""

from django.urls import path

from exchange import views
from exchange.api import export_urlpatterns
from exchange.api_bundle import TrialBundleImportView
from exchange.api_packages import package_urlpatterns

urlpatterns = [
    path("trials/<int:trial_id>/exports/", views.trial_exports, name="trial_exports"),
    path("trials/<int:trial_id>/exports/packages/", views.cdisc_packages, name="cdisc_packages"),
]


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """No viewsets: the exports and the bundle import are plain API views."""


# Plain (non-viewset) API views under /api/v1/.
api_urlpatterns = [
    *export_urlpatterns,
    *package_urlpatterns,
    path("trials/import/", TrialBundleImportView.as_view(), name="api-trial-import"),
]
