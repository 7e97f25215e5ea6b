"""A patient's outcome dates and their contradictions (PROTOCOL section 8).

A pure rule module: no Django. The outcome-event entry refuses what this module finds
(patients.services), and the survival endpoints (analysis.endpoints, which computes the
times from the same :class:`PatientOutcome`) refuse to compute from it: one rule for the
form and for the analysis. It lives here, with the data entry, because the apps below
analysis never import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["PatientOutcome", "outcome_date_problems"]


@dataclass(frozen=True)
class PatientOutcome:
    """The dates the endpoints are computed from; ``None`` = not happened / unknown."""

    subject_id: str
    hct_date: date
    first_dose_date: date | None
    relapse_date: date | None
    death_date: date | None
    last_known_alive: date | None


def outcome_date_problems(p: PatientOutcome) -> tuple[str, ...]:
    """Contradictions between a patient's outcome dates, as messages for a form."""
    problems: list[str] = []
    named = {
        "first dose": p.first_dose_date,
        "relapse": p.relapse_date,
        "death": p.death_date,
        "last known alive": p.last_known_alive,
    }
    for name, value in named.items():
        if value is not None and value < p.hct_date:
            problems.append(f"{name} date {value} is before the HCT date {p.hct_date}")
    if p.death_date is not None:
        if p.relapse_date is not None and p.relapse_date > p.death_date:
            problems.append(f"relapse {p.relapse_date} is after death {p.death_date}")
        if p.last_known_alive is not None and p.last_known_alive > p.death_date:
            problems.append(f"last known alive {p.last_known_alive} is after death {p.death_date}")
    return tuple(problems)
