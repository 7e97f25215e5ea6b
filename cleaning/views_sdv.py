"""Source data verification and the site worklist of open queries: thin views over
``cleaning.services`` / ``cleaning.selectors``; scope comes from the selectors."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from cleaning import selectors, services
from core.locks import lock_gate, lock_info_of
from patients import selectors as patient_selectors
from trial import access


def _version(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def _next_url(request: Any, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return str(target)
    return default


@login_required
@lock_gate("query")  # an SDV mark may be added while the casebook is frozen, not when locked
def patient_sdv(request, patient_id: int):  # type: ignore[no-untyped-def]
    """The monitor's worksheet: every record of the casebook with its verification; POST
    verifies one record at the version the monitor saw."""
    patient = patient_selectors.patient_get(request.user, patient_id)
    can_verify = access.can(request.user, "verify", patient.trial_id, patient.site_id)
    errors: list[str] = []
    here = reverse("patient_sdv", kwargs={"patient_id": patient.pk})
    if request.method == "POST":
        if not can_verify:
            raise PermissionDenied("Source data verification is done by the trial's monitors.")
        try:
            target = services.sdv_target(patient, request.POST.get("record", ""))
            mark = services.record_verify(
                user=request.user, target=target, expected_version=_version(request.POST.get("version", ""))
            )
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(request, f"{target} marked source verified (version {mark.record_version}).")
            return redirect(_next_url(request, here))
    rows = selectors.sdv_casebook(patient)
    lock = lock_info_of(patient)
    return render(
        request,
        "cleaning/sdv_casebook.html",
        {
            "patient": patient,
            "rows": rows,
            "can_verify": can_verify and not lock.refuses("query"),
            "errors": errors,
            "verified": sum(1 for r in rows if r.status.state == "verified"),
            "cleared": sum(1 for r in rows if r.status.state == "cleared"),
        },
        status=400 if errors else 200,
    )
