"""The trial bundle at full size: import, export, re-import and export a generated trial.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bundle_round_trip.py [N]
N patients (default 1,000, the acceptance size of docs/bundle.md), in its own database
``trialdesk_bench_bundle`` (dropped and re-created each run). Prints the times and checks
that the second export equals the first. The test suite runs the same round trip on a
55-patient sample with the same variety (test_a_large_generated_trial_round_trips_on_postgresql).
"""

import json
import sys
import time

from common import database_prepare, django_setup

DB = "trialdesk_bench_bundle"


def main() -> None:
    patients = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    database_prepare(DB, reset=True)
    django_setup(DB)
    from exchange.bundle import bundle_export, bundle_import
    from exchange.generate import generate_trial

    bundle = generate_trial(patients, seed=11, code="GEN-BENCH")
    started = time.perf_counter()
    trial = bundle_import(bundle)
    imported = time.perf_counter()
    first = json.loads(json.dumps(bundle_export(trial)))
    exported = time.perf_counter()
    first["trial"]["code"] = "GEN-BENCH-RT"
    second = json.loads(json.dumps(bundle_export(bundle_import(first))))
    done = time.perf_counter()
    first["trial"]["code"] = second["trial"]["code"]
    print(
        f"{patients} patients: import {imported - started:.1f} s, export {exported - imported:.1f} s, "
        f"round trip total {done - started:.1f} s; second export equals the first: {second == first}"
    )


if __name__ == "__main__":
    main()
