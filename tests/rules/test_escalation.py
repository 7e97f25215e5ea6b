"""Worked 3+3 histories replayed through the engine (analysis/escalation.py), PROTOCOL section 6.

A history is written as tokens `level:codes` in enrolment order, one code per
patient: D = DLT, N = no DLT (window completed), P = pending (in the window),
X = non-evaluable (replaced). Signatures are `decision:level`, where the level is
the one the decision opens or declares (escalate:3 = the escalation to level 3).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.escalation import (
    CohortCounts,
    Decision,
    DltStatus,
    EscalationDesign,
    EscalationState,
    PatientOutcome,
    SignedDecision,
    Variant,
    escalation_state,
)
from analysis.operating_characteristics import exact_operating_characteristics

SEED_DOSES = (0.3, 0.4, 0.5, 0.6)
CODES = {
    "D": DltStatus.DLT,
    "N": DltStatus.NO_DLT,
    "P": DltStatus.PENDING,
    "X": DltStatus.NON_EVALUABLE,
}


def patients(history: str) -> list[PatientOutcome]:
    out: list[PatientOutcome] = []
    for token in history.split():
        level, codes = token.split(":")
        for code in codes:
            n = len(out) + 1
            out.append(PatientOutcome(f"P{n:03d}", int(level), n, CODES[code]))
    return out


def signatures(text: str) -> tuple[SignedDecision, ...]:
    out = []
    for token in text.split():
        decision, level = token.split(":")
        out.append(SignedDecision(Decision(decision), int(level)))
    return tuple(out)


def run(
    history: str,
    signed: str = "",
    variant: str = "storer_a",
    doses: tuple[float, ...] = SEED_DOSES,
) -> EscalationState:
    design = EscalationDesign(doses, Variant(variant))
    return escalation_state(design, patients(history), signatures(signed))


def sign_everything(history: str, variant: str, doses: tuple[float, ...] = SEED_DOSES) -> str:
    """The signatures an investigator would have given along the rule's path."""
    state = run(history, "", variant, doses)
    return " ".join(f"{s.decision}:{s.dose_level}" for s in state.history)


# The seed trial (PROTOCOL section 6): L1 4 treated (one replaced), L2 3, L3 1/3 -> 6
# -> 1/6, L4 0/3, then 2 more at L4 without DLT.
SEED = "1:NXNN 2:NNN 3:DNN 3:NNN 4:NNN 4:NN"
SEED_SIGNED_STORER = "escalate:2 escalate:3 expand:3 escalate:4 mtd_declared:4"
SEED_SIGNED_SIX = "escalate:2 escalate:3 expand:3 escalate:4 expand:4"


def test_seed_trial_storer_a() -> None:
    state = run(SEED, SEED_SIGNED_STORER)
    assert state.decision is Decision.MTD_DECLARED
    assert state.mtd_dose_level == 4
    assert state.current_dose_level == 4
    assert state.open_slots == ()
    assert state.awaiting_signoff is None
    assert state.warnings == ()
    assert [(s.decision, s.dose_level, s.signed) for s in state.history] == [
        (Decision.ESCALATE, 2, True),
        (Decision.ESCALATE, 3, True),
        (Decision.EXPAND, 3, True),
        (Decision.ESCALATE, 4, True),
        (Decision.MTD_DECLARED, 4, True),
    ]
    assert state.cohorts == (
        CohortCounts(1, 0.3, enrolled=4, evaluable=3, non_evaluable=1, pending=0, dlts=0),
        CohortCounts(2, 0.4, enrolled=3, evaluable=3, non_evaluable=0, pending=0, dlts=0),
        CohortCounts(3, 0.5, enrolled=6, evaluable=6, non_evaluable=0, pending=0, dlts=1),
        CohortCounts(4, 0.6, enrolled=5, evaluable=5, non_evaluable=0, pending=0, dlts=0),
    )
    text = " ".join(state.reasons)
    assert "1 non-evaluable patient replaced" in text
    assert "2 further patients treated at the MTD" in text


