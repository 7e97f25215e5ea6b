"""Planning simulations through Redis and a real Celery worker process (issue 17): a run
started by the service is simulated by the worker and ends with its columns (3+3 within
4 SE of its exact values); a long run cancelled once it has made progress stops at its
next progress report."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from analysis import services
from analysis.models import SimulationRun
from tests.factories import SimulationRunFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PROBS = [0.05, 0.12, 0.25, 0.40]
SKELETON = [0.05, 0.12, 0.25, 0.40]


def _wait(run_id, condition, timeout=40.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SimulationRun.objects.get(pk=run_id)
        if condition(run):
            return run
        time.sleep(0.05)
    run = SimulationRun.objects.get(pk=run_id)
    pytest.fail(f"run {run_id} still {run.status} at {run.progress:.2f} after {timeout} s")


def _task_result(log, run_id, after=0, timeout=40.0):  # type: ignore[no-untyped-def]
    """What the worker's task returned for the run, from its log ("succeeded in ...: 'done'"),
    once ``after`` earlier tasks have logged theirs."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"simulation_run_task\[[^\]]+\] succeeded in [0-9.]+s: '(\w+)'")
    while time.monotonic() < deadline:
        found = pattern.findall(log.read_text())
        if len(found) > after:
            return found[after]
        time.sleep(0.05)
    pytest.fail(f"the worker did not finish run {run_id}:\n{log.read_text()[-2000:]}")


def test_the_worker_simulates_a_run_and_stops_a_cancelled_one(real_worker, world):  # type: ignore[no-untyped-def]
    run = services.simulation_run_request(
        user=world["investigator"],
        data={
            "trial": world["trial"],
            "true_dlt_probabilities": PROBS,
            "designs": [{"design": "3+3"}, {"design": "boin", "max_sample_size": 12}],
            "n_trials": 2000,
            "seed": 17,
        },
    )  # committed: the task goes to the worker on commit
    done = _wait(run.pk, lambda r: r.finished)
    assert done.status == "done", done.error
    assert _task_result(real_worker["log"], run.pk) == "done"
    three, boin = done.result["columns"]
    assert three["exact"]["all_agree"], three["exact"]  # 3+3: simulated within 4 SE of exact
    assert boin["prob_select"] and boin["se_mean_patients"] >= 0 and done.progress == 1.0

    # In the same test (a worker and a transactional database cost ~20 s to set up and tear
    # down; the simulations themselves ~1 s): a long run cancelled midway. The CRM with
    # 50,000 trials alone takes ~13 s here: long enough to see progress, then cancel; the
    # worker stops at its next progress report (within a round).
    run = services.simulation_run_request(
        user=world["investigator"],
        data={
            "true_dlt_probabilities": PROBS,
            "designs": [{"design": "crm", "crm_skeleton": SKELETON}, {"design": "boin"}],
            "n_trials": 50_000,
            "seed": 3,
        },
    )
    moving = _wait(run.pk, lambda r: r.progress > 0 or r.finished)
    assert moving.status == "running", moving.status
    services.simulation_run_cancel(user=world["investigator"], run=moving)
    cancelled_at = time.monotonic()
    assert _task_result(real_worker["log"], run.pk, after=1) == "cancelled"
    stopped_after = time.monotonic() - cancelled_at
    run.refresh_from_db()
    assert run.status == "cancelled" and run.result == {} and 0 < run.progress < 0.5
    assert stopped_after < 10, f"the worker went on for {stopped_after:.1f} s after the cancel"

    # A run whose message was lost (stored, never sent: the broker was down at commit) is
    # sent again by the periodic relay and the worker simulates it.
    lost = SimulationRunFactory(
        trial=world["trial"],
        requested_by=world["investigator"],
        requested_at=timezone.now() - timedelta(seconds=services.QUEUED_RELAY_SECONDS + 1),
    )
    assert SimulationRun.objects.get(pk=lost.pk).status == "queued"
    assert services.simulation_relay_stuck() == 1
    relayed = _wait(lost.pk, lambda r: r.finished)
    assert relayed.status == "done" and relayed.result["columns"], relayed.error
