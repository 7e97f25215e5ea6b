"""exchange.cdisc.mapping.map_lb: a worked example (issue 18 slice 2). Pure: no database.

First dose 2024-03-10. Limits (SI): platelets LLN 150, ANC LLN 1.8, Hgb LLN 120,
bilirubin ULN 21, ALT ULN 40. Panels: 2024-03-01 (screening), 2024-03-10 (entered with
cycle 1, the first-dose day: the baseline), 2024-03-24 (unscheduled)."""

import datetime
from decimal import Decimal

from exchange.cdisc import mapping, metadata, terminology
from exchange.cdisc.mapping import LabDraw, Study
from tests.rules.test_cdisc_mapping import _subject

D = datetime.date
LIMITS = (
    ("platelets_lln", Decimal("150")),
    ("anc_lln", Decimal("1.8")),
    ("hemoglobin_lln", Decimal("120")),
    ("bilirubin_uln", Decimal("21")),
    ("alt_uln", Decimal("40")),
    ("ast_uln", Decimal("40")),
)
STUDY = Study(code="STUDY-1", drug="INOTUZUMAB OZOGAMICIN", lab_limits=LIMITS)
LABS = (
    LabDraw(33, D(2024, 3, 24), None, platelets=Decimal("40"), hemoglobin=Decimal("75.0"),
            bilirubin=Decimal("70"), alt=Decimal("130")),
    LabDraw(31, D(2024, 3, 1), None, platelets=Decimal("160"), alt=Decimal("30")),
    LabDraw(32, D(2024, 3, 10), 1, platelets=Decimal("140"), anc=Decimal("1.20"), alt=Decimal("50")),
)  # fmt: skip

COLUMNS = ("LBSEQ", "LBSPID", "LBTESTCD", "LBORRES", "LBSTRESN", "LBSTRESU", "LBNRIND", "LBTOXGR", "LBBLFL",
           "VISITNUM", "VISIT", "EPOCH", "LBDTC", "LBDY")  # fmt: skip
EXPECTED = [
    (1, "LAB-31", "PLAT", "160", 160.0, "10^9/L", None, None, None, None, None, "SCREENING", "2024-03-01", -9),
    (2, "LAB-31", "ALT", "30", 30.0, "U/L", None, None, None, None, None, "SCREENING", "2024-03-01", -9),
    # Baseline: the last value on or before the first dose; graded against the limit alone.
    (3, "LAB-32", "PLAT", "140", 140.0, "10^9/L", "LOW", "1", "Y", 1, "CYCLE 1 DAY 1", "TREATMENT", "2024-03-10", 1),
    (4, "LAB-32", "NEUT", "1.2", 1.2, "10^9/L", "LOW", "2", "Y", 1, "CYCLE 1 DAY 1", "TREATMENT", "2024-03-10", 1),
    (5, "LAB-32", "ALT", "50", 50.0, "U/L", "HIGH", "1", "Y", 1, "CYCLE 1 DAY 1", "TREATMENT", "2024-03-10", 1),
    (6, "LAB-33", "PLAT", "40", 40.0, "10^9/L", "LOW", "3", None, None, None, "TREATMENT", "2024-03-24", 15),
    (7, "LAB-33", "HGB", "75", 75.0, "g/L", "LOW", "3", None, None, None, "TREATMENT", "2024-03-24", 15),
    # No bilirubin before the first dose: baseline taken as normal, 70/21 = 3.3 x ULN.
    (8, "LAB-33", "BILI", "70", 70.0, "umol/L", "HIGH", "3", None, None, None, "TREATMENT", "2024-03-24", 15),
    # Abnormal ALT baseline (50 > ULN 40): 130 / 50 = 2.6 x baseline is grade 1, not 3.25 x ULN grade 2.
    (9, "LAB-33", "ALT", "130", 130.0, "U/L", "HIGH", "1", None, None, None, "TREATMENT", "2024-03-24", 15),
]  # fmt: skip


def test_lb_worked_example():  # type: ignore[no-untyped-def]
    rows = mapping.map_lb(STUDY, [_subject(labs=LABS)])
    assert [tuple(r[c] for c in COLUMNS) for r in rows] == EXPECTED
    assert all(tuple(r) == metadata.LB.names for r in rows)
    assert {(r["LBTESTCD"], r["LBTEST"], r["LBCAT"]) for r in rows} >= {
        ("PLAT", "Platelets", "HEMATOLOGY"),
        ("BILI", "Bilirubin", "CHEMISTRY"),
    }
    plat = rows[2]
    assert (plat["LBSTNRLO"], plat["LBSTNRHI"], plat["LBORNRLO"], plat["LBORNRHI"]) == (150.0, None, "150", None)
    alt = rows[4]
    assert (alt["LBSTNRLO"], alt["LBSTNRHI"], alt["LBORNRHI"]) == (None, 40.0, "40")
    for r in rows:
        for v in metadata.LB.variables:
            if v.codelist is not None and isinstance(r[v.name], str):
                assert terminology.in_codelist(v.codelist, r[v.name]), (v.name, r[v.name])


def test_lb_without_limits_has_no_indicator_or_grade():  # type: ignore[no-untyped-def]
    rows = mapping.map_lb(Study(code="S", drug="X"), [_subject(labs=LABS)])
    assert {(r["LBNRIND"], r["LBTOXGR"], r["LBSTNRLO"], r["LBSTNRHI"]) for r in rows} == {(None, None, None, None)}
    assert [r["LBBLFL"] for r in rows].count("Y") == 3


def test_lb_never_dosed_has_no_baseline():  # type: ignore[no-untyped-def]
    rows = mapping.map_lb(STUDY, [_subject(doses=(), labs=LABS)])
    assert {r["LBBLFL"] for r in rows} == {None} and {r["EPOCH"] for r in rows} == {"SCREENING"}
    assert {r["LBDY"] for r in rows} == {None}