def test_seed_trial_six_at_mtd_leaves_one_slot_at_level_4() -> None:
    state = run(SEED, SEED_SIGNED_SIX, "six_at_mtd")
    assert state.decision is Decision.ENROLL
    assert state.current_dose_level == 4
    assert state.open_slots == ((4, 1),)
    assert state.mtd_dose_level is None
    assert state.warnings == ()
    # One more evaluable patient without a DLT, and level 4 is the MTD.
    done = run(SEED + " 4:N", SEED_SIGNED_SIX + " mtd_declared:4", "six_at_mtd")
    assert (done.decision, done.mtd_dose_level) == (Decision.MTD_DECLARED, 4)


def test_seed_trial_signed_under_storer_a_then_read_as_six_at_mtd() -> None:
    # The rule still wants the sixth patient, but nothing is open until the
    # expansion of level 4 is signed, and the signed MTD no longer holds.
    state = run(SEED, SEED_SIGNED_STORER, "six_at_mtd")
    assert state.recommended_slots == ((4, 1),)
    assert state.open_slots == ()
    assert state.awaiting_signoff == SignedDecision(Decision.EXPAND, 4)
    assert any(w.startswith("a past decision no longer holds: level 4") for w in state.warnings)
    assert any("protocol deviation" in w for w in state.warnings)


