"""`docker compose up` serves a working app (issue 16 item 22).

Docker is not needed: the test runs the commands the Dockerfile and docker-compose.yml
run, read from those files, with the environment compose gives the containers:
collectstatic as the image build runs it, the one-shot setup service (migrate, first
administrator, demo data; twice, as every `up` does), the web service's gunicorn, and the
web healthcheck over plain HTTP. Pages must render with the production (manifest)
static storage, and /healthz must answer 200 over plain HTTP even with the HTTPS redirect on.
SQLite stands in for the postgres service and no broker for redis (healthz says "degraded").
"""

import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PASSWORD = "first-admin-password-for-the-deploy-test-7"  # noqa: S105 (a throw-away test database)


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, as `docker compose` expands them."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if given.get(name):
            return given[name]
        assert op != ":?", f"compose would refuse to start: {rest}"
        return rest or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _container_env(service: str, given: dict[str, str], tmp_path: Path) -> dict[str, str]:
    compose_env = {k: _interpolate(str(v), given) for k, v in SERVICES[service]["environment"].items()}
    assert compose_env["DATABASE_URL"].startswith("postgres://") and compose_env["REDIS_URL"].startswith("redis://")
    compose_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"  # the postgres service
    del compose_env["REDIS_URL"]  # no redis service here: tasks run in-process
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    return {
        **base,
        **compose_env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the image's python
        "STATIC_ROOT": str(tmp_path / "static"),  # the image's /app/staticfiles
    }


def _dockerfile_collectstatic() -> str:
    """The Dockerfile's RUN line that collects the static files (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line[4:] for line in text.splitlines() if line.startswith("RUN ") and "collectstatic" in line]
    assert len(runs) == 1
    return runs[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """Plain-HTTP requests with a cookie jar of its own (name=value only)."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": "localhost", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = "http://localhost/accounts/login/"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        conn.close()
        return response.status, dict(response.getheaders()), content.decode("utf-8", "replace")

    def sign_in(self, username: str, password: str) -> None:
        status, _, page = self.request("GET", "/accounts/login/")
        assert status == 200, page[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token
        status, headers, page = self.request(
            "POST", "/accounts/login/",
            {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password},
        )  # fmt: skip
        assert status == 302, page[:500]


def test_web_worker_and_beat_start_after_the_one_shot_setup() -> None:
    for service in ("web", "worker", "beat"):
        assert SERVICES[service]["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
        assert SERVICES[service]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    setup = SERVICES["setup"]
    assert setup["restart"] == "no" and setup["command"] == "sh docker/setup.sh"
    assert {"DEMO", "DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD"} <= set(setup["environment"])
    assert "migrate" not in SERVICES["web"]["command"]  # one migrator, before anyone reads the tables


def test_the_image_leaves_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".env", "db.sqlite3", "staticfiles"} <= ignored


def test_compose_commands_serve_a_working_app_over_plain_http(tmp_path) -> None:  # type: ignore[no-untyped-def]
    given = {"SECRET_KEY": "k" * 20 + "-deploy-test-secret-key-not-used-anywhere-else-0123456789"}
    build_env = _container_env("web", given, tmp_path)
    built = subprocess.run(
        ["sh", "-c", _dockerfile_collectstatic()], cwd=ROOT, env=build_env, capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert (tmp_path / "static" / "staticfiles.json").exists()  # the manifest production pages read

    setup_env = _container_env(
        "setup",
        {**given, "DEMO": "1", "DJANGO_SUPERUSER_USERNAME": "firstadmin", "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
         "DJANGO_SUPERUSER_EMAIL": "admin@example.org"},
        tmp_path,
    )  # fmt: skip
    assert setup_env["DJANGO_ENV"] == "production"
    runs = [
        subprocess.run(
            shlex.split(SERVICES["setup"]["command"]),
            cwd=ROOT,
            env=setup_env,
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        for _ in range(2)  # every `docker compose up` runs it again
    ]
    for run in runs:
        assert run.returncode == 0, run.stdout[-1000:] + run.stderr[-2000:]
    assert "exists already" in runs[1].stdout
    demo_password = re.search(r"^\s+investigator\s+(\S+)$", runs[0].stdout, re.M)
    assert demo_password, runs[0].stdout

    port = _free_port()
    web = shlex.split(SERVICES["web"]["command"].replace("0.0.0.0:8000", f"127.0.0.1:{port}"))
    web[web.index("--workers") + 1] = "1"
    web_env = _container_env("web", given, tmp_path)
    log = open(tmp_path / "web.log", "w")  # noqa: SIM115
    server = subprocess.Popen(web, cwd=ROOT, env=web_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        healthcheck = [
            part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in SERVICES["web"]["healthcheck"]["test"][1:]
        ]
        healthcheck[0] = sys.executable
        deadline = time.time() + 90
        while subprocess.run(healthcheck, capture_output=True, timeout=60).returncode != 0:
            assert server.poll() is None and time.time() < deadline, (tmp_path / "web.log").read_text()[-3000:]
            time.sleep(0.5)
        browser = Browser(port)
        status, _, body = browser.request("GET", "/healthz")
        assert status == 200 and json.loads(body)["database"]["ok"] is True

        status, _, page = browser.request("GET", "/accounts/login/")
        assert status == 200, page[:500]
        hashed = re.findall(r'/static/([^"]+\.[0-9a-f]{12}\.(?:css|js))"', page)
        assert hashed, "the login page does not use the manifest's hashed static names"
        for name in hashed:
            assert browser.request("GET", f"/static/{name}")[0] == 200

        browser.sign_in("investigator", demo_password.group(1))
        status, _, home = browser.request("GET", "/")
        assert status == 200, home[:500]
        dashboard = re.search(r'href="(/trials/\d+/dashboard/)"', home)
        assert dashboard, home[:2000]
        status, _, page = browser.request("GET", dashboard.group(1))
        assert status == 200 and "INO-POST-HCT" in page, page[:500]

        admin = Browser(port)
        admin.sign_in("firstadmin", PASSWORD)
        assert admin.request("GET", "/admin/")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_behind_https_the_healthcheck_is_not_redirected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The production defaults (SECURE_SSL_REDIRECT on): settings built in a fresh process."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT"}},
        "DJANGO_ENV": "production",
        "SECRET_KEY": "p" * 60,
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    asks = [
        ("/healthz", {}),  # the container healthcheck: plain HTTP inside the network
        ("/accounts/login/", {}),  # a person on plain HTTP is sent to HTTPS
        ("/accounts/login/", {"HTTP_X_FORWARDED_PROTO": "https"}),  # behind the HTTPS proxy
    ]
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "from django.test import Client, override_settings\n"
        "call_command('migrate', verbosity=0)\n"
        # No collectstatic in this test: the page's static names need no manifest here.
        "plain = {**settings.STORAGES, 'staticfiles': {'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}}\n"
        "with override_settings(STORAGES=plain):\n"
        f"    for path, headers in {asks!r}:\n"
        "        print(Client().get(path, **headers).status_code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["200", "301", "200"]
