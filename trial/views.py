from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render

from core.forms import add_service_errors
from trial import access, selectors, services
from trial.forms import EscalationSignForm, OperatingCharacteristicsForm
from trial.models import TrialComputation
from trial.operating_characteristics import exact_operating_characteristics


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


def _trial_wide(user, trial) -> bool:  # type: ignore[no-untyped-def]
    """Sees every site's patients (investigator): the patient-level parts of results."""
    return access.can(user, "view_clinical", trial) and "coordinator" not in access.roles_in(user, trial)


@login_required
def escalation(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The 3+3 ladder, the decision awaiting signature and the signed history (PROTOCOL s6)."""
    trial = selectors.trial_get(request.user, trial_id)
    state = selectors.computation_payload(trial, TrialComputation.Kind.ESCALATION)
    if not _trial_wide(request.user, trial):
        state = selectors.without_patient_rows(state)
    can_sign = access.can(request.user, "sign", trial)
    awaiting = state.get("awaiting_signoff")
    form = EscalationSignForm(request.POST or None, initial=awaiting or {})
    if request.method == "POST":
        if not can_sign:
            raise PermissionDenied("Only an investigator signs escalation decisions.")
        if form.is_valid():
            try:
                services.escalation_sign(
                    trial=trial,
                    user=request.user,
                    password=form.cleaned_data["password"],
                    rationale=form.cleaned_data["rationale"],
                    expected={"decision": form.cleaned_data["decision"], "dose_level": form.cleaned_data["dose_level"]},
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Decision signed; it takes effect now.")
                return redirect("escalation", trial_id=trial.pk)
    pathways, pathways_error = None, ""
    try:
        pathways = services.escalation_pathways(trial, "2")
    except (ValidationError, ValueError) as exc:  # an incomplete configuration: say so, never a 500
        pathways_error = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return render(
        request,
        "trial/escalation.html",
        {
            "trial": trial,
            "state": state,
            "form": form,
            "can_sign": can_sign and bool(awaiting),
            "pathways": pathways,
            "pathways_error": pathways_error,
        },
    )


@login_required
def survival(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = selectors.trial_get(request.user, trial_id)
    summary = selectors.computation_payload(trial, TrialComputation.Kind.SURVIVAL)
    if not _trial_wide(request.user, trial):
        summary = selectors.without_patient_rows(summary)
    return render(request, "trial/survival.html", {"trial": trial, "s": summary})


@login_required
def operating_characteristics(request):  # type: ignore[no-untyped-def]
    """Planning: exact 3+3 operating characteristics for assumed true DLT rates."""
    if not access.active_grants(request.user):
        raise PermissionDenied("Planning tools are for users with a role in a trial.")
    form = OperatingCharacteristicsForm(request.GET or None)
    result = None
    if form.is_valid():
        try:
            params = services.oc_parameters({"p": form.cleaned_data["p"], "variant": form.cleaned_data["variant"]})
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            result = exact_operating_characteristics(params["p"], params["variant"])
    return render(request, "trial/operating_characteristics.html", {"form": form, "result": result})
