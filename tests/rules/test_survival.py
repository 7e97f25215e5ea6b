"""Oracle and property tests for analysis.survival (PROTOCOL section 8).

Every value in docs/survival-reference.md is reproduced here to 1e-4. The
Klein & Moeschberger BMT data (PSIAIMS/CAMIS, Apache-2.0) is embedded below so the
suite needs no file outside the repository.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.survival import (
    ConfType,
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

TOL = 1e-4
approx = pytest.approx


# --------------------------------------------------------------------------- #
# Reference data (README sections 1-3)
# --------------------------------------------------------------------------- #


def parse(spec: str) -> tuple[list[float], list[int]]:
    """'9 13 13+' -> times and event flags (+ = censored)."""
    times, events = [], []
    for token in spec.split():
        times.append(float(token.rstrip("+")))
        events.append(0 if token.endswith("+") else 1)
    return times, events


AML_MAINTAINED = parse("9 13 13+ 18 23 28+ 31 34 45+ 48 161+")
AML_NONMAINTAINED = parse("5 5 8 8 12 16+ 23 27 30 33 43 45")
SIX_MP = parse("6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+ 32+ 34+ 35+")
PLACEBO = parse("1 1 2 2 3 4 4 5 5 8 8 8 8 11 11 12 12 15 17 22 23")

# Group: "T(days):Status(0 cens, 1 relapse, 2 death):WaitTime" per patient.
_BMT = {
    1: """
        2081:0:98 1602:0:1720 1496:0:127 1462:0:168 1433:0:93 1377:0:2187 1330:0:1006
        996:0:1319 226:0:208 1199:0:174 1111:0:236 530:0:151 1182:0:203 1167:0:191
        418:2:110 383:1:824 276:2:146 104:1:85 609:1:187 172:2:129 487:2:128 662:1:84
        194:2:329 230:1:147 526:2:943 122:2:2616 129:1:937 74:1:303 122:1:170
        86:2:239 466:2:508 192:1:74 109:1:393 55:1:331 1:2:196 107:2:178 110:1:361
        332:2:834
    """,
    2: """
        2569:0:270 2506:0:60 2409:0:120 2218:0:60 1857:0:90 1829:0:210 1562:0:90
        1470:0:240 1363:0:90 1030:0:210 860:0:180 1258:0:180 2246:0:105 1870:0:225
        1799:0:120 1709:0:90 1674:0:60 1568:0:90 1527:0:450 1324:0:75 957:0:90
        932:0:60 847:0:75 848:0:180 1850:0:180 1843:0:270 1535:0:180 1447:0:150
        1384:0:120 414:2:120 2204:2:60 1063:2:270 481:2:90 105:2:120 641:2:90
        390:2:120 288:2:90 421:1:90 79:2:90 748:1:60 486:1:120 48:2:150 272:1:120
        1074:2:150 381:1:120 10:2:240 53:2:180 80:2:150 35:2:150 248:1:30 704:2:105
        211:1:90 219:1:120 606:1:210
    """,
    3: """
        2640:0:750 2430:0:24 2252:0:120 2140:0:210 2133:0:240 1238:0:240 1631:0:690
        2024:0:105 1345:0:120 1136:0:900 845:0:210 422:1:210 162:2:300 84:1:105
        100:1:210 2:2:75 47:1:90 242:1:180 456:1:630 268:1:180 318:2:300 32:1:90
        467:1:120 47:1:135 390:1:210 183:2:120 105:2:150 115:1:270 164:2:285 93:1:240
        120:1:510 80:2:780 677:2:150 64:1:180 168:2:150 74:2:750 16:2:180 157:1:180
        625:1:150 48:1:210 273:1:240 63:2:360 76:1:330 113:1:240 363:2:180
    """,
}
BMT_GROUP = [g for g, spec in _BMT.items() for _ in spec.split()]
BMT_DAYS = [float(tok.split(":")[0]) for spec in _BMT.values() for tok in spec.split()]
BMT_STATUS = [int(tok.split(":")[1]) for spec in _BMT.values() for tok in spec.split()]
BMT_WAIT = [int(tok.split(":")[2]) for spec in _BMT.values() for tok in spec.split()]
BMT_YEARS = [t / 365.25 for t in BMT_DAYS]


def bmt_group(group: int) -> tuple[list[float], list[int]]:
    idx = [i for i, g in enumerate(BMT_GROUP) if g == group]
    return [BMT_YEARS[i] for i in idx], [BMT_STATUS[i] for i in idx]


def two_arms(
    a: tuple[list[float], list[int]], b: tuple[list[float], list[int]]
) -> tuple[list[float], list[int], list[str]]:
    return a[0] + b[0], a[1] + b[1], ["a"] * len(a[0]) + ["b"] * len(b[0])


def test_bmt_data_matches_readme_check() -> None:
    # README: group sizes 38/54/45, relapses 12/9/21, deaths 12/16/13.
    for group, size, relapses, deaths in [
        (1, 38, 12, 12),
        (2, 54, 9, 16),
        (3, 45, 21, 13),
    ]:
        _, status = bmt_group(group)
        assert (len(status), status.count(1), status.count(2)) == (
            size,
            relapses,
            deaths,
        )


# --------------------------------------------------------------------------- #
# Kaplan-Meier: R survival `aml` (README section 1)
# --------------------------------------------------------------------------- #

AML_MAINTAINED_TABLE = [
    # t, n, d, S, SE, log CI, log-log CI
    (9, 11, 1, 0.909091, 0.086678, (0.754134, 1), (0.508080, 0.986674)),
    (13, 10, 1, 0.818182, 0.116291, (0.619249, 1), (0.447429, 0.951162)),
    (18, 8, 1, 0.715909, 0.139665, (0.488426, 1), (0.350190, 0.899024)),
    (23, 7, 1, 0.613636, 0.152632, (0.376867, 0.999158), (0.265752, 0.835299)),
    (31, 5, 1, 0.490909, 0.164193, (0.254860, 0.945585), (0.167331, 0.753400)),
    (34, 4, 1, 0.368182, 0.162669, (0.154877, 0.875261), (0.092830, 0.657041)),
    (48, 2, 1, 0.184091, 0.153493, (0.035918, 0.943526), (0.011738, 0.525015)),
]


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize(("t", "n", "d", "s", "se", "log_ci", "loglog_ci"), AML_MAINTAINED_TABLE)
def test_aml_maintained_km(
    conf_type: ConfType,
    t: float,
    n: int,
    d: int,
    s: float,
    se: float,
    log_ci: tuple[float, float],
    loglog_ci: tuple[float, float],
) -> None:
    km = kaplan_meier(*AML_MAINTAINED, conf_type=conf_type)
    step = next(step for step in km.steps if step.time == t)
    assert (step.n_at_risk, step.n_event) == (n, d)
    assert step.survival == approx(s, abs=TOL)
    assert step.std_err == approx(se, abs=TOL)
    lower, upper = log_ci if conf_type == "log" else loglog_ci
    assert (step.lower, step.upper) == (approx(lower, abs=TOL), approx(upper, abs=TOL))


def test_aml_maintained_event_times_are_exactly_the_table() -> None:
    km = kaplan_meier(*AML_MAINTAINED)
    assert [step.time for step in km.steps if step.n_event] == [r[0] for r in AML_MAINTAINED_TABLE]
    # Censor-only times are steps too (R survfit), carrying the value: 13 has both.
    assert [(s.time, s.n_censor) for s in km.steps if s.n_censor] == [
        (13, 1),
        (28, 1),
        (45, 1),
        (161, 1),
    ]


@pytest.mark.parametrize(
    ("t", "s", "se", "lower", "upper"),
    [
        (5, 0.833333, 0.107583, 0.647037, 1),
        (8, 0.666667, 0.136083, 0.446846, 0.994625),
        (12, 0.583333, 0.142319, 0.361614, 0.940998),
        (23, 0.486111, 0.148130, 0.267518, 0.883319),
        (27, 0.388889, 0.146986, 0.185397, 0.815736),
        (30, 0.291667, 0.138715, 0.114831, 0.740822),
        (33, 0.194444, 0.121875, 0.056922, 0.664224),
        (43, 0.097222, 0.091866, 0.015257, 0.619549),
    ],
)
def test_aml_nonmaintained_km_log_ci(t: float, s: float, se: float, lower: float, upper: float) -> None:
    km = kaplan_meier(*AML_NONMAINTAINED, conf_type="log")
    step = next(step for step in km.steps if step.time == t)
    assert (step.survival, step.std_err) == (approx(s, abs=TOL), approx(se, abs=TOL))
    assert (step.lower, step.upper) == (approx(lower, abs=TOL), approx(upper, abs=TOL))


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
def test_aml_nonmaintained_s_zero_row_is_undefined(conf_type: ConfType) -> None:
    # R: (45, 0, NaN, NA). We return None for the undefined SE and bounds.
    last = kaplan_meier(*AML_NONMAINTAINED, conf_type=conf_type).steps[-1]
    assert (last.time, last.n_at_risk, last.n_event, last.survival) == (45, 1, 1, 0.0)
    assert (last.std_err, last.lower, last.upper) == (None, None, None)


def test_aml_logrank() -> None:
    times, events, groups = two_arms(AML_MAINTAINED, AML_NONMAINTAINED)
    result = logrank_test(times, events, groups)
    assert result.groups == ("a", "b")
    assert result.observed == (7, 11)
    assert result.expected == (approx(10.689336, abs=TOL), approx(7.310664, abs=TOL))
    assert result.variance[0][0] == approx(4.007551, abs=TOL)
    assert result.variance[1][1] == approx(4.007551, abs=TOL)
    assert result.variance[0][1] == approx(-4.007551, abs=TOL)
    assert (result.statistic, result.df) == (approx(3.396389, abs=TOL), 1)
    assert result.p_value == approx(0.065339, abs=TOL)


# R print(survfit(Surv(time, status) ~ x, aml)) with the log CI: 31 (18, NA) and
# 23 (8, NA). Both follow from the README tables: the first time each curve
# (estimate, lower, upper) is <= 0.5.
@pytest.mark.parametrize(("conf_type", "expected"), [("log", (31, 18, None)), ("log-log", (31, 13, None))])
def test_aml_maintained_median(conf_type: ConfType, expected: tuple[float, float, float | None]) -> None:
    result = median_survival(kaplan_meier(*AML_MAINTAINED, conf_type=conf_type))
    assert (result.median, result.lower, result.upper) == expected


@pytest.mark.parametrize(("conf_type", "expected"), [("log", (23, 8, None)), ("log-log", (23, 5, 33))])
def test_aml_nonmaintained_median(conf_type: ConfType, expected: tuple[float, float, float | None]) -> None:
    result = median_survival(kaplan_meier(*AML_NONMAINTAINED, conf_type=conf_type))
    assert (result.median, result.lower, result.upper) == expected


@pytest.mark.parametrize(
    ("times", "events", "expected"),
    [
        # S = 0.5 exactly from 2 to 3: R takes the midpoint.
        ([1, 2, 3, 4], [1, 1, 1, 1], 2.5),
        ([1, 2, 3], [1, 1, 1], 2.0),
        # Never reaches 0.5: not reached.
        ([1, 2, 3, 4], [1, 0, 0, 0], None),
        ([], [], None),
    ],
)
def test_median_rule(times: list[float], events: list[int], expected: float | None) -> None:
    assert median_survival(kaplan_meier(times, events)).median == expected


@pytest.mark.parametrize(
    ("grid", "expected"),
    [([0, 9, 10, 13, 14, 161, 162], (11, 11, 10, 10, 8, 1, 0)), ([], ())],
)
def test_numbers_at_risk_r_convention(grid: list[float], expected: tuple[int, ...]) -> None:
    # At risk at t: time >= t, so a patient censored or failing at t still counts.
    assert numbers_at_risk(kaplan_meier(*AML_MAINTAINED), grid) == expected


# --------------------------------------------------------------------------- #
# Freireich 6-MP vs placebo (README section 2)
# --------------------------------------------------------------------------- #


def test_freireich_logrank() -> None:
    times, events, groups = two_arms(SIX_MP, PLACEBO)
    result = logrank_test(times, events, groups)
    assert result.observed == (9, 21)
    assert result.expected == (approx(19.250501, abs=TOL), approx(10.749499, abs=TOL))
    assert result.statistic == approx(16.792941, abs=TOL)
    assert result.p_value == approx(4.16881e-05, rel=1e-4)
    # Two groups: chi2 = (O - E)^2 / V, V symmetric with rows summing to 0.
    v = result.variance
    assert v[0][0] == approx((9 - 19.250501) ** 2 / 16.792941, abs=TOL)
    assert v[0][1] == approx(-v[0][0]) and v[1][1] == approx(v[0][0])


@pytest.mark.parametrize(
    ("t", "s", "se", "lower", "upper"),
    [
        (6, 0.857143, 0.076360, 0.619718, 0.951552),
        (7, 0.806723, 0.086935, 0.563147, 0.922809),
        (10, 0.752941, 0.096350, 0.503200, 0.889362),
        (13, 0.690196, 0.106815, 0.431610, 0.849066),
        (16, 0.627451, 0.114054, 0.367511, 0.804912),
        (22, 0.537815, 0.128234, 0.267779, 0.746791),
        (23, 0.448179, 0.134591, 0.188052, 0.680143),
    ],
)
def test_freireich_6mp_km_loglog(t: float, s: float, se: float, lower: float, upper: float) -> None:
    km = kaplan_meier(*SIX_MP)  # log-log is the default (docs/api.md)
    point = survival_at(km, t)
    assert point is not None
    assert (point.estimate, point.std_err) == (approx(s, abs=TOL), approx(se, abs=TOL))
    assert (point.lower, point.upper) == (
        approx(lower, abs=TOL),
        approx(upper, abs=TOL),
    )


def test_freireich_landmark_beyond_follow_up_not_estimable() -> None:
    km = kaplan_meier(*SIX_MP)
    assert km.last_follow_up == 35
    assert survival_at(km, 100) is None
    # At the last follow-up itself it is still estimable: the value after 23.
    at_35 = survival_at(km, 35)
    assert at_35 is not None and at_35.estimate == approx(0.448179, abs=TOL)
    assert at_35.n_at_risk == 1


def test_landmark_is_right_continuous_between_events() -> None:
    km = kaplan_meier(*SIX_MP)
    at_21 = survival_at(km, 21.9)
    at_22 = survival_at(km, 22)
    assert at_21 is not None and at_21.estimate == approx(0.627451, abs=TOL)
    assert at_22 is not None and at_22.estimate == approx(0.537815, abs=TOL)
    assert (at_21.n_at_risk, at_22.n_at_risk) == (7, 7)


@pytest.mark.parametrize(("conf_type", "bounds"), [("log", (1.0, 1.0)), ("log-log", (None, None))])
def test_landmark_before_first_event(conf_type: ConfType, bounds: tuple[float | None, float | None]) -> None:
    point = survival_at(kaplan_meier(*SIX_MP, conf_type=conf_type), 3)
    assert point is not None
    assert (point.estimate, point.std_err, (point.lower, point.upper)) == (
        1.0,
        0.0,
        bounds,
    )
    assert point.n_at_risk == 21


# --------------------------------------------------------------------------- #
# Competing risks: BMT (README section 3)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("cause", "statistic", "p_value"),
    [(1, 11.9228820, 0.0025762), (2, 0.1374108, 0.9336017)],
)
def test_bmt_gray_test(cause: int, statistic: float, p_value: float) -> None:
    result = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, cause)
    assert result.groups == (1, 2, 3)
    assert result.statistic == approx(statistic, abs=1e-6)
    assert (result.df, result.p_value) == (2, approx(p_value, abs=1e-6))


def test_gray_test_does_not_depend_on_time_unit() -> None:
    days = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, 1).statistic
    assert gray_test(BMT_YEARS, BMT_STATUS, BMT_GROUP, 1).statistic == approx(days)


@pytest.mark.parametrize(
    ("years", "f", "se", "lower", "upper"),
    [
        (1, 0.074074, 0.036037, 0.023416, 0.164587),
        (1.5, 0.129630, 0.046258, 0.056297, 0.234380),
        (2, 0.148148, 0.048938, 0.068545, 0.256546),
        (3, 0.166667, 0.051359, 0.081269, 0.278302),
    ],
)
def test_bmt_relapse_cif_group_2(years: float, f: float, se: float, lower: float, upper: float) -> None:
    point = incidence_at(cumulative_incidence(*bmt_group(2), cause=1), years)
    assert point is not None
    assert (point.estimate, point.std_err) == (approx(f, abs=TOL), approx(se, abs=TOL))
    assert (point.lower, point.upper) == (
        approx(lower, abs=TOL),
        approx(upper, abs=TOL),
    )


@pytest.mark.parametrize(
    ("group", "cause", "f", "se"),
    [
        (1, 1, 0.237986, 0.070476),
        (1, 2, 0.212815, 0.068061),
        (3, 1, 0.355556, 0.072622),
        (3, 2, 0.266667, 0.067182),
    ],
)
def test_bmt_cif_at_one_year(group: int, cause: int, f: float, se: float) -> None:
    point = incidence_at(cumulative_incidence(*bmt_group(group), cause=cause), 1)
    assert point is not None
    assert (point.estimate, point.std_err) == (approx(f, abs=TOL), approx(se, abs=TOL))


@pytest.mark.parametrize(
    ("group", "s", "lower", "upper"),
    [
        (1, 0.549199, 0.378297, 0.691100),
        (2, 0.777778, 0.641988, 0.867178),
        (3, 0.377778, 0.239099, 0.515688),
    ],
)
def test_bmt_disease_free_survival_at_one_year(group: int, s: float, lower: float, upper: float) -> None:
    years, status = bmt_group(group)
    point = survival_at(kaplan_meier(years, [int(x > 0) for x in status]), 1)
    assert point is not None
    assert point.estimate == approx(s, abs=TOL)
    assert (point.lower, point.upper) == (
        approx(lower, abs=TOL),
        approx(upper, abs=TOL),
    )


def test_bmt_disease_free_survival_logrank() -> None:
    result = logrank_test(BMT_DAYS, [int(s > 0) for s in BMT_STATUS], BMT_GROUP)
    assert (result.statistic, result.df) == (approx(13.803722, abs=TOL), 2)
    assert result.observed == (24, 25, 34)
    assert sum(result.expected) == approx(83)


def test_cif_ci_when_estimate_rounds_just_below_one() -> None:
    # Found by hypothesis: F = 1 - 1e-16 made the log(-log) exponent overflow.
    cif = cumulative_incidence([1, 1, 2, 3, 4], [1, 1, 1, 1, 1], 1)
    last = cif.steps[-1]
    assert last.estimate == approx(1.0)
    assert last.lower is None or 0 <= last.lower <= last.estimate
    assert last.upper is None or last.estimate <= last.upper <= 1


def test_cif_landmark_rules() -> None:
    cif = cumulative_incidence(*bmt_group(2), cause=1)
    assert cif.n_events == 9 and cif.n_competing == 16
    assert incidence_at(cif, 100) is None  # beyond last follow-up (2569 d = 7.03 y)
    before = incidence_at(cif, 0.0)
    assert before is not None and (before.estimate, before.std_err) == (0.0, 0.0)
    assert (before.lower, before.upper) == (None, None)


# --------------------------------------------------------------------------- #
# Stratified tests
# --------------------------------------------------------------------------- #

BMT_LONG_WAIT = ["long" if w > 180 else "short" for w in BMT_WAIT]


def test_stratified_logrank_with_one_stratum_equals_unstratified() -> None:
    events = [int(s > 0) for s in BMT_STATUS]
    plain = logrank_test(BMT_DAYS, events, BMT_GROUP)
    one = logrank_test(BMT_DAYS, events, BMT_GROUP, strata=["all"] * len(BMT_DAYS))
    assert one == plain


def test_stratified_logrank_sums_u_and_v_over_strata() -> None:
    # Hand check: run each stratum alone, add O - E and V, form U' V^-1 U.
    events = [int(s > 0) for s in BMT_STATUS]
    result = logrank_test(BMT_DAYS, events, BMT_GROUP, strata=BMT_LONG_WAIT)
    u = [0.0, 0.0, 0.0]
    v = [[0.0] * 3 for _ in range(3)]
    for stratum in ("long", "short"):
        idx = [i for i, s in enumerate(BMT_LONG_WAIT) if s == stratum]
        part = logrank_test(
            [BMT_DAYS[i] for i in idx],
            [events[i] for i in idx],
            [BMT_GROUP[i] for i in idx],
        )
        assert part.groups == (1, 2, 3)
        for i in range(3):
            u[i] += part.observed[i] - part.expected[i]
            for j in range(3):
                v[i][j] += part.variance[i][j]
    assert result.observed == (24, 25, 34)
    assert [o - e for o, e in zip(result.observed, result.expected, strict=True)] == approx(u)
    assert [list(row) for row in result.variance] == [approx(row) for row in v]
    # Drop the first group and solve the 2x2 system by hand.
    a, b, c = v[1][1], v[1][2], v[2][2]
    det = a * c - b * b
    chi2 = (c * u[1] ** 2 - 2 * b * u[1] * u[2] + a * u[2] ** 2) / det
    assert (result.statistic, result.df) == (approx(chi2), 2)
    assert result.statistic != approx(13.803722, abs=0.01)


def test_stratified_gray_with_one_stratum_equals_unstratified() -> None:
    plain = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, 1)
    one = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, 1, strata=[7] * len(BMT_DAYS))
    assert one.statistic == approx(plain.statistic, rel=1e-12)


def test_stratified_gray_ignores_stratum_labels_and_order() -> None:
    by_wait = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, 1, strata=BMT_LONG_WAIT)
    renamed = ["z" if s == "long" else "a" for s in BMT_LONG_WAIT]
    again = gray_test(BMT_DAYS, BMT_STATUS, BMT_GROUP, 1, strata=renamed)
    assert by_wait.statistic is not None and by_wait.df == 2
    assert again.statistic == approx(by_wait.statistic)
    assert by_wait.statistic != approx(11.9228820, abs=0.01)


# --------------------------------------------------------------------------- #
# Degenerate input: documented results, no crash
# --------------------------------------------------------------------------- #


def test_empty_input() -> None:
    km = kaplan_meier([], [])
    assert (km.n, km.steps, km.last_follow_up) == (0, (), None)
    assert survival_at(km, 1) is None
    assert numbers_at_risk(km, [0, 5]) == (0, 0)
    cif = cumulative_incidence([], [], 1)
    assert (cif.n, cif.steps, incidence_at(cif, 1)) == (0, (), None)
    lr = logrank_test([], [], [])
    assert (lr.groups, lr.statistic, lr.df, lr.p_value) == ((), None, 0, None)
    gt = gray_test([], [], [], 1)
    assert (gt.groups, gt.statistic, gt.p_value) == ((), None, None)


def test_all_censored() -> None:
    times, groups = [1.0, 2, 2, 5, 7], ["x", "y", "x", "y", "x"]
    km = kaplan_meier(times, [0] * 5)
    assert {s.survival for s in km.steps} == {1.0}
    assert {s.std_err for s in km.steps} == {0.0}
    assert median_survival(km).median is None
    cif = cumulative_incidence(times, [0] * 5, 1)
    assert {(s.estimate, s.std_err, s.lower) for s in cif.steps} == {(0.0, 0.0, None)}
    lr = logrank_test(times, [0] * 5, groups)
    assert (lr.statistic, lr.df, lr.p_value) == (None, 0, None)
    assert lr.observed == (0, 0) and lr.expected == (0, 0)
    gt = gray_test(times, [0] * 5, groups, 1)
    assert (gt.statistic, gt.df, gt.p_value) == (None, 1, None)


def test_single_group_tests_have_nothing_to_compare() -> None:
    lr = logrank_test([1, 2, 3], [1, 1, 0], ["only"] * 3)
    assert (lr.groups, lr.statistic, lr.p_value) == (("only",), None, None)
    gt = gray_test([1, 2, 3], [1, 2, 0], ["only"] * 3, 1)
    assert (gt.groups, gt.statistic, gt.df) == (("only",), None, 0)


def test_group_without_events_in_logrank_is_dropped_from_df() -> None:
    # Group "c" is censored at time 0 only: expected 0, so like survdiff df = 1.
    lr = logrank_test([0, 1, 2, 3, 4], [0, 1, 1, 1, 0], ["c", "a", "b", "a", "b"])
    assert lr.groups == ("a", "b", "c") and lr.expected[2] == 0 and lr.df == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kaplan_meier([1, 2], [1]), "one entry per time"),
        (lambda: kaplan_meier([-1], [1]), ">= 0"),
        (lambda: kaplan_meier([math.nan], [1]), "finite"),
        (lambda: kaplan_meier([1], [2]), "0 \\(censored\\) or 1"),
        (lambda: kaplan_meier([1], [1], conf_type="plain"), "conf_type"),  # type: ignore[arg-type]
        (lambda: kaplan_meier([1], [1], conf_level=95), "conf_level"),
        (lambda: logrank_test([1, 2], [1, 1], ["a"]), "one entry per time"),
        (lambda: cumulative_incidence([1, 2], [1], 1), "one entry per time"),
    ],
)
def test_malformed_input_raises(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

patients = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=15),  # time (small range: many ties)
        st.integers(min_value=0, max_value=2),  # status: 0 cens, 1, 2 causes
        st.sampled_from(["a", "b", "c"]),  # group
    ),
    min_size=0,
    max_size=30,
)
# No example database: the suite writes nothing into the work tree.
FAST = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def columns(
    rows: Sequence[tuple[int, int, str]],
) -> tuple[list[float], list[int], list[str]]:
    return [float(r[0]) for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def bounded(value: float | None) -> bool:
    return value is None or -1e-12 <= value <= 1 + 1e-12


@FAST
@given(patients, st.sampled_from(["log", "log-log"]))
def test_km_is_a_non_increasing_probability(rows: list[tuple[int, int, str]], ct: ConfType) -> None:
    times, status, _ = columns(rows)
    km = kaplan_meier(times, [int(s > 0) for s in status], conf_type=ct)
    previous = 1.0
    for step in km.steps:
        assert 0 <= step.survival <= previous + 1e-12
        assert bounded(step.lower) and bounded(step.upper)
        if step.lower is not None and step.upper is not None:
            assert step.lower - 1e-12 <= step.survival <= step.upper + 1e-12
        previous = step.survival


@FAST
@given(patients)
def test_cif_is_a_non_decreasing_probability(rows: list[tuple[int, int, str]]) -> None:
    times, status, _ = columns(rows)
    for cause in (1, 2):
        previous = 0.0
        for step in cumulative_incidence(times, status, cause).steps:
            assert previous - 1e-12 <= step.estimate <= 1 + 1e-12
            assert step.std_err >= 0
            assert bounded(step.lower) and bounded(step.upper)
            previous = step.estimate


@FAST
@given(patients)
def test_cifs_plus_event_free_km_sum_to_one(rows: list[tuple[int, int, str]]) -> None:
    times, status, _ = columns(rows)
    km = kaplan_meier(times, [int(s > 0) for s in status])
    cifs = [cumulative_incidence(times, status, cause) for cause in (1, 2)]
    for i, step in enumerate(km.steps):
        total = step.survival + sum(cif.steps[i].estimate for cif in cifs)
        assert total == approx(1.0, abs=1e-12)
        assert all(cif.steps[i].time == step.time for cif in cifs)


def _same_curves(a: KaplanMeier | CumulativeIncidence, b: KaplanMeier | CumulativeIncidence) -> None:
    assert len(a.steps) == len(b.steps)
    for x, y in zip(a.steps, b.steps, strict=True):
        for field in x.__dataclass_fields__:
            u, v = getattr(x, field), getattr(y, field)
            assert (u is None and v is None) or u == approx(v, rel=1e-9, abs=1e-12)


def _same_stat(a: float | None, b: float | None) -> None:
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert a == approx(b, rel=1e-7, abs=1e-9)


@FAST
@given(patients, st.randoms(use_true_random=False))
def test_reordering_and_relabelling_change_nothing(rows: list[tuple[int, int, str]], rnd: random.Random) -> None:
    times, status, groups = columns(rows)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    rename = dict(zip("abc", rnd.sample(["x", "y", "z"], 3), strict=True))
    t2, s2, g2 = columns(shuffled)
    g2 = [rename[g] for g in g2]
    events, events2 = [int(s > 0) for s in status], [int(s > 0) for s in s2]

    _same_curves(kaplan_meier(times, events), kaplan_meier(t2, events2))
    _same_curves(cumulative_incidence(times, status, 1), cumulative_incidence(t2, s2, 1))
    lr, lr2 = logrank_test(times, events, groups), logrank_test(t2, events2, g2)
    _same_stat(lr.statistic, lr2.statistic)
    assert lr.df == lr2.df
    observed = dict(zip(lr.groups, lr.observed, strict=True))
    observed2 = dict(zip(lr2.groups, lr2.observed, strict=True))
    assert {rename[g]: o for g, o in observed.items()} == observed2
    for cause in (1, 2):
        gt, gt2 = gray_test(times, status, groups, cause), gray_test(t2, s2, g2, cause)
        _same_stat(gt.statistic, gt2.statistic)
        assert gt.df == gt2.df


@FAST
@given(patients)
def test_logrank_observed_equals_expected_in_total(
    rows: list[tuple[int, int, str]],
) -> None:
    times, status, groups = columns(rows)
    lr = logrank_test(times, [int(s > 0) for s in status], groups)
    assert sum(lr.observed) == approx(sum(lr.expected))
    if lr.statistic is not None:
        assert lr.statistic >= -1e-9 and lr.p_value is not None and 0 <= lr.p_value <= 1
