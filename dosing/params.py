"""The trial's configuration as the pure dosing rules' parameters: the one place where
Trial and ProtocolVersion fields become ``ScheduleParams``, ``BsaParams``, ``PredoseParams``."""

from __future__ import annotations

from decimal import Decimal

from dosing import bsa, predose, schedule
from trial.models import Trial


def schedule_params(trial: Trial, versions: list[tuple[str, int]]) -> schedule.ScheduleParams:
    return schedule.ScheduleParams(
        cycle_length_days=trial.cycle_length_days,
        c1d1_day_min=trial.enrol_day_min,
        c1d1_day_max=trial.enrol_day_max,
        delay_allowance_days=trial.max_delay_days,
        dlt_window_cycles=trial.dlt_window_cycles,
        max_cycles_by_version=tuple(versions),
    )


def bsa_params(trial: Trial) -> bsa.BsaParams:
    return bsa.BsaParams(method=trial.bsa_method, reduction_percent=Decimal(trial.reduction_percent))  # type: ignore[arg-type]


def predose_params(trial: Trial) -> predose.PredoseParams:
    return predose.PredoseParams(
        min_platelets=trial.min_platelets, min_anc=trial.min_anc, lab_days=trial.screening_lab_days
    )


def trial_schedule_params(trial: Trial) -> schedule.ScheduleParams:
    """Schedule parameters with the trial's protocol versions (one query unless prefetched)."""
    return schedule_params(trial, [(v.version, v.max_cycles) for v in trial.protocol_versions.all()])
