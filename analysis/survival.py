"""Survival statistics for the trial's outcome summaries (PROTOCOL section 8).

A pure rule module: no Django, plain sequences in, frozen dataclasses out.

What is here and which reference it reproduces (oracle values and conventions in
``docs/survival-reference.md``):

* :func:`kaplan_meier` -- Kaplan-Meier with Greenwood variance and a 95% CI,
  ``conf_type="log-log"`` (the API's choice, R ``conf.type="log-log"``) or
  ``"log"`` (R's default); :func:`survival_at` (landmark, e.g. "at 1 year"),
  :func:`numbers_at_risk` (for the table under a curve), :func:`median_survival`.
* :func:`logrank_test` -- R ``survdiff`` with ``rho = 0``, 2 or more groups,
  optionally stratified.
* :func:`cumulative_incidence` / :func:`incidence_at` -- Aalen-Johansen cumulative
  incidence for one cause with competing causes, variance and CI as R
  ``cmprsk::cuminc``.
* :func:`gray_test` -- Gray's (1988) k-sample test for cumulative incidence as R
  ``cmprsk::cuminc`` prints it.

Conventions shared by every function:

* Times are non-negative finite numbers in any unit (the trial passes days).
* Ties are never jittered: at a time with both events and censorings the censored
  are still in the risk set of that time (README "Ties").
* "Undefined" is ``None``, never ``nan``: a standard error when S = 0 (R prints
  ``NaN``), a CI bound when the transform does not exist (R prints ``NA``), a
  landmark beyond a group's last follow-up, a median that is not reached.
* Empty input (no patients) gives a result with no steps; all-censored input gives
  steps with estimate 1 (KM) or 0 (incidence); tests with nothing to compare give
  ``statistic = p_value = None``. Nothing here raises on empty or all-censored
  data; malformed input (unequal lengths, negative or non-finite times) raises
  ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "ConfType",
    "CumulativeIncidence",
    "GrayTest",
    "GroupLabel",
    "IncidenceStep",
    "KMStep",
    "KaplanMeier",
    "LogRankTest",
    "MedianSurvival",
    "PointEstimate",
    "cumulative_incidence",
    "gray_test",
    "incidence_at",
    "kaplan_meier",
    "logrank_test",
    "median_survival",
    "numbers_at_risk",
    "survival_at",
]

ConfType = Literal["log-log", "log"]
GroupLabel = str | int

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------- #
# Result types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class PointEstimate:
    """An estimate read off a curve at one time (a landmark such as "at 1 year").

    ``std_err``, ``lower`` and ``upper`` are ``None`` where undefined (see the
    producing function). ``n_at_risk`` follows R: those with time >= ``time``.
    """

    time: float
    estimate: float
    std_err: float | None
    lower: float | None
    upper: float | None
    n_at_risk: int


@dataclass(frozen=True)
class KMStep:
    """One distinct observed time of a Kaplan-Meier curve (event or censoring).

    ``survival`` is the right-continuous S(time). ``std_err`` = S * sigma with
    sigma^2 the Greenwood variance of log S; ``None`` when S = 0 (R: ``NaN``).
    ``lower``/``upper`` are ``None`` where the transform is undefined: "log" at
    S = 0, "log-log" at S = 0 or S = 1 (README conventions).
    """

    time: float
    n_at_risk: int
    n_event: int
    n_censor: int
    survival: float
    std_err: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve: one step per distinct time (like R ``survfit``).

    ``last_follow_up`` is the largest observed time (``None`` with no patients);
    landmarks beyond it are not estimable.
    """

    n: int
    n_events: int
    conf_type: ConfType
    conf_level: float
    last_follow_up: float | None
    steps: tuple[KMStep, ...]


@dataclass(frozen=True)
class MedianSurvival:
    """Median survival and its CI (R ``print.survfit``); ``None`` = not reached."""

    median: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class LogRankTest:
    """Log-rank test (R ``survdiff``, rho = 0).

    ``groups`` gives the order of ``observed``, ``expected`` and the rows/columns
    of ``variance`` (summed over strata when stratified). ``statistic`` and
    ``p_value`` are ``None`` (and ``df`` 0) when fewer than two groups have a
    positive expected count, e.g. no events at all.
    """

    groups: tuple[GroupLabel, ...]
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    variance: tuple[tuple[float, ...], ...]
    statistic: float | None
    df: int
    p_value: float | None


