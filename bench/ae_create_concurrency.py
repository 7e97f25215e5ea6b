"""Benchmark 3 (issue 11): AE creation through the API by 32 concurrent clients vs the bare view.

Usage (after bench/generate.py; Redis running):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/ae_create_concurrency.py

Each client is the site coordinator of one of the largest generated trials, with an API
token (``Authorization: Token ...``), and POSTs ``/api/v1/adverse-events/`` for patients
of its site (a valid CTCAE term and grade, onset yesterday). The anchor: the same clients
POST the same body to the bare view /bench/bare/ (same middleware, no work). gunicorn
(sync workers, DEBUG off) runs with a real broker, as in production: each AE commits its
recomputation request (the outbox row) and enqueues the task on commit; the messages go
to a private queue on --redis (no worker consumes it; it is deleted at the end).
Prints both throughputs and their ratio (target >= 0.5), then checks that every
201-acknowledged AE id is in the database with its "first entry" history row.
The AEs stay in the bench database (re-run bench/generate.py --reset for a clean one).
"""

import argparse
import datetime
import json
import os
import threading
import time

from common import DEFAULT_DB, database_prepare, django_setup, percentile
from server import Server, request

QUEUE = "trialdesk_bench_ae"


def _clients(n: int) -> list[dict]:  # type: ignore[type-arg]
    """One client per trial (the largest first): token, patients of site S01, terms."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from core.tokens import token_issue
    from patients.models import Patient
    from safety.models import CtcaeTerm
    from trial.models import Trial

    terms = [
        (t.meddra_code, g)
        for t in CtcaeTerm.objects.order_by("id")
        if "specify" not in t.term.lower()
        for g in t.grades[:1]
        if g <= 2
    ][:200]
    trials = list(Trial.objects.filter(code__startswith="BENCH-T").annotate(n=Count("patients")).order_by("-n")[:n])
    if len(trials) < n:
        raise SystemExit(f"Need {n} generated trials, found {len(trials)}: run bench/generate.py first.")
    clients = []
    for trial in trials:
        slug = trial.code.lower().replace("-", "_")
        user = get_user_model().objects.get(username=f"{slug}_s01_coord")
        _, key = token_issue(user=user, name="bench AE concurrency")
        patients = list(
            Patient.objects.filter(trial=trial, site__code="S01")
            .exclude(events__kind="death")
            .values_list("pk", flat=True)
        )
        clients.append({"trial": trial.code, "key": key, "patients": patients, "terms": terms})
    return clients


def _run(port: int, clients: list[dict], per_client: int, path: str) -> tuple[float, list, list]:  # type: ignore[type-arg]
    """Every client POSTs ``per_client`` AEs to ``path`` at once; (seconds, acks, failures)."""
    onset = (datetime.datetime.now(tz=datetime.UTC).date() - datetime.timedelta(days=1)).isoformat()
    acks: list[tuple[int, float]] = []  # (AE id or 0 for the bare view, latency)
    failures: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients) + 1)

    def client(c: dict, index: int) -> None:  # type: ignore[type-arg]
        headers = {"Authorization": f"Token {c['key']}", "Content-Type": "application/json"}
        barrier.wait()
        for i in range(per_client):
            code, grade = c["terms"][(index * per_client + i) % len(c["terms"])]
            body = {
                "patient": c["patients"][i % len(c["patients"])],
                "meddra_code": code,
                "grade": grade,
                "onset": onset,
                "attribution": "unlikely",
                "outcome": "recovering",
            }
            start = time.perf_counter()
            status, answer = request(port, "POST", path, json.dumps(body).encode(), headers)
            elapsed = time.perf_counter() - start
            with lock:
                if status == 201:
                    acks.append((json.loads(answer)["id"], elapsed))
                elif status == 200 and path.startswith("/bench/"):
                    acks.append((0, elapsed))
                else:
                    failures.append((status, answer[:300]))

    threads = [threading.Thread(target=client, args=(c, i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start, acks, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=50, help="POSTs per client in each phase")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="broker for the enqueued recomputations")
    args = parser.parse_args()
    started = time.perf_counter()
    database_prepare(args.db)  # migrations added since the data were generated
    django_setup(args.db, settings="bench.settings")
    import redis

    from safety.models import AdverseEvent

    clients = _clients(args.clients)
    env = {"REDIS_URL": args.redis, "CELERY_QUEUE": QUEUE}
    os.environ.update(env)  # this process enqueues nothing; set for symmetry
    n = args.clients * args.per_client
    with Server(args.db, args.workers, extra_env=env) as server:
        _run(server.port, clients, 2, "/bench/bare/")  # warm-up: workers import, connect
        bare_s, bare_acks, bare_fail = _run(server.port, clients, args.per_client, "/bench/bare/")
        api_s, api_acks, api_fail = _run(server.port, clients, args.per_client, "/api/v1/adverse-events/")
    # The queued recomputations and kombu's bindings of the private queue: nothing is left behind.
    redis.Redis.from_url(args.redis).delete(QUEUE, f"_kombu.binding.{QUEUE}", f"_kombu.binding_permanent.{QUEUE}")
    assert not bare_fail, bare_fail[:3]
    bare_rate, api_rate = len(bare_acks) / bare_s, len(api_acks) / api_s
    ids = [ae_id for ae_id, _ in api_acks]
    in_db = AdverseEvent.objects.filter(pk__in=ids).count()
    audited = AdverseEvent.history.filter(id__in=ids, history_type="+").values("id").distinct().count()
    lat = [s * 1000 for _, s in api_acks]
    bare_lat = [s * 1000 for _, s in bare_acks]
    print(f"{args.clients} concurrent clients x {args.per_client} POSTs, gunicorn {args.workers} sync workers")
    print(
        f"bare view:  {bare_rate:7.1f} requests/s  (p50 {percentile(bare_lat, 50):.0f} ms, "
        f"p95 {percentile(bare_lat, 95):.0f} ms)"
    )
    print(
        f"AE create:  {api_rate:7.1f} AEs/s       (p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms)"
        f"  {len(api_acks)} x 201, {len(api_fail)} other answers {sorted({s for s, _ in api_fail})}"
    )
    print(f"ratio AE create / bare: {api_rate / bare_rate:.2f}  (target >= 0.5)")
    print(
        f"count check: {len(ids)} acknowledged, {in_db} in the database, {audited} with their history row: "
        + ("OK" if in_db == audited == len(ids) == len(set(ids)) else "MISMATCH")
    )
    if api_fail:
        print("first failure:", api_fail[0])
    print(f"run time {time.perf_counter() - started:.0f} s ({n} bare + {n} API requests)")


if __name__ == "__main__":
    main()
