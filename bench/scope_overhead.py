"""What the site wall costs: a coordinator's scoped patient list vs the same query unscoped.

Usage: .venv/bin/python bench/scope_overhead.py [N_PATIENTS]   (uses DATABASE_URL or SQLite)
Builds a throw-away trial inside a transaction that is rolled back, so no data remains.
Prints the median time of each query and their ratio, measured in the same run.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402

from patients import selectors  # noqa: E402
from patients.models import Patient  # noqa: E402
from trial import access  # noqa: E402
from trial.models import RoleGrant, Site, Trial  # noqa: E402


class Rollback(Exception):
    pass


def median_seconds(fn, repeats: int = 15) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(n: int) -> None:
    try:
        with transaction.atomic():
            trial = Trial.objects.create(code="BENCH-SCOPE", title="bench")
            sites = Site.objects.bulk_create([Site(trial=trial, code=f"B{i}", name=f"Bench {i}") for i in range(10)])
            Patient.objects.bulk_create(
                [
                    Patient(
                        trial=trial, site=sites[i % 10], subject_id=f"B{i % 10}-{i:06d}", sex="male", birth_year=1970
                    )
                    for i in range(n)
                ],
                batch_size=2000,
            )
            user = get_user_model().objects.create(username="bench-coordinator")
            RoleGrant.objects.create(user=user, trial=trial, role="coordinator", site=sites[0])

            def scoped() -> int:
                access.forget_grants(user)  # a new request reads the grants again: count that query
                return len(list(selectors.patient_list(user, trial)))

            def bare() -> int:
                qs = Patient.objects.select_related("trial", "site", "dose_level").filter(trial=trial, site=sites[0])
                return len(list(qs))

            assert scoped() == bare() == n // 10
            t_scoped, t_bare = median_seconds(scoped), median_seconds(bare)
            print(f"patients={n} rows_returned={n // 10} database={django.db.connection.vendor}")
            print(f"scoped list  median {t_scoped * 1000:8.2f} ms")
            print(f"bare query   median {t_bare * 1000:8.2f} ms")
            print(f"ratio scoped/bare = {t_scoped / t_bare:.2f}")
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
