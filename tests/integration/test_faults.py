"""Fault injection against real services (issue 11): Redis stopped and restarted, the
database connection dropped between requests, two users editing the same AE.

A worker killed mid-recomputation is tests/integration/test_celery.py
(test_worker_killed_mid_queue_still_ends_correct). Redis here is a private
``redis-server`` on a free port, never the shared one other tests use.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from analysis.services import COMPUTATIONS
from core.tokens import token_issue
from safety.models import AdverseEvent
from tests.conftest import WorkerProcess, missing, reset_publisher_pools
from tests.factories import AdverseEventFactory
from tests.integration.test_safety_services import NAUSEA, make_patient
from trial.models import TrialComputation
from trial.services import computation_request

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("enrolment", "escalation", "survival")
# A save with the broker down must not wait for publish retries (settings: one immediate retry).
FAST_WRITE_SECONDS = 1.5

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def _postgres_only() -> None:
    # Module scope: decided before the transactional database is set up, whose flush the
    # audit triggers would refuse on SQLite.
    if connection.vendor != "postgresql":
        missing("PostgreSQL (set DATABASE_URL)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


class RedisServer:
    """A throw-away redis-server without persistence: stopping it loses every message."""

    def __init__(self, log_dir: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server on PATH")
        self.binary, self.port, self.log = binary, _free_port(), log_dir / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    def start(self) -> None:
        import redis

        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_stack(postgres_required, tmp_path):  # type: ignore[no-untyped-def]
    """A private Redis, a worker with beat inside (relay every second) on it, and this
    process's Celery app publishing to it instead of running tasks in-process."""
    from config.celery import app

    server = RedisServer(tmp_path)
    server.start()
    queue = f"trialdesk-faults-{uuid.uuid4().hex[:8]}"
    saved = {key: app.conf[key] for key in ("broker_url", "task_default_queue", "task_always_eager")}
    worker = None
    try:
        app.conf.broker_url, app.conf.task_default_queue = server.url, queue
        reset_publisher_pools(app)
        worker = WorkerProcess(
            queue,
            tmp_path,
            {"REDIS_URL": server.url, "RELAY_STALE_SECONDS": "1", "CELERY_VISIBILITY_TIMEOUT": "4"},
            extra_args=["-B", "-s", str(tmp_path / "beat-schedule")],
        ).start()
        app.conf.task_always_eager = False
        yield {"redis": server, "worker": worker}
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        for key, value in saved.items():
            app.conf[key] = value
        reset_publisher_pools(app)