# Each row: history, signatures, variant, then the expected decision, current dose
# level, recommended dose level, signed MTD, open slots, the rule's slots and the
# decision awaiting a signature ("" = none). Every signature the rule asked for
# along the way is given unless the row is about sign-off.
ALL = "*"  # sign everything the rule's path contains
ROWS = [
    # --- start, filling, pending, replacement
    ("start", "", ALL, "storer_a", "enroll", 1, 1, None, ((1, 3),), ((1, 3),), ""),
    ("first patient", "1:N", ALL, "storer_a", "enroll", 1, 1, None, ((1, 2),), ((1, 2),), ""),
    ("pending: no slot", "1:NNP", ALL, "storer_a", "wait", 1, 1, None, (), (), ""),
    ("all pending", "1:PPP", ALL, "storer_a", "wait", 1, 1, None, (), (), ""),
    ("1 DLT, 1 pending: wait", "1:DNP", ALL, "storer_a", "wait", 1, 1, None, (), (), ""),
    ("replaced: slot reopens", "1:NXN", ALL, "storer_a", "enroll", 1, 1, None, ((1, 1),), ((1, 1),), ""),
    ("replacement in window", "1:NXNP", ALL, "storer_a", "wait", 1, 1, None, (), (), ""),
    ("two replaced", "1:XXN", ALL, "storer_a", "enroll", 1, 1, None, ((1, 2),), ((1, 2),), ""),
    # --- escalation and sign-off
    ("0/3 unsigned", "1:NNN", "", "storer_a", "escalate", 1, 2, None, (), ((2, 3),), "escalate:2"),
    ("0/3 signed", "1:NNN", ALL, "storer_a", "escalate", 2, 2, None, ((2, 3),), ((2, 3),), ""),
    ("0/3 after replacement", "1:NXNN", ALL, "storer_a", "escalate", 2, 2, None, ((2, 3),), ((2, 3),), ""),
    ("next level started", "1:NNN 2:N", ALL, "storer_a", "enroll", 2, 2, None, ((2, 2),), ((2, 2),), ""),
    # --- expansion
    ("1/3 unsigned", "1:NDN", "", "storer_a", "expand", 1, 1, None, (), ((1, 3),), "expand:1"),
    ("1/3 signed", "1:NDN", ALL, "storer_a", "expand", 1, 1, None, ((1, 3),), ((1, 3),), ""),
    ("expansion filling", "1:NDN 1:NP", ALL, "storer_a", "enroll", 1, 1, None, ((1, 1),), ((1, 1),), ""),
    ("expansion in window", "1:NDN 1:NPP", ALL, "storer_a", "wait", 1, 1, None, (), (), ""),
    ("1/6 escalates", "1:NDN 1:NNN", ALL, "storer_a", "escalate", 2, 2, None, ((2, 3),), ((2, 3),), ""),
    ("DLT 4th of 4 after 0/3", "1:NNN 1:D", ALL, "storer_a", "escalate", 2, 2, None, ((2, 3),), ((2, 3),), ""),
    # --- second DLT decides at once, pending or not
    ("2 DLTs at L1, 1 pending", "1:DPD", ALL, "storer_a", "stop_no_mtd", 1, None, None, (), (), ""),
    ("2 DLTs at L1 unsigned", "1:DDN", "", "storer_a", "stop_no_mtd", 1, None, None, (), (), "stop_no_mtd:1"),
    ("2/6 at L1", "1:DNN 1:NDP", ALL, "storer_a", "stop_no_mtd", 1, None, None, (), (), ""),
    ("L2 2 DLTs, 1 pending", "1:NNN 2:DDP", ALL, "storer_a", "mtd_declared", 1, 1, 1, (), (), ""),
    ("L2 MTD unsigned", "1:NNN 2:DDP", "escalate:2", "storer_a", "mtd_declared", 2, 1, None, (), (), "mtd_declared:1"),
    ("L3 2/6 -> MTD 2", "1:NNN 2:NNN 3:DNN 3:NDN", ALL, "storer_a", "mtd_declared", 2, 2, 2, (), (), ""),
    # --- storer_a does not expand d-1; six_at_mtd does
    (
        "six: L2 too toxic, de-escalate",
        "1:NNN 2:DDP",
        ALL,
        "six_at_mtd",
        "de_escalate",
        1,
        1,
        None,
        ((1, 3),),
        ((1, 3),),
        "",
    ),
    (
        "six: de-escalate unsigned",
        "1:NNN 2:DDP",
        "escalate:2",
        "six_at_mtd",
        "de_escalate",
        2,
        1,
        None,
        (),
        ((1, 3),),
        "de_escalate:1",
    ),
    (
        "six: de-escalation filling",
        "1:NNN 2:DDP 1:NN",
        ALL,
        "six_at_mtd",
        "enroll",
        1,
        1,
        None,
        ((1, 1),),
        ((1, 1),),
        "",
    ),
    ("six: L1 at 6 -> MTD 1", "1:NNN 2:DDP 1:NND", ALL, "six_at_mtd", "mtd_declared", 1, 1, 1, (), (), ""),
    ("six: L1 fails at 6 -> stop", "1:NNN 2:DDP 1:DND", ALL, "six_at_mtd", "stop_no_mtd", 1, None, None, (), (), ""),
    ("six: d-1 already 1/6", "1:DNN 1:NNN 2:DD", ALL, "six_at_mtd", "mtd_declared", 1, 1, 1, (), (), ""),
    (
        "six: repeat one level lower",
        "1:NNN 2:NNN 3:NDD 2:NDD",
        ALL,
        "six_at_mtd",
        "de_escalate",
        1,
        1,
        None,
        ((1, 3),),
        ((1, 3),),
        "",
    ),
    # --- the top level
    ("top 0/3 storer", "1:NNN 2:NNN 3:NNN 4:NNN", ALL, "storer_a", "mtd_declared", 4, 4, 4, (), (), ""),
    ("top 1/6 storer", "1:NNN 2:NNN 3:NNN 4:NND 4:NNN", ALL, "storer_a", "mtd_declared", 4, 4, 4, (), (), ""),
    ("top 2/3 storer", "1:NNN 2:NNN 3:NNN 4:DDN", ALL, "storer_a", "mtd_declared", 3, 3, 3, (), (), ""),
    (
        "top 0/3 six: expand",
        "1:NNN 2:NNN 3:NNN 4:NNN",
        ALL,
        "six_at_mtd",
        "expand",
        4,
        4,
        None,
        ((4, 3),),
        ((4, 3),),
        "",
    ),
    ("top 0/6 six", "1:NNN 2:NNN 3:NNN 4:NNN 4:NNN", ALL, "six_at_mtd", "mtd_declared", 4, 4, 4, (), (), ""),
    (
        "top 2/6 six",
        "1:NNN 2:NNN 3:NNN 4:NNN 4:DND",
        ALL,
        "six_at_mtd",
        "de_escalate",
        3,
        3,
        None,
        ((3, 3),),
        ((3, 3),),
        "",
    ),
    ("six: top 1/3 then 0/3", "1:NNN 2:NNN 3:NNN 4:DNN 4:NNN", ALL, "six_at_mtd", "mtd_declared", 4, 4, 4, (), (), ""),
]


