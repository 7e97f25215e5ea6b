"""Session limits: an idle timeout (default 30 min) and an absolute one (12 h)."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
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
