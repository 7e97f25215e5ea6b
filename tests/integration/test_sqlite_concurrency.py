"""The embedded default (`make demo`: SQLite, in-process tasks) under real concurrency.

A `runserver` on a file SQLite database, loaded with the demo trial, takes parallel API
writes from several threads at once: edits of one adverse event from the same version,
edits of different events, registrations and enrolments of new patients. Every answer is
a 2xx, a 409 (edit conflict) or a 400 (a rule refused it), never a 500 "database is
locked" (issue 16 item 9: WAL, a busy timeout and BEGIN IMMEDIATE, config/settings.py).
The server runs in its own process, as `make demo` does, not inside the test database.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {200, 201, 400, 409}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(
                method,
                path,
                body=None if body is None else json.dumps(body),
                headers={"Authorization": f"Token {self.key}", "Content-Type": "application/json", **(headers or {})},
            )
            response = conn.getresponse()
            raw = response.read()
            return response.status, dict(response.getheaders()), raw
        finally:
            conn.close()


def _all_at_once(calls: list) -> list[tuple[int, bytes]]:  # type: ignore[type-arg]
    """Run every call in its own thread, released together; (status, body) of each."""
    start = threading.Barrier(len(calls))
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(calls)

    def run(i: int) -> None:
        start.wait(timeout=30)
        status, _, raw = calls[i]()
        answers[i] = (status, raw)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return answers


def _no_server_errors(answers: list[tuple[int, bytes]]) -> None:
    bad = [(status, raw[:200]) for status, raw in answers if status not in ALLOWED]
    assert not bad, f"{len(bad)} of {len(answers)} answers were not 200/201/400/409: {bad[:3]}"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    """`make demo` in miniature: migrate a file SQLite database, load the demo, runserver."""
    folder = tmp_path_factory.mktemp("sqlite-demo")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}},
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]

    def run(*args: str) -> str:
        done = subprocess.run([*manage, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("migrate", "--noinput", "-v0")
    run("load_demo")
    keys = {}
    for username in ("coordinator", "investigator"):
        out = run("create_api_token", username, "--name", "concurrency test")
        keys[username] = out.split()[0]
    port = _free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                status, _, _ = Api(port, keys["coordinator"]).call("GET", "/healthz")
                if status in (200, 503):
                    break
            except OSError:
                pass
            assert server.poll() is None and time.time() < deadline, (folder / "server.log").read_text()[-2000:]
            time.sleep(0.3)
        yield {name: Api(port, key) for name, key in keys.items()}, folder / "server.log"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _demo_trial(api: Api) -> dict[str, Any]:
    status, _, raw = api.call("GET", "/api/v1/trials/")
    assert status == 200
    return next(t for t in json.loads(raw)["results"] if t["code"] == "INO-POST-HCT")


def test_parallel_edits_of_one_adverse_event_give_one_200_and_409s(demo_server) -> None:  # type: ignore[no-untyped-def]
    apis, log = demo_server
    coordinator = apis["coordinator"]
    status, _, raw = coordinator.call("GET", "/api/v1/adverse-events/?page_size=200")
    assert status == 200, raw[:300]
    events = json.loads(raw)["results"]
    assert len(events) >= 10
    for round_, event in enumerate(events[:10]):
        url = f"/api/v1/adverse-events/{event['id']}/"
        status, headers, _ = coordinator.call("GET", url)
        assert status == 200
        etag = headers["ETag"]
        answers = _all_at_once(
            [
                partial(
                    coordinator.call,
                    "PATCH",
                    url,
                    {"reason_for_change": f"round {round_} edit {n}", "expected": bool(n % 2)},
                    {"If-Match": etag},
                )
                for n in range(10)
            ]
        )
        _no_server_errors(answers)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [409] * 9, (round_, statuses)
    assert "database is locked" not in log.read_text()


def test_parallel_edits_of_different_adverse_events_all_succeed(demo_server) -> None:  # type: ignore[no-untyped-def]
    coordinator = demo_server[0]["coordinator"]
    status, _, raw = coordinator.call("GET", "/api/v1/adverse-events/?page_size=200")
    events = json.loads(raw)["results"][10:25]
    answers = _all_at_once(
        [
            partial(
                coordinator.call,
                "PATCH",
                f"/api/v1/adverse-events/{e['id']}/",
                {"reason_for_change": "parallel edit", "version": e["version"], "expected": not e["expected"]},
            )
            for e in events
        ]
    )
    _no_server_errors(answers)
    assert [status for status, _ in answers] == [200] * len(events)


def test_parallel_registrations_and_enrolments(demo_server) -> None:  # type: ignore[no-untyped-def]
    apis, log = demo_server
    coordinator, investigator = apis["coordinator"], apis["investigator"]
    trial = _demo_trial(coordinator)
    today = date.today()
    # 18 registrations at once, two of them reusing a subject ID (one of each pair is a 400).
    subject_ids = [f"UHC-9{n:02d}" for n in range(16)] + ["UHC-900", "UHC-901"]
    answers = _all_at_once(
        [
            partial(
                coordinator.call,
                "POST",
                "/api/v1/patients/",
                {
                    "trial": trial["code"],
                    "site": "UHC",
                    "subject_id": s,
                    "sex": "female",
                    "birth_year": 1970,
                    "diagnosis": "b_all",
                    "cd22_positive": True,
                    "ph_positive": False,
                },
            )
            for s in subject_ids
        ]
    )
    _no_server_errors(answers)
    created = [json.loads(raw) for status, raw in answers if status == 201]
    assert len(created) == 16 and sorted(status for status, _ in answers).count(400) == 2
    # Each made eligible, one after another; then all enrolled at once by the investigator
    # at a chosen level (a recorded deviation).
    version = max(v["version"] for v in trial["protocol_versions"])
    for patient in created:
        base = f"/api/v1/patients/{patient['id']}"
        for path, body in (
            ("transplant/", {"date": str(today - timedelta(days=60)), "disease_status": "cr2", "conditioning": "ric",
                             "mrd_before": True, "mrd_after": False, "cr_at_day30": True}),
            ("consents/", {"protocol_version": version, "date": str(today - timedelta(days=5))}),
            ("screenings/", {"date": str(today - timedelta(days=2)), "lab_date": str(today - timedelta(days=3)),
                             "platelets_10e9_l": "120", "anc_10e9_l": "2.0", "agvhd_grade": 0,
                             "liver_gvhd": False, "sos_history": False}),
        ):  # fmt: skip
            status, _, raw = coordinator.call("POST", f"{base}/{path}", body)
            assert status == 201, (path, raw[:300])
        _, headers, _ = coordinator.call("GET", f"{base}/")
        patient["etag"] = headers["ETag"]
    answers = _all_at_once(
        [
            partial(
                investigator.call,
                "POST",
                f"/api/v1/patients/{p['id']}/enrol/",
                {"enrolled_on": str(today), "dose_level": 4, "deviation_reason": "concurrency test"},
                {"If-Match": p["etag"]},
            )
            for p in created
        ]
    )
    _no_server_errors(answers)
    # An enrolment commits, then the 3+3 state is recomputed; an enrolment that lands in
    # between is told to try again (a 400 naming the rule), never a 500.
    enrolled = [json.loads(raw)["id"] for status, raw in answers if status == 200]
    assert enrolled, [raw[:200] for _, raw in answers]
    assert all(b"being recomputed" in raw for status, raw in answers if status == 400)
    for patient in created:
        _, _, raw = coordinator.call("GET", f"/api/v1/patients/{patient['id']}/")
        assert (json.loads(raw)["enrolled_on"] is not None) == (patient["id"] in enrolled)
    assert not re.search("database is locked", log.read_text())


def test_a_database_lock_that_still_escapes_is_a_503_json_answer(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past the busy timeout SQLite still says "database is locked": the API answers 503
    with Retry-After in its error format, not a 500 page."""
    from django.db import OperationalError
    from django.test import Client

    from core.tokens import token_issue
    from safety import services
    from tests.factories import AdverseEventFactory, PatientFactory

    ae = AdverseEventFactory(patient=PatientFactory(site=world["site_a"], trial=world["trial"]), grade=2)

    def locked(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "ae_update", locked)
    _, key = token_issue(user=world["coordinator_a"], name="t")
    answer = Client(HTTP_AUTHORIZATION=f"Token {key}").patch(
        f"/api/v1/adverse-events/{ae.pk}/",
        {"grade": 3, "reason_for_change": "worse"},
        content_type="application/json",
        HTTP_IF_MATCH='"1"',
    )
    assert answer.status_code == 503 and answer["Retry-After"] == "2"
    assert answer.json() == {"detail": "The database is busy with other changes; try again in a moment.", "errors": {}}


