"""The one-parameter continual reassessment method (O'Quigley, Pepe & Fisher 1990,
Biometrics 46:33-48), as R dfcrm 0.2-2.1's `crm` computes it (method = "bayes").

Pure module: no Django import.

Models (dfcrm's names), skeleton s_k per level, one parameter beta ~ Normal(0, scale^2)
with dfcrm's defaults scale = sqrt(1.34) and intercept 3:
  empiric (power):  p_k(beta) = s_k ^ exp(beta)
  logistic:         p_k(beta) = 1 / (1 + exp(-(a0 + exp(beta) x_k))), x_k = logit(s_k) - a0
The posterior is computed by numerical integration (trapezoid rule on a fine grid of
beta, where the integrand is smooth and negligible beyond +-10 as in dfcrm).

Estimates per level: dfcrm's `ptox` is p_k at the posterior mean of beta ("plugin",
the default, so the recommendation is dfcrm's `mtd`); `estimate = "posterior_mean"`
uses the posterior mean of p_k itself. The model's level is the one whose estimate
is closest to the target (all below: the top; all above: level 1; ties: the lowest),
dfcrm's rule. Then, for the next cohort:
  - no skipping: never above the highest level tried + 1;
  - overdose control (optional, EWOC-style): only levels with
    P(p_k > target + overdose_margin | data) < overdose_cutoff (0.25) are allowed;
    when even level 1 is not allowed the trial stops without an MTD.
At the maximum sample size the MTD is the model's level (overdose control applied).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from analysis.designs.common import (
    DesignDecision,
    DesignResult,
    LevelOutcome,
    check_outcomes,
    counts,
    plural,
)

_GRID = np.linspace(-10.0, 10.0, 8001)
_H = float(_GRID[1] - _GRID[0])


class Model(StrEnum):
    EMPIRIC = "empiric"
    LOGISTIC = "logistic"


class Estimate(StrEnum):
    PLUGIN = "plugin"  # dfcrm's ptox: p_k at the posterior mean of beta
    POSTERIOR_MEAN = "posterior_mean"


@dataclass(frozen=True)
class Posterior:
    beta_mean: float
    beta_var: float
    ptox: tuple[float, ...]  # dfcrm's ptox (plug-in)
    posterior_mean: tuple[float, ...]  # E[p_k | data]
    prob_above: tuple[float, ...]  # P(p_k > threshold | data), for the threshold asked


@dataclass(frozen=True)
class Crm:
    dose_levels: tuple[float, ...]
    skeleton: tuple[float, ...]
    target: float
    model: Model = Model.EMPIRIC
    scale: float = math.sqrt(1.34)  # prior sd of beta (dfcrm's default)
    intercept: float = 3.0  # logistic model's a0 (dfcrm's intcpt)
    cohort_size: int = 3
    max_sample_size: int = 30
    start_level: int = 1
    estimate: Estimate = Estimate.PLUGIN
    no_skipping: bool = True
    overdose_margin: float | None = None  # None: no overdose control
    overdose_cutoff: float = 0.25

    name = "crm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Model(self.model))
        object.__setattr__(self, "estimate", Estimate(self.estimate))
        if not self.dose_levels:
            raise ValueError("dose_levels: a design needs at least one dose level")
        if len(self.skeleton) != len(self.dose_levels):
            raise ValueError("skeleton: one prior DLT probability per dose level is needed")
        if any(not 0 < s < 1 for s in self.skeleton) or any(
            b <= a for a, b in zip(self.skeleton, self.skeleton[1:], strict=False)
        ):
            raise ValueError("skeleton: probabilities must lie in (0, 1) and increase with the dose")
        if not 0 < self.target < 1:
            raise ValueError("target: must lie in (0, 1)")
        if self.scale <= 0:
            raise ValueError("scale: the prior standard deviation must be positive")
        if self.model is Model.LOGISTIC and any(x >= 0 for x in self.scaled_doses):
            raise ValueError("intercept: too small for the logistic model, scaled doses must be < 0 (dfcrm's rule)")
        if self.cohort_size < 1 or self.max_sample_size < self.cohort_size:
            raise ValueError("cohort_size: must be at least 1 and fit in max_sample_size")
        if not 1 <= self.start_level <= len(self.dose_levels):
            raise ValueError("start_level: not a dose level")
        if self.overdose_margin is not None and not 0 <= self.overdose_margin < 1 - self.target:
            raise ValueError("overdose_margin: target + margin must stay below 1")
        if not 0 < self.overdose_cutoff < 1:
            raise ValueError("overdose_cutoff: must lie in (0, 1)")

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    @property
    def scaled_doses(self) -> tuple[float, ...]:
        if self.model is Model.EMPIRIC:
            return self.skeleton
        return tuple(math.log(s / (1 - s)) - self.intercept for s in self.skeleton)

    def _p(self, beta: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """p_k(beta) on the grid: shape (levels, grid)."""
        x = np.asarray(self.scaled_doses)[:, None]
        if self.model is Model.EMPIRIC:
            out: npt.NDArray[np.float64] = x ** np.exp(beta)[None, :]
            return out
        with np.errstate(over="ignore"):
            out = 1.0 / (1.0 + np.exp(-self.intercept - np.exp(beta)[None, :] * x))
        return out

    def _beta_where(self, k: int, threshold: float) -> float:
        """p_k(beta) > threshold exactly when beta < this value (p_k falls as beta grows)."""
        if threshold <= 0:
            return math.inf
        if threshold >= 1:
            return -math.inf
        x = self.scaled_doses[k]
        ratio = (
            math.log(threshold) / math.log(x)
            if self.model is Model.EMPIRIC
            else (math.log(threshold / (1 - threshold)) - self.intercept) / x
        )
        return math.log(ratio) if ratio > 0 else -math.inf

    def posterior(self, outcomes: Sequence[LevelOutcome], threshold: float | None = None) -> Posterior:
        n = np.array([o.evaluable for o in outcomes], dtype=float)
        y = np.array([o.dlts for o in outcomes], dtype=float)
        p = self._p(_GRID)
        loglik = np.zeros_like(_GRID)
        with np.errstate(divide="ignore"):
            for k in range(len(outcomes)):  # levels without patients (0 * log 0) add nothing
                if y[k]:
                    loglik += y[k] * np.log(p[k])
                if n[k] - y[k]:
                    loglik += (n[k] - y[k]) * np.log1p(-p[k])
        logpost = loglik - _GRID**2 / (2 * self.scale**2)
        w = np.exp(logpost - logpost.max())
        w[0] *= 0.5
        w[-1] *= 0.5
        total = w.sum()
        beta_mean = float(w @ _GRID / total)
        beta_var = float(w @ _GRID**2 / total) - beta_mean**2
        plug = self._p(np.array([beta_mean]))[:, 0]
        mean = (p @ w) / total
        above: list[float] = []
        if threshold is not None:
            # the posterior's distribution function: cumulative trapezoid
            full = np.exp(logpost - logpost.max())
            cdf = np.concatenate(([0.0], np.cumsum((full[1:] + full[:-1]) * 0.5)))
            cdf /= cdf[-1]
            for k in range(len(outcomes)):
                b = self._beta_where(k, threshold)
                above.append(float(np.interp(b, _GRID, cdf)) if math.isfinite(b) else (1.0 if b > 0 else 0.0))
        return Posterior(
            beta_mean,
            beta_var,
            tuple(float(v) for v in plug),
            tuple(float(v) for v in mean),
            tuple(above),
        )

    def model_level(self, estimates: Sequence[float]) -> int:
        """dfcrm's rule: the level closest to the target (all below: top; all above: 1)."""
        if all(e <= self.target for e in estimates):
            return len(estimates)
        if all(e >= self.target for e in estimates):
            return 1
        distances = [abs(e - self.target) for e in estimates]
        return distances.index(min(distances)) + 1

    def decide(self, outcomes: Sequence[LevelOutcome], current_level: int | None) -> DesignResult:
        k = self.n_levels
        check_outcomes(k, outcomes, current_level)
        reasons: list[str] = []
        threshold = None if self.overdose_margin is None else self.target + self.overdose_margin
        post = self.posterior(outcomes, threshold)
        est = post.ptox if self.estimate is Estimate.PLUGIN else post.posterior_mean
        what = "at the posterior mean of the parameter" if self.estimate is Estimate.PLUGIN else "posterior mean"

        def result(decision: DesignDecision, level: int | None, slots: int = 0, mtd: int | None = None) -> DesignResult:
            open_slots = ((level, slots),) if level is not None and slots > 0 else ()
            return DesignResult(self.name, decision, level, open_slots, excluded, tuple(reasons), mtd, tuple(est))

        allowed = k
        excluded: tuple[int, ...] = ()
        if threshold is not None:
            ok = [lv for lv in range(1, k + 1) if post.prob_above[lv - 1] < self.overdose_cutoff]
            allowed = 0
            for lv in range(1, k + 1):  # levels are allowed from 1 up to the first refused
                if lv not in ok:
                    break
                allowed = lv
            excluded = tuple(range(allowed + 1, k + 1))
            if excluded:
                first = excluded[0]
                reasons.append(
                    f"Overdose control: P(DLT rate at level {first} > {threshold:g}) = "
                    f"{post.prob_above[first - 1]:.3f}, not below {self.overdose_cutoff:g}: "
                    f"level {first}{' and above' if first < k else ''} not allowed."
                )
        if threshold is not None and allowed == 0:
            reasons.append("Not even level 1 is allowed: stop the trial, no MTD.")
            return result(DesignDecision.STOP_NO_MTD, None)
        pending = [(lv, o.pending) for lv, o in enumerate(outcomes, start=1) if o.pending]
        if pending:
            where = ", ".join(f"{plural(p, 'patient')} at level {lv}" for lv, p in pending)
            reasons.append(f"Wait: {where} still in the DLT window; the next decision needs the cohort complete.")
            return result(DesignDecision.WAIT, current_level)
        if current_level is None:
            slots = min(self.cohort_size, self.max_sample_size)
            reasons.append(
                f"Nobody treated yet: the first cohort ({plural(slots, 'patient')}) at level {self.start_level}."
            )
            return result(DesignDecision.ENROLL, self.start_level, slots)
        total = sum(o.cohort_patients for o in outcomes)  # backfill patients come on top
        model = self.model_level(est)
        text = ", ".join(f"{e:.3f}" for e in est)
        reasons.append(
            f"DLT probabilities ({self.model.value} model, {what}): {text}; closest to the target "
            f"{self.target:g}: level {model}."
        )
        if total >= self.max_sample_size:
            mtd = min(model, allowed)
            reasons.append(f"The maximum sample size ({self.max_sample_size}) is reached: the MTD is level {mtd}.")
            return result(DesignDecision.MTD_DECLARED, mtd, mtd=mtd)
        nxt = min(model, allowed)
        tried = max(lv for lv, o in enumerate(outcomes, start=1) if o.evaluable)
        if self.no_skipping and nxt > tried + 1:
            reasons.append(f"No skipping: level {tried + 1} is the highest level untried that may be given.")
            nxt = tried + 1
        d = current_level
        reasons.append(f"Level {d}: {counts(outcomes[d - 1])}.")
        slots = min(self.cohort_size, self.max_sample_size - total)
        decision = (
            DesignDecision.ESCALATE if nxt > d else DesignDecision.DE_ESCALATE if nxt < d else DesignDecision.STAY
        )
        reasons.append(f"Next cohort: {plural(slots, 'patient')} at level {nxt}.")
        return result(decision, nxt, slots)
