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
``--one-trial``: every client is the coordinator of the largest trial (a token each), so
all AEs request the same trial's recomputation (one outbox row, locked by each write
until its COMMIT): how writers of one trial queue behind each other.
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


def _clients(n: int, one_trial: bool = False) -> list[dict]:  # type: ignore[type-arg]
    """One client per trial (the largest first): token, patients of site S01, terms.
    ``one_trial``: n clients (n tokens) of the largest trial's S01 coordinator."""
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
    if one_trial:
        trials = trials[:1] * n
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
        if one_trial:  # the clients start on different patients
            k = len(clients) * len(patients) // n
            patients = patients[k:] + patients[:k]
        clients.append({"trial": trial.code, "key": key, "patients": patients, "terms": terms})
    return clients


def _body(c: dict, i: int, term: int, onset: str) -> dict:  # type: ignore[type-arg]
    """The i-th AE of client ``c``: its i-th patient (round robin), the given term."""
    code, grade = c["terms"][term % len(c["terms"])]
    return {
        "patient": c["patients"][i % len(c["patients"])],
        "meddra_code": code,
        "grade": grade,
        "onset": onset,
        "attribution": "unlikely",
        "outcome": "recovering",
    }


def _statements(c: dict) -> tuple[int, int]:  # type: ignore[type-arg]
    """SQL statements of one bare request and of one AE creation (BEGIN, SAVEPOINT and
    COMMIT included), in this process through Django's test client; the second of two
    POSTs each, so the token's last-use write (once a minute) is not counted."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    onset = (datetime.datetime.now(tz=datetime.UTC).date() - datetime.timedelta(days=1)).isoformat()
    client = Client(HTTP_AUTHORIZATION=f"Token {c['key']}")
    counts = []
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        for path in ("/bench/bare/", "/api/v1/adverse-events/"):
            for i in range(2):
                with CaptureQueriesContext(connection) as queries:
                    answer = client.post(path, json.dumps(_body(c, i, i, onset)), content_type="application/json")
                assert answer.status_code in (200, 201), answer.content[:300]
            counts.append(len(queries))
    return counts[0], counts[1]


def _cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU time (user + system) so far of the gunicorn processes and of the PostgreSQL
    backends serving the bench database (other than this process's): what a request
    costs whatever else runs on the machine (the benchmark host is shared)."""
    from django.db import connection

    def cpu(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def parent(pid: str) -> int:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return -1

    workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and parent(p) == server_pid]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return sum(cpu(p) for p in [server_pid, *workers]), sum(cpu(p) for p in backends)


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
            body = _body(c, i, index * per_client + i, onset)
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
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (> 1: gthread workers)")
    parser.add_argument("--one-trial", action="store_true", help="every client writes to the largest trial")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="broker for the enqueued recomputations")
    args = parser.parse_args()
    started = time.perf_counter()
    database_prepare(args.db)  # migrations added since the data were generated
    env = {"REDIS_URL": args.redis, "CELERY_QUEUE": QUEUE}
    os.environ.update(env)  # _statements enqueues as the server does (not eager, in-process)
    django_setup(args.db, settings="bench.settings")
    import redis

    from safety.models import AdverseEvent

    clients = _clients(args.clients, args.one_trial)
    bare_sql, ae_sql = _statements(clients[-1])
    n = args.clients * args.per_client
    with Server(args.db, args.workers, extra_env=env, threads=args.threads) as server:
        _run(server.port, clients, 2, "/bench/bare/")  # warm-up: workers import, connect
        _run(server.port, clients, 1, "/api/v1/adverse-events/")  # and open their connections
        cpu0 = _cpu_seconds(server.process.pid)
        bare_s, bare_acks, bare_fail = _run(server.port, clients, args.per_client, "/bench/bare/")
        cpu1 = _cpu_seconds(server.process.pid)
        api_s, api_acks, api_fail = _run(server.port, clients, args.per_client, "/api/v1/adverse-events/")
        cpu2 = _cpu_seconds(server.process.pid)
    # The queued recomputations and kombu's bindings of the private queue: nothing is left behind.
    redis.Redis.from_url(args.redis).delete(QUEUE, f"_kombu.binding.{QUEUE}", f"_kombu.binding_permanent.{QUEUE}")
    assert not bare_fail, bare_fail[:3]
    bare_rate, api_rate = len(bare_acks) / bare_s, len(api_acks) / api_s
    ids = [ae_id for ae_id, _ in api_acks]
    in_db = AdverseEvent.objects.filter(pk__in=ids).count()
    audited = AdverseEvent.history.filter(id__in=ids, history_type="+").values("id").distinct().count()
    lat = [s * 1000 for _, s in api_acks]
    bare_lat = [s * 1000 for _, s in bare_acks]
    kind = f"gthread workers x {args.threads} threads" if args.threads > 1 else "sync workers"
    where = f"all on trial {clients[0]['trial']}" if args.one_trial else "one trial each"
    print(f"{args.clients} concurrent clients ({where}) x {args.per_client} POSTs, gunicorn {args.workers} {kind}")
    print(
        f"bare view:  {bare_rate:7.1f} requests/s  (p50 {percentile(bare_lat, 50):.0f} ms, "
        f"p95 {percentile(bare_lat, 95):.0f} ms)"
    )
    print(
        f"AE create:  {api_rate:7.1f} AEs/s       (p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms)"
        f"  {len(api_acks)} x 201, {len(api_fail)} other answers {sorted({s for s, _ in api_fail})}"
    )
    print(f"ratio AE create / bare: {api_rate / bare_rate:.2f}  (target >= 0.5)")
    print(f"SQL statements per request: bare view {bare_sql}, AE create {ae_sql}")
    print(
        "server CPU per request (gunicorn + PostgreSQL backends): bare view "
        f"{(cpu1[0] - cpu0[0]) * 1000 / n:.1f} + {(cpu1[1] - cpu0[1]) * 1000 / n:.1f} ms, AE create "
        f"{(cpu2[0] - cpu1[0]) * 1000 / n:.1f} + {(cpu2[1] - cpu1[1]) * 1000 / n:.1f} ms"
    )
    print(
        f"count check: {len(ids)} acknowledged, {in_db} in the database, {audited} with their history row: "
        + ("OK" if in_db == audited == len(ids) == len(set(ids)) else "MISMATCH")
    )
    if api_fail:
        print("first failure:", api_fail[0])
    print(f"run time {time.perf_counter() - started:.0f} s ({n} bare + {n} API requests)")


if __name__ == "__main__":
    main()
