"""patients.table1: the paper's Table 1 from one record per treated patient."""

from dataclasses import replace

import pytest

from patients.table1 import Table1Patient, table1

BASE = Table1Patient(
    age=44, sex="male", race="white", cytogenetic_risk="standard", ph_positive=False, prior_lines=2,
    prior_asparaginase=False, prior_blinatumomab=False, prior_inotuzumab=False, prior_car_t=False, prior_hct=False,
    disease_status="cr1", hct_ci=1, donor_type="matched_unrelated", graft_source="peripheral_blood",
    conditioning="ric", regimen="melphalan", atg=False, gvhd_prophylaxis="cni_mtx", mrd_before=False, mrd_after=False,
)  # fmt: skip


def one(**changes):  # type: ignore[no-untyped-def]
    return replace(BASE, **changes)


@pytest.mark.parametrize(
    ("patient", "section", "label"),
    [
        (one(age=15), "Age, y", "15-39"),
        (one(age=39), "Age, y", "15-39"),
        (one(age=40), "Age, y", "40-49"),
        (one(age=59), "Age, y", "50-59"),
        (one(age=69), "Age, y", "60-69"),
        (one(age=70), "Age, y", "Unknown"),  # outside the paper's bands: counted, not lost
        (one(age=None), "Age, y", "Unknown"),
        (one(sex="female"), "Sex", "Female"),
        (one(race="other"), "Race", "Other or unreported"),
        (one(race="unreported"), "Race", "Other or unreported"),
        (one(race="asian"), "Race", "Asian"),
        (one(cytogenetic_risk="adverse"), "Cytogenetics risk", "Adverse"),
        (one(ph_positive=True), "Cytogenetics risk", "Ph+"),
        (one(prior_car_t=True), "Therapy before transplantation", "CAR T-cell therapy"),
        (one(disease_status="cr3_plus"), "Disease status before HCT", "CR3 or more"),
        (one(disease_status=""), "Disease status before HCT", "Unknown"),
        (one(hct_ci=0), "HCT-CI", "0"),
        (one(hct_ci=2), "HCT-CI", "1-2"),
        (one(hct_ci=3), "HCT-CI", ">=3"),
        (one(hct_ci=None), "HCT-CI", "Unknown"),
        (one(donor_type="cord_blood"), "Donor type", "Cord blood"),
        (one(donor_type="matched_related"), "Donor type", "Matched related (other)"),
        (one(graft_source="bone_marrow"), "Donor source", "Bone marrow"),
        (one(conditioning="mac"), "Conditioning regimen", "MAC"),
        (one(conditioning="nma"), "Conditioning regimen", "RIC/NMA"),
        (one(atg=True), "Conditioning regimen", "ATG use"),
        (one(gvhd_prophylaxis="ptcy"), "GVHD prophylaxis regimen", "PTCy"),
        (one(gvhd_prophylaxis="other"), "GVHD prophylaxis regimen", "Other"),
        (one(mrd_before=True), "MRD status", "MRD+ before HCT"),
        (one(mrd_after=True), "MRD status", "MRD+ after HCT"),
        (one(mrd_before=True, mrd_after=True), "MRD status", "MRD+ before and after HCT"),
        (one(), "MRD status", "MRD- before and after HCT"),
        (one(mrd_before=None, mrd_after=None), "MRD status", "Unknown"),
        (one(mrd_before=None, mrd_after=False), "MRD status", "MRD- before and after HCT"),
    ],
)
def test_each_patient_lands_in_one_row(patient, section, label):  # type: ignore[no-untyped-def]
    t = table1([patient, BASE])
    assert t.count(section, label) == (2 if label in _base_labels(section) else 1)


def _base_labels(section: str) -> set[str]:
    t = table1([BASE])
    return {r.label for r in t.section(section).rows if r.count}


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ([44], (44, 44, 44)),
        ([17, 44, 67], (44, 17, 67)),
        ([17, 43, 45, 67], (44, 17, 67)),  # even N: the mean of the middle two
        ([30, 31], (30.5, 30, 31)),
    ],
)
def test_median_and_range(ages, expected):  # type: ignore[no-untyped-def]
    t = table1([one(age=a) for a in ages])
    assert t.median("Age, y", "Median (range)") == expected


def test_every_section_adds_up_to_n_and_percent_is_of_n():  # type: ignore[no-untyped-def]
    patients = [one(), one(conditioning="mac", regimen="tbi", age=29), one(hct_ci=None, age=None), one(race="black")]
    t = table1(patients)
    for title in ("Sex", "Race", "Disease status before HCT", "HCT-CI", "Donor type", "MRD status"):
        assert sum(r.count or 0 for r in t.section(title).rows) == 4, title
    assert t.section("Sex").row("Male").text == "4 (100.0)"
    assert t.section("Race").row("Black").text == "1 (25.0)"
    assert t.median("Age, y", "MAC: median (range)") == (29, 29, 29)
    assert t.section("Age, y").row("Median (range)").text == "44 (29-44)"


def test_regimens_are_sub_rows_of_their_intensity():  # type: ignore[no-untyped-def]
    patients = [one(conditioning="mac", regimen="busulfan"), one(conditioning="mac", regimen="tbi"),
                one(regimen="melphalan"), one(conditioning="nma", regimen="other")]  # fmt: skip
    rows = [(r.label, r.count, r.indent) for r in table1(patients).section("Conditioning regimen").rows]
    assert rows == [
        ("MAC", 2, False), ("Busulfan based", 1, True), ("Other + TBI", 1, True),
        ("RIC/NMA", 2, False), ("Busulfan based", 0, True), ("Melphalan based", 1, True), ("Other + TBI", 0, True),
        ("Other / not recorded", 1, True),
        ("ATG use", 0, False),
    ]  # fmt: skip


def test_empty_group():  # type: ignore[no-untyped-def]
    t = table1([])
    assert t.n == 0 and t.median("Age, y", "Median (range)") == (None, None, None)
    assert t.section("Sex").row("Male").text == "0"