def test_a_database_lock_that_escapes_a_browser_form_is_a_503_busy_page(world, login, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same lock under a browser form (its service raises it): a 503 page that says
    the database is busy and to try again, with Retry-After, not the 500 page; nothing written."""
    from django.db import OperationalError

    from safety import services
    from safety.models import AdverseEvent
    from tests.factories import PatientFactory
    from tests.integration.test_safety_views import form_body

    patient = PatientFactory(site=world["site_a"], trial=world["trial"])

    def locked(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "ae_record", locked)
    client = login(world["coordinator_a"])
    answer = client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body())
    assert answer.status_code == 503 and answer["Retry-After"] == "2"
    page = answer.content.decode()
    assert "<h1>Busy: please try again</h1>" in page
    assert "The database is busy with other changes; try again in a moment." in page
    assert "Content-Security-Policy" in answer and "no-store" in answer["Cache-Control"]
    assert not AdverseEvent.objects.exists()


def test_other_database_errors_in_a_form_are_not_dressed_as_busy(world, login, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.db import OperationalError

    from safety import services
    from tests.factories import PatientFactory
    from tests.integration.test_safety_views import form_body

    patient = PatientFactory(site=world["site_a"], trial=world["trial"])

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(services, "ae_record", broken)
    client = login(world["coordinator_a"])
    client.raise_request_exception = False
    assert client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body()).status_code == 500


def test_a_database_lock_outside_a_view_is_a_503_busy_page(world, login, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    """Raised after the view, by the session save of SessionMiddleware (SQLite, every
    page marks activity): the 500 handler recognises it and answers the same 503 page."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import OperationalError

    settings.DEBUG = False
    client = login(world["coordinator_a"])
    client.raise_request_exception = False

    def locked(self, must_create=False):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(SessionStore, "save", locked)
    answer = client.get("/")
    assert answer.status_code == 503 and answer["Retry-After"] == "2"
    assert "<h1>Busy: please try again</h1>" in answer.content.decode()
