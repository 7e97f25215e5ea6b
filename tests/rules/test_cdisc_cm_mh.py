"""exchange.cdisc.mapping.map_cm and map_mh: worked examples (issue 18 slice 2). Pure.

The subject of test_cdisc_mapping: HCT 2024-01-15, first dose 2024-03-10, end of
treatment 2024-05-08."""

import datetime

from exchange.cdisc import mapping
from exchange.cdisc.mapping import Medication
from tests.rules.test_cdisc_mapping import STUDY, _subject

D = datetime.date
CM_COLUMNS = ("CMSEQ", "CMSPID", "CMTRT", "CMDECOD", "CMCAT", "EPOCH", "CMSTDTC", "CMENDTC", "CMSTDY", "CMENDY",
              "CMENRF")  # fmt: skip


def test_cm_worked_example():  # type: ignore[no-untyped-def]
    meds = (
        Medication(8, "other", D(2024, 6, 1), None, " bosutinib "),
        Medication(7, "imatinib", D(2024, 2, 1), D(2024, 3, 20)),
    )
    rows = mapping.map_cm(STUDY, [_subject(medications=meds)])
    assert [tuple(r[c] for c in CM_COLUMNS) for r in rows] == [
        (1, "CM-7", "IMATINIB", "IMATINIB", "TYROSINE KINASE INHIBITOR", "SCREENING", "2024-02-01", "2024-03-20",
         -38, 11, None),
        # "other": the typed name as reported, no standardised name; no stop date: ongoing
        (2, "CM-8", "BOSUTINIB", None, "TYROSINE KINASE INHIBITOR", "FOLLOW-UP", "2024-06-01", None, 84, None,
         "ONGOING"),
    ]  # fmt: skip
    assert {r["USUBJID"] for r in rows} == {"STUDY-1-UHC-001"}


def test_mh_diagnosis_and_transplant():  # type: ignore[no-untyped-def]
    rows = mapping.map_mh(STUDY, [_subject(diagnosis="cml_lymphoid_blast")])
    assert [(r["MHSEQ"], r["MHTERM"], r["MHCAT"], r["MHSTDTC"], r["MHSTDY"]) for r in rows] == [
        (1, "CHRONIC MYELOID LEUKEMIA IN LYMPHOID BLAST CRISIS", "PRIMARY DIAGNOSIS", None, None),
        (2, "ALLOGENEIC HEMATOPOIETIC CELL TRANSPLANTATION", "TRANSPLANT", "2024-01-15", -55),
    ]
    # nothing recorded: no records
    assert mapping.map_mh(STUDY, [_subject(hct_date=None)]) == []
