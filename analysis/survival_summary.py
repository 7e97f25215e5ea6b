"""The survival summaries of PROTOCOL s8 as the API serves them (docs/api.md).

Pure: patients' dates in, a JSON-ready dict out. The numbers come from
``analysis.survival`` (Kaplan-Meier, Aalen-Johansen, log-rank, Gray) and the
(time, status) pairs from ``analysis.endpoints``; this module only chooses what to
report and how to lay it out, so every figure on a dashboard can be reproduced
from the curve points it ships.

Conventions (stated in the payload): 95% CI, log(-log) for Kaplan-Meier (R
``conf.type = "log-log"``); landmark at ``landmark_days`` read off the step function,
``None`` when beyond the group's last follow-up; numbers at risk on a grid of whole
months (30.4375 days) with R's convention (at risk at t = time >= t).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from analysis.endpoints import COMPETING, EVENT, Origin, PatientOutcome, endpoint_data, nrm_time, os_time, pfs_time
from analysis.survival import (
    CumulativeIncidence,
    KaplanMeier,
    cumulative_incidence,
    gray_test,
    incidence_at,
    kaplan_meier,
    logrank_test,
    median_survival,
    numbers_at_risk,
    survival_at,
)

MONTH_DAYS = 30.4375
GRID_MONTHS = 3  # the at-risk table's step
SUBGROUPS = ("mrd", "conditioning", "dose_level")


@dataclass(frozen=True)
class SurvivalSubject:
    """One patient: the dates, and the subgroup labels (None = unknown, left out)."""

    outcome: PatientOutcome
    groups: Mapping[str, str | None] = field(default_factory=dict)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _grid(last: float | None) -> list[float]:
    if last is None:
        return [0.0]
    step = GRID_MONTHS * MONTH_DAYS
    return [i * step for i in range(int(last // step) + 1)]


def _km_block(km: KaplanMeier, landmark_days: float, origin: Origin) -> dict[str, Any]:
    at = survival_at(km, landmark_days)
    median = median_survival(km)
    grid = _grid(km.last_follow_up)
    return {
        "n": km.n,
        "events": km.n_events,
        "origin": origin,
        "at_1y": None
        if at is None
        else {
            "estimate": _round(at.estimate),
            "lower": _round(at.lower),
            "upper": _round(at.upper),
            "std_err": _round(at.std_err),
            "at_risk": at.n_at_risk,
        },
        "median_days": median.median,
        "median_ci": [median.lower, median.upper],
        "curve": [{"t_days": 0.0, "estimate": 1.0, "lower": 1.0, "upper": 1.0, "at_risk": km.n, "censored": 0}]
        + [
            {
                "t_days": step.time,
                "estimate": _round(step.survival),
                "lower": _round(step.lower),
                "upper": _round(step.upper),
                "at_risk": step.n_at_risk,
                "events": step.n_event,
                "censored": step.n_censor,
            }
            for step in km.steps
        ],
        "at_risk_grid": [
            {"t_days": round(t, 4), "at_risk": n} for t, n in zip(grid, numbers_at_risk(km, grid), strict=True)
        ],
    }


def _cif_block(cif: CumulativeIncidence, landmark_days: float) -> dict[str, Any]:
    at = incidence_at(cif, landmark_days)
    return {
        "n": cif.n,
        "events": cif.n_events,
        "competing_events": cif.n_competing,
        "origin": "first_dose",
        "at_1y": None
        if at is None
        else {
            "estimate": _round(at.estimate),
            "lower": _round(at.lower),
            "upper": _round(at.upper),
            "std_err": _round(at.std_err),
        },
        "curve": [{"t_days": 0.0, "estimate": 0.0, "lower": None, "upper": None, "at_risk": cif.n}]
        + [
            {
                "t_days": step.time,
                "estimate": _round(step.estimate),
                "lower": _round(step.lower),
                "upper": _round(step.upper),
                "at_risk": step.n_at_risk,
                "events": step.n_event,
                "competing": step.n_competing,
                "censored": step.n_censor,
            }
            for step in cif.steps
        ],
    }


def survival_summary(
    subjects: Sequence[SurvivalSubject],
    *,
    origin: Origin = "hct",
    landmark_days: float = 365.25,
    as_of: date | None = None,
) -> dict[str, Any]:
    """OS, PFS (from ``origin``), NRM (from first dose, relapse competing), subgroups.

    A patient whose dates contradict each other (an event before its origin, a relapse
    after death) cannot be placed on a curve: he or she is left out of every endpoint
    and listed under ``data_problems`` so the data can be corrected, rather than one
    bad record stopping the whole computation.
    """
    valid: list[SurvivalSubject] = []
    problems: list[dict[str, Any]] = []
    for subject in subjects:
        try:
            for check in (lambda o: os_time(o, origin, as_of), lambda o: pfs_time(o, origin, as_of), nrm_time):
                check(subject.outcome)
        except ValueError as exc:
            problems.append({"subject_id": subject.outcome.subject_id, "problem": str(exc)})
        else:
            valid.append(subject)
    subjects = valid
    outcomes = [s.outcome for s in subjects]
    data = {name: endpoint_data(outcomes, name, origin, as_of) for name in ("os", "pfs", "nrm")}
    result: dict[str, Any] = {
        "ci": "log-log",
        "conf_level": 0.95,
        "landmark_days": landmark_days,
        "data_problems": problems,
    }
    for name in ("os", "pfs"):
        d = data[name]
        km = kaplan_meier(d.times_days, [s == EVENT for s in d.statuses])
        result[name] = _km_block(km, landmark_days, d.origin) | {"excluded": list(d.excluded)}
    nrm = data["nrm"]
    result["nrm"] = _cif_block(cumulative_incidence(nrm.times_days, nrm.statuses, cause=EVENT), landmark_days) | {
        "excluded": list(nrm.excluded)
    }
    os_times = list(data["os"].times_days)
    # Median follow-up as the paper reports it: the median observation time from the
    # origin (all patients), with its range; the reverse Kaplan-Meier median beside it.
    reverse = kaplan_meier(os_times, [s != EVENT for s in data["os"].statuses])
    result["follow_up"] = {
        "median_days": statistics.median(os_times) if os_times else None,
        "min_days": min(os_times, default=None),
        "max_days": max(os_times, default=None),
        "reverse_km_median_days": median_survival(reverse).median,
    }
    result["subgroups"] = _subgroups(subjects, data, landmark_days)
    return result


def _subgroups(subjects: Sequence[SurvivalSubject], data: Mapping[str, Any], landmark_days: float) -> list[Any]:
    by_subject = {s.outcome.subject_id: s.groups for s in subjects}
    out: list[dict[str, Any]] = []
    for name in SUBGROUPS:
        for endpoint in ("pfs", "os", "nrm"):
            d = data[endpoint]
            rows = [
                (t, st, by_subject[sid].get(name))
                for sid, t, st in zip(d.subject_ids, d.times_days, d.statuses, strict=True)
                if by_subject[sid].get(name) is not None
            ]
            labels = sorted({str(r[2]) for r in rows})
            if not rows:
                continue
            groups: dict[str, Any] = {}
            for label in labels:
                times = [r[0] for r in rows if str(r[2]) == label]
                statuses = [r[1] for r in rows if str(r[2]) == label]
                if endpoint == "nrm":
                    groups[label] = _cif_block(cumulative_incidence(times, statuses, cause=EVENT), landmark_days)
                else:
                    km = kaplan_meier(times, [s == EVENT for s in statuses])
                    groups[label] = _km_block(km, landmark_days, d.origin)
            entry: dict[str, Any] = {"name": name, "endpoint": endpoint, "groups": groups}
            all_times = [r[0] for r in rows]
            all_groups = [str(r[2]) for r in rows]
            if endpoint == "nrm":
                gray = gray_test(all_times, [r[1] for r in rows], all_groups, cause=EVENT)
                entry["test"] = "gray"
                entry["gray_p"] = _round(gray.p_value)
            else:
                test = logrank_test(all_times, [r[1] == EVENT for r in rows], all_groups)
                entry["test"] = "logrank"
                entry["logrank_p"] = _round(test.p_value)
            out.append(entry)
    return out


__all__ = ["COMPETING", "SurvivalSubject", "survival_summary"]
