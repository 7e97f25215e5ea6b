urlpatterns: list = []  # screens of this app (patient pages link here by URL name)


def register_api(router) -> None:  # type: ignore[no-untyped-def]
    """Register this app's API viewsets on the /api/v1/ router."""
