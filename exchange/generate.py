"""A seeded generator of a realistic 3+3 trial as a trial-bundle/1 dict (docs/bundle.md).

For tests and benchmarks of the bundle import: every record obeys the protocol's rules
(docs/protocol.md s2-s8), so a generated bundle imports without a problem. The design follows
the seed trial: L1, L2 cleared 0/3, L3 1/3 (one non-haematological grade-3 DLT, signed)
expanded to 6 with no further DLT, L4 0/3 and the MTD declared at L4; every later patient
is an expansion at the MTD (recorded as an enrolment outside the 3+3 slots). No Django.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

DAY = datetime.timedelta(days=1)
START = datetime.date(2017, 8, 1)
SITES = [("UHC", "University Hospitals Cleveland"), ("CCF", "Cleveland Clinic"), ("MSK", "Memorial Sloan Kettering")]
LEVELS = [(1, 0.3), (2, 0.4), (3, 0.5), (4, 0.6)]
V2_EFFECTIVE = datetime.date(2019, 3, 1)
# Low-grade AEs (grade 1-2 never make a DLT): MedDRA codes of CTCAE v5.0.
LOW_GRADE_AES = [("Nausea", "10028813"), ("Fatigue", "10016256"), ("Headache", "10019211")]
INVESTIGATOR = "Dr. Ivy Investigator"
# Cohorts of the escalation phase: (dose level, DLT in the first patient?, sign-off after it).
COHORTS = [(1, False, "escalate", 2), (2, False, "escalate", 3), (3, True, "expand", 3), (3, False, "escalate", 4)]
COHORTS += [(4, False, "mtd_declared", 4)]


def _iso(d: datetime.date) -> str:
    return d.isoformat()


def _patient(
    rng: random.Random, number: int, site: str, level: int, enrolled: datetime.date, *, dlt: bool, today: datetime.date
) -> dict[str, Any]:
    hct = enrolled - rng.randint(50, 80) * DAY
    consent = enrolled - 2 * DAY
    version = "2" if consent >= V2_EFFECTIVE else "1"
    max_cycles = 12 if version == "2" else 4
    ph = rng.random() < 0.25
    conditioning = rng.choice(["mac", "ric", "nma"])
    status = rng.choice(["cr1", "cr1", "cr2"])
    mrd_before = rng.random() < 0.4 or (conditioning == "mac" and status == "cr1")
    p: dict[str, Any] = {
        "subject_id": f"{site}-{number:03d}",
        "site": site,
        "sex": rng.choice(["female", "male"]),
        "race": rng.choice(["white", "white", "black", "asian", "other", "unreported"]),
        "birth_year": consent.year - rng.randint(20, 70),
        "diagnosis": "b_all",
        "cd22_positive": True,
        "ph_positive": ph,
        "prior_lines": rng.randint(1, 3),
        "consents": [{"protocol_version": version, "date": _iso(consent)}],
        "transplant": {
            "date": _iso(hct),
            "disease_status": status,
            "conditioning": conditioning,
            "donor_type": rng.choice(["matched_sibling", "matched_unrelated", "haploidentical"]),
            "graft_source": rng.choice(["peripheral_blood", "bone_marrow"]),
            "gvhd_prophylaxis": rng.choice(["cni_mtx", "cni_mmf", "ptcy"]),
            "mrd_before": mrd_before,
            "mrd_after": False,
            "cr_at_day30": True,
        },
        "screenings": [
            {
                "date": _iso(enrolled - DAY),
                "lab_date": _iso(enrolled - 2 * DAY),
                "platelets_10e9_l": rng.randint(80, 250),
                "anc_10e9_l": round(rng.uniform(1.5, 5.0), 1),
                "agvhd_grade": 0,
                "liver_gvhd": False,
                "sos_history": False,
            }
        ],
        "enrolled": _iso(enrolled),
        "dose_level": level,
        "assessments": [
            {"kind": "mrd", "date": _iso(enrolled - DAY), "method": "flow", "result": "negative"},
        ],
    }
    # Cycles: C1 two days after enrolment; the next due 28 days after the last day 1.
    n_cycles = 2 if dlt else rng.choice([2, 3, 4, 4, min(6, max_cycles)])
    cycles, adverse_events = [], []
    day1, reduced_from = enrolled + 2 * DAY, (3 if rng.random() < 0.15 else None)
    height, weight = rng.randint(150, 190), rng.randint(50, 100)
    for number_ in range(1, n_cycles + 1):
        delay = 3 if number_ == 2 and rng.random() < 0.1 else 0
        day1 = day1 + delay * DAY
        reduced = reduced_from is not None and number_ >= reduced_from
        cycles.append(
            {
                "number": number_,
                "day1": _iso(day1),
                "height_cm": height,
                "weight_kg": weight + rng.randint(-2, 2),
                "dose_mg_m2": dict(LEVELS)[level],
                "reduced": reduced,
                "reduction_reason": "cytopenia" if reduced else None,
                "delay_days": delay,
                "reason": "patient scheduling" if delay else None,
                "acute_gvhd_grade": 0,
                "liver_gvhd": False,
                "sos": False,
                "labs": {"date": _iso(day1 - DAY), "platelets": rng.randint(60, 220), "anc": rng.randint(12, 45) / 10},
            }
        )
        last_day1 = day1
        day1 = day1 + 28 * DAY
    p["cycles"] = cycles
    for _ in range(rng.randint(0, 2)):
        term, code = rng.choice(LOW_GRADE_AES)
        onset = enrolled + rng.randint(3, 40) * DAY
        adverse_events.append(
            {
                "term": term,
                "meddra_code": code,
                "grade": rng.randint(1, 2),
                "onset": _iso(onset),
                "resolved": _iso(onset + rng.randint(2, 20) * DAY),
                "attribution": rng.choice(["unrelated", "unlikely", "possible"]),
                "serious": False,
                "outcome": "recovered",
            }
        )
    if dlt:
        onset = enrolled + 12 * DAY
        adverse_events.insert(
            0,
            {
                "term": "Nausea",
                "meddra_code": "10028813",
                "grade": 3,
                "onset": _iso(onset),
                "resolved": _iso(onset + 6 * DAY),
                "attribution": "possible",
                "serious": True,
                "sae_hospitalisation": True,
                "action": "delayed",
                "outcome": "recovered",
            },
        )
        p["dlt_adjudications"] = [
            {
                "adverse_event": 0,
                "is_dlt": True,
                "rationale": "Grade 3 nausea possibly related to INO inside the DLT window.",
                "by": INVESTIGATOR,
                "at": _iso(onset + 7 * DAY),
            }
        ]
    p["adverse_events"] = adverse_events
    eot = last_day1 + 28 * DAY
    events: list[dict[str, Any]] = [
        {"kind": "end_of_treatment", "date": _iso(eot), "reason": "toxicity" if dlt else "completed"}
    ]
    p["assessments"].append(
        {"kind": "bone_marrow", "date": _iso(enrolled + 92 * DAY), "blasts_pct": 1.0, "response": "cr"}
    )
    fate = rng.random()
    horizon = min(eot + rng.randint(200, 900) * DAY, today - 30 * DAY)
    if fate < 0.1 and horizon > eot + 60 * DAY:
        relapse = eot + rng.randint(30, max(31, (horizon - eot).days // 2)) * DAY
        events.append({"kind": "relapse", "date": _iso(relapse), "blasts_pct": 12.0})
        if rng.random() < 0.5:
            events.append({"kind": "death", "date": _iso(relapse + 40 * DAY), "cause": "relapse"})
        else:
            events.append({"kind": "last_contact", "date": _iso(horizon)})
    else:
        events.append({"kind": "last_contact", "date": _iso(horizon)})
    p["events"] = events
    if ph:
        p["concomitant_medications"] = [
            {"agent": "dasatinib", "start": _iso(enrolled), "stop": _iso(eot)},
        ]
    return p


def generate_trial(
    patients: int = 30, *, seed: int = 1, code: str = "GEN-3P3", today: datetime.date | None = None
) -> dict[str, Any]:
    """A trial-bundle/1 dict with ``patients`` patients (at least the 15 of the escalation
    phase are always generated first). Same seed, same bundle."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    today = today or datetime.date(2026, 1, 1)
    bundle: dict[str, Any] = {
        "format": "trial-bundle/1",
        "trial": {
            "code": code,
            "title": f"Generated 3+3 trial ({patients} patients, seed {seed})",
            "sponsor": "Trialdesk synthetic data",
            "design": "3+3",
            "escalation_variant": "storer_a",
            "cycle_length_days": 28,
            "dlt_window_cycles": 2,
            "dose_levels": [{"level": lv, "dose_mg_m2": dose} for lv, dose in LEVELS],
            "protocol_versions": [
                {"version": "1", "effective": "2017-07-01", "max_cycles": 4},
                {"version": "2", "effective": _iso(V2_EFFECTIVE), "max_cycles": 12},
            ],
            "sites": [{"code": c, "name": n, "country": "USA"} for c, n in SITES],
        },
        "escalation_signoffs": [],
        "patients": [],
    }
    numbers = {code_: 0 for code_, _ in SITES}

    def add(level: int, enrolled: datetime.date, dlt: bool = False, deviation: str | None = None) -> None:
        site = SITES[len(bundle["patients"]) % len(SITES)][0]
        numbers[site] += 1
        p = _patient(rng, numbers[site], site, level, enrolled, dlt=dlt, today=today)
        if deviation is not None:
            p["enrolment_deviation"] = deviation
        bundle["patients"].append(p)

    t = START
    for level, first_has_dlt, decision, signed_level in COHORTS:
        for k in range(3):
            add(level, t + 3 * k * DAY, dlt=first_has_dlt and k == 0)
        # The DLT window of the last patient closes 2 + 28 + 27 days after enrolment
        # (two cycles, PROTOCOL s5) at the latest (a delayed C2 adds 3 days).
        signed = t + 6 * DAY + 70 * DAY
        bundle["escalation_signoffs"].append(
            {
                "dose_level": signed_level,
                "decision": decision,
                "by": INVESTIGATOR,
                "at": _iso(signed),
                "rationale": "Dose-escalation meeting.",
            }
        )
        t = signed + 5 * DAY
    for _ in range(max(0, patients - 15)):
        add(4, t, deviation=f"Expansion at the MTD (L4) declared on {bundle['escalation_signoffs'][-1]['at']}.")
        t += rng.choice([1, 2, 2, 3]) * DAY
    return bundle
