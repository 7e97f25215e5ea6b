"""URLs of the exchange app: sponsor exports and trial-bundle import/export."""

urlpatterns: list = []


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""


api_urlpatterns: list = []  # plain (non-viewset) API views under /api/v1/
