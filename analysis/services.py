"""Planning simulations (issue 17): request, cancel and run a SimulationRun.

Who may plan (trial.access capability ``plan``): investigators and trial admins, who choose
and configure the design. Sponsors see the runs of their trials (``view_planning``) but
start nothing: a sponsor is read-only everywhere (issue 8). A run tied to a trial needs the
capability in that trial; a free-standing run needs it in any trial and is seen by the user
who asked only (analysis.selectors).

The run itself: ``simulation_run_execute`` claims the row with a conditional UPDATE (queued,
or running with a heartbeat older than RUNNING_STALE_SECONDS: its worker died), simulates
(analysis.designs.comparison) and reports progress with another conditional UPDATE that
only matches while the run is still ``running``: no row means it was cancelled, and the
callback stops the simulation (SimulationCancelled). A task delivered twice finds nothing
to claim and does nothing.
"""

import logging
import time
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analysis.designs.comparison import (
    DEFAULT_SEED,
    DEFAULT_TRIALS,
    DesignChoice,
    comparison_problems,
    comparison_run,
)
from analysis.designs.simulation import SimulationCancelled
from analysis.models import SimulationRun
from core.errors import Problems
from trial import access
from trial.configuration import DesignSpec
from trial.models import Trial

logger = logging.getLogger(__name__)

RUNNING_STALE_SECONDS = 120
PROGRESS_WRITE_SECONDS = 0.25  # at most ~4 progress writes a second (each also checks for a cancel)
DESIGN_KEYS = frozenset(
    {
        "design",
        "target_dlt_rate",
        "cohort_size",
        "max_sample_size",
        "boin_p_saf",
        "boin_p_tox",
        "boin_n_earlystop",
        "crm_skeleton",
        "crm_model",
        "crm_prior_sd",
        "variant",
    }
)


def planning_allowed(user, trial: Trial | None = None) -> bool:  # type: ignore[no-untyped-def]
    """May ``user`` start (and cancel) planning simulations, in ``trial`` or free-standing."""
    if trial is not None:
        return access.can(user, "plan", trial)
    return any("plan" in access.CAPABILITIES[g.role] for g in access.active_grants(user))


def planning_visible(user) -> bool:  # type: ignore[no-untyped-def]
    """May ``user`` open the planning page at all (planners and sponsors)."""
    return any("view_planning" in access.CAPABILITIES[g.role] for g in access.active_grants(user))


def design_choice(values: dict[str, Any]) -> DesignChoice:
    """A design of the request (API body or form) as a DesignChoice; absent fields take the
    R packages' defaults (trial.configuration.DesignSpec)."""
    defaults = DesignSpec()
    spec = DesignSpec(
        design=values.get("design", defaults.design),
        target_dlt_rate=values.get("target_dlt_rate", defaults.target_dlt_rate),
        cohort_size=values.get("cohort_size", defaults.cohort_size),
        max_sample_size=values.get("max_sample_size", defaults.max_sample_size),
        boin_p_saf=values.get("boin_p_saf"),
        boin_p_tox=values.get("boin_p_tox"),
        boin_n_earlystop=values.get("boin_n_earlystop", defaults.boin_n_earlystop),
        crm_skeleton=list(values.get("crm_skeleton") or []),
        crm_model=values.get("crm_model", defaults.crm_model),
        crm_prior_sd=values.get("crm_prior_sd", defaults.crm_prior_sd),
    )
    return DesignChoice(spec, values.get("variant") or "storer_a")


def trial_defaults(trial: Trial) -> dict[str, Any]:
    """A trial's levels and design as the planning form's starting values."""
    return {
        "n_levels": trial.dose_levels.count(),
        "design": trial.design,
        "variant": trial.escalation_variant,
        "target_dlt_rate": trial.target_dlt_rate,
        "cohort_size": trial.cohort_size,
        "max_sample_size": trial.max_sample_size,
        "boin_p_saf": trial.boin_p_saf,
        "boin_p_tox": trial.boin_p_tox,
        "boin_n_earlystop": trial.boin_n_earlystop,
        "crm_skeleton": list(trial.crm_skeleton or []),
        "crm_model": trial.crm_model,
        "crm_prior_sd": trial.crm_prior_sd,
    }


def simulation_run_check(data: dict[str, Any]) -> None:
    """Every problem of a request, naming the field (writes nothing). ``data``: the fields
    that are present and typed (a form's cleaned data, an API body)."""
    problems = Problems()
    probabilities = data.get("true_dlt_probabilities")
    designs = data.get("designs")
    if probabilities is None:
        problems.add("true_dlt_probabilities", "Give the true DLT probability of each dose level.")
    if designs is None:
        problems.add("designs", "Choose at least one design to compare.")
    choices = []
    for i, values in enumerate(designs or []):
        unknown = sorted(set(values) - DESIGN_KEYS)
        if unknown:
            problems.add(f"designs[{i}]", f"Unknown design parameter(s): {', '.join(unknown)}.")
        choices.append(design_choice(values))
    found = comparison_problems(
        probabilities if probabilities is not None else [0.1, 0.2],
        choices if designs is not None else [DesignChoice()],
        data.get("n_trials", DEFAULT_TRIALS),
        data.get("seed", DEFAULT_SEED),
    )
    problems.extend(found)
    threshold = data.get("overdose_threshold")
    if threshold is not None and (isinstance(threshold, bool) or not 0 <= threshold <= 1):
        problems.add("overdose_threshold", "The overdose threshold must be a DLT probability from 0 to 1.")
    trial = data.get("trial")
    if trial is not None and not isinstance(trial, Trial):
        problems.add("trial", "Name a trial by its code.")
    problems.raise_if_any()


