"""BOIN and i3+3 trials imported as bundles, their escalation API read back, and every
answer compared with an oracle written here from the papers (issue 17), independent of
analysis/designs: only scipy's Beta distribution and the rules as published.

BOIN (Liu & Yuan 2015, JRSS C 64:507; R BOIN 2.7.2 get.oc / select.mtd): with phi the
target, p.saf = 0.6 phi and p.tox = 1.4 phi,
  lambda_e = log((1 - p.saf) / (1 - phi)) / log(phi (1 - p.saf) / (p.saf (1 - phi)))
  lambda_d = log((1 - phi) / (1 - p.tox)) / log(p.tox (1 - phi) / (phi (1 - p.tox)))
(0.236 and 0.358 for phi = 0.3); at the current level y/n <= lambda_e escalates, y/n >=
lambda_d de-escalates, otherwise stay. i3+3 (Liu, Wang & Ji 2020, J Biopharm Stat 30:294):
equivalence interval EI = [phi - 0.05, phi + 0.05]; y/n below it escalates, inside it
stays, above it stays if (y - 1)/n is below the EI and de-escalates otherwise.
Both: a level with n >= 3 and P(p > phi | Beta(1 + y, 1 + n - y)) > 0.95 is eliminated with
every level above it (the lowest eliminated: stop, no MTD); no escalation into an
eliminated level or above the top, no de-escalation below level 1 (stay); an eliminated
current level de-escalates; at the maximum sample size the MTD is the treated, non-
eliminated level whose isotonic estimate (PAVA on (y + 0.05)/(n + 0.1), weights 1/variance
of Beta(y + 0.05, n - y + 0.05)) is closest to phi, ties to the higher level below phi and
the lower above it.

The trial follows the oracle: each cohort is treated where the oracle sends it, the
oracle's decision on it is signed in the bundle, and the API is compared with the oracle on
the whole history at the end.
"""

import datetime
import math
import random
from fractions import Fraction

import pytest
from scipy.stats import beta

from core.tokens import token_issue
from exchange.bundle import bundle_import
from exchange.generate import INVESTIGATOR, LEVELS, SITES, _patient, generate_trial
from tests.factories import PASSWORD
from trial import services

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
K = len(LEVELS)  # 4 dose levels


# --- the oracle -----------------------------------------------------------------------


def boin_lambdas(phi: float) -> tuple[float, float]:
    p1, p2 = 0.6 * phi, 1.4 * phi
    lambda_e = math.log((1 - p1) / (1 - phi)) / math.log(phi * (1 - p1) / (p1 * (1 - phi)))
    lambda_d = math.log((1 - phi) / (1 - p2)) / math.log(p2 * (1 - phi) / (phi * (1 - p2)))
    return lambda_e, lambda_d


def zone(design: str, phi: float, n: int, y: int) -> str:
    """'E', 'S' or 'D' for y DLTs in n at the current level."""
    if design == "boin":
        lambda_e, lambda_d = boin_lambdas(phi)
        return "E" if y / n <= lambda_e else "D" if y / n >= lambda_d else "S"
    # i3+3 in exact arithmetic: the EI's ends are inside it.
    rate, low, high = Fraction(y, n), Fraction(str(phi)) - Fraction(1, 20), Fraction(str(phi)) + Fraction(1, 20)
    if rate < low:
        return "E"
    if rate <= high:
        return "S"
    return "S" if Fraction(y - 1, n) < low else "D"


def eliminated_from(phi: float, n: list[int], y: list[int]) -> int | None:
    for i in range(K):
        if n[i] >= 3 and beta.sf(phi, 1 + y[i], 1 + n[i] - y[i]) > 0.95:
            return i + 1
    return None


def isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators with a stack)."""
    blocks: list[list[float]] = []  # [mean, weight, size]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, s2 = blocks.pop()
            m1, w1, s1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, s1 + s2])
    return [m for m, _, size in blocks for _ in range(int(size))]


def select_mtd(phi: float, n: list[int], y: list[int], elim: int | None) -> int | None:
    admissible = [i for i in range(K) if n[i] > 0 and (elim is None or i + 1 < elim)]
    if elim == 1 or not admissible:
        return None
    raw = [(y[i] + 0.05) / (n[i] + 0.1) for i in admissible]
    var = [(y[i] + 0.05) * (n[i] - y[i] + 0.05) / ((n[i] + 0.1) ** 2 * (n[i] + 1.1)) for i in admissible]
    fit = isotonic(raw, [1 / v for v in var])
    distance = [abs(p - phi) for p in fit]
    best = min(distance)
    near = [k for k, d in enumerate(distance) if d - best < 1e-9]
    # A tie (a pooled block): the higher level when its estimate is below phi, else the lower.
    pick = near[-1] if fit[near[0]] < phi else near[0]
    return admissible[pick] + 1


def oracle(design: str, phi: float, max_n: int, cohorts: list[tuple[int, int, int]]) -> dict:  # type: ignore[type-arg]
    """The decision after the last of ``cohorts`` ((level, size, DLTs) in order)."""
    n, y = [0] * K, [0] * K
    for level, size, dlts in cohorts:
        n[level - 1] += size
        y[level - 1] += dlts
    elim = eliminated_from(phi, n, y)
    eliminated = list(range(elim, K + 1)) if elim else []
    if elim == 1:
        return {"decision": "stop_no_mtd", "level": None, "eliminated": eliminated, "mtd": None}
    if sum(n) >= max_n:
        mtd = select_mtd(phi, n, y, elim)
        decision = "mtd_declared" if mtd else "stop_no_mtd"
        return {"decision": decision, "level": mtd, "eliminated": eliminated, "mtd": mtd}
    d = cohorts[-1][0]
    z = "D" if elim is not None and d >= elim else zone(design, phi, n[d - 1], y[d - 1])
    nxt = d
    if z == "E" and d < K and (elim is None or d + 1 < elim):
        nxt = d + 1
    elif z == "D" and d > 1:
        nxt = d - 1
    decision = "escalate" if nxt > d else "de_escalate" if nxt < d else "stay"
    return {"decision": decision, "level": nxt, "eliminated": eliminated, "mtd": None}


def follow(design: str, phi: float, size: int, max_n: int, dlts: list[int]) -> tuple[list, list]:  # type: ignore[type-arg]
    """Treat cohorts where the oracle sends them with the given DLT counts; the cohorts and
    the oracle's decision after each."""
    cohorts: list[tuple[int, int, int]] = []
    decisions = []
    level, treated = 1, 0
    for count in dlts:
        places = min(size, max_n - treated)
        cohorts.append((level, places, min(count, places)))
        treated += places
        decisions.append(oracle(design, phi, max_n, cohorts))
        if decisions[-1]["decision"] in ("mtd_declared", "stop_no_mtd"):
            break
        level = decisions[-1]["level"]
    return cohorts, decisions


def test_the_oracle_reproduces_the_published_numbers() -> None:
    # Liu & Yuan 2015 Table 1 / R BOIN get.boundary(target = 0.3): 0.236 and 0.358 (0.35852).
    lambda_e, lambda_d = boin_lambdas(0.3)
    assert (lambda_e, lambda_d) == (pytest.approx(0.2365, abs=1e-4), pytest.approx(0.3585, abs=1e-4))
    # get.boundary(0.3, ncohort = 10, cohortsize = 3): eliminate at 3/3, 4/6, 5/9 (R prints these).
    assert [next(t for t in range(n + 1) if beta.sf(0.3, 1 + t, 1 + n - t) > 0.95) for n in (3, 6, 9)] == [3, 4, 5]
    # i3+3 at phi = 0.2: 1/3 is above the EI but 0/3 is below it: stay (the paper's example).
    assert zone("i3+3", 0.2, 3, 1) == "S" and zone("i3+3", 0.3, 3, 2) == "D"
    # The isotonic fit pools the violators.
    assert isotonic([0.1, 0.3, 0.2], [1, 1, 1]) == pytest.approx([0.1, 0.25, 0.25])


# --- the trials, imported as bundles --------------------------------------------------


