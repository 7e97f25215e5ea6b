"""Session limits: an idle timeout (default 30 min) and an absolute one (12 h); security headers."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

from core.errors import BUSY_MESSAGE, BUSY_RETRY_AFTER, database_busy
from core.signatures import LOCKED_OUT_SESSION_KEY, LOCKED_OUT_SIGNED_OUT

# Background requests (the page's own polling) must not count as activity.
BACKGROUND_HEADER = "HTTP_X_TRIALDESK_BACKGROUND"


class SessionTimeoutMiddleware:
    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        if request.user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            started = request.session.get("auth_started", now)
            last = request.session.get("last_activity", now)
            idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
            absolute = settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds()
            reason = None
            if request.session.get(LOCKED_OUT_SESSION_KEY):
                reason = LOCKED_OUT_SIGNED_OUT  # core.signatures: the account locked meanwhile
            elif now - started > absolute:
                reason = f"Signed out: sessions end after {absolute / 3600:g} hours. Please sign in again."
            elif now - last > idle:
                reason = f"Signed out after {idle / 60:g} minutes of inactivity. Please sign in again."
            if reason:
                logout(request)  # flushes the session server-side
                messages.warning(request, reason)
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": reason}, status=401)
                return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
            request.session["auth_started"] = started
            if not request.META.get(BACKGROUND_HEADER):
                request.session["last_activity"] = now
        return self.get_response(request)


# The pages load only their own files: no inline script, style or event handler anywhere
# (templates and static/js; uPlot draws on canvas and sets styles through the DOM).
# ``data:`` images for the few SVG icons the vendored Swagger UI and browsers inline.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Django's admin still writes a few style attributes; its scripts stay 'self' only.
ADMIN_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy on every response, and ``Cache-Control: no-store``
    on everything a signed-in user or an API client receives (clinical pages, the API,
    exports): no browser or proxy keeps a copy of casebook data (issue 16 item 13).

    Sits after WhiteNoise, so static files keep their long-lived caching."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            admin = request.path.startswith(f"/{reverse('admin:index').strip('/')}/")
            response["Content-Security-Policy"] = ADMIN_CONTENT_SECURITY_POLICY if admin else CONTENT_SECURITY_POLICY
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response


def database_busy_response(request: HttpRequest) -> HttpResponse:
    """503 "busy, try again" with Retry-After: JSON for the API's format, a page otherwise."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": BUSY_MESSAGE, "errors": {}}, status=503)
    else:
        from django.shortcuts import render

        from core.views import _way_back

        back_url, back_label = _way_back(request, inside_trial=True)
        context = {"message": BUSY_MESSAGE, "back_url": back_url, "back_label": back_label}
        response = render(request, "503.html", context, status=503)
    response["Retry-After"] = BUSY_RETRY_AFTER
    return response


class DatabaseBusyMiddleware:
    """SQLite's "database is locked" that outlasts the busy timeout, raised in a view (a
    browser form's service call): a 503 page saying to try again, with Retry-After, as
    the API already answers in JSON (core.api), instead of the 500 page. The service's
    transaction was rolled back by the error, so nothing is half-written. Outside a view
    (middleware, session save) ``core.views.server_error`` gives the same answer."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if database_busy(exception):
            return database_busy_response(request)
        return None
