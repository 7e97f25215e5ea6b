"""Reads of the exchange app: the CDISC package jobs a user may see (capability "export")."""

from typing import Any

from django.db.models import QuerySet

from exchange.models import CdiscPackage
from trial import access
from trial.models import Trial


def cdisc_packages_of(user: Any, trial: Trial) -> QuerySet[CdiscPackage]:
    """Every package of ``trial`` the user may export, newest first, with who asked (one query)."""
    packages = CdiscPackage.objects.filter(trial=trial).select_related("requested_by")
    return access.scope(user, packages, "export").order_by("-number")


def cdisc_package_get(user: Any, trial: Trial, package_id: int) -> CdiscPackage:
    """One package of ``trial``, or 404 (out of scope or another trial's)."""
    return access.get_scoped_or_404(  # type: ignore[return-value]
        user, CdiscPackage.objects.filter(trial=trial).select_related("trial"), "export", pk=package_id
    )


def requester_shown(user: Any, package: CdiscPackage) -> str:
    """Who asked for it as the viewer may see it: a sponsor sees only the role (issue 8)."""
    if access.can(user, "view_clinical", package.trial_id):
        requester = package.requested_by
        name = requester.get_full_name() or requester.get_username()
        return f"{name} ({package.requested_by_role})" if package.requested_by_role else str(name)
    return package.requested_by_role or "user"


def cdisc_package_payload(user: Any, package: CdiscPackage) -> dict[str, Any]:
    """The job as the API and the progress endpoint show it."""
    return {
        "id": package.pk,
        "trial": package.trial_id,
        "number": package.number,
        "requested_by": requester_shown(user, package),
        "requested_at": package.requested_at.isoformat(),
        "status": package.status,
        "progress": round(package.progress, 3),
        "step": package.step,
        "started_at": package.started_at.isoformat() if package.started_at else None,
        "finished_at": package.finished_at.isoformat() if package.finished_at else None,
        "size": package.size,
        "sha256": package.sha256 or None,
        "dataset_counts": package.dataset_counts,
        "conformance": package.conformance or None,
        "error": package.error or None,
        "download": (
            f"/api/v1/trials/{package.trial_id}/cdisc-packages/{package.pk}/download/"
            if package.status == CdiscPackage.Status.DONE
            else None
        ),
    }