def _wait_fresh(trial, worker, timeout: float = 45.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {r.kind: r for r in TrialComputation.objects.filter(trial=trial, kind__in=KINDS)}
        if len(rows) == len(KINDS) and not any(r.stale for r in rows.values()):
            return rows
        time.sleep(0.2)
    rows = list(TrialComputation.objects.filter(trial=trial))
    pytest.fail(f"not recomputed within {timeout} s: {rows}\nworker log:\n{worker.log.read_text()[-3000:]}")


def _json(data):  # type: ignore[no-untyped-def]
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_redis_outage_loses_nothing_and_logs_nobody_out(private_stack, world, client, settings):  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False  # /healthz looks at the broker, as in production
    trial, user = world["trial"], world["coordinator_a"]
    patient = make_patient(world)
    with transaction.atomic():
        for kind in KINDS:
            computation_request(trial.pk, kind)
    before = _wait_fresh(trial, private_stack["worker"])  # the worker answers through the private Redis
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session_key = client.session.session_key
    _, key = token_issue(user=user, name="faults")

    private_stack["redis"].stop()

    form, form_seconds = _timed(
        lambda: client.post(
            f"/trials/{trial.pk}/patients/new/",
            {"site": world["site_a"].pk, "subject_id": "SA-777", "sex": "female", "race": "white", "birth_year": 1961},
        )
    )
    assert form.status_code == 302 and "/patients/" in form["Location"], form.content.decode()[:2000]
    api, api_seconds = _timed(
        lambda: client.post(
            "/api/v1/adverse-events/",
            {"patient": patient.pk, "meddra_code": NAUSEA, "grade": 2, "onset": "2024-04-10", "attribution": "possible"},
            content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}",
        )
    )  # fmt: skip
    assert api.status_code == 201, api.content
    assert form_seconds < FAST_WRITE_SECONDS and api_seconds < FAST_WRITE_SECONDS, (form_seconds, api_seconds)
    assert trial.patients.filter(subject_id="SA-777").exists() and AdverseEvent.objects.filter(patient=patient).exists()

    home = client.get("/")
    assert home.status_code == 200 and client.session.session_key == session_key  # still signed in
    pending = {r.kind: r for r in TrialComputation.objects.filter(trial=trial)}
    assert pending["enrolment"].stale and pending["escalation"].stale  # the outbox holds the requests
    assert pending["escalation"].request_seq > before["escalation"].computed_seq
    dashboard = client.get(f"/trials/{trial.pk}/")
    assert dashboard.status_code == 200 and "stale: recomputation pending" in dashboard.content.decode()
    escalation = client.get(f"/trials/{trial.pk}/escalation/")
    assert escalation.status_code == 200 and "stale: recomputation pending" in escalation.content.decode()
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"  # not "down": entry works
    assert health.json()["broker"]["ok"] is False

    private_stack["redis"].start()  # same port, empty: every queued message is gone
    after = _wait_fresh(trial, private_stack["worker"])  # beat's relay re-sends the outbox; no manual step
    assert after["enrolment"].data["registered"] == 2
    for kind in KINDS:
        if pending[kind].stale:  # enrolment and escalation: recomputed by the worker
            assert after[kind].runs > before[kind].runs, kind
        assert _json(after[kind].data) == _json(COMPUTATIONS[kind](trial)), kind
    for page in (f"/trials/{trial.pk}/", f"/trials/{trial.pk}/escalation/"):
        assert "stale: recomputation pending" not in client.get(page).content.decode(), page


