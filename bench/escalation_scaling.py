"""How 3+3 recomputation grows with the number of patients (issue 6: no worse than n log n).

Usage: .venv/bin/python bench/escalation_scaling.py
Times the pure engine (analysis.escalation.escalation_state) on 100, 1,000 and 10,000
patients (a realistic history: cohorts of 3 climbing four levels, then a long
expansion at the MTD) and prints each time as a ratio to the 100-patient time, next
to the n and n log n ratios measured in the same run.
"""

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.escalation import DltStatus, EscalationDesign, PatientOutcome, escalation_state  # noqa: E402

DESIGN = EscalationDesign((0.3, 0.4, 0.5, 0.6))


def history(n: int) -> list[PatientOutcome]:
    patients = []
    for i in range(n):
        level = min(4, i // 3 + 1)
        status = DltStatus.DLT if (level == 4 and i % 17 == 0 and i > 40) else DltStatus.NO_DLT
        if i >= n - 3:
            status = DltStatus.PENDING
        patients.append(PatientOutcome(f"P{i}", level, i, status))
    return patients


def median_seconds(n: int, repeats: int = 7) -> float:
    patients = history(n)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        escalation_state(DESIGN, patients)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    sizes = [100, 1000, 10000]
    measured = {n: median_seconds(n) for n in sizes}
    base = measured[sizes[0]]
    print(f"{'patients':>9} {'median ms':>10} {'time ratio':>11} {'n ratio':>8} {'n log n ratio':>14}")
    for n in sizes:
        t = measured[n]
        nlogn = (n * math.log(n)) / (sizes[0] * math.log(sizes[0]))
        print(f"{n:>9} {t * 1000:>10.2f} {t / base:>11.1f} {n / sizes[0]:>8.0f} {nlogn:>14.1f}")


if __name__ == "__main__":
    main()