def bundle_of(design: str, phi: float, size: int, max_n: int, cohorts: list, decisions: list, code: str) -> dict:  # type: ignore[type-arg]
    """A minimal trial-bundle/1: the design keys, the patients of ``cohorts`` (each cohort's
    DLT window closed before the next) and every decision but the last signed; the last too
    when it ends the trial (the MTD declared, or the stop)."""
    final = decisions[-1]["decision"] in ("mtd_declared", "stop_no_mtd")
    bundle = generate_trial(0, seed=3, code=code)
    bundle["trial"].update(
        {"design": design, "title": f"{design} oracle trial", "target_dlt_rate": phi, "cohort_size": size,
         "max_sample_size": max_n, "dlt_window_cycles": 1}
    )  # fmt: skip
    bundle["patients"], bundle["escalation_signoffs"] = [], []
    rng, numbers, t = random.Random(7), {c: 0 for c, _ in SITES}, datetime.date(2017, 8, 1)
    for k, (level, places, dlts) in enumerate(cohorts):
        for j in range(places):
            site = SITES[len(bundle["patients"]) % len(SITES)][0]
            numbers[site] += 1
            patient = _patient(
                rng, numbers[site], site, level, t + 3 * j * DAY, dlt=j < dlts, today=datetime.date(2026, 1, 1)
            )
            # Only what the DLT outcome rests on (cycle 1, the window's one cycle, the DLT and its
            # adjudication): a smaller bundle imports faster.
            patient |= {"cycles": patient["cycles"][:1], "adverse_events": patient["adverse_events"][: j < dlts],
                        "assessments": [], "events": [], "concomitant_medications": []}  # fmt: skip
            bundle["patients"].append(patient)
        t += 76 * DAY
        if k < len(cohorts) - 1 or final:
            decided = decisions[k]
            bundle["escalation_signoffs"].append(
                {"dose_level": decided["level"] or 1, "decision": decided["decision"], "by": INVESTIGATOR,
                 "at": t.isoformat(), "rationale": "Dose-escalation meeting."}
            )  # fmt: skip
        t += 5 * DAY
    return bundle


# (design, target, cohort size, maximum sample size, DLTs per cohort); few and small, as each is a
# bundle import (1-3 s): the random sweep below covers the rules more widely without the database.
TRIALS = [
    ("boin", 0.3, 3, 30, [0, 0]),  # 0/3 at level 2: escalate
    ("boin", 0.3, 3, 30, [0, 0, 1, 2]),  # 2/3 at level 3: de-escalate
    ("boin", 0.3, 3, 30, [0, 3]),  # 3/3 at level 2: levels 2-4 eliminated
    ("boin", 0.3, 3, 12, [0, 0, 2, 0]),  # the final MTD: isotonic regression pools 0/3, 0/6: level 2, not 1
    ("boin", 0.2, 2, 10, [0, 1, 0, 0, 2]),  # cohorts of 2: isotonic pick at the end
    ("boin", 0.3, 3, 30, [2, 1]),  # 3/6 at level 1 (P = 0.66): no elimination, stay
    ("boin", 0.3, 3, 30, [3]),  # level 1 eliminated: stop, no MTD
    ("i3+3", 0.2, 3, 30, [0, 1, 0]),  # 1/3 above the EI, 0/3 below it: stay
    ("i3+3", 0.3, 2, 30, [0, 0, 0]),  # cohorts of 2, 0/2: escalate
    ("i3+3", 0.3, 3, 30, [0, 0, 2]),  # 2/3 at level 3: de-escalate
    ("i3+3", 0.25, 3, 12, [0, 0, 2, 0]),  # the final MTD, as above
    ("i3+3", 0.3, 3, 30, [0, 3, 1]),  # level 2 eliminated, level 1 de-escalated to: stay
]


@pytest.mark.parametrize(("design", "phi", "size", "max_n", "dlts"), TRIALS)
def test_the_escalation_api_agrees_with_the_oracle(client, django_user_model, design, phi, size, max_n, dlts) -> None:  # type: ignore[no-untyped-def]
    cohorts, decisions = follow(design, phi, size, max_n, dlts)
    trial = bundle_import(bundle_of(design, phi, size, max_n, cohorts, decisions, code="ORACLE-1"))
    user = django_user_model.objects.create_user("investigator", password=PASSWORD)
    services.role_grant(user=user, trial=trial, role="investigator", by=user, reason="test")
    _, key = token_issue(user=user, name="t")

    state = client.get(f"/api/v1/trials/{trial.pk}/escalation/", HTTP_AUTHORIZATION=f"Token {key}").json()
    expected = decisions[-1]
    assert (state["design"], state["decision"], state["recommended_dose_level"]) == (
        design, expected["decision"], expected["level"],
    )  # fmt: skip
    assert state["eliminated_dose_levels"] == expected["eliminated"]
    assert state["warnings"] == []  # the oracle's earlier decisions are the engine's too
    assert [c["dlts"] for c in state["cohorts"]] == [
        sum(c[2] for c in cohorts if c[0] == lv) for lv in sorted({c[0] for c in cohorts})
    ]
    if expected["decision"] in ("mtd_declared", "stop_no_mtd"):
        # Signed in the bundle: the final MTD is in effect, and nobody more is enrolled.
        assert (state["awaiting_signoff"], state["mtd_dose_level"], state["open_slots"]) == (None, expected["mtd"], [])
    else:
        assert state["awaiting_signoff"] == {"decision": expected["decision"], "dose_level": expected["level"]}
        assert state["mtd_dose_level"] is None


