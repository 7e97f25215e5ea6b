"""Time-to-event endpoints from a patient's outcome dates (PROTOCOL section 8).

A pure rule module: no Django; a frozen :class:`PatientOutcome` in, a
``(time_days, status)`` pair out, ready for :mod:`analysis.survival`.

Endpoints and their rules:

* **OS** -- origin allo-HCT (default) or first dose (PROTOCOL 8: "param: origin");
  event = death (status 1); otherwise censored (status 0) at the censoring date.
* **PFS** -- origin allo-HCT (default, PROTOCOL 8) or first dose; event = relapse or
  death, whichever comes first (status 1). A relapse and a death on the same day are
  one PFS event on that day.
* **NRM** -- origin first dose (PROTOCOL 8); status 1 = death without prior relapse,
  status 2 = relapse (competing risk), 0 = censored. A relapse on the day of death
  counts as relapse then death, so it is the competing event 2 on that day. Analyse
  with :func:`analysis.survival.cumulative_incidence` (cause 1), not 1 - KM.

Shared rules:

* ``time_days`` = (end date - origin date) in whole days; 0 is allowed.
* Censoring date = the latest date the patient is known alive: the latest of HCT,
  first dose, relapse and last-known-alive dates (each proves the patient alive on
  that day). PROTOCOL 8 says "censored at last follow-up"; with no separate
  last-assessment date, this is it.
* ``as_of`` (optional data cutoff): the analysis as known on that day. Events dated
  after it are ignored, and follow-up is censored at ``as_of`` at the latest (a date
  recorded after the cutoff still proves the patient alive at the cutoff). ``None``
  uses everything recorded.
* Exclusions (the functions return ``None``): a first-dose-origin endpoint (NRM,
  and OS/PFS with ``origin="first_dose"``) for a patient with no first dose, or
  whose first dose is after ``as_of``; any endpoint whose origin is after ``as_of``.
* Inconsistent dates (any date before HCT, first dose before HCT, relapse or death
  before the endpoint's origin, relapse after death, last known alive after death)
  raise ``ValueError``: they are data errors to fix at entry, and a survival
  estimate must not silently absorb them. :func:`outcome_date_problems` lists them
  for a form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

# The outcome dates and their contradictions are the data entry's rule too (the apps below
# analysis never import it): defined there, one rule for the form and the analysis.
from patients.outcome_dates import PatientOutcome, outcome_date_problems

__all__ = [
    "CENSORED",
    "COMPETING",
    "EVENT",
    "Endpoint",
    "EndpointData",
    "EndpointTime",
    "Origin",
    "PatientOutcome",
    "endpoint_data",
    "nrm_time",
    "os_time",
    "outcome_date_problems",
    "pfs_time",
]

Origin = Literal["hct", "first_dose"]
Endpoint = Literal["os", "pfs", "nrm"]

CENSORED = 0
EVENT = 1
# NRM only: relapse, the competing risk (PROTOCOL 8).
COMPETING = 2


@dataclass(frozen=True)
class EndpointTime:
    """Follow-up in days from the origin and the status code (module docstring)."""

    time_days: int
    status: int


@dataclass(frozen=True)
class EndpointData:
    """One endpoint for a set of patients, in input order, for analysis.survival.

    ``excluded`` lists the subject ids left out (no first dose for a
    first-dose-origin endpoint, or origin after the cutoff).
    """

    endpoint: Endpoint
    origin: Origin
    subject_ids: tuple[str, ...]
    times_days: tuple[int, ...]
    statuses: tuple[int, ...]
    excluded: tuple[str, ...]


def _origin_date(p: PatientOutcome, origin: Origin, as_of: date | None) -> date | None:
    start = p.hct_date if origin == "hct" else p.first_dose_date
    if start is None or (as_of is not None and start > as_of):
        return None
    return start


def _checked(p: PatientOutcome, start: date, events: Iterable[date | None]) -> None:
    problems = list(outcome_date_problems(p))
    for value in events:
        if value is not None and value < start:
            problems.append(f"event date {value} is before the origin {start}")
    if problems:
        raise ValueError(f"{p.subject_id}: " + "; ".join(problems))


def _known(value: date | None, as_of: date | None) -> date | None:
    """The date if it is known by the cutoff, else None (not happened yet)."""
    if value is None or (as_of is not None and value > as_of):
        return None
    return value


def _censoring_date(p: PatientOutcome, as_of: date | None) -> date:
    """Latest date known alive, capped at the cutoff. Only used when no event is
    known by ``as_of``, so a death date here is after the cutoff and proves the
    patient alive at it, like any other later date."""
    recorded = [
        d
        for d in (
            p.hct_date,
            p.first_dose_date,
            p.relapse_date,
            p.last_known_alive,
            p.death_date,
        )
        if d is not None
    ]
    latest = max(recorded)
    return min(latest, as_of) if as_of is not None else latest


def _days(start: date, end: date) -> int:
    return (end - start).days


def os_time(p: PatientOutcome, origin: Origin = "hct", as_of: date | None = None) -> EndpointTime | None:
    """Overall survival: origin to death (1), else censored (0) at the censoring
    date. ``None`` when excluded (module docstring)."""
    start = _origin_date(p, origin, as_of)
    if start is None:
        return None
    _checked(p, start, [p.death_date])
    death = _known(p.death_date, as_of)
    if death is not None:
        return EndpointTime(_days(start, death), EVENT)
    return EndpointTime(_days(start, _censoring_date(p, as_of)), CENSORED)


def pfs_time(p: PatientOutcome, origin: Origin = "hct", as_of: date | None = None) -> EndpointTime | None:
    """Progression-free survival: origin to the first of relapse or death (1), else
    censored (0). Same-day relapse and death are one event. ``None`` when excluded.
    """
    start = _origin_date(p, origin, as_of)
    if start is None:
        return None
    _checked(p, start, [p.relapse_date, p.death_date])
    known = (_known(p.relapse_date, as_of), _known(p.death_date, as_of))
    events = [d for d in known if d is not None]
    if events:
        return EndpointTime(_days(start, min(events)), EVENT)
    return EndpointTime(_days(start, _censoring_date(p, as_of)), CENSORED)


def nrm_time(p: PatientOutcome, as_of: date | None = None) -> EndpointTime | None:
    """Non-relapse mortality from first dose: death without prior relapse (1),
    relapse as the competing event (2, also when on the day of death), else
    censored (0). ``None`` for a patient with no first dose (by ``as_of``)."""
    start = _origin_date(p, "first_dose", as_of)
    if start is None:
        return None
    _checked(p, start, [p.relapse_date, p.death_date])
    relapse = _known(p.relapse_date, as_of)
    death = _known(p.death_date, as_of)
    # Relapse is never after death (checked), so a known relapse comes first or on
    # the same day: either way it ends NRM follow-up as the competing event.
    if relapse is not None:
        return EndpointTime(_days(start, relapse), COMPETING)
    if death is not None:
        return EndpointTime(_days(start, death), EVENT)
    return EndpointTime(_days(start, _censoring_date(p, as_of)), CENSORED)


def endpoint_data(
    patients: Iterable[PatientOutcome],
    endpoint: Endpoint,
    origin: Origin = "hct",
    as_of: date | None = None,
) -> EndpointData:
    """One endpoint for many patients. ``origin`` applies to OS and PFS; NRM always
    starts at first dose (PROTOCOL 8) and is reported with ``origin="first_dose"``.
    Raises ``ValueError`` on the first patient with inconsistent dates."""
    if endpoint == "nrm":
        origin = "first_dose"
    ids: list[str] = []
    times: list[int] = []
    statuses: list[int] = []
    excluded: list[str] = []
    for p in patients:
        if endpoint == "os":
            result = os_time(p, origin, as_of)
        elif endpoint == "pfs":
            result = pfs_time(p, origin, as_of)
        elif endpoint == "nrm":
            result = nrm_time(p, as_of)
        else:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if result is None:
            excluded.append(p.subject_id)
            continue
        ids.append(p.subject_id)
        times.append(result.time_days)
        statuses.append(result.status)
    return EndpointData(
        endpoint=endpoint,
        origin=origin,
        subject_ids=tuple(ids),
        times_days=tuple(times),
        statuses=tuple(statuses),
        excluded=tuple(excluded),
    )
