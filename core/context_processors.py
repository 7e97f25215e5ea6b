from django.conf import settings


def session_timeout(request):  # type: ignore[no-untyped-def]
    """Numbers the page's timeout warning needs (seconds)."""
    return {
        "session_idle_seconds": int(settings.SESSION_IDLE_TIMEOUT.total_seconds()),
        "session_warning_seconds": int(settings.SESSION_IDLE_WARNING.total_seconds()),
    }
