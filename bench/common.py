"""Shared helpers of the issue 11 benchmarks: the bench database, timing, percentiles.

Every benchmark runs against its own PostgreSQL database (default ``trialdesk_bench``)
on the server ``DATABASE_URL`` names, so the project's own and the test databases are
never touched. ``bench/generate.py`` fills it; the other scripts read it.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "trialdesk_bench"
BENCH_PASSWORD = "bench-password-not-secret-42"  # noqa: S105 (every generated user's password; bench data only)


def bench_url(name: str) -> str:
    """DATABASE_URL with its database name replaced by ``name`` (refuses a non-PostgreSQL URL)."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres).")
    if "bench" not in name:
        sys.exit(f"Refusing database {name!r}: the benchmarks only write to a database whose name contains 'bench'.")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin():  # type: ignore[no-untyped-def]
    import psycopg2

    parts = urlsplit(bench_url(DEFAULT_DB))
    conn = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password, dbname="postgres"
    )
    conn.autocommit = True
    return conn


def database_prepare(name: str, *, reset: bool = False) -> None:
    """Create (or, with ``reset``, drop and re-create) the bench database and migrate it.

    Dropping is the only way to empty it: audit tables refuse DELETE (core.audit_guard).
    """
    url = bench_url(name)
    conn = _admin()
    with conn.cursor() as cur:
        if reset:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=env, cwd=ROOT)


def django_setup(name: str, settings: str = "config.settings") -> None:
    """Point Django at the bench database and set it up (call before importing models)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = bench_url(name)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django

    django.setup()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
