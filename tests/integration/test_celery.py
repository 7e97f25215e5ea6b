"""Round trip through Redis and a real Celery worker (CI runs it; locally it needs
DATABASE_URL=postgres://... and REDIS_URL)."""

import time

import pytest

from patients.services import patient_register
from trial.models import TrialComputation

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _wait_fresh(trial, timeout=30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        computation = TrialComputation.objects.filter(trial=trial, kind="enrolment").first()
        if computation is not None and not computation.stale:
            return computation
        time.sleep(0.1)
    pytest.fail("the worker did not recompute within the time limit")


def test_registration_is_recomputed_by_the_worker(real_worker, world):  # type: ignore[no-untyped-def]
    patient_register(
        user=world["coordinator_a"],
        trial=world["trial"],
        data={"site": world["site_a"], "subject_id": "SA-101", "sex": "male", "race": "white", "birth_year": 1970},
    )
    # Committed, not yet computed: the request is recorded with the data (outbox).
    computation = _wait_fresh(world["trial"])
    assert computation.runs >= 1
    assert computation.data["registered"] == 1
    assert {"code": "SA", "registered": 1, "enrolled": 0} in computation.data["sites"]
    assert "trial.tasks.trial_recompute" in real_worker["log"].read_text()


def test_healthz_sees_the_worker(real_worker, client, settings):  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    body = client.get("/healthz").json()
    assert body["broker"] == {"ok": True, "mode": "redis"}
    assert body["worker"]["ok"] is True and body["worker"]["count"] >= 1
    assert body["status"] == "ok"
