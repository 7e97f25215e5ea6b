"""A gunicorn server on the bench database, and a tiny HTTP client for the load scripts."""

import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from common import BENCH_PASSWORD, ROOT, bench_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """gunicorn serving bench.settings (project + /bench/bare/) with DEBUG off and persistent
    database connections, as production runs (DB_CONN_MAX_AGE=60). Sync workers unless
    ``threads`` > 1 (gthread workers, that many threads each, one connection per thread)."""

    def __init__(self, db: str, workers: int, extra_env: dict[str, str] | None = None, threads: int = 1) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "DATABASE_URL": bench_url(db),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "DB_CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        if "REDIS_URL" not in (extra_env or {}):
            env.pop("REDIS_URL", None)  # reads only: no broker needed
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
            + ["--timeout", "120", "--backlog", "2048"]
            + (["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = request(self.port, "GET", "/accounts/login/")
                if status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        sys.exit(f"gunicorn did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        self.stop()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    """One request on a fresh connection (gunicorn's sync workers close after each); (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def login(port: int, username: str) -> str:
    """Sign in through the real login form (CSRF token and all); the session cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/accounts/login/").read().decode()  # noqa: S310 (our own http server)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    form = urllib.parse.urlencode(
        {"username": username, "password": BENCH_PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    opener.open(urllib.request.Request(f"{base}/accounts/login/", data=form))  # noqa: S310 (our own http server)
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, f"login as {username} failed"
    return f"sessionid={cookies['sessionid']}"
