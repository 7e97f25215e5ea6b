"""Operating characteristics of several designs side by side (issue 17, the planning page).

Pure module: no Django import. For user-given true DLT probabilities, each design chosen
(3+3, BOIN, i3+3, mTPI-2, CRM with their parameters) is simulated by
`simulation.simulate`: every design with the same seed, so the columns are compared on the
same random numbers (common random numbers: their differences are less noisy than each
column). Per design: P(select each level) and P(no MTD), patients and DLTs per level, the
overdose fraction and the mean sample size, each with its Monte Carlo standard error.

For 3+3 the exact values of trial/operating_characteristics.py (enumeration of every cohort
outcome, PROTOCOL section 6) go alongside, with the agreement: a simulated value agrees
when |simulated - exact| <= AGREEMENT_SE standard errors (4 SE: a false alarm about once
in 16,000 comparisons when the simulation is right).

`comparison_problems` checks the inputs, every problem named by its field
(``designs[i].field`` for a design's parameter, with trial.configuration.design_problems'
rules); `comparison_run` runs the designs one after the other and reports the overall
progress (designs done + the current one's share) to the caller, who may stop the run by
raising SimulationCancelled from the callback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.designs.boin import Boin
from analysis.designs.common import Design
from analysis.designs.crm import Crm
from analysis.designs.i3plus3 import I3Plus3
from analysis.designs.interval import IntervalSettings
from analysis.designs.keyboard import Keyboard
from analysis.designs.simulation import ProgressCallback, SimulationResult, simulate
from analysis.designs.three_plus_three import ThreePlusThree
from analysis.escalation import Variant
from analysis.operating_characteristics import OperatingCharacteristics, exact_operating_characteristics
from trial.configuration import DESIGNS, DesignSpec, design_problems

MIN_LEVELS, MAX_LEVELS = 2, 10
MIN_TRIALS, MAX_TRIALS, DEFAULT_TRIALS = 100, 50_000, 10_000
MAX_SEED = 2**32 - 1  # numpy's default_rng takes any non-negative integer; a 32-bit one is enough
DEFAULT_SEED = 2026
MAX_DESIGNS = 6
AGREEMENT_SE = 4.0
VARIANTS = tuple(v.value for v in Variant)
DESIGN_LABELS = {"3+3": "3+3", "boin": "BOIN", "i3+3": "i3+3", "mtpi2": "mTPI-2", "crm": "CRM"}


@dataclass(frozen=True)
class DesignChoice:
    """One design of the comparison: the trial's design fields (trial.configuration) and,
    for 3+3, its variant. 3+3 ignores the other parameters (cohorts of 3, at most 6 per level)."""

    spec: DesignSpec = field(default_factory=DesignSpec)
    variant: str = Variant.STORER_A.value

    @property
    def label(self) -> str:
        s = self.spec
        name = DESIGN_LABELS.get(s.design, s.design)
        if s.design == "3+3":
            return f"3+3 ({'six at the MTD' if self.variant == Variant.SIX_AT_MTD else 'Storer A'})"
        return f"{name} (target {s.target_dlt_rate:g}, cohorts of {s.cohort_size}, N {s.max_sample_size})"

    def parameters(self) -> dict[str, Any]:
        """The parameters that matter for this design (what the run stores and shows)."""
        s = self.spec
        if s.design == "3+3":
            return {"design": s.design, "variant": self.variant}
        out: dict[str, Any] = {
            "design": s.design,
            "target_dlt_rate": s.target_dlt_rate,
            "cohort_size": s.cohort_size,
            "max_sample_size": s.max_sample_size,
        }
        if s.design == "boin":
            out |= {"boin_p_saf": s.boin_p_saf, "boin_p_tox": s.boin_p_tox, "boin_n_earlystop": s.boin_n_earlystop}
        if s.design == "crm":
            out |= {"crm_skeleton": list(s.crm_skeleton), "crm_model": s.crm_model, "crm_prior_sd": s.crm_prior_sd}
        return out


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def comparison_problems(
    probabilities: Sequence[object], choices: Sequence[DesignChoice], n_trials: object, seed: object
) -> dict[str, list[str]]:
    """Every problem of a comparison's inputs, by field ({} when all is well)."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not MIN_LEVELS <= len(probabilities) <= MAX_LEVELS:
        add(
            "true_dlt_probabilities",
            f"Give one true DLT probability per dose level: {MIN_LEVELS} to {MAX_LEVELS} levels "
            f"(got {len(probabilities)}).",
        )
    if not all(_number(p) and 0 <= p <= 1 for p in probabilities):  # type: ignore[operator]
        add("true_dlt_probabilities", "Each true DLT probability must be a number from 0 to 1.")
    if not _whole(n_trials) or not MIN_TRIALS <= n_trials <= MAX_TRIALS:  # type: ignore[operator]
        add(
            "n_trials",
            f"The number of simulated trials must be a whole number from {MIN_TRIALS:,} to {MAX_TRIALS:,} "
            f"(got {n_trials!r}).",
        )
    if not _whole(seed) or not 0 <= seed <= MAX_SEED:  # type: ignore[operator]
        add("seed", f"The seed must be a whole number from 0 to {MAX_SEED} (got {seed!r}).")
    if not 1 <= len(choices) <= MAX_DESIGNS:
        add("designs", f"Choose 1 to {MAX_DESIGNS} designs to compare (got {len(choices)}).")
    n_levels = len(probabilities) if MIN_LEVELS <= len(probabilities) <= MAX_LEVELS else None
    for i, choice in enumerate(choices):
        for name, messages in design_problems(choice.spec, n_levels).items():
            for message in messages:
                add(f"designs[{i}].{name}", message)
        if choice.spec.design == "3+3" and choice.variant not in VARIANTS:
            add(f"designs[{i}].variant", f"{choice.variant!r} is not a 3+3 variant; use one of: {', '.join(VARIANTS)}.")
    return problems


