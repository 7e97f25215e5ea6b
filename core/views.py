"""Infrastructure views: health check and session keep-alive."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from config.celery import app as celery_app


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return {"ok": False, "error": exc.__class__.__name__}


def _broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager (no REDIS_URL: tasks run in-process)"}
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "mode": "redis"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "mode": "redis", "error": exc.__class__.__name__}


def _workers(broker_ok: bool) -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager", "count": 0}
    if not broker_ok:
        return {"ok": False, "count": 0, "error": "broker unreachable"}
    try:
        replies = celery_app.control.ping(timeout=1.0)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "count": 0, "error": exc.__class__.__name__}
    return {"ok": bool(replies), "count": len(replies)}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker status. 503 when the database is down (nothing works
    then); a missing broker or worker is "degraded": data entry still works and
    recomputation catches up later."""
    database = _database()
    broker = _broker()
    workers = _workers(broker["ok"])
    ok = database["ok"] and broker["ok"] and workers["ok"]
    body = {
        "status": "ok" if ok else ("degraded" if database["ok"] else "down"),
        "database": database,
        "broker": broker,
        "worker": workers,
    }
    return JsonResponse(body, status=200 if database["ok"] else 503)


@login_required
@require_POST
def session_keepalive(request: HttpRequest) -> JsonResponse:
    """The "stay signed in" button of the idle warning: the request itself is the activity."""
    return JsonResponse({"ok": True, "idle_seconds": int(settings.SESSION_IDLE_TIMEOUT.total_seconds())})


def _way_back(request: HttpRequest, *, inside_trial: bool) -> tuple[str, str]:
    """Where the error page sends the user: the trial page of a trial URL when the user was
    refused a page in it (a 403 comes after the trial itself was found in scope), else
    their trials (a 404 reveals nothing, not even whether the trial exists)."""
    import re

    from django.urls import reverse

    match = re.match(r"^/trials/(\d+)/", request.path)
    if inside_trial and match and request.user.is_authenticated:
        return reverse("trial_detail", args=[int(match.group(1))]), "Back to the trial's page"
    return reverse("home"), "Back to your trials"


def permission_denied(request: HttpRequest, exception: Exception | None = None):  # type: ignore[no-untyped-def]
    """403 with the reason (the PermissionDenied message says who may see the page) and a link back."""
    from django.shortcuts import render

    reason = str(exception) if exception is not None and str(exception) else "Your role does not allow this page."
    if request.path.startswith("/api/"):  # the API's error format, whatever raised it (docs/api.md)
        return JsonResponse({"detail": reason, "errors": {}}, status=403)
    back_url, back_label = _way_back(request, inside_trial=True)
    context = {"reason": reason, "back_url": back_url, "back_label": back_label}
    return render(request, "403.html", context, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None):  # type: ignore[no-untyped-def]
    """404: the same words whether the page does not exist or is outside the user's scope."""
    from django.shortcuts import render

    if request.path.startswith("/api/"):  # an unknown API path is JSON too (the schema says so)
        return JsonResponse({"detail": "Not found.", "errors": {}}, status=404)
    back_url, back_label = _way_back(request, inside_trial=False)
    return render(request, "404.html", {"back_url": back_url, "back_label": back_label}, status=404)


def server_error(request: HttpRequest):  # type: ignore[no-untyped-def]
    """500, except a "database is locked" raised outside a view (e.g. a session save on
    SQLite): that is a temporary condition, answered 503 "busy, try again"."""
    import sys

    from django.views.defaults import server_error as default_server_error

    from core.errors import database_busy
    from core.middleware import database_busy_response

    if database_busy(sys.exc_info()[1]):
        return database_busy_response(request)
    return default_server_error(request)