@pytest.mark.parametrize(
    (
        "history",
        "signed",
        "variant",
        "decision",
        "current",
        "recommended",
        "mtd",
        "open_slots",
        "rule_slots",
        "awaiting",
    ),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_table(
    history: str,
    signed: str,
    variant: str,
    decision: str,
    current: int,
    recommended: int | None,
    mtd: int | None,
    open_slots: tuple[tuple[int, int], ...],
    rule_slots: tuple[tuple[int, int], ...],
    awaiting: str,
) -> None:
    if signed == ALL:
        signed = sign_everything(history, variant)
    state = run(history, signed, variant)
    assert state.decision == decision
    assert state.current_dose_level == current
    assert state.recommended_dose_level == recommended
    assert state.mtd_dose_level == mtd
    assert state.open_slots == open_slots
    assert state.recommended_slots == rule_slots
    expected_awaiting = signatures(awaiting)[0] if awaiting else None
    assert state.awaiting_signoff == expected_awaiting
    # A trial whose every decision was signed has nothing to warn about.
    if not awaiting and signed == sign_everything(history, variant):
        assert state.warnings == ()
    assert state.reasons


@pytest.mark.parametrize(
    ("variant", "history", "decision"),
    [
        ("storer_a", "1:NNN", Decision.MTD_DECLARED),
        ("storer_a", "1:DNN 1:NNN", Decision.MTD_DECLARED),
        ("storer_a", "1:DND", Decision.STOP_NO_MTD),
        ("six_at_mtd", "1:NNN", Decision.EXPAND),
        ("six_at_mtd", "1:NNN 1:NND", Decision.MTD_DECLARED),
        ("six_at_mtd", "1:NNN 1:NDD", Decision.STOP_NO_MTD),
    ],
)
def test_a_single_dose_level(variant: str, history: str, decision: Decision) -> None:
    state = run(history, sign_everything(history, variant, (0.3,)), variant, (0.3,))
    assert state.decision is decision
    assert state.warnings == ()


def test_escalate_stays_the_decision_until_the_new_level_enrols() -> None:
    unsigned = run("1:NNN")
    signed = run("1:NNN", "escalate:2")
    started = run("1:NNN 2:P", "escalate:2")
    assert (unsigned.decision, unsigned.current_dose_level, unsigned.open_slots) == (
        Decision.ESCALATE,
        1,
        (),
    )
    assert (signed.decision, signed.current_dose_level, signed.open_slots) == (
        Decision.ESCALATE,
        2,
        ((2, 3),),
    )
    assert (started.decision, started.open_slots) == (Decision.ENROLL, ((2, 2),))
    assert any("Awaiting an investigator's signature" in r for r in unsigned.reasons)


def test_the_mtd_is_reported_only_once_signed() -> None:
    history = "1:NNN 2:NNN 3:DDN"
    unsigned = run(history, "escalate:2 escalate:3")
    signed = run(history, "escalate:2 escalate:3 mtd_declared:2")
    assert unsigned.decision is Decision.MTD_DECLARED
    assert unsigned.recommended_dose_level == 2
    assert unsigned.mtd_dose_level is None
    assert unsigned.current_dose_level == 3
    assert unsigned.awaiting_signoff == SignedDecision(Decision.MTD_DECLARED, 2)
    assert signed.mtd_dose_level == 2
    assert signed.current_dose_level == 2


# --- DLTs reported late, and patients treated at a declared MTD


def test_late_dlt_at_a_passed_level_reopens_its_expansion() -> None:
    before = run("1:NNN 2:NNN 3:NPP", "escalate:2 escalate:3")
    assert before.decision is Decision.WAIT
    assert before.warnings == ()
    # The third level-1 patient's DLT is adjudicated late: level 1 is 1 of 3.
    after = run("1:NND 2:NNN 3:NPP", "escalate:2 escalate:3")
    assert after.decision is Decision.EXPAND
    assert after.recommended_slots == ((1, 3),)
    assert after.open_slots == ()  # the expansion must be signed first
    assert after.awaiting_signoff == SignedDecision(Decision.EXPAND, 1)
    assert after.warnings == (
        "a past decision no longer holds: level 1 now has 1 DLT in 3 evaluable "
        "patients, so the escalation to level 2 (signed) is not what the 3+3 rule "
        "gives on the current data.",
        "a past decision no longer holds: level 1 now has 1 DLT in 3 evaluable "
        "patients, so the escalation to level 3 (signed) is not what the 3+3 rule "
        "gives on the current data.",
    )
    # The expansion is signed and enrolled after level 3's patients: 1 of 6, and
    # the old escalations hold again.
    healed = run("1:NND 2:NNN 3:NPP 1:NNN", "escalate:2 escalate:3 expand:1")
    assert healed.warnings == ()
    assert healed.decision is Decision.WAIT
    assert healed.current_dose_level == 3


def test_late_second_dlt_at_a_passed_level_makes_it_too_toxic() -> None:
    signed = "escalate:2 escalate:3 escalate:4"
    state = run("1:NNN 2:NDD 3:NNN 4:P", signed)
    assert state.decision is Decision.MTD_DECLARED
    assert state.recommended_dose_level == 1
    assert state.mtd_dose_level is None
    assert any(w.startswith("a past decision no longer holds: level 2 now has 2 DLTs in 3") for w in state.warnings)
    assert len([w for w in state.warnings if "no longer holds" in w]) == 2  # L3, L4


def test_expansion_at_the_mtd_counts_and_can_undo_it() -> None:
    one = run(SEED + " 4:D", SEED_SIGNED_STORER)
    assert (one.decision, one.mtd_dose_level, one.warnings) == (
        Decision.MTD_DECLARED,
        4,
        (),
    )
    two = run(SEED + " 4:DD", SEED_SIGNED_STORER)
    assert two.decision is Decision.MTD_DECLARED
    assert two.recommended_dose_level == 3  # level 3 is 1 of 6
    assert two.mtd_dose_level is None
    assert two.warnings[0].startswith("a past decision no longer holds: level 4 now has 2 DLTs in 7")
    # The same under six_at_mtd: level 3 already has 6 evaluable with 1 DLT.
    six = run(SEED + " 4:NDD", SEED_SIGNED_SIX + " mtd_declared:4", "six_at_mtd")
    assert (six.decision, six.recommended_dose_level) == (Decision.MTD_DECLARED, 3)
    assert six.warnings[0].startswith("a past decision no longer holds: level 4 now has 2 DLTs in 8")


# Expansion at a signed MTD (issue 19 item 3): (history, signed, variant, expansion size,
# open slots). The seed trial's 2 further L4 patients fill an expansion of 2.
EXPANSION_ROWS = [
    ("seed, no expansion in the design", SEED, SEED_SIGNED_STORER, "storer_a", 0, ()),
    ("seed, expansion of 2: filled", SEED, SEED_SIGNED_STORER, "storer_a", 2, ()),
    ("seed, expansion of 3: one left", SEED, SEED_SIGNED_STORER, "storer_a", 3, ((4, 1),)),
    ("top level 0 of 3, expansion of 3", "1:NNN 2:NNN 3:NNN 4:NNN", "escalate:2 escalate:3 escalate:4 mtd_declared:4",
     "storer_a", 3, ((4, 3),)),
    ("MTD not yet signed: no slot", "1:NNN 2:NNN 3:NNN 4:NNN", "escalate:2 escalate:3 escalate:4", "storer_a", 3, ()),
    ("expansion patient pending still takes a place", "1:NNN 2:NNN 3:NNN 4:NNN 4:P",
     "escalate:2 escalate:3 escalate:4 mtd_declared:4", "storer_a", 3, ((4, 2),)),
    ("replaced expansion patient frees the place", "1:NNN 2:NNN 3:NNN 4:NNN 4:X",
     "escalate:2 escalate:3 escalate:4 mtd_declared:4", "storer_a", 3, ((4, 3),)),
    ("MTD below a too-toxic level", "1:NNN 2:NNN 3:DDN", "escalate:2 escalate:3 mtd_declared:2", "storer_a", 3,
     ((2, 3),)),
    ("six_at_mtd: 6 at the top, expansion of 2", "1:NNN 2:NNN 3:NNN 4:NNN 4:NNN",
     "escalate:2 escalate:3 escalate:4 expand:4 mtd_declared:4", "six_at_mtd", 2, ((4, 2),)),
    ("seed under six_at_mtd: level 4 not yet an MTD, its expansion cohort is open", SEED, SEED_SIGNED_SIX,
     "six_at_mtd", 2, ((4, 1),)),
    ("second DLT at the MTD undoes it: MTD one lower, its own expansion", SEED + " 4:DD", SEED_SIGNED_STORER,
     "storer_a", 2, ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "signed", "variant", "size", "slots"),
    [row[1:] for row in EXPANSION_ROWS],
    ids=[row[0] for row in EXPANSION_ROWS],
)
def test_expansion_at_the_mtd_opens_slots(history: str, signed: str, variant: str, size: int, slots: tuple) -> None:  # type: ignore[type-arg]
    design = EscalationDesign(SEED_DOSES, Variant(variant), expansion_cohort_size=size)
    state = escalation_state(design, patients(history), signatures(signed))
    assert state.open_slots == slots


def test_expansion_slots_need_the_signed_declaration_and_say_so() -> None:
    design = EscalationDesign(SEED_DOSES, Variant.STORER_A, expansion_cohort_size=3)
    history = "1:NNN 2:NNN 3:NNN 4:NNN"
    unsigned = escalation_state(design, patients(history), signatures("escalate:2 escalate:3 escalate:4"))
    assert unsigned.recommended_slots == ((4, 3),) and unsigned.open_slots == ()
    assert unsigned.awaiting_signoff == SignedDecision(Decision.MTD_DECLARED, 4)
    signed = escalation_state(design, patients(history), signatures("escalate:2 escalate:3 escalate:4 mtd_declared:4"))
    assert signed.decision is Decision.MTD_DECLARED and signed.mtd_dose_level == 4
    assert any("3 places open at level 4" in r for r in signed.reasons)
    with pytest.raises(ValueError, match="expansion"):
        EscalationDesign(SEED_DOSES, expansion_cohort_size=-1)


def test_storer_a_mtd_below_a_too_toxic_level_undone_by_its_expansion() -> None:
    history = "1:NNN 2:NNN 3:DDN 2:NDD"
    state = run(history, "escalate:2 escalate:3 mtd_declared:2")
    assert (state.decision, state.recommended_dose_level) == (Decision.MTD_DECLARED, 1)
    assert state.warnings[0].startswith("a past decision no longer holds: level 2 now has 2 DLTs in 6")


def test_six_at_mtd_history_of_de_escalations_is_kept() -> None:
    # L3 too toxic, L2 expanded and too toxic, L1 expanded to 6: MTD = 1.
    history = "1:NNN 2:NNN 3:DDN 2:NDD 1:NNN"
    signed = sign_everything(history, "six_at_mtd")
    state = run(history, signed, "six_at_mtd")
    assert [(s.decision, s.dose_level) for s in state.history] == [
        (Decision.ESCALATE, 2),
        (Decision.ESCALATE, 3),
        (Decision.DE_ESCALATE, 2),
        (Decision.DE_ESCALATE, 1),
        (Decision.MTD_DECLARED, 1),
    ]
    assert (state.decision, state.mtd_dose_level, state.warnings) == (
        Decision.MTD_DECLARED,
        1,
        (),
    )


def test_never_above_a_level_with_two_dlts() -> None:
    # Two DLTs among extra patients at level 1 (a deviation) while the trial is at
    # level 3: the rule stops, and says so for levels 2 and 3.
    state = run("1:NNN 2:NNN 3:NP 1:DD", "escalate:2 escalate:3")
    assert state.decision is Decision.STOP_NO_MTD
    assert state.open_slots == ()
    assert all("level 1 now has 2 DLTs in 5" in w for w in state.warnings)


def test_enrolment_without_signature_is_a_deviation() -> None:
    state = run("1:NNN 2:NNN 3:N")
    assert state.decision is Decision.ENROLL
    assert state.recommended_slots == ((3, 2),)
    assert state.open_slots == ()
    assert state.current_dose_level == 2
    assert state.awaiting_signoff == SignedDecision(Decision.ESCALATE, 3)
    deviations = [w for w in state.warnings if w.startswith("protocol deviation")]
    assert len(deviations) == 2  # levels 2 and 3


def test_within_level_order_decides_the_cohorts() -> None:
    # The DLT in the 4th place (after 0/3) is an extra; in the 1st it opens the
    # expansion, which then already holds one patient.
    assert run("1:NNND", "").decision is Decision.ESCALATE
    first = run("1:DNNN", "expand:1")
    assert (first.decision, first.open_slots) == (Decision.ENROLL, ((1, 2),))


def test_input_order_does_not_matter() -> None:
    ps = patients(SEED + " 4:D")
    design = EscalationDesign(SEED_DOSES)
    signed = signatures(SEED_SIGNED_STORER)
    expected = escalation_state(design, ps, signed)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = ps[:]
        rng.shuffle(shuffled)
        assert escalation_state(design, shuffled, signed) == expected


def test_equal_enrolment_order_breaks_ties_by_id() -> None:
    design = EscalationDesign((1.0, 2.0))
    tied = [
        PatientOutcome("P1", 1, 1, DltStatus.NO_DLT),
        PatientOutcome("P2", 1, 2, DltStatus.NO_DLT),
        PatientOutcome("B", 1, 3, DltStatus.NO_DLT),
        PatientOutcome("A", 1, 3, DltStatus.DLT),
    ]
    # A sorts before B: the first cohort is 1 of 3 and B starts the expansion.
    state = escalation_state(design, tied, signatures("expand:1"))
    assert (state.decision, state.open_slots) == (Decision.ENROLL, ((1, 2),))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: run("1:NN", doses=()), "at least one dose level"),
        (lambda: run("5:N"), "above the top level"),
        (lambda: PatientOutcome("x", 0, 1, DltStatus.DLT), "numbered from 1"),
        (lambda: PatientOutcome("x", 1, 1, "maybe"), "maybe"),  # type: ignore[arg-type]
        (lambda: SignedDecision(Decision.WAIT, 1), "not a decision that is signed"),
        (lambda: run("1:N", "escalate:1"), "impossible dose level"),
        (lambda: run("1:N", "mtd_declared:9"), "impossible dose level"),
    ],
)
def test_bad_input_is_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_duplicate_patient_is_refused() -> None:
    design = EscalationDesign(SEED_DOSES)
    p = PatientOutcome("A", 1, 1, DltStatus.NO_DLT)
    with pytest.raises(ValueError, match="listed twice"):
        escalation_state(design, [p, p])


