"""exchange.cdisc.mapping: the trial design domains (TS, TA, TE, TV, TI), RS and ADAE,
worked rows (issue 18). Pure: no database."""

import dataclasses
import datetime
from decimal import Decimal

import pytest

from dosing.schedule import ScheduleParams
from exchange.cdisc import mapping, metadata, terminology
from exchange.cdisc.mapping import Dose, ResponseAssessment
from patients.eligibility import EligibilityParams
from tests.rules.test_cdisc_mapping import DESIGN, STUDY, _ae, _subject

D = datetime.date


def _ts(rows):  # type: ignore[no-untyped-def]
    return {(r["TSPARMCD"], r["TSSEQ"]): (r["TSVAL"], r["TSVALCD"], r["TSVCDREF"]) for r in rows}


# ------------------------------------------------------------------ TS


def test_ts_worked_rows():  # type: ignore[no-untyped-def]
    second = _subject(subject_id="UHC-002", enrolled_on=None,
                      dispositions=(mapping.Disposition("consent", 30, D(2023, 11, 5)),))  # fmt: skip
    rows = mapping.map_ts(STUDY, [_subject(), second])
    ts = _ts(rows)
    assert ts[("TITLE", 1)] == ("Low-dose inotuzumab ozogamicin after allogeneic HCT", None, None)
    assert ts[("TPHASE", 1)] == ("PHASE I TRIAL", "C15600", "CDISC CT")
    assert ts[("STYPE", 1)] == ("INTERVENTIONAL", "C98388", "CDISC CT")
    assert ts[("TTYPE", 1)] == ("SAFETY", "C49667", "CDISC CT")
    assert ts[("INDIC", 1)][0] == "CD22-POSITIVE B-CELL ACUTE LYMPHOBLASTIC LEUKEMIA"
    assert ts[("INDIC", 2)][0] == "CHRONIC MYELOID LEUKEMIA IN LYMPHOID BLAST CRISIS"
    assert ts[("TRT", 1)] == ("INOTUZUMAB OZOGAMICIN", None, None)
    # one DOSE per dose level, grouped by the arm code DM.ARMCD uses
    doses = [(r["TSSEQ"], r["TSGRPID"], r["TSVAL"]) for r in rows if r["TSPARMCD"] == "DOSE"]
    assert doses == [(1, "L1", "0.3"), (2, "L2", "0.4"), (3, "L3", "0.5"), (4, "L4", "0.6")]
    # CDISC CT UNIT and FREQ terms with their C-codes (FREQ's submission value, not its synonym Q4W)
    assert ts[("DOSU", 1)] == ("mg/m2", "C67402", "CDISC CT")
    assert ts[("DOSFRQ", 1)] == ("EVERY 4 WEEKS", "C64529", "CDISC CT")
    assert ts[("ROUTE", 1)] == ("INTRAVENOUS", "C38276", "CDISC CT")
    assert ts[("ADDON", 1)] == ("N", "C49487", "CDISC CT")
    assert ts[("AGEMIN", 1)] == ("P16Y", None, "ISO 8601") and ts[("AGEMAX", 1)] == ("P75Y", None, "ISO 8601")
    assert ts[("SEXPOP", 1)] == ("BOTH", "C49636", "CDISC CT")
    assert ts[("PLANSUB", 1)][0] == "30" and ts[("ACTSUB", 1)][0] == "1"  # the second subject is not enrolled
    assert ts[("NARMS", 1)][0] == "4"
    assert ts[("RANDOM", 1)] == ("N", "C49487", "CDISC CT")
    assert ts[("TBLIND", 1)] == ("OPEN LABEL", "C49659", "CDISC CT")
    assert ts[("TCNTRL", 1)] == ("NONE", "C41132", "CDISC CT")
    assert ts[("FCNTRY", 1)] == ("USA", None, "ISO 3166")
    assert ts[("SSTDTC", 1)] == ("2023-11-05", None, "ISO 8601")  # the earliest consent of any subject
    sponsor = next(r for r in rows if r["TSPARMCD"] == "SPONSOR")
    assert (sponsor["TSVAL"], sponsor["TSVALNF"]) == (None, "UNK")  # no sponsor recorded: null flavour
    assert not any(r["TSPARMCD"] in ("DCUTDTC", "DCUTDESC") for r in rows)  # not locked
    assert {r["TSVCDVER"] for r in rows if r["TSVCDREF"] == "CDISC CT"} == {terminology.CT_VERSION}
    assert [r["TSPARMCD"] for r in rows] == sorted(
        (r["TSPARMCD"] for r in rows), key=[c for c, _ in terminology.TS_PARAMETERS].index
    )