def design_for(choice: DesignChoice, n_levels: int) -> Design:
    """The analysis.designs object of a checked choice (as trial.services builds a trial's)."""
    s = choice.spec
    levels = tuple(float(i) for i in range(1, n_levels + 1))  # the doses play no part in the rules
    if s.design == "3+3":
        return ThreePlusThree(levels, Variant(choice.variant))
    if s.design == "crm":
        return Crm(
            levels,
            tuple(float(v) for v in s.crm_skeleton),
            s.target_dlt_rate,
            model=s.crm_model,  # type: ignore[arg-type]
            scale=s.crm_prior_sd,
            cohort_size=s.cohort_size,
            max_sample_size=s.max_sample_size,
        )
    earlystop = s.boin_n_earlystop if s.design == "boin" else 100
    settings = IntervalSettings(s.target_dlt_rate, s.cohort_size, s.max_sample_size, earlystop)
    if s.design == "boin":
        return Boin(levels, settings, s.boin_p_saf, s.boin_p_tox)
    if s.design == "i3+3":
        return I3Plus3(levels, settings)
    if s.design == "mtpi2":
        return Keyboard(levels, settings)
    raise ValueError(f"design: {s.design!r} is not one of {', '.join(DESIGNS)}")


def max_cohorts(choice: DesignChoice, n_levels: int) -> int:
    """The most cohorts one trial can have (the progress bar's scale): 3+3 treats at most two
    cohorts per level; the other designs stop at the maximum sample size."""
    s = choice.spec
    if s.design == "3+3":
        return 2 * n_levels
    return max(1, math.ceil(s.max_sample_size / s.cohort_size))