def _overdose_threshold(data: dict[str, Any], choices: list[DesignChoice]) -> float:
    """As given; otherwise the target of the first design that has one (3+3: 0.3)."""
    if data.get("overdose_threshold") is not None:
        return float(data["overdose_threshold"])
    targets = [c.spec.target_dlt_rate for c in choices if c.spec.design != "3+3"]
    return float(targets[0]) if targets else 0.3


def simulation_run_request(*, user, data: dict[str, Any]) -> SimulationRun:  # type: ignore[no-untyped-def]
    """Store a run and enqueue its simulation once committed. ``data``: true_dlt_probabilities,
    designs (list of dicts, DESIGN_KEYS), n_trials, seed, optional overdose_threshold and trial."""
    trial = data.get("trial")
    if not planning_allowed(user, trial):
        where = f"in trial {trial.code}" if trial is not None else "in any of your trials"
        raise PermissionDenied(f"Planning simulations are for investigators and trial admins; not your role {where}.")
    simulation_run_check(data)
    choices = [design_choice(values) for values in data["designs"]]
    with transaction.atomic():
        run = SimulationRun.objects.create(
            trial=trial,
            requested_by=user,
            designs=[c.parameters() for c in choices],
            true_dlt_probabilities=[float(p) for p in data["true_dlt_probabilities"]],
            n_trials=data.get("n_trials", DEFAULT_TRIALS),
            seed=data.get("seed", DEFAULT_SEED),
            overdose_threshold=_overdose_threshold(data, choices),
        )
        transaction.on_commit(lambda: _simulation_enqueue(run.pk))
    return run


def _simulation_enqueue(run_id: int) -> None:
    """Send the task; with the broker unreachable the run stays queued (the page says so
    and it can be cancelled) instead of failing the request after its commit."""
    from kombu.exceptions import OperationalError

    from analysis.tasks import simulation_run_task

    try:
        simulation_run_task.delay(run_id)
    except OperationalError as exc:
        logger.warning("broker unreachable, simulation run %s stays queued: %s", run_id, exc)


def simulation_run_cancel(*, user, run: SimulationRun) -> SimulationRun:  # type: ignore[no-untyped-def]
    """Cancel a queued or running run (its worker stops at its next progress report).
    Cancelling a cancelled run changes nothing; a finished one cannot be cancelled."""
    if not planning_allowed(user, run.trial):
        raise PermissionDenied("Only a planner (investigator or trial admin) may cancel a simulation.")
    with transaction.atomic():
        cancelled = SimulationRun.objects.filter(
            pk=run.pk, status__in=[SimulationRun.Status.QUEUED, SimulationRun.Status.RUNNING]
        ).update(status=SimulationRun.Status.CANCELLED, cancelled_by=user, finished_at=timezone.now())
    run.refresh_from_db()
    if not cancelled and run.status != SimulationRun.Status.CANCELLED:
        raise ValidationError(
            {"status": [f"The simulation has already ended ({run.get_status_display().lower()}): nothing to cancel."]}
        )
    return run


def simulation_run_execute(run_id: int) -> str:
    """Run one simulation (the Celery task's body). Returns the status it leaves."""
    now = timezone.now()
    stale = now - timedelta(seconds=RUNNING_STALE_SECONDS)
    claimed = (
        SimulationRun.objects.filter(pk=run_id)
        .filter(Q(status=SimulationRun.Status.QUEUED) | Q(status=SimulationRun.Status.RUNNING, heartbeat_at__lt=stale))
        .update(status=SimulationRun.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0.0)
    )
    if not claimed:  # done, cancelled, failed, gone, or running in another worker
        status = SimulationRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return str(status or "missing")
    run = SimulationRun.objects.get(pk=run_id)
    still_running = SimulationRun.objects.filter(pk=run_id, status=SimulationRun.Status.RUNNING)
    last_write = [time.monotonic()]

    def on_progress(done: float) -> None:
        if time.monotonic() - last_write[0] < PROGRESS_WRITE_SECONDS:
            return
        last_write[0] = time.monotonic()
        if not still_running.update(progress=min(max(done, 0.0), 1.0), heartbeat_at=timezone.now()):
            raise SimulationCancelled(f"simulation run {run_id} was cancelled")

    started = time.monotonic()
    try:
        columns = comparison_run(
            run.true_dlt_probabilities,
            [design_choice(values) for values in run.designs],
            run.n_trials,
            run.seed,
            run.overdose_threshold,
            on_progress,
        )
    except SimulationCancelled:
        return SimulationRun.Status.CANCELLED
    except (ValueError, RuntimeError) as exc:  # a design refused its parameters or could not end a trial
        logger.exception("simulation run %s failed", run_id)
        still_running.update(status=SimulationRun.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
        return SimulationRun.Status.FAILED
    result = {
        "levels": len(run.true_dlt_probabilities),
        "columns": columns,
        "elapsed_seconds": round(time.monotonic() - started, 3),
    }
    finished = still_running.update(
        status=SimulationRun.Status.DONE, progress=1.0, result=result, finished_at=timezone.now()
    )
    # No row: cancelled after the last progress report; the cancel stands.
    return SimulationRun.Status.DONE if finished else SimulationRun.Status.CANCELLED
