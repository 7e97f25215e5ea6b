"""The lock gate: a write request to a frozen or locked casebook is refused before its
view runs (issue 12), with the lock message and HTTP 423, whatever the form contains.

It looks at the URL's object arguments the way the site-wall walker does (``<model>_id``
names the model): when the object is in the user's scope and its casebook refuses the
write, the page says why. Objects out of scope are left to the view (404, no leak). The
API is gated in DRF (trial.permissions.CasebookNotLocked); this covers the browser. The
central save guard (core.models.AuditedModel.save) stays the backstop for every path.

A view writing query threads or SDV marks (allowed while a casebook is frozen) says so
with ``core.locks.lock_gate("query")`` or a module-level ``lock_level = "query"``.
"""

import sys
from typing import Any

from django.shortcuts import render

from core.locks import UNSET, owner_pk_of, url_lock_refusal
from trial import access

_SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}


def scoped_object(user: Any) -> Any:
    def visible(model: Any, pk: Any) -> Any:
        return access.scope(user, model._default_manager.all(), "view_clinical").filter(pk=pk).first()

    return visible


class LockGateMiddleware:
    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):  # type: ignore[no-untyped-def]
        if request.path.startswith(("/api/", "/admin/")):
            return None
        # A read is let through, but a data-entry form page (core.locks.data_entry_page):
        # a frozen or locked casebook shows no editable form (issue 19).
        reading = request.method in _SAFE
        if reading and not getattr(view_func, "lock_form", False):
            return None
        if not getattr(request.user, "is_authenticated", False):
            return None
        module = sys.modules.get(getattr(view_func, "__module__", ""), None)
        level: Any = getattr(view_func, "lock_level", getattr(module, "lock_level", UNSET))
        refusal = url_lock_refusal(view_kwargs, level, scoped_object(request.user))
        if refusal is None:
            return None
        info, obj = refusal
        context = {"lock": info, "patient_id": owner_pk_of(obj), "reading": reading}
        return render(request, "patients/locked.html", context, status=423)
