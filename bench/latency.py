"""Benchmark 2 (issue 11): page latency at full scale vs a bare Django view, under gunicorn.

Usage (after bench/generate.py, and best after bench/recompute_all.py so the dashboard
shows stored results):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/latency.py

Pages of the largest generated trial: the investigator's trial dashboard, patient list and
patient page (the patient with the most AEs), the site coordinator's worklist, and the
bare view /bench/bare/ (same middleware, session saved, no clinical query) as the anchor.
1. SQL query counts, in-process (django.test.Client + CaptureQueriesContext), on the
   largest and on the smallest trial: equal counts mean the page's cost in queries is
   fixed, independent of the trial's size.
2. gunicorn (sync workers, DEBUG off) on a free port; each user signs in through the login
   form; each page is requested --requests times by --clients concurrent clients, after a
   warm-up. Prints p50 and p95 per page and p95 / p95(bare) (target <= 3).
"""

import argparse
import threading
import time

from common import DEFAULT_DB, database_prepare, django_setup, percentile
from server import Server, login, request


def _pages(trial, patient) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(name, role, path) of the measured pages; role names the signed-in user."""
    from django.urls import reverse

    return [
        ("bare view (anchor)", "investigator", "/bench/bare/"),
        ("trial dashboard", "investigator", reverse("trial_dashboard", kwargs={"trial_id": trial.pk})),
        ("patient list", "investigator", reverse("patient_list", kwargs={"trial_id": trial.pk})),
        ("patient page", "investigator", reverse("patient_detail", kwargs={"patient_id": patient.pk})),
        ("site worklist", "coordinator", reverse("site_worklist", kwargs={"trial_id": trial.pk})),
    ]


def _subjects():  # type: ignore[no-untyped-def]
    """The largest and the smallest generated trial, each with its users and busiest patient."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from patients.models import Patient
    from trial.models import Trial

    trials = Trial.objects.filter(code__startswith="BENCH-T").annotate(n=Count("patients")).order_by("-n", "code")
    if not trials:
        raise SystemExit("No generated trials: run bench/generate.py first.")
    out = []
    for trial in (trials.first(), trials.last()):
        slug = trial.code.lower().replace("-", "_")
        users = get_user_model().objects.in_bulk([f"{slug}_inv", f"{slug}_s01_coord"], field_name="username")
        patient = (
            Patient.objects.filter(trial=trial, site__code="S01")
            .annotate(n_ae=Count("adverse_events"))
            .order_by("-n_ae", "pk")
            .first()
        )
        out.append(
            {
                "trial": trial,
                "patients": trial.n,
                "patient": patient,
                "patient_aes": patient.n_ae,
                "users": {"investigator": users[f"{slug}_inv"], "coordinator": users[f"{slug}_s01_coord"]},
            }
        )
    return out


def query_counts(subject) -> list[int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for role, user in subject["users"].items():
        clients[role] = Client()
        clients[role].force_login(user)
    counts = []
    for name, role, path in _pages(subject["trial"], subject["patient"]):
        clients[role].get(path)  # warm-up (caches, content types)
        with CaptureQueriesContext(connection) as ctx:
            response = clients[role].get(path)
        assert response.status_code == 200, (name, path, response.status_code)
        counts.append(len(ctx))
    return counts


def load(port: int, cookie: str, path: str, n: int, clients: int) -> list[float]:
    """``n`` GETs of ``path`` by ``clients`` threads; the latencies in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [n]
    failures: list[int] = []

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            start = time.perf_counter()
            status, _ = request(port, "GET", path, headers={"Cookie": cookie})
            elapsed = time.perf_counter() - start
            with lock:
                (latencies if status == 200 else failures).append(elapsed if status == 200 else status)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, f"{path}: {len(failures)} non-200 answers, e.g. {failures[:3]}"
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    database_prepare(args.db)  # migrations added since the data were generated
    django_setup(args.db, settings="bench.settings")
    big, small = _subjects()
    counts_big, counts_small = query_counts(big), query_counts(small)
    pages = _pages(big["trial"], big["patient"])
    print(
        f"largest trial {big['trial'].code}: {big['patients']} patients, patient page {big['patient'].subject_id} "
        f"with {big['patient_aes']} AEs; smallest {small['trial'].code}: {small['patients']} patients"
    )
    results = []
    with Server(args.db, args.workers) as server:
        cookies = {role: login(server.port, user.username) for role, user in big["users"].items()}
        for name, role, path in pages:
            load(server.port, cookies[role], path, args.warmup, args.clients)
            latencies = load(server.port, cookies[role], path, args.requests, args.clients)
            results.append((name, percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000))
    bare_p95 = results[0][2]
    print(f"{args.requests} requests per page, {args.clients} concurrent clients, gunicorn {args.workers} sync workers")
    print(f"{'page':22s} {'queries big/small':>18s} {'p50 ms':>8s} {'p95 ms':>8s} {'p95/bare':>9s}")
    for (name, p50, p95), qb, qs in zip(results, counts_big, counts_small, strict=True):
        fixed = "" if qb == qs else "  (NOT fixed)"
        print(f"{name:22s} {qb:>8d} / {qs:<7d} {p50:8.1f} {p95:8.1f} {p95 / bare_p95:9.2f}{fixed}")
    print(f"target: p95 <= 3x bare ({3 * bare_p95:.1f} ms); run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