def _agrees(simulated: float, exact: float, se: float) -> dict[str, Any]:
    diff = abs(simulated - exact)
    z = diff / se if se > 0 else (0.0 if diff < 1e-12 else math.inf)
    return {
        "simulated": simulated,
        "exact": exact,
        "se": se,
        "z": z if math.isfinite(z) else None,
        "agrees": z <= AGREEMENT_SE,
    }


def agreement(sim: SimulationResult, exact: OperatingCharacteristics) -> dict[str, Any]:
    """3+3: each simulated value next to the exact one, |difference| in standard errors."""
    rows: dict[str, Any] = {
        "prob_select": [
            _agrees(s, e, se) for s, e, se in zip(sim.prob_select, exact.prob_mtd, sim.se_prob_select, strict=True)
        ],
        "prob_no_mtd": _agrees(sim.prob_no_mtd, exact.prob_no_mtd, sim.se_prob_no_mtd),
        "patients_per_level": [
            _agrees(s, e, se)
            for s, e, se in zip(
                sim.patients_per_level, exact.expected_patients_per_level, sim.se_patients_per_level, strict=True
            )
        ],
        "mean_patients": _agrees(sim.mean_patients, exact.expected_patients, sim.se_mean_patients),
        "mean_dlts": _agrees(sim.mean_dlts, exact.expected_dlts, sim.se_mean_dlts),
    }
    flat: list[dict[str, Any]] = [*rows["prob_select"], rows["prob_no_mtd"], *rows["patients_per_level"]]
    flat += [rows["mean_patients"], rows["mean_dlts"]]
    return {"within_se": AGREEMENT_SE, "all_agree": all(r["agrees"] for r in flat), **rows}


def result_json(choice: DesignChoice, sim: SimulationResult) -> dict[str, Any]:
    """One design's column as stored (JSON: plain lists and numbers)."""
    out: dict[str, Any] = {
        "label": choice.label,
        "parameters": choice.parameters(),
        "prob_select": list(sim.prob_select),
        "se_prob_select": list(sim.se_prob_select),
        "prob_no_mtd": sim.prob_no_mtd,
        "se_prob_no_mtd": sim.se_prob_no_mtd,
        "patients_per_level": list(sim.patients_per_level),
        "se_patients_per_level": list(sim.se_patients_per_level),
        "dlts_per_level": list(sim.dlts_per_level),
        "se_dlts_per_level": list(sim.se_dlts_per_level),
        "mean_patients": sim.mean_patients,
        "se_mean_patients": sim.se_mean_patients,
        "mean_dlts": sim.mean_dlts,
        "se_mean_dlts": sim.se_mean_dlts,
        "overdose_threshold": sim.overdose_threshold,
        "overdose_fraction": sim.overdose_fraction,
        "se_overdose_fraction": sim.se_overdose_fraction,
        "design_calls": sim.design_calls,
        "exact": None,
    }
    if choice.spec.design == "3+3":
        exact = exact_operating_characteristics(sim.true_dlt_probabilities, Variant(choice.variant))
        out["exact"] = agreement(sim, exact)
    return out


def comparison_run(
    probabilities: Sequence[float],
    choices: Sequence[DesignChoice],
    n_trials: int,
    seed: int,
    overdose_threshold: float,
    on_progress: ProgressCallback | None = None,
) -> list[dict[str, Any]]:
    """Each design simulated in turn (inputs checked by comparison_problems); one column each.
    `on_progress` receives the overall share done, 0 to 1, and may raise SimulationCancelled."""
    probs = [float(p) for p in probabilities]
    columns = []
    total = len(choices)
    for i, choice in enumerate(choices):
        design = design_for(choice, len(probs))

        def progress(done: float, i: int = i) -> None:
            if on_progress is not None:
                on_progress((i + done) / total)

        sim = simulate(
            design,
            probs,
            n_trials,
            seed,
            overdose_threshold=overdose_threshold,
            on_progress=progress,
            max_cohorts=max_cohorts(choice, len(probs)),
        )
        columns.append(result_json(choice, sim))
    return columns