def test_strings_are_accepted_for_enumerations() -> None:
    design = EscalationDesign(SEED_DOSES, "six_at_mtd")  # type: ignore[arg-type]
    p = PatientOutcome("A", 1, 1, "dlt")  # type: ignore[arg-type]
    s = SignedDecision("expand", 1)  # type: ignore[arg-type]
    assert design.variant is Variant.SIX_AT_MTD
    assert p.status is DltStatus.DLT
    assert s.decision is Decision.EXPAND


# --- properties over random histories


@st.composite
def random_history(draw: st.DrawFn) -> tuple[int, list[PatientOutcome]]:
    top = draw(st.integers(1, 5))
    n = draw(st.integers(0, 30))
    out = []
    for i in range(n):
        level = draw(st.integers(1, top))
        status = draw(st.sampled_from(list(DltStatus)))
        out.append(PatientOutcome(f"p{i}", level, draw(st.integers(0, 50)), status))
    return top, out


@settings(max_examples=300, deadline=None)
@given(random_history(), st.sampled_from(list(Variant)), st.booleans())
def test_invariants(case: tuple[int, list[PatientOutcome]], variant: Variant, sign: bool) -> None:
    top, ps = case
    design = EscalationDesign(tuple(float(i) for i in range(1, top + 1)), variant)
    state = escalation_state(design, ps)
    signed = tuple(SignedDecision(s.decision, s.dose_level) for s in state.history)
    if sign:
        state = escalation_state(design, ps, signed)
    # At most one level is open, for at most a cohort of three.
    assert len(state.recommended_slots) <= 1
    assert all(0 < slots <= 3 for _, slots in state.recommended_slots)
    # Never open above a level with two DLTs.
    toxic = [c.dose_level for c in state.cohorts if c.dlts >= 2]
    for level, _ in state.recommended_slots:
        assert not toxic or level < min(toxic)
    if state.decision is Decision.MTD_DECLARED:
        assert state.recommended_dose_level is not None
        assert not toxic or state.recommended_dose_level < min(toxic)
    if state.decision is Decision.STOP_NO_MTD:
        assert state.cohorts[0].dlts >= 2
    # Open slots are the rule's slots once its decisions are signed.
    assert state.open_slots in ((), state.recommended_slots)
    if sign:
        assert state.awaiting_signoff is None
        assert state.open_slots == state.recommended_slots
    assert sum(c.enrolled for c in state.cohorts) == len(ps)
    # Pure: same inputs, same answer.
    assert escalation_state(design, list(reversed(ps)), signed if sign else ()) == state