class AppServer:
    """The app under gunicorn (one worker, one thread), so connections persist between
    requests exactly as in production (CONN_MAX_AGE)."""

    def __init__(self, log_dir: Path, application_name: str):
        self.port, self.log = _free_port(), log_dir / "gunicorn.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"{_database_url()}?application_name={application_name}",
            "DB_CONN_MAX_AGE": "600",
            "DJANGO_ENV": "test",
            "REDIS_URL": "",
        }
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    def __enter__(self) -> "AppServer":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "1", "--threads", "1"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2)  # noqa: S310 - our own server
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        pytest.fail(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def get(self, path: str, token: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Token {token}"})  # noqa: S310 - our own server
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _backend_pids(application_name: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return [row[0] for row in cursor.fetchall()]


def test_dropped_database_connection_is_replaced_before_the_next_request(postgres_required, world, tmp_path):  # type: ignore[no-untyped-def]
    name = f"trialdesk-faults-{uuid.uuid4().hex[:8]}"
    _, key = token_issue(user=world["investigator"], name="faults")
    with AppServer(tmp_path, name) as server:
        status, body = server.get("/api/v1/trials/", key)
        assert status == 200 and world["trial"].code in body.decode()
        pids = _backend_pids(name)
        assert len(pids) == 1, pids  # one persistent connection, kept between requests
        status, _ = server.get("/api/v1/trials/", key)
        assert status == 200 and _backend_pids(name) == pids  # really reused

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", pids)
        deadline = time.monotonic() + 5
        while _backend_pids(name) and time.monotonic() < deadline:
            time.sleep(0.05)

        status, body = server.get("/api/v1/trials/", key)
        assert status == 200, body[:2000]
        assert world["trial"].code in body.decode()
        new_pids = _backend_pids(name)
        assert len(new_pids) == 1 and new_pids != pids


# --- two users, one AE, one version ----------------------------------------------------


@pytest.fixture
def shared_ae(world):  # type: ignore[no-untyped-def]
    """An AE (version 1) of site A, editable by two coordinators of site A."""
    from tests.factories import UserFactory, grant
    from trial.models import RoleGrant

    second = UserFactory(username="coord_a2")
    grant(second, world["trial"], RoleGrant.Role.COORDINATOR, world["site_a"])
    ae = AdverseEventFactory(patient=make_patient(world), grade=2)
    assert ae.version == 1
    return ae, world["coordinator_a"], second


def _api_client(user):  # type: ignore[no-untyped-def]
    from django.test import Client

    _, key = token_issue(user=user, name="faults")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def _edits(ae):  # type: ignore[no-untyped-def]
    return ae.history.filter(history_type="~").count()


def test_two_api_edits_of_the_same_version_at_once_one_wins(shared_ae):  # type: ignore[no-untyped-def]
    ae, first, second = shared_ae
    url = f"/api/v1/adverse-events/{ae.pk}/"
    # Different fields, so that a silent merge would show as both changes in the record.
    bodies = {
        "grade": {"grade": 3, "reason_for_change": "worsened"},
        "resolved": {"resolved": "2024-05-01", "reason_for_change": "resolved"},
    }
    clients = {"grade": _api_client(first), "resolved": _api_client(second)}
    start, answers = threading.Barrier(2), {}

    def edit(which: str) -> None:
        try:
            start.wait(timeout=10)
            answers[which] = clients[which].patch(
                url, bodies[which], content_type="application/json", HTTP_IF_MATCH='"1"'
            )
        finally:
            connection.close()  # the thread's own connection

    threads = [threading.Thread(target=edit, args=(which,)) for which in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(r.status_code for r in answers.values())
    assert statuses == [200, 409], {k: (r.status_code, r.content[:300]) for k, r in answers.items()}
    winner = next(k for k, r in answers.items() if r.status_code == 200)
    loser = next(k for k, r in answers.items() if r.status_code == 409)
    assert answers[loser].json()["current_version"] == 2
    ae.refresh_from_db()
    assert ae.version == 2
    assert ae.grade == (3 if winner == "grade" else 2)
    assert (ae.resolved is not None) == (winner == "resolved")  # nothing of the loser's change
    assert _edits(ae) == 1


@pytest.mark.parametrize("browser_first", [True, False], ids=["form-wins", "api-wins"])
def test_browser_form_and_api_edit_the_same_version(shared_ae, client, browser_first):  # type: ignore[no-untyped-def]
    ae, browser_user, api_user = shared_ae
    client.force_login(browser_user, backend="django.contrib.auth.backends.ModelBackend")
    edit_url = f"/adverse-events/{ae.pk}/edit/"
    page = client.get(edit_url)
    assert page.status_code == 200 and page.context["form"]["version"].value() == 1  # both read version 1
    form_data = {
        key: ("" if value is None else value)
        for key, value in page.context["form"].initial.items()
        if key in page.context["form"].fields
    }
    form_data.update(term=ae.term_id, grade=4, reason_for_change="worsened on review", version=1)
    form_data = {k: v for k, v in form_data.items() if v != ""}

    def post_form():  # type: ignore[no-untyped-def]
        return client.post(edit_url, form_data)

    def patch_api():  # type: ignore[no-untyped-def]
        return _api_client(api_user).patch(
            f"/api/v1/adverse-events/{ae.pk}/",
            {"resolved": "2024-05-01", "reason_for_change": "resolved"},
            content_type="application/json", HTTP_IF_MATCH='"1"',
        )  # fmt: skip

    if browser_first:
        assert post_form().status_code == 302
        late = patch_api()
        assert late.status_code == 409 and late.json()["current_version"] == 2
    else:
        assert patch_api().status_code == 200
        late = post_form()
        assert late.status_code == 200  # the form again, with the message, nothing saved
        errors = " ".join(late.context["form"].non_field_errors())
        assert "version" in errors.lower() or "changed" in errors.lower(), errors
    ae.refresh_from_db()
    assert ae.version == 2 and _edits(ae) == 1
    if browser_first:
        assert ae.grade == 4 and ae.resolved is None
    else:
        assert ae.grade == 2 and str(ae.resolved) == "2024-05-01"