@dataclass(frozen=True)
class IncidenceStep:
    """One distinct observed time of a cumulative incidence curve.

    ``estimate`` is the right-continuous F(time); ``std_err`` as cmprsk; the CI
    bounds are ``None`` when F is 0 or 1 (the log(-log) transform is undefined).
    """

    time: float
    n_at_risk: int
    n_event: int
    n_competing: int
    n_censor: int
    estimate: float
    std_err: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class CumulativeIncidence:
    """Aalen-Johansen cumulative incidence of ``cause`` (competing causes = any
    other non-zero status)."""

    cause: int
    n: int
    n_events: int
    n_competing: int
    conf_level: float
    last_follow_up: float | None
    steps: tuple[IncidenceStep, ...]


@dataclass(frozen=True)
class GrayTest:
    """Gray's test for equality of cumulative incidence of ``cause`` across groups.

    ``groups`` are the labels with at least one patient. ``statistic`` and
    ``p_value`` are ``None`` when fewer than two groups remain or the score
    variance is singular (e.g. no events of the cause; R prints -1 and p = 1).
    ``df`` is (number of groups - 1), as cmprsk prints it.
    """

    cause: int
    groups: tuple[GroupLabel, ...]
    statistic: float | None
    df: int
    p_value: float | None


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #


def _times_array(times: Sequence[float]) -> FloatArray:
    arr = np.asarray(times, dtype=np.float64).reshape(-1)
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr < 0)):
        raise ValueError("times must be finite and >= 0")
    return arr


def _codes_array(codes: Sequence[int] | Sequence[bool], n: int, name: str) -> IntArray:
    arr = np.asarray(codes, dtype=np.int64).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name} must have one entry per time ({arr.size} != {n})")
    return arr


def _events_array(events: Sequence[int] | Sequence[bool], n: int) -> IntArray:
    arr = _codes_array(events, n, "events")
    if np.any((arr != 0) & (arr != 1)):
        raise ValueError("events must be 0 (censored) or 1 (event)")
    return arr


def _labels(values: Sequence[GroupLabel], n: int, name: str) -> tuple[list[GroupLabel], IntArray]:
    """Distinct labels in a stable order (ints before strings, each sorted) and the
    index of each patient's label, so results never depend on patient order."""
    if len(values) != n:
        raise ValueError(f"{name} must have one entry per time ({len(values)} != {n})")
    distinct = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    position = {label: i for i, label in enumerate(distinct)}
    return distinct, np.array([position[v] for v in values], dtype=np.int64)