# --- whole trials, patient by patient


def play_trial(ps: tuple[float, ...], variant: Variant, rng: random.Random) -> int:
    """Enrol into open slots, resolve windows in random order (10% replaced), sign
    whatever the engine asks for; return the signed MTD (0 = stopped)."""
    design = EscalationDesign(tuple(float(i) for i in range(1, len(ps) + 1)), variant)
    trial: dict[str, PatientOutcome] = {}
    signed: list[SignedDecision] = []
    for _ in range(1000):
        state = escalation_state(design, list(trial.values()), signed)
        assert state.warnings == ()
        if state.awaiting_signoff is not None:
            signed.append(state.awaiting_signoff)
            continue
        if state.decision in (Decision.MTD_DECLARED, Decision.STOP_NO_MTD):
            return state.mtd_dose_level or 0
        in_window = [p for p in trial.values() if p.status is DltStatus.PENDING]
        if state.open_slots and (not in_window or rng.random() < 0.5):
            ((level, _),) = state.open_slots
            n = len(trial) + 1
            trial[f"p{n}"] = PatientOutcome(f"p{n}", level, n, DltStatus.PENDING)
            continue
        assert in_window, state  # "wait" always has someone in the window
        p = rng.choice(in_window)
        if rng.random() < 0.1:
            status = DltStatus.NON_EVALUABLE
        else:
            status = DltStatus.DLT if rng.random() < ps[p.dose_level - 1] else DltStatus.NO_DLT
        trial[p.patient_id] = PatientOutcome(p.patient_id, p.dose_level, p.enrolment_order, status)
    raise AssertionError("the trial did not finish")


@pytest.mark.parametrize("variant", list(Variant))
def test_whole_trials_agree_with_the_exact_operating_characteristics(variant: Variant) -> None:
    # Pending windows, replacements and early decisions change who is enrolled,
    # never the probability of each MTD: compare with the exact enumeration.
    ps = (0.1, 0.2, 0.3, 0.4)
    rng = random.Random(11)
    n = 250
    results = [play_trial(ps, variant, rng) for _ in range(n)]
    exact = exact_operating_characteristics(ps, variant)
    for level, truth in enumerate((exact.prob_no_mtd, *exact.prob_mtd)):
        observed = results.count(level) / n
        assert abs(observed - truth) <= 4.5 * (truth * (1 - truth) / n) ** 0.5


def test_the_levels_a_signed_decision_was_decided_on() -> None:
    from analysis.escalation import deciding_levels

    assert deciding_levels("escalate", 3) == (2,)
    assert deciding_levels(Decision.DE_ESCALATE, 2) == (3,)
    assert deciding_levels("expand", 3) == (3,)
    assert deciding_levels("stop_no_mtd", 1) == (1,)
    assert deciding_levels("mtd_declared", 2) == (2, 3)