def test_ts_lock_sponsor_long_title_and_other_cycle_length():  # type: ignore[no-untyped-def]
    design = dataclasses.replace(
        DESIGN,
        title="T" * 250,
        sponsor="Acme Oncology",
        lock_date=D(2026, 11, 30),
        schedule=ScheduleParams(cycle_length_days=35),
        countries=("USA", "FRA", "USA"),
    )
    rows = mapping.map_ts(dataclasses.replace(STUDY, design=design), [_subject()])
    ts = _ts(rows)
    title = next(r for r in rows if r["TSPARMCD"] == "TITLE")
    assert (title["TSVAL"], title["TSVAL1"]) == ("T" * 200, "T" * 50)  # over 200: continued in TSVAL1
    assert ts[("SPONSOR", 1)][0] == "ACME ONCOLOGY"
    assert ts[("DCUTDTC", 1)] == ("2026-11-30", None, "ISO 8601") and ts[("DCUTDESC", 1)][0] == "DATABASE LOCK"
    assert ts[("DOSFRQ", 1)] == ("EVERY 35 DAYS", None, None)
    assert [v for (c, _), (v, _, _) in sorted(ts.items()) if c == "FCNTRY"] == ["FRA", "USA"]


# ------------------------------------------------------------------ TA, TE


def test_ta_one_arm_per_dose_level_with_dm_arm_codes():  # type: ignore[no-untyped-def]
    rows = mapping.map_ta(STUDY, [])
    assert [(r["ARMCD"], r["TAETORD"], r["ETCD"], r["EPOCH"]) for r in rows[:3]] == [
        ("L1", 1, "SCRN", "SCREENING"),
        ("L1", 2, "TL1", "TREATMENT"),
        ("L1", 3, "FU", "FOLLOW-UP"),
    ]
    assert len(rows) == 12 and {r["ARMCD"] for r in rows} == {"L1", "L2", "L3", "L4"}
    # the arm codes and names are DM's for a subject assigned to the level
    [dm] = mapping.map_dm(STUDY, [_subject(level=4)])  # L4 is 0.6 mg/m2 in DESIGN
    assert (dm["ARMCD"], dm["ARM"]) in {(r["ARMCD"], r["ARM"]) for r in rows}
    assert rows[0]["TABRANCH"] == "Assigned to dose level 1 at enrolment (3+3)"
    assert rows[1]["TATRANS"].startswith("Repeat the cycle every 28 days up to the protocol version's maximum (12")
    te = mapping.map_te(STUDY, [])
    assert {r["ETCD"] for r in rows} == {r["ETCD"] for r in te}  # every element of TA is defined in TE
    assert [(r["ETCD"], r["ELEMENT"], r["TEDUR"]) for r in te] == [
        ("SCRN", "Screening", None),
        ("TL1", "Dose level 1 cycle", "P28D"),
        ("TL2", "Dose level 2 cycle", "P28D"),
        ("TL3", "Dose level 3 cycle", "P28D"),
        ("TL4", "Dose level 4 cycle", "P28D"),
        ("FU", "Follow-up", None),
    ]
    assert te[4]["TESTRL"] == "Day 1 of a cycle: INOTUZUMAB OZOGAMICIN 0.6 mg/m2 intravenously"
    assert te[0]["TEENRL"] == "Enrolment at a dose level (day +40 to +100 after HCT)"


# ------------------------------------------------------------------ TV


def test_tv_cycles_then_the_assessment_calendar():  # type: ignore[no-untyped-def]
    rows = mapping.map_tv(STUDY, [])
    visits = [(r["VISITNUM"], r["VISIT"], r["VISITDY"]) for r in rows]
    assert visits[:3] == [(1, "CYCLE 1 DAY 1", 1), (2, "CYCLE 2 DAY 1", 29), (3, "CYCLE 3 DAY 1", 57)]
    assert visits[11] == (12, "CYCLE 12 DAY 1", 309)  # protocol v2: up to 12 cycles
    assert visits[12:] == [
        (101, "MRD WITHIN 14 DAYS BEFORE C1D1", 1),
        (102, "MRD 3 MONTHS AFTER HCT", None),  # anchored on HCT: no fixed study day
        (103, "MRD 6 MONTHS AFTER HCT", None),
        (104, "MRD 9 MONTHS AFTER HCT", None),
        (105, "MRD 30 DAYS AFTER EOT", None),
        (106, "BONE MARROW 3 MONTHS AFTER C1D1", 92),
        (107, "BONE MARROW 6 MONTHS AFTER C1D1", 183),
        (108, "BONE MARROW 9 MONTHS AFTER C1D1", 274),
        (109, "BONE MARROW AT EOT", None),
        (110, "BONE MARROW 1 YEAR AFTER THE LAST DOSE", None),
    ]
    assert rows[0]["TVSTRL"] == "Day +40 to +100 after HCT, on or after enrolment"
    assert rows[13]["TVSTRL"] == (
        "MRD 3 months after HCT: due 91 days after HCT, window 14 days before to 14 days after"
    )
    # a trial with other numbers gets other visits (no code change)
    other = dataclasses.replace(
        DESIGN, schedule=ScheduleParams(cycle_length_days=21, max_cycles_by_version=(("1", 3),), assessments=())
    )
    assert [(r["VISITNUM"], r["VISITDY"]) for r in mapping.map_tv(dataclasses.replace(STUDY, design=other), [])] == [
        (1, 1), (2, 22), (3, 43),
    ]  # fmt: skip


