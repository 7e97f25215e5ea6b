"""DLT window, candidate DLTs and evaluability (safety/dlt.py), PROTOCOL section 5."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from safety.dlt import (
    AdverseEvent,
    DltCandidate,
    DltInput,
    DltParams,
    DltRule,
    Evaluability,
    LabDraw,
    SosRecord,
    cytopenia_episodes,
    dlt_candidates,
    dlt_evaluability,
    dlt_window,
    dlt_window_end,
)

D = date.fromisoformat

# C1D1 2024-01-01, C2D1 on time 2024-01-29, C3D1 on time 2024-02-26:
# the window ends 2024-02-25 by all three definitions.
C1, C2, C3 = D("2024-01-01"), D("2024-01-29"), D("2024-02-26")
WINDOW_END = D("2024-02-25")
LATE = D("2024-12-31")  # "as of" long after every event

PLT, ANC_CODE = "10035528", "10029366"
ONSET = D("2024-02-01")


def ae(
    ae_id: int = 1,
    term: str = "Platelet count decreased",
    code: str = PLT,
    grade: int = 3,
    onset: date = ONSET,
    resolved: date | None = None,
    attribution: str = "possible",
    haematological: bool | None = None,
) -> AdverseEvent:
    if haematological is None:
        haematological = code in {PLT, ANC_CODE, "10002272"}
    return AdverseEvent(ae_id, term, code, grade, onset, resolved, attribution, haematological)


def candidates(
    *aes: AdverseEvent,
    as_of: date = LATE,
    cycles: tuple[date, ...] = (C1, C2, C3),
    labs: tuple[LabDraw, ...] = (),
    sos: tuple[SosRecord, ...] = (),
    death: date | None = None,
    params: DltParams | None = None,
) -> tuple[DltCandidate, ...]:
    record = DltInput(cycles, aes, sos, labs, death)
    if params is None:
        return dlt_candidates(record, as_of=as_of)
    return dlt_candidates(record, as_of=as_of, params=params)


# --- window ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cycles", "end", "basis"),
    [
        ((C1,), D("2024-02-25"), "C1D1 + 55 days"),
        ((C1, C2), D("2024-02-25"), "C2D1 + 27 days"),
        ((C1, C2, C3), D("2024-02-25"), "the day before C3D1"),
        ((C1, C2, C3, D("2024-03-25")), D("2024-02-25"), "the day before C3D1"),
        # C2 delayed 4 days: C2D1 + 27 (2024 is a leap year).
        ((C1, D("2024-02-02")), D("2024-02-29"), "C2D1 + 27 days"),
        # C3 delayed 7 days: the window stretches to the day before it.
        ((C1, C2, D("2024-03-04")), D("2024-03-03"), "the day before C3D1"),
    ],
)
def test_window_end(cycles: tuple[date, ...], end: date, basis: str) -> None:
    window = dlt_window(cycles)
    assert (window.start, window.end, window.basis) == (C1, end, basis)
    assert dlt_window_end(cycles) == end
    assert window.contains(end)
    assert not window.contains(end + timedelta(days=1))
    assert not window.contains(C1 - timedelta(days=1))


@pytest.mark.parametrize(
    ("cycles", "params", "end"),
    [
        ((C1,), DltParams(cycle_length_days=21, window_cycles=1), D("2024-01-21")),
        (
            (C1, D("2024-01-25")),
            DltParams(cycle_length_days=21, window_cycles=1),
            D("2024-01-24"),
        ),
        ((C1,), DltParams(cycle_length_days=21, window_cycles=3), D("2024-03-03")),
        (
            (C1, D("2024-01-22")),
            DltParams(cycle_length_days=21, window_cycles=3),
            D("2024-03-03"),
        ),
    ],
)
def test_window_is_parametrised(cycles: tuple[date, ...], params: DltParams, end: date) -> None:
    assert dlt_window_end(cycles, params) == end


@pytest.mark.parametrize("cycles", [(), (C2, C1), (C1, C1)])
def test_window_needs_increasing_day1s(cycles: tuple[date, ...]) -> None:
    with pytest.raises(ValueError):
        dlt_window(cycles)


# --- (b) prolonged cytopenia ----------------------------------------------


@pytest.mark.parametrize(
    ("onset", "resolved", "as_of", "flagged"),
    [
        (D("2024-02-01"), D("2024-03-01"), LATE, True),  # 29 days
        (D("2024-02-01"), D("2024-02-29"), LATE, False),  # 28 days: not MORE than 28
        # Onset on the window's last day, then the day after.
        (D("2024-02-25"), D("2024-04-01"), LATE, True),
        (D("2024-02-26"), D("2024-04-01"), LATE, False),
        (D("2023-12-31"), D("2024-03-01"), LATE, False),  # onset before C1D1
        (D("2024-02-01"), None, D("2024-02-29"), False),  # ongoing, 28 days so far
        (D("2024-02-01"), None, D("2024-03-01"), True),  # ongoing, 29 days so far
    ],
)
def test_thrombocytopenia_duration(onset: date, resolved: date | None, as_of: date, flagged: bool) -> None:
    found = candidates(ae(onset=onset, resolved=resolved), as_of=as_of)
    assert bool(found) is flagged
    if flagged:
        (c,) = found
        assert c.rule is DltRule.PROLONGED_CYTOPENIA
        assert c.ae_id == 1
        assert c.event_date == onset
        assert "days > 28" in c.evidence


def test_29_day_grade3_thrombocytopenia_evidence() -> None:
    (c,) = candidates(ae(onset=D("2024-02-01"), resolved=D("2024-03-01")))
    assert c.rule == "prolonged_cytopenia"
    assert "Platelet count decreased grade 3 (AE 1)" in c.evidence
    assert "29 days > 28" in c.evidence
    assert "day 32 of the DLT window 2024-01-01 to 2024-02-25" in c.evidence


@pytest.mark.parametrize(
    ("term", "code", "grade", "haem", "flagged"),
    [
        ("Neutrophil count decreased", ANC_CODE, 4, True, True),
        ("Neutrophil count decreased", ANC_CODE, 3, True, True),
        ("Platelet count decreased", PLT, 2, True, False),  # below the grade threshold
        ("Anemia", "10002272", 3, True, False),  # haematological, not a DLT cytopenia
        ("White blood cell decreased", "10049182", 4, True, False),
    ],
)
def test_which_cytopenias_count(term: str, code: str, grade: int, haem: bool, flagged: bool) -> None:
    long_ae = ae(
        term=term,
        code=code,
        grade=grade,
        haematological=haem,
        attribution="definite",
        resolved=D("2024-04-01"),
    )
    assert bool(candidates(long_ae)) is flagged


def plt_labs(*pairs: tuple[str, float]) -> tuple[LabDraw, ...]:
    return tuple(LabDraw(D(d), platelets=v) for d, v in pairs)


def test_lab_episode_without_ae_is_a_candidate() -> None:
    labs = plt_labs(
        ("2024-01-29", 120),
        ("2024-02-01", 40),  # grade 3 starts
        ("2024-02-15", 20),  # grade 4
        ("2024-03-01", 60),  # first draw below grade 3: 29 days
    )
    (c,) = candidates(labs=labs)
    assert c.rule is DltRule.PROLONGED_CYTOPENIA
    assert c.ae_id is None
    assert c.event_date == D("2024-02-01")
    assert "29 days > 28" in c.evidence
    assert "worst grade 4" in c.evidence
    assert "no matching AE recorded" in c.evidence


def test_lab_episode_of_28_days_is_not() -> None:
    labs = plt_labs(("2024-02-01", 40), ("2024-02-29", 51))
    assert candidates(labs=labs) == ()


def test_lab_episode_links_to_the_ae_once() -> None:
    # AE says 20 days, labs say 35: one candidate, on the AE, with the lab evidence.
    short = ae(onset=D("2024-02-01"), resolved=D("2024-02-21"))
    labs = plt_labs(("2024-02-01", 40), ("2024-02-20", 45), ("2024-03-07", 80))
    (c,) = candidates(short, labs=labs)
    assert c.ae_id == 1
    assert "labs: thrombocytopenia" in c.evidence and "35 days > 28" in c.evidence
    # Both measures over the limit: still one candidate, both sentences.
    long_ae = ae(onset=D("2024-02-01"), resolved=D("2024-03-07"))
    (c,) = candidates(long_ae, labs=labs)
    assert c.evidence.count("35 days > 28") == 2


def test_lab_episode_ongoing_runs_to_as_of() -> None:
    labs = plt_labs(("2024-02-10", 30), ("2024-02-20", 30))
    # 2024-02-10 + 28 days = 2024-03-09 (leap year).
    assert candidates(labs=labs, as_of=D("2024-03-09")) == ()
    (c,) = candidates(labs=labs, as_of=D("2024-03-10"))
    assert "still grade >= 3 as of 2024-03-10: 29 days > 28" in c.evidence


def test_lab_episode_starting_before_c1d1_does_not_count() -> None:
    labs = plt_labs(("2023-12-20", 40), ("2024-01-05", 40), ("2024-02-10", 90))
    assert candidates(labs=labs) == ()


def test_neutropenia_from_labs() -> None:
    labs = tuple(
        LabDraw(D(d), anc=v, anc_lln=1.8) for d, v in [("2024-02-01", 0.9), ("2024-02-15", 0.4), ("2024-03-05", 1.2)]
    )
    (c,) = candidates(labs=labs)
    assert "neutropenia" in c.evidence and "33 days" in c.evidence


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # (start, end, worst grade, days)
        (
            [("2024-02-01", 49.9), ("2024-02-05", 50.0)],
            [("2024-02-01", "2024-02-05", 3, 4)],
        ),
        ([("2024-02-01", 50.0), ("2024-02-05", 60)], []),
        (
            [
                ("2024-02-01", 40),
                ("2024-02-03", 70),
                ("2024-02-05", 20),
                ("2024-02-09", 90),
            ],
            [("2024-02-01", "2024-02-03", 3, 2), ("2024-02-05", "2024-02-09", 4, 4)],
        ),
        # Two draws one day: the lowest counts.
        ([("2024-02-01", 80), ("2024-02-01", 30)], [("2024-02-01", None, 3, 9)]),
        # Draw after as_of ignored.
        ([("2024-02-01", 30), ("2024-02-20", 90)], [("2024-02-01", None, 3, 9)]),
    ],
)
def test_cytopenia_episodes(
    pairs: list[tuple[str, float]],
    expected: list[tuple[str, str | None, int, int]],
) -> None:
    episodes = cytopenia_episodes(plt_labs(*pairs), "platelets", as_of=D("2024-02-10"))
    got = [
        (
            e.start.isoformat(),
            e.end.isoformat() if e.end else None,
            e.worst_grade,
            e.days,
        )
        for e in episodes
    ]
    assert got == expected


# --- (c) non-haematological grade >= 3 related -----------------------------


@pytest.mark.parametrize(
    ("grade", "attribution", "onset", "flagged"),
    [
        (3, "unlikely", D("2024-01-10"), False),
        (3, "unrelated", D("2024-01-10"), False),
        (3, "possible", D("2024-01-10"), True),
        (3, "probable", D("2024-01-10"), True),
        (3, "definite", D("2024-01-10"), True),
        (2, "definite", D("2024-01-10"), False),
        (3, "possible", WINDOW_END, True),
        (3, "possible", WINDOW_END + timedelta(days=1), False),
    ],
)
def test_nausea(grade: int, attribution: str, onset: date, flagged: bool) -> None:
    nausea = ae(7, "Nausea", "10028813", grade, onset, None, attribution, haematological=False)
    found = candidates(nausea)
    assert bool(found) is flagged
    if flagged:
        (c,) = found
        assert c.rule is DltRule.NON_HEMATOLOGIC_GRADE3_RELATED
        assert c.ae_id == 7
        assert f"attribution {attribution}" in c.evidence


def test_febrile_neutropenia_is_non_haematological() -> None:
    fn = ae(3, "Febrile neutropenia", "10016288", 3, D("2024-01-20"), D("2024-01-25"))
    assert fn.haematological is False
    (c,) = candidates(fn)
    assert c.rule is DltRule.NON_HEMATOLOGIC_GRADE3_RELATED


def test_related_grade3_anemia_is_not_a_dlt() -> None:
    anemia = ae(4, "Anemia", "10002272", 3, D("2024-01-20"), None, "definite")
    assert candidates(anemia) == ()


# --- (a) SOS and (d) death -------------------------------------------------

SOS_CODE = "10063675"


@pytest.mark.parametrize(
    ("grade", "attribution", "onset", "flagged"),
    [
        (2, "possible", D("2024-02-10"), True),
        (2, "unlikely", D("2024-02-10"), True),  # any grade, any attribution
        (4, "definite", WINDOW_END, True),
        (2, "possible", WINDOW_END + timedelta(days=1), False),
    ],
)
def test_sos_ae(grade: int, attribution: str, onset: date, flagged: bool) -> None:
    sos = ae(
        9,
        "Sinusoidal obstruction syndrome",
        SOS_CODE,
        grade,
        onset,
        None,
        attribution,
        False,
    )
    found = candidates(sos)
    assert bool(found) is flagged
    if flagged:
        (c,) = found  # one candidate even when rule (c) would also fire
        assert (c.rule, c.ae_id) == (DltRule.SOS, 9)


def test_sos_record_and_dedup_with_its_ae() -> None:
    (c,) = candidates(sos=(SosRecord(D("2024-02-10"), grade=2),))
    assert (c.rule, c.ae_id) == (DltRule.SOS, None)
    assert "grade 2" in c.evidence
    sos_ae = ae(9, "Sinusoidal obstruction syndrome", SOS_CODE, 2, D("2024-02-10"))
    found = candidates(sos_ae, sos=(SosRecord(D("2024-02-10"), grade=2, ae_id=9),))
    assert [(c.rule, c.ae_id) for c in found] == [(DltRule.SOS, 9)]
    assert candidates(sos=(SosRecord(WINDOW_END + timedelta(days=1)),)) == ()


@pytest.mark.parametrize(
    ("death", "as_of", "flagged"),
    [
        (D("2024-02-01"), LATE, True),
        (WINDOW_END, LATE, True),
        (WINDOW_END + timedelta(days=1), LATE, False),
        (D("2024-02-01"), D("2024-01-31"), False),  # not yet, as of then
    ],
)
def test_death(death: date, as_of: date, flagged: bool) -> None:
    found = candidates(death=death, as_of=as_of)
    assert bool(found) is flagged
    if flagged:
        (c,) = found
        assert (c.rule, c.ae_id, c.event_date) == (DltRule.DEATH, None, death)


def test_candidates_are_ordered_by_date() -> None:
    found = candidates(
        ae(1, onset=D("2024-02-01"), resolved=D("2024-03-15")),
        ae(2, "Nausea", "10028813", 3, D("2024-01-05"), None, "probable", False),
        death=D("2024-02-20"),
    )
    assert [c.rule for c in found] == [
        DltRule.NON_HEMATOLOGIC_GRADE3_RELATED,
        DltRule.PROLONGED_CYTOPENIA,
        DltRule.DEATH,
    ]


def test_thresholds_are_params() -> None:
    params = DltParams(
        cytopenia_max_days=21,
        non_haematological_grade=4,
        related_attributions=frozenset({"probable", "definite"}),
    )
    plt22 = ae(1, onset=D("2024-02-01"), resolved=D("2024-02-23"))
    nausea3 = ae(2, "Nausea", "10028813", 3, D("2024-01-05"), None, "definite", False)
    vomit4 = ae(3, "Vomiting", "10047700", 4, D("2024-01-05"), None, "possible", False)
    found = candidates(plt22, nausea3, vomit4, params=params)
    assert [c.ae_id for c in found] == [1]
    assert candidates(plt22, nausea3, vomit4) != ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attribution": "likely"},
        {"grade": 6},
        {"onset": D("2024-02-01"), "resolved": D("2024-01-31")},
    ],
)
def test_bad_ae_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ae(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_cycles": 0},
        {"cytopenia_grade": 6},
        {"related_attributions": frozenset({"maybe"})},
        {"cytopenia_max_days": -1},
    ],
)
def test_bad_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DltParams(**kwargs)  # type: ignore[arg-type]


# --- evaluability ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cycles", "as_of", "kwargs", "status"),
    [
        # The paper's replaced L1 patient: one dose, treatment stopped.
        ((C1,), D("2024-01-20"), {"treatment_ended": D("2024-01-15")}, "non_evaluable"),
        # One dose and the window (C1D1 + 55) is over.
        ((C1,), D("2024-02-26"), {}, "non_evaluable"),
        # One dose, C2 may still come.
        ((C1,), D("2024-01-30"), {}, "pending"),
        # Both doses, window complete, no DLT.
        ((C1, C2), D("2024-02-26"), {}, "evaluable_without_dlt"),
        ((C1, C2, C3), D("2024-03-01"), {}, "evaluable_without_dlt"),
        # The window's last day is not yet complete.
        ((C1, C2), WINDOW_END, {}, "pending"),
        # DLT after one dose: evaluable with DLT.
        (
            (C1,),
            D("2024-01-25"),
            {
                "confirmed_dlt_dates": [D("2024-01-20")],
                "treatment_ended": D("2024-01-22"),
            },
            "evaluable_with_dlt",
        ),
        # A confirmed event outside the window does not count.
        (
            (C1, C2),
            D("2024-03-10"),
            {"confirmed_dlt_dates": [D("2024-03-01")]},
            "evaluable_without_dlt",
        ),
        # Open candidates hold the decision.
        ((C1, C2), D("2024-03-10"), {"unadjudicated_candidates": 1}, "pending"),
        ((C1,), D("2024-03-10"), {"unadjudicated_candidates": 2}, "pending"),
        # Off study before the window was complete, no DLT: replaced.
        ((C1, C2), D("2024-03-10"), {"off_study": D("2024-02-10")}, "non_evaluable"),
        # Off study after the window: still evaluable.
        (
            (C1, C2),
            D("2024-03-10"),
            {"off_study": WINDOW_END + timedelta(days=1)},
            "evaluable_without_dlt",
        ),
        # Treatment ended after both doses but follow-up continued.
        (
            (C1, C2),
            D("2024-03-10"),
            {"treatment_ended": D("2024-02-10")},
            "evaluable_without_dlt",
        ),
        ((), D("2024-01-10"), {}, "pending"),
        ((), D("2024-01-10"), {"treatment_ended": D("2024-01-05")}, "non_evaluable"),
    ],
)
def test_evaluability(cycles: tuple[date, ...], as_of: date, kwargs: dict[str, object], status: str) -> None:
    result = dlt_evaluability(cycles, as_of=as_of, **kwargs)  # type: ignore[arg-type]
    assert result.status == status
    assert result.status is Evaluability(status)
    assert result.replacement_needed is (status == "non_evaluable")
    assert result.reason


def test_evaluability_reason_and_doses() -> None:
    result = dlt_evaluability((C1,), as_of=D("2024-02-26"))
    assert result.doses_in_window == 1
    assert "1 of 2 window doses" in result.reason
    assert result.window is not None and result.window.end == WINDOW_END
    three = dlt_evaluability((C1, C2, C3), as_of=D("2024-03-01"))
    assert three.doses_in_window == 2
