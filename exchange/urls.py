"""URLs of the exchange app: sponsor exports and trial-bundle import/export."""

urlpatterns: list = []


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""


api_urlpatterns: list = []  # plain (non-viewset) API views under /api/v1/

from exchange.api import export_urlpatterns  # noqa: E402  (sponsor exports)

api_urlpatterns += export_urlpatterns

from django.urls import path  # noqa: E402

from exchange.api_bundle import TrialBundleImportView  # noqa: E402  (trial-bundle import)

api_urlpatterns += [path("trials/import/", TrialBundleImportView.as_view(), name="api-trial-import")]