# ------------------------------------------------------------------ TI


def test_ti_the_protocol_criteria_with_the_trial_thresholds():  # type: ignore[no-untyped-def]
    rows = mapping.map_ti(STUDY, [])
    assert [(r["IETESTCD"], r["IECAT"]) for r in rows] == [
        *((f"INCL0{n}", "INCLUSION") for n in range(1, 7)),
        ("EXCL01", "EXCLUSION"),
        ("EXCL02", "EXCLUSION"),
    ]
    text = {r["IETESTCD"]: r["IETEST"] for r in rows}
    assert text["INCL01"] == "Age 16 to 75 years at informed consent"
    assert text["INCL02"] == (
        "Diagnosis of CD22-positive B-cell acute lymphoblastic leukemia or chronic myeloid leukemia in lymphoid "
        "blast crisis"
    )
    assert text["INCL06"] == (
        "Graft function: platelets > 50 x10^9/L and ANC > 1 x10^9/L on labs drawn within 14 days before enrolment"
    )
    assert text["EXCL01"] == "Active acute GVHD grade 3 or higher, or active liver GVHD of any grade"
    other = dataclasses.replace(DESIGN, eligibility=EligibilityParams(min_age=18, max_age=70, platelets_above=75.0))
    text = {r["IETESTCD"]: r["IETEST"] for r in mapping.map_ti(dataclasses.replace(STUDY, design=other), [])}
    assert text["INCL01"] == "Age 18 to 70 years at informed consent"
    assert text["INCL06"].startswith("Graft function: platelets > 75 x10^9/L")


# ------------------------------------------------------------------ RS


def _rs(assessments, **kw):  # type: ignore[no-untyped-def]
    return mapping.map_rs(STUDY, [_subject(assessments=assessments, **kw)])


def test_rs_one_record_per_test_reported():  # type: ignore[no-untyped-def]
    rows = _rs(
        (
            ResponseAssessment(8, "bone_marrow", D(2024, 6, 9), response="cri", blasts_pct=Decimal("2.0"),
                               extramedullary=False),
            ResponseAssessment(7, "mrd", D(2024, 3, 1), "pcr", "positive", Decimal("0.00012000")),
        )
    )  # fmt: skip
    got = [(r["RSSEQ"], r["RSSPID"], r["RSTESTCD"], r["RSCAT"], r["RSORRES"], r["RSSTRESC"], r["RSSTRESN"],
            r["RSSTRESU"], r["RSMETHOD"], r["RSEVAL"]) for r in rows]  # fmt: skip
    assert got == [
        (1, "ASSESSMENT-7", "MRD", "MINIMAL RESIDUAL DISEASE", "POSITIVE", "POSITIVE", None, None,
         "POLYMERASE CHAIN REACTION", None),
        (2, "ASSESSMENT-7", "MRDLVL", "MINIMAL RESIDUAL DISEASE", "0.00012", "0.00012", 0.00012, None,
         "POLYMERASE CHAIN REACTION", None),
        (3, "ASSESSMENT-8", "OVRLRESP", "BONE MARROW RESPONSE", "CRi", "CRI", None, None, None, "INVESTIGATOR"),
        (4, "ASSESSMENT-8", "BLASTS", "BONE MARROW RESPONSE", "2", "2", 2.0, "%", None, None),
        (5, "ASSESSMENT-8", "EXTRAMED", "BONE MARROW RESPONSE", "ABSENT", "ABSENT", None, None, None, None),
    ]  # fmt: skip
    assert [(r["RSDTC"], r["RSDY"], r["EPOCH"]) for r in rows[::2]] == [
        ("2024-03-01", -9, "SCREENING"), ("2024-06-09", 92, "FOLLOW-UP"), ("2024-06-09", 92, "FOLLOW-UP"),
    ]  # fmt: skip
    for r in rows:
        for v in metadata.RS.variables:
            if v.codelist is not None and v.type == "Char":
                assert terminology.in_codelist(v.codelist, r[v.name]), (v.name, r[v.name])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "day", "visit"),
    [
        # HCT 2024-01-15, C1D1 2024-03-10, EOT 2024-05-08 (the _subject defaults)
        ("mrd", D(2024, 3, 1), (101, "MRD WITHIN 14 DAYS BEFORE C1D1")),  # 9 days before C1D1
        ("mrd", D(2024, 2, 24), (101, "MRD WITHIN 14 DAYS BEFORE C1D1")),  # 15 days before: outside
        ("mrd", D(2024, 4, 15), (102, "MRD 3 MONTHS AFTER HCT")),  # due 2024-04-15 (HCT + 91)
        ("mrd", D(2024, 4, 29), (102, "MRD 3 MONTHS AFTER HCT")),  # last day of the window
        ("mrd", D(2024, 6, 7), (105, "MRD 30 DAYS AFTER EOT")),  # due 2024-06-07 (EOT + 30)
        ("bone_marrow", D(2024, 6, 9), (106, "BONE MARROW 3 MONTHS AFTER C1D1")),  # due 2024-06-09
        ("bone_marrow", D(2024, 5, 8), (109, "BONE MARROW AT EOT")),
        ("bone_marrow", D(2024, 4, 1), (None, None)),  # no planned marrow then: unscheduled
        ("mrd", D(2024, 5, 20), (None, None)),
    ],
)
def test_rs_visit_is_the_planned_assessment_whose_window_holds_the_date(kind, day, visit):  # type: ignore[no-untyped-def]
    if day == D(2024, 2, 24):
        visit = (None, None)  # the pre-C1D1 MRD window is the 14 days before C1D1 only
    [row, *_] = _rs((ResponseAssessment(1, kind, day, result="negative", response="cr"),))
    assert (row["VISITNUM"], row["VISIT"]) == visit


