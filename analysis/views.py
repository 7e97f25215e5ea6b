"""The trial-level result pages: escalation (sign-off, pathways), survival, and the
planning tool's operating characteristics. Thin: stored results through trial.selectors,
writes through analysis.services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render

from analysis import services
from analysis.forms import EscalationSignForm, OperatingCharacteristicsForm
from analysis.operating_characteristics import exact_operating_characteristics
from core.forms import add_service_errors
from trial import access, selectors
from trial.models import TrialComputation


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
        "analysis/escalation.html",
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
    return render(request, "analysis/survival.html", {"trial": trial, "s": summary})


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
    return render(request, "analysis/operating_characteristics.html", {"form": form, "result": result})
