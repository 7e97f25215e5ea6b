"""Shared fixtures. Services (PostgreSQL, Redis, a Celery worker, chromium) are used
for real; when one is missing the test is skipped locally, and fails when
TRIALDESK_REQUIRE_SERVICES=1 (as .ci/run sets it)."""

import os

import pytest
from django.db import connection

from tests.factories import SiteFactory, TrialFactory, UserFactory, grant
from trial.models import RoleGrant

STRICT = os.environ.get("TRIALDESK_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    if STRICT:
        pytest.fail(f"{what} is required (TRIALDESK_REQUIRE_SERVICES=1) but missing", pytrace=False)
    pytest.skip(f"{what} not available")


@pytest.fixture
def postgres_required() -> None:
    if connection.vendor != "postgresql":
        missing("PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _eager_celery(settings):  # type: ignore[no-untyped-def]
    """Tasks run in-process unless a test asks for the real worker."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # type: ignore[no-untyped-def]
    # PBKDF2's 1M rounds cost ~0.6 s per hash; tests check behaviour, not key stretching.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    """Trial T with sites A and B, trial U with site C, and one user per role."""
    trial = TrialFactory(code="TRIAL-T", title="Trial T")
    site_a = SiteFactory(trial=trial, code="SA", name="Site A hospital")
    site_b = SiteFactory(trial=trial, code="SB", name="Site B hospital")
    other = TrialFactory(code="OTHER-U", title="Other trial U")
    site_c = SiteFactory(trial=other, code="SC", name="Site C hospital")
    users = {
        "coordinator_a": UserFactory(username="coord_a"),
        "coordinator_b": UserFactory(username="coord_b"),
        "investigator": UserFactory(username="inv"),
        "sponsor": UserFactory(username="spon"),
        "admin": UserFactory(username="tadmin"),
        "data_manager": UserFactory(username="dman"),
        "monitor": UserFactory(username="mon"),
        "nobody": UserFactory(username="nobody"),
    }
    grant(users["coordinator_a"], trial, RoleGrant.Role.COORDINATOR, site_a)
    grant(users["coordinator_b"], trial, RoleGrant.Role.COORDINATOR, site_b)
    grant(users["investigator"], trial, RoleGrant.Role.INVESTIGATOR)
    grant(users["sponsor"], trial, RoleGrant.Role.SPONSOR)
    grant(users["admin"], trial, RoleGrant.Role.ADMIN)
    grant(users["data_manager"], trial, RoleGrant.Role.DATA_MANAGER)
    grant(users["monitor"], trial, RoleGrant.Role.MONITOR)
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "other": other, "site_c": site_c, **users}


@pytest.fixture
def login(client):  # type: ignore[no-untyped-def]
    def _login(user):  # type: ignore[no-untyped-def]
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return _login


class WorkerProcess:
    """A real ``celery worker`` process on its own queue, reading the test database."""

    def __init__(self, queue: str, log_dir, extra_env: dict[str, str] | None = None, extra_args=()):  # type: ignore[no-untyped-def]
        import socket

        from config.celery import app

        self.queue = queue
        self.node = f"{queue}-{os.getpid()}-{id(self)}@{socket.gethostname()}"
        self.log = log_dir / f"worker-{id(self)}.log"
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_QUEUE": queue,
            # the broker this test process uses (its own Redis database under pytest-xdist)
            **({"REDIS_URL": app.conf.broker_url} if str(app.conf.broker_url).startswith("redis://") else {}),
            "DJANGO_ENV": "test",
            **(extra_env or {}),
        }
        self.extra_args = list(extra_args)  # e.g. ["-B", "-s", path]: beat inside the worker
        self.process = None

    def start(self, timeout: float = 60) -> "WorkerProcess":
        import subprocess
        import sys
        import time
        from pathlib import Path

        from config.celery import app

        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", self.queue,
                 "-n", self.node, "--without-gossip", "--without-mingle", "--loglevel=INFO", *self.extra_args],
                cwd=Path(__file__).resolve().parents[1], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not app.control.ping(destination=[self.node], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the Celery worker did not start:\n{self.log.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, no ack; what it held must come back by itself."""
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _redis_url_of_this_process(url: str) -> str:
    """With pytest-xdist each test process (gw0, gw1, ...) has its own test database
    (pytest-django adds the suffix) and here its own Redis database: the next numbers
    after REDIS_URL's, so that one process's workers, queues and the kombu 'unacked'
    keys it empties never meet another's."""
    from urllib.parse import urlsplit, urlunsplit

    xdist = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... or unset
    if not xdist.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 1 + int(xdist[2:])}"))


def _redis_url() -> str:
    import redis

    if connection.vendor != "postgresql":
        missing("PostgreSQL (the worker must share the test database)")
    url = os.environ.get("REDIS_URL")
    if not url:
        missing("Redis (set REDIS_URL)")
    url = _redis_url_of_this_process(url)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError:
        missing(f"Redis at {url}")
    return url


@pytest.fixture(scope="session")
def celery_broker(django_db_setup, django_db_blocker, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Redis as the test process's broker, on a queue of this test session only, so a
    developer's worker on the same Redis never sees the tests' tasks."""
    import uuid

    from config.celery import app

    redis_url = _redis_url()
    queue = f"trialdesk-test-{uuid.uuid4().hex[:8]}"
    app.conf.broker_url = redis_url
    app.conf.task_default_queue = queue
    reset_publisher_pools(app)  # a pool made earlier would still publish to the settings' broker
    return {"url": redis_url, "queue": queue, "logs": tmp_path_factory.mktemp("celery")}


def reset_publisher_pools(app) -> None:  # type: ignore[no-untyped-def]
    """After app.conf.broker_url changed: forget the connection and producer pools made for
    the old URL (only forget them: kombu registers pools globally per broker URL, and closing
    a shared Redis's pool would break every later publish, "Acquire on closed pool")."""
    app._pool = None
    app.amqp._producer_pool = None


def _forget_messages(broker) -> None:  # type: ignore[no-untyped-def]
    """Drop what is left for the test queue: waiting messages and the unacked ones a
    killed worker held (kombu keeps those in 'unacked'), so no task from one test runs
    while another test's teardown empties the tables."""
    import redis

    client = redis.Redis.from_url(broker["url"])
    client.delete(broker["queue"], "unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def real_worker(celery_broker):  # type: ignore[no-untyped-def]
    """A real Celery worker process for one test (with a transactional db): tasks go to
    it, not in-process. Stopped (warm shutdown) and its queue emptied afterwards."""
    from config.celery import app

    _forget_messages(celery_broker)
    # A short visibility timeout so that what a killed worker held is redelivered within
    # the test (production: 600 s); tasks are idempotent, so redelivery is harmless.
    worker = WorkerProcess(
        celery_broker["queue"],
        celery_broker["logs"],
        {"CELERY_VISIBILITY_TIMEOUT": "4", "CELERY_RESTORE_INTERVAL": "1", "CELERY_RESTORE_THROTTLE": "1"},
    ).start()
    app.conf.task_always_eager = False
    handle = {"node": worker.node, "queue": celery_broker["queue"], "log": worker.log, "worker": worker}
    yield handle
    app.conf.task_always_eager = True
    handle["worker"].stop()
    _forget_messages(celery_broker)