def test_rs_without_a_transplant_date_is_unscheduled_and_empty_assessments_give_no_rows():  # type: ignore[no-untyped-def]
    [row] = _rs((ResponseAssessment(1, "mrd", D(2024, 3, 1), result="negative"),), hct_date=None)
    assert (row["VISITNUM"], row["VISIT"]) == (None, None)
    assert _rs((ResponseAssessment(2, "mrd", D(2024, 3, 1)),)) == []  # nothing reported: no record


# ------------------------------------------------------------------ ADAE


def test_adae_worked_rows():  # type: ignore[no-untyped-def]
    subject = _subject(
        doses=(
            Dose(1, D(2024, 3, 10), 2, Decimal("1.02"), Decimal("0.600"), Decimal("1.70")),
            Dose(2, D(2024, 4, 10), 1, Decimal("0.51"), Decimal("0.300"), Decimal("1.70"), True, "cytopenia"),
        ),
        adverse_events=(
            _ae(40, D(2024, 3, 12), D(2024, 3, 20), grade=3, dlt=True, dlt_rule="non_hematologic_grade3_related"),
            _ae(7, D(2024, 3, 9), grade=1),  # the day before the first dose
            _ae(41, D(2024, 4, 10), grade=4, dlt=False),  # the day of the cycle 2 dose (level 1 after a reduction)
        ),
        dlt_evaluable=True,
    )
    rows = mapping.map_adae(STUDY, [subject])
    got = [(r["AESEQ"], r["TRTA"], r["TRTAN"], r["ASTDT"], r["AENDT"], r["ASTDY"], r["AENDY"], r["TRTEMFL"],
            r["ATOXGR"], r["ATOXGRN"], r["DLTFL"], r["DLTRULE"]) for r in rows]  # fmt: skip
    assert got == [
        (1, None, None, D(2024, 3, 9), None, -1, None, None, "1", 1, None, None),
        (2, "0.4 mg/m2", 2, D(2024, 3, 12), D(2024, 3, 20), 3, 11, "Y", "3", 3, "Y",
         "NON_HEMATOLOGIC_GRADE3_RELATED"),
        (3, "0.3 mg/m2", 1, D(2024, 4, 10), None, 32, None, "Y", "4", 4, "N", None),
    ]  # fmt: skip
    # the AE's sequence numbers are AE's, the subject variables ADSL's
    ae = mapping.map_ae(STUDY, [subject])
    [adsl] = mapping.map_adsl(STUDY, [subject])
    assert [(r["AESEQ"], r["AESTDTC"], r["AETERM"]) for r in rows] == [
        (r["AESEQ"], r["AESTDTC"], r["AETERM"]) for r in ae
    ]
    for r in rows:
        assert (r["SAFFL"], r["TRT01A"], r["TRTSDT"], r["AGE"]) == (
            adsl["SAFFL"], adsl["TRT01A"], adsl["TRTSDT"], adsl["AGE"],
        )  # fmt: skip


def test_adae_of_a_never_dosed_subject():  # type: ignore[no-untyped-def]
    [row] = mapping.map_adae(STUDY, [_subject(doses=(), adverse_events=(_ae(1, D(2024, 3, 12)),))])
    assert (row["SAFFL"], row["TRTA"], row["TRTEMFL"], row["ASTDY"], row["TRTSDT"]) == ("N", None, None, None, None)
