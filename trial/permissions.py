"""DRF permission: unsafe methods only for users whose role may write somewhere.

A sponsor (capabilities ``view_trial`` and ``export``) is read-only everywhere: its write
requests answer 403 before any input is validated, so a sponsor token never learns a
form's fields from a 400 and never reaches a service (issue 8). The services still check
the exact capability for the trial and site; this is the coarse gate in front of them.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

from core.errors import RecordLocked
from core.locks import UNSET, lock_info_of, lock_level_of, url_lock_refusal
from trial.access import CAPABILITIES, active_grants, scope

WRITE_CAPABILITIES = frozenset(
    {"enter_data", "adjudicate", "sign", "configure", "raise_query", "verify", "lock", "plan"}
)


class WritesNeedAWritingRole(BasePermission):
    message = "Your role in your trials is read-only (sponsor): this request would change data."

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if request.method in SAFE_METHODS:
            return True
        return any(CAPABILITIES[grant.role] & WRITE_CAPABILITIES for grant in active_grants(request.user))


class CasebookNotLocked(BasePermission):
    """A write to an object of a frozen or locked casebook answers 423 with the lock
    message (issue 12) before any input is validated: the objects named in the URL
    (``patients/{patient_id}/cycles/``) and the object a detail view found through its
    scoped queryset, so nothing leaks. A view writing query threads or SDV marks
    (allowed while frozen) sets ``lock_level = "query"``. Creates that name their patient
    in the body are refused by the central save guard (also 423)."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if request.method in SAFE_METHODS:
            return True

        def visible(model, pk):  # type: ignore[no-untyped-def]
            return scope(request.user, model._default_manager.all(), "view_clinical").filter(pk=pk).first()

        refusal = url_lock_refusal(getattr(view, "kwargs", {}) or {}, getattr(view, "lock_level", UNSET), visible)
        if refusal is not None:
            raise RecordLocked(refusal[0].message, state=refusal[0].state)
        return True

    def has_object_permission(self, request, view, obj) -> bool:  # type: ignore[no-untyped-def]
        if request.method in SAFE_METHODS:
            return True
        level = getattr(view, "lock_level", UNSET)
        if level is None:
            return True
        info = lock_info_of(obj)
        if info.refuses(lock_level_of(obj) if level is UNSET else level):
            raise RecordLocked(info.message, state=info.state)
        return True


# The API's default (settings.REST_FRAMEWORK), so a new view is gated without opting in.
API_WRITE_PERMISSIONS = [IsAuthenticated, WritesNeedAWritingRole, CasebookNotLocked]
