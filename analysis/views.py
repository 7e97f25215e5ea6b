"""The trial-level result pages: escalation (sign-off, pathways), survival, and the
planning tool's operating characteristics. Thin: stored results through trial.selectors,
writes through analysis.services."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analysis import selectors, services
from analysis.forms import EscalationSignForm, OperatingCharacteristicsForm, PlanningForm, planning_data
from analysis.models import SimulationRun
from analysis.operating_characteristics import exact_operating_characteristics
from core.forms import add_service_errors, form_submit
from core.query_params import int_param
from trial import access
from trial import selectors as trial_selectors
from trial.models import TrialComputation


def _trial_wide(user, trial) -> bool:  # type: ignore[no-untyped-def]
    """Sees every site's patients (investigator): the patient-level parts of results."""
    return access.can(user, "view_clinical", trial) and "coordinator" not in access.roles_in(user, trial)


@login_required
def escalation(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The 3+3 ladder, the decision awaiting signature and the signed history (PROTOCOL s6)."""
    trial = trial_selectors.trial_get(request.user, trial_id)
    state = trial_selectors.computation_payload(trial, TrialComputation.Kind.ESCALATION)
    if not _trial_wide(request.user, trial):
        state = trial_selectors.without_patient_rows(state)
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
    trial = trial_selectors.trial_get(request.user, trial_id)
    summary = trial_selectors.computation_payload(trial, TrialComputation.Kind.SURVIVAL)
    if not _trial_wide(request.user, trial):
        summary = trial_selectors.without_patient_rows(summary)
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


NOT_PLANNING = "Planning simulations are for investigators, trial admins and sponsors of a trial."
MAX_LISTED = 50


def _form_errors(exc: ValidationError) -> ValidationError:
    """The service names a design's parameter ``designs[i].field``; the form has one field
    per parameter (shared by the designs), so the message goes there."""
    if not hasattr(exc, "error_dict"):
        return exc
    mapped: dict[str, list[str]] = {}
    for key, messages_ in exc.message_dict.items():
        field = key.split(".", 1)[1] if key.startswith("designs[") and "." in key else key
        field = "designs" if field.startswith("designs[") else field
        mapped.setdefault(field, []).extend(m for m in messages_ if m not in mapped.get(field, []))
    return ValidationError(mapped)


def _initial(request, trials) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Starting values: the trial's design and levels (?trial=<id>), else the R defaults."""
    trial_id = int_param(request, "trial")
    if trial_id is None:
        return {"designs": ["3+3", "boin"]}
    trial = trials.filter(pk=trial_id).first()
    if trial is None:
        raise Http404("No trial of yours to plan matches the given query.")
    d = services.trial_defaults(trial)
    chosen = ["3+3"] if d["design"] == "3+3" else ["3+3", d["design"]]
    initial = {"trial": trial, "designs": chosen, "variant": d["variant"]}
    for key in ("target_dlt_rate", "cohort_size", "max_sample_size", "boin_p_saf", "boin_p_tox", "boin_n_earlystop"):
        initial[key] = d[key]
    initial["crm_model"], initial["crm_prior_sd"] = d["crm_model"], round(d["crm_prior_sd"], 4)
    initial["crm_skeleton"] = ", ".join(f"{v:g}" for v in d["crm_skeleton"])
    initial["levels_hint"] = d["n_levels"]
    return initial


@login_required
def planning(request):  # type: ignore[no-untyped-def]
    if not services.planning_visible(request.user):
        raise PermissionDenied(NOT_PLANNING)
    can_plan = services.planning_allowed(request.user)
    trials = selectors.planning_trials(request.user)
    form = None
    levels_hint = None
    if request.method == "POST":
        # The capability before the form: a role that may not plan learns nothing of the form.
        if not can_plan:
            raise PermissionDenied("Only investigators and trial admins start planning simulations.")
        form = PlanningForm(request.POST, trials=trials)

        def write() -> SimulationRun:
            try:
                return services.simulation_run_request(user=request.user, data=planning_data(form.cleaned_data))
            except ValidationError as exc:
                raise _form_errors(exc) from exc

        def check(cleaned: dict[str, Any]) -> None:
            try:
                services.simulation_run_check(planning_data(cleaned))
            except ValidationError as exc:
                raise _form_errors(exc) from exc

        run = form_submit(form, write, check)
        if run is not None:
            messages.success(request, f"Simulation #{run.pk} started: {run.n_trials:,} trials per design.")
            return redirect("simulation_run_detail", simulation_run_id=run.pk)
    elif can_plan:
        initial = _initial(request, trials)
        levels_hint = initial.pop("levels_hint", None)
        form = PlanningForm(initial=initial, trials=trials)
    runs = list(selectors.simulation_runs(request.user)[:MAX_LISTED])
    return render(
        request,
        "analysis/planning.html",
        {"form": form, "runs": runs, "can_plan": can_plan, "levels_hint": levels_hint},
    )


def _levels(run: SimulationRun) -> list[dict[str, Any]]:
    """Per level: its number, true DLT probability, and each design's values (one row)."""
    columns = (run.result or {}).get("columns", [])
    rows = []
    for i, p in enumerate(run.true_dlt_probabilities):
        rows.append(
            {
                "level": i + 1,
                "p": p,
                "overdose": p > run.overdose_threshold,
                "cells": [
                    {
                        "select": c["prob_select"][i],
                        "se_select": c["se_prob_select"][i],
                        "patients": c["patients_per_level"][i],
                        "se_patients": c["se_patients_per_level"][i],
                        "dlts": c["dlts_per_level"][i],
                        "se_dlts": c["se_dlts_per_level"][i],
                        "exact_select": (c["exact"] or {}).get("prob_select", [None] * (i + 1))[i],
                        "exact_patients": (c["exact"] or {}).get("patients_per_level", [None] * (i + 1))[i],
                    }
                    for c in columns
                ],
            }
        )
    return rows


@login_required
def simulation_run_detail(request, simulation_run_id: int):  # type: ignore[no-untyped-def]
    run = selectors.simulation_run_get(request.user, simulation_run_id)
    return render(
        request,
        "analysis/simulation_run.html",
        {
            "run": run,
            "columns": (run.result or {}).get("columns", []),
            "levels": _levels(run) if run.status == SimulationRun.Status.DONE else [],
            "can_cancel": not run.finished and services.planning_allowed(request.user, run.trial),
            "status_url": reverse("simulation_run_status", args=[run.pk]),
        },
    )


@login_required
def simulation_run_status(request, simulation_run_id: int):  # type: ignore[no-untyped-def]
    """The small JSON the page polls (static/js/planning.js)."""
    run = selectors.simulation_run_get(request.user, simulation_run_id)
    return JsonResponse(
        {"status": run.status, "progress": run.progress, "finished": run.finished, "error": run.error},
        headers={"Cache-Control": "no-store"},
    )


@login_required
@require_POST
def simulation_run_cancel(request, simulation_run_id: int):  # type: ignore[no-untyped-def]
    run = selectors.simulation_run_get(request.user, simulation_run_id)
    try:
        services.simulation_run_cancel(user=request.user, run=run)
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Simulation #{run.pk} cancelled.")
    return redirect("simulation_run_detail", simulation_run_id=run.pk)