def test_the_cases_cover_every_decision_and_the_final_mtd() -> None:
    # The table above is worth running only if it reaches each branch of the rules.
    seen = {(d, follow(d, phi, size, max_n, dlts)[1][-1]["decision"]) for d, phi, size, max_n, dlts in TRIALS}
    for design in ("boin", "i3+3"):
        assert {x for d, x in seen if d == design} >= {"escalate", "stay", "de_escalate", "mtd_declared"}
    assert ("boin", "stop_no_mtd") in seen
    # One final MTD that isotonic regression decides: 0/3 at level 1, 0/6 at level 2, 2/3 at 3.
    # Raw (y + 0.05)/(n + 0.1): 0.016, 0.008, 0.645, closest to 0.3 is level 1; pooled, levels
    # 1 and 2 tie at 0.011 below the target, and the higher wins.
    cohorts, decisions = follow("boin", 0.3, 3, 12, [0, 0, 2, 0])
    assert [c[:2] for c in cohorts] == [(1, 3), (2, 3), (3, 3), (2, 3)] and decisions[-1]["mtd"] == 2


def test_the_pure_designs_agree_with_the_oracle_on_random_trials() -> None:
    """The same comparison without the database, on many simulated trials: every state of
    300 seeded trials (targets, cohort sizes 1-4, maximum sample sizes up to 40), the rule
    module (analysis/designs) against the oracle. 3/20 at target 0.2 found the i3+3 EI bug."""
    from analysis.designs.boin import Boin
    from analysis.designs.common import LevelOutcome
    from analysis.designs.i3plus3 import I3Plus3
    from analysis.designs.interval import IntervalSettings

    rng = random.Random(17)
    states = 0
    for _ in range(300):
        design = rng.choice(["boin", "i3+3"])
        phi, size = rng.choice([0.2, 0.25, 0.3]), rng.choice([1, 2, 3, 3, 4])
        max_n = max(size, size * rng.randint(2, 10) - rng.choice([0, 0, 1]))
        true_p = sorted(rng.uniform(0, 0.7) for _ in range(K))
        pure = (Boin if design == "boin" else I3Plus3)(tuple(d for _, d in LEVELS), IntervalSettings(phi, size, max_n))
        cohorts: list[tuple[int, int, int]] = []
        level = 1
        while True:
            places = min(size, max_n - sum(c[1] for c in cohorts))
            cohorts.append((level, places, sum(rng.random() < true_p[level - 1] for _ in range(places))))
            expected = oracle(design, phi, max_n, cohorts)
            n = [sum(c[1] for c in cohorts if c[0] == lv) for lv in range(1, K + 1)]
            y = [sum(c[2] for c in cohorts if c[0] == lv) for lv in range(1, K + 1)]
            got = pure.decide([LevelOutcome(a, b) for a, b in zip(n, y, strict=True)], level)
            assert (str(got.decision), got.recommended_dose_level, list(got.eliminated_levels), got.mtd_dose_level) == (
                expected["decision"], expected["level"], expected["eliminated"], expected["mtd"],
            ), (design, phi, size, max_n, cohorts)  # fmt: skip
            states += 1
            if expected["decision"] in ("mtd_declared", "stop_no_mtd"):
                break
            level = expected["level"]
    assert states > 1500
    # The case the sweep found: i3+3, target 0.2, 3 DLTs in 20 at level 1 (0.15, the EI's lower end): stay.
    five = [(1, 4, 1), (1, 4, 1), (1, 4, 1), (1, 4, 0), (1, 4, 0)]
    assert oracle("i3+3", 0.2, 40, five)["decision"] == "stay"
    i3 = I3Plus3(tuple(d for _, d in LEVELS), IntervalSettings(0.2, 4, 40))
    assert str(i3.decide([LevelOutcome(20, 3), *[LevelOutcome(0, 0)] * 3], 1).decision) == "stay"
