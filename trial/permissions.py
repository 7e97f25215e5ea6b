"""DRF permission: unsafe methods only for users whose role may write somewhere.

A sponsor (capabilities ``view_trial`` and ``export``) is read-only everywhere: its write
requests answer 403 before any input is validated, so a sponsor token never learns a
form's fields from a 400 and never reaches a service (issue 8). The services still check
the exact capability for the trial and site; this is the coarse gate in front of them.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

from trial.access import CAPABILITIES, active_grants

WRITE_CAPABILITIES = frozenset({"enter_data", "adjudicate", "sign", "configure", "raise_query", "verify", "lock"})


class WritesNeedAWritingRole(BasePermission):
    message = "Your role in your trials is read-only (sponsor): this request would change data."

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if request.method in SAFE_METHODS:
            return True
        return any(CAPABILITIES[grant.role] & WRITE_CAPABILITIES for grant in active_grants(request.user))


# The API's default (settings.REST_FRAMEWORK), so a new view is gated without opting in.
API_WRITE_PERMISSIONS = [IsAuthenticated, WritesNeedAWritingRole]
