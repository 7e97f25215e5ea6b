"""Session limits: an idle timeout (default 30 min) and an absolute one (12 h); security headers."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

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
            if now - started > absolute:
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
