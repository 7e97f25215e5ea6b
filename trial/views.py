from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from trial import access, selectors
from trial.models import TrialComputation


@login_required
def trial_detail(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = selectors.trial_get(request.user, trial_id)
    roles = access.roles_in(request.user, trial)
    # The enrolment summary counts patients per site: for clinical roles only, and a
    # coordinator sees the rows of his or her own sites.
    summary = None
    clinical = access.can(request.user, "view_clinical", trial)
    if clinical:
        computation = selectors.computation_get(trial, TrialComputation.Kind.ENROLMENT)
        if computation is not None:
            own = {s.code for s in access.scope(request.user, trial.sites.all())}
            summary = {
                "computation": computation,
                "sites": [row for row in computation.data.get("sites", []) if row["code"] in own],
                "dose_levels": computation.data.get("dose_levels", []),
            }
    return render(
        request,
        "trial/trial_detail.html",
        {
            "trial": trial,
            "roles": roles,
            "summary": summary,
            "clinical": clinical,
            "can_export": access.can(request.user, "export", trial),
            # The trial lock (issue 12): a banner for everyone, the lock screen for data managers.
            "trial_lock": getattr(trial, "lock", None),
            "can_lock": access.can(request.user, "lock", trial),
            # The planning page (analysis, issue 17): investigators and admins start simulations.
            "can_plan": access.can(request.user, "plan", trial),
            "can_view_planning": access.can(request.user, "view_planning", trial),
        },
    )