def _z(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be in (0, 1)")
    return float(stats.norm.ppf(1 - (1 - conf_level) / 2))


def _chi2_sf(statistic: float, df: int) -> float:
    return float(stats.chi2.sf(statistic, df))


@dataclass(frozen=True)
class _TimeTable:
    """Counts per distinct time, ascending: at risk (time >= t), and per code."""

    times: FloatArray
    at_risk: IntArray
    by_code: dict[int, IntArray]


def _time_table(times: FloatArray, codes: IntArray) -> _TimeTable:
    distinct, inverse = np.unique(times, return_inverse=True)
    total = np.bincount(inverse, minlength=distinct.size).astype(np.int64)
    # R convention: at risk at t are those with time >= t (README "Ties").
    at_risk = np.cumsum(total[::-1])[::-1].astype(np.int64)
    by_code = {
        int(code): np.bincount(inverse[codes == code], minlength=distinct.size).astype(np.int64)
        for code in np.unique(codes)
    }
    return _TimeTable(distinct, at_risk, by_code)


def _count(table: _TimeTable, code: int) -> IntArray:
    return table.by_code.get(code, np.zeros(table.times.size, dtype=np.int64))


# --------------------------------------------------------------------------- #
# Kaplan-Meier
# --------------------------------------------------------------------------- #


def _km_interval(s: float, sigma: float, z: float, conf_type: ConfType) -> tuple[float | None, float | None]:
    if conf_type == "log":
        if s <= 0:
            return None, None
        return s * math.exp(-z * sigma), min(1.0, s * math.exp(z * sigma))
    # log-log: a = z sigma / log S; undefined at S = 0 and S = 1 (README).
    if s <= 0 or s >= 1:
        return None, None
    a = z * sigma / math.log(s)
    return s ** math.exp(-a), s ** math.exp(a)


def kaplan_meier(
    times: Sequence[float],
    events: Sequence[int] | Sequence[bool],
    *,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Kaplan-Meier estimate S(t) = prod (1 - d_j / n_j) with Greenwood's variance.

    ``events``: 1 (or True) = event, 0 = censored. Greenwood sigma^2 = sum
    d_j / (n_j (n_j - d_j)) is the variance of log S and SE(S) = S sigma (README).
    CI "log": [S e^(-z sigma), min(1, S e^(z sigma))]; "log-log" (default, the API's
    choice, docs/api.md): with a = z sigma / log S, [S^(e^-a), S^(e^a)].

    One step per distinct time, censor-only times included (like R ``survfit``),
    so the curve and numbers at risk can be drawn from the steps alone. Empty input
    gives ``n = 0`` and no steps.
    """
    if conf_type not in ("log-log", "log"):
        raise ValueError(f"unknown conf_type {conf_type!r}")
    z = _z(conf_level)
    t = _times_array(times)
    e = _events_array(events, t.size)
    table = _time_table(t, e)
    deaths = _count(table, 1)
    censored = _count(table, 0)

    steps: list[KMStep] = []
    s = 1.0
    greenwood = 0.0
    for j in range(table.times.size):
        n_j = int(table.at_risk[j])
        d_j = int(deaths[j])
        s *= 1.0 - d_j / n_j
        if d_j:
            greenwood = greenwood + d_j / (n_j * (n_j - d_j)) if n_j > d_j else math.inf
        sigma = math.sqrt(greenwood)
        std_err = s * sigma if s > 0 else None
        lower, upper = _km_interval(s, sigma, z, conf_type)
        steps.append(
            KMStep(
                time=float(table.times[j]),
                n_at_risk=n_j,
                n_event=d_j,
                n_censor=int(censored[j]),
                survival=s,
                std_err=std_err,
                lower=lower,
                upper=upper,
            )
        )
    return KaplanMeier(
        n=int(t.size),
        n_events=int(e.sum()),
        conf_type=conf_type,
        conf_level=conf_level,
        last_follow_up=float(t.max()) if t.size else None,
        steps=tuple(steps),
    )


def survival_at(km: KaplanMeier, time: float) -> PointEstimate | None:
    """Landmark estimate S(time), e.g. 1-year PFS/OS (PROTOCOL section 8).

    The right-continuous value at the last step <= ``time`` (equal to the value at
    the last event time <= ``time``). ``None`` (not estimable) when ``time`` is
    beyond the group's last follow-up or the group is empty: the README forbids
    carrying the last value forward. Before the first event the estimate is 1 with
    SE 0 ("log" CI [1, 1]; "log-log" CI ``None``, undefined at S = 1).
    """
    if km.last_follow_up is None or time > km.last_follow_up:
        return None
    at_risk = numbers_at_risk(km, [time])[0]
    previous = [step for step in km.steps if step.time <= time]
    if not previous:
        lower, upper = _km_interval(1.0, 0.0, _z(km.conf_level), km.conf_type)
        return PointEstimate(time, 1.0, 0.0, lower, upper, at_risk)
    step = previous[-1]
    return PointEstimate(time, step.survival, step.std_err, step.lower, step.upper, at_risk)


def numbers_at_risk(km: KaplanMeier, grid: Sequence[float]) -> tuple[int, ...]:
    """Numbers at risk at each grid time, R convention: patients with time >= t.

    Read from the steps (each step's ``n_at_risk`` counts time >= that step), so a
    grid time between steps takes the next step's count; beyond the last time, 0.
    """
    step_times = np.array([step.time for step in km.steps], dtype=np.float64)
    counts = [step.n_at_risk for step in km.steps] + [0]
    idx = np.searchsorted(step_times, np.asarray(grid, dtype=np.float64), side="left")
    return tuple(int(counts[i]) for i in idx)


def _first_at_or_below_half(times: Sequence[float], values: Sequence[float | None]) -> float | None:
    """R survival's rule for reading a median off a curve: the first time where the
    curve is <= 0.5 (NA points skipped); if the curve sits exactly at 0.5 there and
    drops later, the midpoint between that time and the next lower point."""
    tolerance = math.sqrt(np.finfo(np.float64).eps)
    kept = [(t, v) for t, v in zip(times, values, strict=True) if v is not None and v < 0.5 + tolerance]
    if not kept:
        return None
    t0, v0 = kept[0]
    if abs(v0 - 0.5) < tolerance:
        for t1, v1 in kept[1:]:
            if v1 < v0:
                return (t0 + t1) / 2
    return t0


def median_survival(km: KaplanMeier) -> MedianSurvival:
    """Median survival with its CI, as R ``print.survfit`` reports it.

    Median: smallest time with S(t) <= 0.5 (midpoint rule when S is exactly 0.5 over
    an interval). Lower limit: the same rule on the lower CI curve (it crosses 0.5
    first); upper limit: on the upper CI curve. Each is ``None`` when not reached
    (R ``NA``); CI points that are undefined (``None``) are skipped, as R skips NA.
    """
    times = [step.time for step in km.steps]
    return MedianSurvival(
        median=_first_at_or_below_half(times, [step.survival for step in km.steps]),
        lower=_first_at_or_below_half(times, [step.lower for step in km.steps]),
        upper=_first_at_or_below_half(times, [step.upper for step in km.steps]),
    )


# --------------------------------------------------------------------------- #
# Log-rank
# --------------------------------------------------------------------------- #


def _logrank_stratum(
    times: FloatArray, events: IntArray, group_idx: IntArray, n_groups: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Observed, expected and the hypergeometric variance in one stratum."""
    observed = np.zeros(n_groups)
    expected = np.zeros(n_groups)
    variance = np.zeros((n_groups, n_groups))
    for t in np.unique(times[events == 1]):
        at_risk = np.bincount(group_idx[times >= t], minlength=n_groups).astype(np.float64)
        died = np.bincount(group_idx[(times == t) & (events == 1)], minlength=n_groups).astype(np.float64)
        n = at_risk.sum()
        d = died.sum()
        observed += died
        expected += d * at_risk / n
        if n > 1:
            share = at_risk / n
            variance += d * (n - d) / (n - 1) * (np.diag(share) - np.outer(share, share))
    return observed, expected, variance


def logrank_test(
    times: Sequence[float],
    events: Sequence[int] | Sequence[bool],
    groups: Sequence[GroupLabel],
    *,
    strata: Sequence[GroupLabel] | None = None,
) -> LogRankTest:
    """Log-rank test of equal survival across 2 or more groups (R ``survdiff``, rho 0).

    PROTOCOL section 8: 2-sided log-rank for the subgroup comparisons. Stratified:
    O, E and V are summed over strata (README). The statistic uses the groups with a
    positive expected count, dropping the first of them, as survdiff does:
    chi2 = U' V^-1 U with U = O - E, df = (number of such groups - 1).
    """
    t = _times_array(times)
    e = _events_array(events, t.size)
    labels, group_idx = _labels(groups, t.size, "groups")
    strata_idx = _labels(strata, t.size, "strata")[1] if strata is not None else np.zeros(t.size, np.int64)
    k = len(labels)
    observed = np.zeros(k)
    expected = np.zeros(k)
    variance = np.zeros((k, k))
    for stratum in np.unique(strata_idx):
        mask = strata_idx == stratum
        o, ex, v = _logrank_stratum(t[mask], e[mask], group_idx[mask], k)
        observed += o
        expected += ex
        variance += v

    keep = np.flatnonzero(expected > 0)
    statistic: float | None = None
    p_value: float | None = None
    df = 0
    if keep.size >= 2:
        u = (observed - expected)[keep][1:]
        vv = variance[np.ix_(keep, keep)][1:, 1:]
        statistic = float(u @ np.linalg.lstsq(vv, u, rcond=None)[0])
        df = int(keep.size - 1)
        p_value = _chi2_sf(statistic, df)
    return LogRankTest(
        groups=tuple(labels),
        observed=tuple(float(x) for x in observed),
        expected=tuple(float(x) for x in expected),
        variance=tuple(tuple(float(x) for x in row) for row in variance),
        statistic=statistic,
        df=df,
        p_value=p_value,
    )


# --------------------------------------------------------------------------- #
# Cumulative incidence (Aalen-Johansen) with cmprsk's variance
# --------------------------------------------------------------------------- #


def _tie_factor(d: int, n: int) -> float:
    """cmprsk's correction for d tied failures among n at risk: 1 - (d-1)/(n-1)."""
    return 1.0 - (d - 1) / (n - 1) if d > 1 else 1.0


def _cif_interval(f: float, se: float, z: float) -> tuple[float | None, float | None]:
    # README: F^(exp(+-z se / (F log F))); the transform needs 0 < F < 1.
    if not 0 < f < 1:
        return None, None
    log_f = math.log(f)
    b = z * se / (f * log_f)  # <= 0
    # F a rounding error away from 1 makes b huge: F^(e^-b) = exp(log F e^-b), with
    # the exponent capped, underflows to 0 instead of overflowing.
    return math.exp(log_f * math.exp(min(-b, 700.0))), math.exp(log_f * math.exp(b))


def cumulative_incidence(
    times: Sequence[float],
    status: Sequence[int],
    cause: int = 1,
    *,
    conf_level: float = 0.95,
) -> CumulativeIncidence:
    """Aalen-Johansen cumulative incidence of ``cause`` in one group.

    ``status``: 0 = censored, ``cause`` = the event of interest, any other value =
    a competing event. PROTOCOL section 8: NRM is a cumulative incidence with
    relapse competing, not 1 - KM. F(t) = sum_{t_j <= t} S(t_j-) d_j / n_j with S
    the all-cause Kaplan-Meier just before t_j.

    Variance: the delta-method estimator of Gray's ``cinc`` routine in R ``cmprsk``
    (so values match ``cuminc``/``timepoints``). With S_j- and S_j the all-cause KM
    before and after t_j, F_j = F(t_j), and the tie factor c(d, n) = 1 - (d-1)/(n-1)
    (1 when d = 1), every distinct time adds w = S_j-^2 c(d, n_j) d / n_j^2 times
    (a^2, a b, b^2) to running sums (v1, v2, v3), once for the cause of interest
    (d = d1, b = 1/S_j or 0 when S_j = 0, a = 1 + b F_j) and once for competing
    events (d = d2, only when S_j > 0: b = 1/S_j, a = F_j / S_j). Then
    Var F(t) = v1 + F^2 v3 - 2 F v2. (cmprsk stores it only where F jumps; in
    between, the terms added vanish, so evaluating at every time is the same.)

    CI: F^(exp(+-z se / (F log F))), ``None`` bounds when F is 0 or 1. All-censored
    data: F = 0 throughout with SE 0; empty input: no steps.
    """
    z = _z(conf_level)
    t = _times_array(times)
    s_codes = _codes_array(status, t.size, "status")
    kind = np.where(s_codes == 0, 0, np.where(s_codes == cause, 1, 2))
    table = _time_table(t, kind)
    d1s, d2s, cens = _count(table, 1), _count(table, 2), _count(table, 0)

    steps: list[IncidenceStep] = []
    s_before = 1.0
    f = 0.0
    v1 = v2 = v3 = 0.0
    for j in range(table.times.size):
        n_j = int(table.at_risk[j])
        d1, d2 = int(d1s[j]), int(d2s[j])
        s_after = s_before * (n_j - d1 - d2) / n_j
        f += s_before * d1 / n_j
        if d2 > 0 and s_after > 0:
            w = s_before**2 * _tie_factor(d2, n_j) * d2 / n_j**2
            b = 1.0 / s_after
            a = f * b
            v1, v2, v3 = v1 + a * a * w, v2 + a * b * w, v3 + b * b * w
        if d1 > 0:
            w = s_before**2 * _tie_factor(d1, n_j) * d1 / n_j**2
            b = 1.0 / s_after if s_after > 0 else 0.0
            a = 1.0 + b * f
            v1, v2, v3 = v1 + a * a * w, v2 + a * b * w, v3 + b * b * w
        se = math.sqrt(max(0.0, v1 + f * f * v3 - 2 * f * v2))
        lower, upper = _cif_interval(f, se, z)
        steps.append(
            IncidenceStep(
                time=float(table.times[j]),
                n_at_risk=n_j,
                n_event=d1,
                n_competing=d2,
                n_censor=int(cens[j]),
                estimate=f,
                std_err=se,
                lower=lower,
                upper=upper,
            )
        )
        s_before = s_after
    return CumulativeIncidence(
        cause=cause,
        n=int(t.size),
        n_events=int((kind == 1).sum()),
        n_competing=int((kind == 2).sum()),
        conf_level=conf_level,
        last_follow_up=float(t.max()) if t.size else None,
        steps=tuple(steps),
    )


def incidence_at(cif: CumulativeIncidence, time: float) -> PointEstimate | None:
    """Landmark cumulative incidence F(time), e.g. 1-year NRM (PROTOCOL section 8).

    Right-continuous value at the last step <= ``time``; ``None`` (not estimable)
    beyond the group's last follow-up or for an empty group (cmprsk ``timepoints``
    gives NA there too). Before the first time: 0 with SE 0 and ``None`` CI.
    """
    if cif.last_follow_up is None or time > cif.last_follow_up:
        return None
    previous = [step for step in cif.steps if step.time <= time]
    later = [step.n_at_risk for step in cif.steps if step.time >= time]
    at_risk = later[0] if later else 0
    if not previous:
        return PointEstimate(time, 0.0, 0.0, None, None, at_risk)
    step = previous[-1]
    return PointEstimate(time, step.estimate, step.std_err, step.lower, step.upper, at_risk)


# --------------------------------------------------------------------------- #
# Gray's test
# --------------------------------------------------------------------------- #


def _gray_stratum(
    times: FloatArray, kind: IntArray, group_idx: IntArray, n_groups: int, rho: float
) -> tuple[FloatArray, FloatArray]:
    """Scores and their variance (all groups) within one stratum.

    Gray (1988), Ann Stat 16:1141, computed as cmprsk's ``crst``: per group the
    all-cause KM S_k(t-) and cumulative incidence F_k(t-); the score for group k
    sums the weighted difference between its cause-of-interest failures and those
    expected under a common subdistribution hazard; the variance is the paper's
    estimator (with cmprsk's tie factors), assembled from the running matrices
    C, v2 and v3 at the end.
    """
    g = n_groups
    at_risk = np.bincount(group_idx, minlength=g).astype(np.float64)
    km_before = np.ones(g)
    inc_before = np.zeros(g)
    f_before = 0.0
    score = np.zeros(g)
    var = np.zeros((g, g))
    c = np.zeros((g, g))
    v2 = np.zeros((g, g))
    v3 = np.zeros(g)

    for t in np.unique(times):
        here = times == t
        d1 = np.bincount(group_idx[here & (kind == 1)], minlength=g).astype(np.float64)
        d2 = np.bincount(group_idx[here & (kind == 2)], minlength=g).astype(np.float64)
        leaving = np.bincount(group_idx[here], minlength=g).astype(np.float64)
        nd1 = float(d1.sum())
        if nd1 == 0 and d2.sum() == 0:
            at_risk -= leaving
            continue
        active = at_risk > 0
        safe_n = np.where(active, at_risk, 1.0)
        km_after = np.where(active, km_before * (at_risk - d1 - d2) / safe_n, km_before)
        inc_after = np.where(active, inc_before + km_before * d1 / safe_n, inc_before)
        # h_k = n_k / S_k(t-) is the group's contribution to the pooled risk set.
        h = np.where(active, at_risk / np.where(active, km_before, 1.0), 0.0)
        tr = float(h.sum())
        tq = float((h * (1 - inc_before)).sum())
        f_after = f_before + nd1 / tr
        weight = (1 - f_before) ** rho
        a = weight * (np.diag(h) - np.outer(h, h) / tr)
        if f_before < 1:
            c += a * nd1 / (tr * (1 - f_before))
        if tq > 0:
            score += weight * (d1 - nd1 * h * (1 - inc_before) / tq)

        if nd1 > 0:
            idx = np.flatnonzero(active)
            km_k = km_after[idx]
            t4 = np.where(km_k > 0, 1 - (1 - f_after) / np.where(km_k > 0, km_k, 1.0), 1.0)
            t5 = 1 - (nd1 - 1) / (tr * km_before[idx] - 1) if nd1 > 1 else np.ones(idx.size)
            t3 = t5 * km_before[idx] * nd1 / (tr * at_risk[idx])
            v3[idx] += t4 * t4 * t3
            t1 = a[:, idx] - c[:, idx] * t4
            v2[:, idx] += t1 * t4 * t3
            var += (t1 * t3) @ t1.T
        idx = np.flatnonzero(active & (km_after > 0) & (d2 > 0))
        if idx.size:
            t4 = (1 - f_after) / km_after[idx]
            d2k = d2[idx]
            n_k = at_risk[idx]
            t5 = np.where(d2k > 1, 1 - (d2k - 1) / np.where(n_k > 1, n_k - 1, 1.0), 1.0)
            t3 = t5 * km_before[idx] ** 2 * d2k / n_k**2
            v3[idx] += t4 * t4 * t3
            t1 = c[:, idx] * t4
            v2[:, idx] -= t1 * t4 * t3
            var += (t1 * t3) @ t1.T

        at_risk -= leaving
        f_before = f_after
        inc_before = inc_after
        km_before = km_after

    var += (c * v3) @ c.T + c @ v2.T + v2 @ c.T
    return score, var


def gray_test(
    times: Sequence[float],
    status: Sequence[int],
    groups: Sequence[GroupLabel],
    cause: int = 1,
    *,
    strata: Sequence[GroupLabel] | None = None,
    rho: float = 0.0,
) -> GrayTest:
    """Gray's test that the cumulative incidence of ``cause`` is equal across groups.

    PROTOCOL section 8 ("Gray's test for cumulative incidence"). ``status``: 0 =
    censored, ``cause`` = event of interest, other values = competing events.
    Reproduces R ``cmprsk::cuminc(ftime, fstatus, group, strata, rho)$Tests``: the
    scores of all but the last group and their variance are summed over strata,
    statistic = s' V^-1 s ~ chi-square(groups - 1). ``rho`` is the power of the
    weight (1 - F(t-))^rho; the protocol uses 0.
    """
    t = _times_array(times)
    s_codes = _codes_array(status, t.size, "status")
    labels, group_idx = _labels(groups, t.size, "groups")
    strata_idx = _labels(strata, t.size, "strata")[1] if strata is not None else np.zeros(t.size, np.int64)
    kind = np.where(s_codes == 0, 0, np.where(s_codes == cause, 1, 2)).astype(np.int64)
    g = len(labels)
    if g < 2:
        return GrayTest(cause, tuple(labels), None, max(g - 1, 0), None)

    score = np.zeros(g)
    var = np.zeros((g, g))
    for stratum in np.unique(strata_idx):
        mask = strata_idx == stratum
        s_k, v_k = _gray_stratum(t[mask], kind[mask], group_idx[mask], g, rho)
        score += s_k
        var += v_k

    s = score[:-1]
    v = var[:-1, :-1]
    df = g - 1
    # cmprsk refuses a rank-deficient variance (prints -1); so do we (None).
    if not np.all(np.isfinite(v)) or np.linalg.matrix_rank(v) < df:
        return GrayTest(cause, tuple(labels), None, df, None)
    statistic = float(s @ np.linalg.solve(v, s))
    return GrayTest(cause, tuple(labels), statistic, df, _chi2_sf(statistic, df))
