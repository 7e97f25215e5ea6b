"""Round trips through Redis and a real Celery worker process (CI runs them; locally they
need DATABASE_URL=postgres://... and REDIS_URL)."""

import datetime
import json
import time
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from analysis.services import COMPUTATIONS
from patients.services import patient_register
from tests.factories import CycleFactory, DoseLevelFactory, PatientFactory, TransplantFactory
from trial.models import TrialComputation
from trial.services import computation_request

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _wait_fresh(trial, kinds=("enrolment",), timeout=40.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(TrialComputation.objects.filter(trial=trial, kind__in=kinds))
        if len(rows) == len(kinds) and not any(r.stale for r in rows):
            return {r.kind: r for r in rows}
        time.sleep(0.2)
    pytest.fail(f"the worker did not recompute {kinds} within {timeout} s")


def test_registration_is_recomputed_by_the_worker(real_worker, world):  # type: ignore[no-untyped-def]
    patient_register(
        user=world["coordinator_a"],
        trial=world["trial"],
        data={"site": world["site_a"], "subject_id": "SA-101", "sex": "male", "race": "white", "birth_year": 1970},
    )
    computation = _wait_fresh(world["trial"])["enrolment"]
    assert computation.runs >= 1
    assert computation.data["registered"] == 1
    assert {"code": "SA", "registered": 1, "enrolled": 0} in computation.data["sites"]
    assert "analysis.tasks.trial_recompute" in real_worker["log"].read_text()


def test_healthz_sees_the_worker(real_worker, client, settings):  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    body = client.get("/healthz").json()
    assert body["broker"] == {"ok": True, "mode": "redis"}
    assert body["worker"]["ok"] is True and body["worker"]["count"] >= 1
    assert body["status"] == "ok"


def _seed(world, trial, site):  # type: ignore[no-untyped-def]
    levels = [DoseLevelFactory(trial=trial, level=n, dose_mg_m2=Decimal(d)) for n, d in ((1, "0.3"), (2, "0.4"))]
    start = datetime.date(2024, 1, 1)
    for i in range(3):
        patient = PatientFactory(site=site, trial=trial, dose_level=levels[0], enrolled_on=start)
        TransplantFactory(patient=patient, date=start - datetime.timedelta(days=60))
        for number, offset in ((1, 0), (2, 28)):
            CycleFactory(
                patient=patient, number=number, dose_level=levels[0], day1=start + datetime.timedelta(days=offset + i)
            )


def _json(data):  # type: ignore[no-untyped-def]
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def test_worker_killed_mid_queue_still_ends_correct(real_worker, world):  # type: ignore[no-untyped-def]
    trials = [(world["trial"], world["site_a"]), (world["other"], world["site_c"])]
    for trial, site in trials:
        _seed(world, trial, site)
    kinds = ("enrolment", "escalation", "survival")
    worker = real_worker["worker"]
    with transaction.atomic():
        for trial, _ in trials:
            for kind in kinds:
                computation_request(trial.pk, kind)  # six tasks, sent on commit
    deadline = time.monotonic() + 20
    while "analysis.tasks.trial_recompute" not in worker.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.kill()  # mid-queue: one task taken, the rest waiting
    assert TrialComputation.objects.filter(computed_seq__lt=1).exists(), "the worker finished before it was killed"
    worker.start()  # a new process; the held message comes back after the visibility timeout
    for trial, _ in trials:
        fresh = _wait_fresh(trial, kinds, timeout=60)
        for kind in kinds:
            clean = _json(COMPUTATIONS[kind](trial))
            assert _json(fresh[kind].data) == clean, kind


def test_dlt_adjudicated_through_the_api_reaches_the_escalation_state(real_worker, world, client):  # type: ignore[no-untyped-def]
    from core.tokens import token_issue
    from tests.factories import PASSWORD

    _seed(world, world["trial"], world["site_a"])
    with transaction.atomic():
        computation_request(world["trial"].pk, "escalation")
    before = _wait_fresh(world["trial"], ("escalation",))["escalation"].data
    assert before["decision"] == "escalate" and before["cohorts"][0]["dlts"] == 0

    patient = world["trial"].patients.order_by("pk").first()
    _, key = token_issue(user=world["investigator"], name="t")
    response = client.post(
        "/api/v1/dlt-adjudications/",
        {"patient": patient.pk, "rule": "investigator", "event_date": "2024-01-20", "is_dlt": True,
         "rationale": "Grade 4 thrombocytopenia for 35 days", "password": PASSWORD},
        content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    after = _wait_fresh(world["trial"], ("escalation",))["escalation"].data
    assert after["decision"] == "expand" and after["cohorts"][0]["dlts"] == 1


def test_a_burst_of_edits_causes_a_bounded_number_of_runs(real_worker, world):  # type: ignore[no-untyped-def]
    _seed(world, world["trial"], world["site_a"])
    for _ in range(100):  # 100 separate data changes, as 100 AE edits would make
        with transaction.atomic():
            computation_request(world["trial"].pk, "escalation")
    computation = _wait_fresh(world["trial"], ("escalation",), timeout=90)["escalation"]
    # Each queued task finds the result fresh unless a request arrived after the last run.
    assert computation.request_seq >= 100
    assert computation.runs < 60, computation.runs
