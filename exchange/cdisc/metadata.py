"""The variables of each dataset as data: SDTMIG 3.4 (the trial design domains TS, TA, TE,
TV, TI; DM, AE, EX, DS, LB, CM, MH, RS, SUPPQUAL) and ADaMIG 1.3 (ADSL, ADAE, ADTTE), in
dataset order, with label, type, maximum length, core and codelist. Pure: no Django.
The writers read it (labels, types, lengths); the mapping functions produce exactly these variables.

``length`` is the maximum the standard or Trialdesk allows (XPT v5: 200 characters at
most); the XPT writer stores each character variable at the longest value actually
present, as the FDA's technical conformance guide asks. Labels are at most 40
characters and names at most 8 (XPT v5), which :func:`check` asserts.

Core (SDTMIG): ``Req`` required (never empty), ``Exp`` expected (present, may be
empty), ``Perm`` permissible; ADaM uses ``Req``/``Cond``/``Perm`` the same way.
``codelist`` names an entry of :mod:`exchange.cdisc.terminology` (CDISC CT, or a
sponsor-defined list marked so there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VarType = Literal["Char", "Num"]
Core = Literal["Req", "Exp", "Perm", "Cond"]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: VarType
    length: int
    core: Core
    codelist: str | None = None
    # Num variables holding a date (ADaM *DT): SAS date (days since 1960-01-01), DATE9.
    # in XPT; ISO 8601 text with targetDataType "integer" in Dataset-JSON.
    date: bool = False
    # Part of the dataset's natural key (define.xml KeySequence, Dataset-JSON keySequence).
    key: int | None = None
    # Num variables that only hold whole numbers (Dataset-JSON dataType "integer").
    integer: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    structure: str
    klass: str
    standard: str  # "SDTMIG 3.4" or "ADaMIG 1.3"
    variables: tuple[Variable, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variable {name}")


def _c(name: str, label: str, length: int, core: Core, codelist: str | None = None, key: int | None = None) -> Variable:
    return Variable(name, label, "Char", length, core, codelist, key=key)


def _n(name: str, label: str, core: Core, key: int | None = None, date: bool = False) -> Variable:
    integer = name.endswith(("SEQ", "DY", "PN", "AN", "GRN")) or name in {
        "VISITNUM",
        "AGE",
        "CNSR",
        "AVAL",
        "AELLTCD",
        "TAETORD",
    }
    return Variable(name, label, "Num", 8, core, date=date, key=key, integer=integer and not date)


def _identifiers(domain: str, seq_label: str = "Sequence Number") -> tuple[Variable, ...]:
    return (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=2),
        _n(f"{domain}SEQ", seq_label, "Req", key=3),
    )


DM = DatasetSpec(
    "DM",
    "Demographics",
    "One record per subject",
    "SPECIAL PURPOSE",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=2),
        _c("SUBJID", "Subject Identifier for the Study", 20, "Req"),
        _c("RFSTDTC", "Subject Reference Start Date/Time", 19, "Exp"),
        _c("RFENDTC", "Subject Reference End Date/Time", 19, "Exp"),
        _c("RFXSTDTC", "Date/Time of First Study Treatment", 19, "Exp"),
        _c("RFXENDTC", "Date/Time of Last Study Treatment", 19, "Exp"),
        _c("RFICDTC", "Date/Time of Informed Consent", 19, "Exp"),
        _c("RFPENDTC", "Date/Time of End of Participation", 19, "Exp"),
        _c("DTHDTC", "Date/Time of Death", 19, "Exp"),
        _c("DTHFL", "Subject Death Flag", 1, "Exp", "NY"),
        _c("SITEID", "Study Site Identifier", 20, "Req"),
        _c("BRTHDTC", "Date/Time of Birth", 19, "Perm"),
        _n("AGE", "Age", "Exp"),
        _c("AGEU", "Age Units", 6, "Exp", "AGEU"),
        _c("SEX", "Sex", 1, "Req", "SEX"),
        _c("RACE", "Race", 60, "Exp", "RACE"),
        _c("ARMCD", "Planned Arm Code", 20, "Exp"),
        _c("ARM", "Description of Planned Arm", 200, "Exp"),
        _c("ACTARMCD", "Actual Arm Code", 20, "Exp"),
        _c("ACTARM", "Description of Actual Arm", 200, "Exp"),
        _c("ARMNRS", "Reason Arm and/or Actual Arm is Null", 40, "Exp", "ARMNULRS"),
        _c("ACTARMUD", "Description of Unplanned Actual Arm", 200, "Exp"),
        _c("COUNTRY", "Country", 3, "Req", "COUNTRY"),
    ),
)

AE = DatasetSpec(
    "AE",
    "Adverse Events",
    "One record per adverse event per subject",
    "EVENTS",
    "SDTMIG 3.4",
    (
        *_identifiers("AE"),
        _c("AESPID", "Sponsor-Defined Identifier", 20, "Perm"),
        _c("AETERM", "Reported Term for the Adverse Event", 200, "Req"),
        _c("AELLT", "Lowest Level Term", 200, "Exp"),
        _n("AELLTCD", "Lowest Level Term Code", "Exp"),
        _c("AEDECOD", "Dictionary-Derived Term", 200, "Req"),
        _c("AEBODSYS", "Body System or Organ Class", 200, "Exp"),
        _c("AESOC", "Primary System Organ Class", 200, "Exp"),
        _c("AESER", "Serious Event", 1, "Exp", "NY"),
        _c("AEACN", "Action Taken with Study Treatment", 30, "Exp", "ACN"),
        _c("AEREL", "Causality", 20, "Exp", "AEREL"),
        _c("AEOUT", "Outcome of Adverse Event", 40, "Perm", "OUT"),
        _c("AESCONG", "Congenital Anomaly or Birth Defect", 1, "Perm", "NY"),
        _c("AESDISAB", "Persist or Signif Disability/Incapacity", 1, "Perm", "NY"),
        _c("AESDTH", "Results in Death", 1, "Perm", "NY"),
        _c("AESHOSP", "Requires or Prolongs Hospitalization", 1, "Perm", "NY"),
        _c("AESLIFE", "Is Life Threatening", 1, "Perm", "NY"),
        _c("AESMIE", "Other Medically Important Serious Event", 1, "Perm", "NY"),
        _c("AETOXGR", "Standard Toxicity Grade", 1, "Perm", "TOXGRV5"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("AESTDTC", "Start Date/Time of Adverse Event", 19, "Exp"),
        _c("AEENDTC", "End Date/Time of Adverse Event", 19, "Exp"),
        _n("AESTDY", "Study Day of Start of Adverse Event", "Perm"),
        _n("AEENDY", "Study Day of End of Adverse Event", "Perm"),
        _c("AEENRF", "End Relative to Reference Period", 20, "Perm", "STENRF"),
    ),
)

EX = DatasetSpec(
    "EX",
    "Exposure",
    "One record per constant dosing interval per subject",
    "INTERVENTIONS",
    "SDTMIG 3.4",
    (
        *_identifiers("EX"),
        _c("EXTRT", "Name of Treatment", 100, "Req"),
        _n("EXDOSE", "Dose", "Exp"),
        _c("EXDOSU", "Dose Units", 10, "Exp", "UNIT"),
        _c("EXDOSFRM", "Dose Form", 60, "Exp", "FRM"),
        _c("EXDOSFRQ", "Dosing Frequency per Interval", 10, "Perm", "FREQ"),
        _c("EXROUTE", "Route of Administration", 20, "Perm", "ROUTE"),
        _c("EXADJ", "Reason for Dose Adjustment", 60, "Perm"),
        _n("VISITNUM", "Visit Number", "Exp"),
        _c("VISIT", "Visit Name", 40, "Perm"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("EXSTDTC", "Start Date/Time of Treatment", 19, "Exp"),
        _c("EXENDTC", "End Date/Time of Treatment", 19, "Exp"),
        _n("EXSTDY", "Study Day of Start of Treatment", "Perm"),
        _n("EXENDY", "Study Day of End of Treatment", "Perm"),
    ),
)

DS = DatasetSpec(
    "DS",
    "Disposition",
    "One record per disposition status or protocol milestone per subject",
    "EVENTS",
    "SDTMIG 3.4",
    (
        *_identifiers("DS"),
        _c("DSSPID", "Sponsor-Defined Identifier", 30, "Perm"),
        _c("DSTERM", "Reported Term for the Disposition Event", 200, "Req"),
        _c("DSDECOD", "Standardized Disposition Term", 40, "Req", "NCOMPLT"),
        _c("DSCAT", "Category for Disposition Event", 40, "Exp", "DSCAT"),
        _c("DSSCAT", "Subcategory for Disposition Event", 40, "Perm"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("DSSTDTC", "Start Date/Time of Disposition Event", 19, "Exp"),
        _n("DSSTDY", "Study Day of Start of Disposition Event", "Perm"),
    ),
)


LB = DatasetSpec(
    "LB",
    "Laboratory Test Results",
    "One record per lab test per time point per visit per subject",
    "FINDINGS",
    "SDTMIG 3.4",
    (
        *_identifiers("LB"),
        _c("LBSPID", "Sponsor-Defined Identifier", 30, "Perm"),
        _c("LBTESTCD", "Lab Test or Examination Short Name", 8, "Req", "LBTESTCD", key=4),
        _c("LBTEST", "Lab Test or Examination Name", 40, "Req", "LBTEST"),
        _c("LBCAT", "Category for Lab Test", 40, "Exp", "LBCAT"),
        _c("LBORRES", "Result or Finding in Original Units", 20, "Exp"),
        _c("LBORRESU", "Original Units", 10, "Exp", "UNIT"),
        _c("LBORNRLO", "Reference Range Lower Limit in Orig Unit", 20, "Exp"),
        _c("LBORNRHI", "Reference Range Upper Limit in Orig Unit", 20, "Exp"),
        _c("LBSTRESC", "Character Result/Finding in Std Format", 20, "Exp"),
        _n("LBSTRESN", "Numeric Result/Finding in Standard Units", "Exp"),
        _c("LBSTRESU", "Standard Units", 10, "Exp", "UNIT"),
        _n("LBSTNRLO", "Reference Range Lower Limit-Std Units", "Exp"),
        _n("LBSTNRHI", "Reference Range Upper Limit-Std Units", "Exp"),
        _c("LBNRIND", "Reference Range Indicator", 8, "Exp", "NRIND"),
        _c("LBTOXGR", "Standard Toxicity Grade", 1, "Perm", "TOXGRV5"),
        _c("LBBLFL", "Baseline Flag", 1, "Exp", "NY"),
        _n("VISITNUM", "Visit Number", "Exp"),
        _c("VISIT", "Visit Name", 40, "Perm"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("LBDTC", "Date/Time of Specimen Collection", 19, "Exp", key=5),
        _n("LBDY", "Study Day of Specimen Collection", "Perm"),
    ),
)


CM = DatasetSpec(
    "CM",
    "Concomitant/Prior Medications",
    "One record per recorded intervention occurrence or constant-dosing interval per subject",
    "INTERVENTIONS",
    "SDTMIG 3.4",
    (
        *_identifiers("CM"),
        _c("CMSPID", "Sponsor-Defined Identifier", 30, "Perm"),
        _c("CMTRT", "Reported Name of Drug, Med, or Therapy", 100, "Req"),
        _c("CMDECOD", "Standardized Medication Name", 100, "Perm"),
        _c("CMCAT", "Category for Medication", 40, "Perm", "CMCAT"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("CMSTDTC", "Start Date/Time of Medication", 19, "Perm"),
        _c("CMENDTC", "End Date/Time of Medication", 19, "Perm"),
        _n("CMSTDY", "Study Day of Start of Medication", "Perm"),
        _n("CMENDY", "Study Day of End of Medication", "Perm"),
        _c("CMENRF", "End Relative to Reference Period", 20, "Perm", "STENRF"),
    ),
)

MH = DatasetSpec(
    "MH",
    "Medical History",
    "One record per medical history event per subject",
    "EVENTS",
    "SDTMIG 3.4",
    (
        *_identifiers("MH"),
        _c("MHTERM", "Reported Term for the Medical History", 200, "Req"),
        _c("MHCAT", "Category for Medical History", 40, "Perm", "MHCAT"),
        _c("MHSTDTC", "Start Date/Time of Medical History Event", 19, "Perm"),
        _n("MHSTDY", "Study Day of Start of Observation", "Perm"),
    ),
)


# --- trial design (SDTMIG 3.4 section 7) ---------------------------------------------------

TS = DatasetSpec(
    "TS",
    "Trial Summary",
    "One record per trial summary parameter value",
    "TRIAL DESIGN",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _n("TSSEQ", "Sequence Number", "Req", key=3),
        _c("TSGRPID", "Group ID", 20, "Perm"),
        _c("TSPARMCD", "Trial Summary Parameter Short Name", 8, "Req", "TSPARMCD", key=2),
        _c("TSPARM", "Trial Summary Parameter", 40, "Req", "TSPARM"),
        _c("TSVAL", "Parameter Value", 200, "Exp"),
        _c("TSVAL1", "Parameter Value 1", 200, "Perm"),
        _c("TSVALNF", "Parameter Null Flavor", 8, "Perm", "NULLFLAV"),
        _c("TSVALCD", "Parameter Value Code", 40, "Exp"),
        _c("TSVCDREF", "Name of the Reference Terminology", 40, "Exp", "DICTNAM"),
        _c("TSVCDVER", "Version of the Reference Terminology", 20, "Exp"),
    ),
)

TA = DatasetSpec(
    "TA",
    "Trial Arms",
    "One record per planned Element per Arm",
    "TRIAL DESIGN",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _c("ARMCD", "Planned Arm Code", 20, "Req", key=2),
        _c("ARM", "Description of Planned Arm", 200, "Req"),
        _n("TAETORD", "Planned Order of Element within Arm", "Req", key=3),
        _c("ETCD", "Element Code", 8, "Req"),
        _c("ELEMENT", "Description of Element", 40, "Perm"),
        _c("TABRANCH", "Branch", 200, "Exp"),
        _c("TATRANS", "Transition Rule", 200, "Exp"),
        _c("EPOCH", "Epoch", 20, "Req", "EPOCH"),
    ),
)

TE = DatasetSpec(
    "TE",
    "Trial Elements",
    "One record per planned Element",
    "TRIAL DESIGN",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _c("ETCD", "Element Code", 8, "Req", key=2),
        _c("ELEMENT", "Description of Element", 40, "Req"),
        _c("TESTRL", "Rule for Start of Element", 200, "Req"),
        _c("TEENRL", "Rule for End of Element", 200, "Perm"),
        _c("TEDUR", "Planned Duration of Element", 20, "Perm"),
    ),
)

TV = DatasetSpec(
    "TV",
    "Trial Visits",
    "One record per planned Visit per Arm",
    "TRIAL DESIGN",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _n("VISITNUM", "Visit Number", "Req", key=2),
        _c("VISIT", "Visit Name", 40, "Perm"),
        _n("VISITDY", "Planned Study Day of Visit", "Perm"),
        _c("ARMCD", "Planned Arm Code", 20, "Exp"),
        _c("TVSTRL", "Visit Start Rule", 200, "Req"),
        _c("TVENRL", "Visit End Rule", 200, "Perm"),
    ),
)

TI = DatasetSpec(
    "TI",
    "Trial Inclusion/Exclusion Criteria",
    "One record per I/E criterion",
    "TRIAL DESIGN",
    "SDTMIG 3.4",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("DOMAIN", "Domain Abbreviation", 2, "Req"),
        _c("IETESTCD", "Incl/Excl Criterion Short Name", 8, "Req", key=2),
        _c("IETEST", "Inclusion/Exclusion Criterion", 200, "Req"),
        _c("IECAT", "Inclusion/Exclusion Category", 9, "Req", "IECAT"),
        _c("IESCAT", "Inclusion/Exclusion Subcategory", 40, "Perm"),
        _c("TIRL", "Inclusion/Exclusion Criterion Rule", 200, "Perm"),
        _c("TIVERS", "Protocol Criteria Versions", 20, "Perm"),
    ),
)

RS = DatasetSpec(
    "RS",
    "Disease Response and Clin Classification",
    "One record per response assessment per time point per visit per subject",
    "FINDINGS",
    "SDTMIG 3.4",
    (
        *_identifiers("RS"),
        _c("RSSPID", "Sponsor-Defined Identifier", 30, "Perm"),
        _c("RSTESTCD", "Assessment Short Name", 8, "Req", "RSTESTCD", key=4),
        _c("RSTEST", "Assessment Name", 40, "Req", "RSTEST"),
        _c("RSCAT", "Category for Assessment", 40, "Exp", "RSCAT"),
        _c("RSORRES", "Result or Finding in Original Units", 40, "Exp"),
        _c("RSSTRESC", "Character Result/Finding in Std Format", 40, "Exp"),
        _n("RSSTRESN", "Numeric Result/Finding in Standard Units", "Perm"),
        _c("RSSTRESU", "Standard Units", 10, "Perm", "UNIT"),
        _c("RSMETHOD", "Method of Test or Examination", 40, "Perm", "METHOD"),
        _c("RSEVAL", "Evaluator", 20, "Perm", "EVAL"),
        _n("VISITNUM", "Visit Number", "Exp"),
        _c("VISIT", "Visit Name", 40, "Perm"),
        _c("EPOCH", "Epoch", 20, "Perm", "EPOCH"),
        _c("RSDTC", "Date/Time of Assessment", 19, "Exp", key=5),
        _n("RSDY", "Study Day of Assessment", "Perm"),
    ),
)


def supp_spec(domain: str, label: str) -> DatasetSpec:
    """SUPP-- for ``domain`` (SDTMIG 3.4 section 8.4)."""
    return DatasetSpec(
        f"SUPP{domain}",
        f"Supplemental Qualifiers for {domain}",
        "One record per IDVAR, IDVARVAL, and QNAM value per subject",
        "RELATIONSHIP",
        "SDTMIG 3.4",
        (
            _c("STUDYID", "Study Identifier", 40, "Req", key=1),
            _c("RDOMAIN", "Related Domain Abbreviation", 2, "Req", key=2),
            _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=3),
            _c("IDVAR", "Identifying Variable", 8, "Exp", key=4),
            _c("IDVARVAL", "Identifying Variable Value", 40, "Exp", key=5),
            _c("QNAM", "Qualifier Variable Name", 8, "Req", key=6),
            _c("QLABEL", "Qualifier Variable Label", 40, "Req"),
            _c("QVAL", "Data Value", 200, "Req"),
            _c("QORIG", "Origin", 20, "Req"),
            _c("QEVAL", "Evaluator", 20, "Exp"),
        ),
    )


SUPPAE = supp_spec("AE", "Supplemental Qualifiers for AE")
SUPPEX = supp_spec("EX", "Supplemental Qualifiers for EX")

ADSL = DatasetSpec(
    "ADSL",
    "Subject-Level Analysis Dataset",
    "One record per subject",
    "SUBJECT LEVEL ANALYSIS DATASET",
    "ADaMIG 1.3",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=2),
        _c("SUBJID", "Subject Identifier for the Study", 20, "Req"),
        _c("SITEID", "Study Site Identifier", 20, "Req"),
        _n("AGE", "Age", "Req"),
        _c("AGEU", "Age Units", 6, "Req", "AGEU"),
        _c("SEX", "Sex", 1, "Req", "SEX"),
        _c("RACE", "Race", 60, "Req", "RACE"),
        _c("ARM", "Description of Planned Arm", 200, "Req"),
        _c("ACTARM", "Description of Actual Arm", 200, "Req"),
        _c("TRT01P", "Planned Treatment for Period 01", 40, "Req"),
        _n("TRT01PN", "Planned Treatment for Period 01 (N)", "Perm"),
        _c("TRT01A", "Actual Treatment for Period 01", 40, "Cond"),
        _n("TRT01AN", "Actual Treatment for Period 01 (N)", "Perm"),
        _n("TRTSDT", "Date of First Exposure to Treatment", "Cond", date=True),
        _n("TRTEDT", "Date of Last Exposure to Treatment", "Cond", date=True),
        _n("HCTDT", "Date of Allogeneic HCT", "Perm", date=True),
        _c("ENRLFL", "Enrolled Population Flag", 1, "Cond", "NY"),
        _c("SAFFL", "Safety Population Flag", 1, "Cond", "NY"),
        _c("DLTEVLFL", "DLT-Evaluable Population Flag", 1, "Cond", "NY"),
        _c("BFILLFL", "Backfill Patient Flag", 1, "Perm", "NY"),
        _c("DTHFL", "Subject Death Flag", 1, "Perm", "NY"),
        _n("DTHDT", "Date of Death", "Perm", date=True),
        _c("DTHCAUS", "Cause of Death", 40, "Perm"),
    ),
)

ADAE = DatasetSpec(
    "ADAE",
    "Adverse Events Analysis Dataset",
    "One record per adverse event per subject",
    "OCCURRENCE DATA STRUCTURE",
    "ADaMIG 1.3",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=2),
        _c("SUBJID", "Subject Identifier for the Study", 20, "Perm"),
        _c("SITEID", "Study Site Identifier", 20, "Perm"),
        _n("AESEQ", "Sequence Number", "Req", key=3),
        _n("AGE", "Age", "Perm"),
        _c("SEX", "Sex", 1, "Perm", "SEX"),
        _c("RACE", "Race", 60, "Perm", "RACE"),
        _c("SAFFL", "Safety Population Flag", 1, "Cond", "NY"),
        _c("TRT01A", "Actual Treatment for Period 01", 40, "Perm"),
        _c("TRTA", "Actual Treatment", 40, "Cond"),
        _n("TRTAN", "Actual Treatment (N)", "Perm"),
        _n("TRTSDT", "Date of First Exposure to Treatment", "Perm", date=True),
        _n("TRTEDT", "Date of Last Exposure to Treatment", "Perm", date=True),
        _c("AETERM", "Reported Term for the Adverse Event", 200, "Req"),
        _c("AEDECOD", "Dictionary-Derived Term", 200, "Req"),
        _c("AEBODSYS", "Body System or Organ Class", 200, "Req"),
        _c("AESOC", "Primary System Organ Class", 200, "Perm"),
        _c("AESER", "Serious Event", 1, "Perm", "NY"),
        _c("AEREL", "Causality", 20, "Perm", "AEREL"),
        _c("AEACN", "Action Taken with Study Treatment", 30, "Perm", "ACN"),
        _c("AEOUT", "Outcome of Adverse Event", 40, "Perm", "OUT"),
        _c("AETOXGR", "Standard Toxicity Grade", 1, "Perm", "TOXGRV5"),
        _c("ATOXGR", "Analysis Toxicity Grade", 1, "Cond", "TOXGRV5"),
        _n("ATOXGRN", "Analysis Toxicity Grade (N)", "Cond"),
        _c("AESTDTC", "Start Date/Time of Adverse Event", 19, "Perm"),
        _c("AEENDTC", "End Date/Time of Adverse Event", 19, "Perm"),
        _n("ASTDT", "Analysis Start Date", "Cond", date=True),
        _n("AENDT", "Analysis End Date", "Cond", date=True),
        _n("ASTDY", "Analysis Start Relative Day", "Cond"),
        _n("AENDY", "Analysis End Relative Day", "Cond"),
        _c("TRTEMFL", "Treatment Emergent Analysis Flag", 1, "Cond", "NY"),
        _c("DLTFL", "Dose-Limiting Toxicity Flag", 1, "Perm", "NY"),
        _c("DLTRULE", "DLT Adjudication Rule", 60, "Perm"),
    ),
)

ADTTE = DatasetSpec(
    "ADTTE",
    "Time-to-Event Analysis Dataset",
    "One record per subject per parameter",
    "BASIC DATA STRUCTURE",
    "ADaMIG 1.3",
    (
        _c("STUDYID", "Study Identifier", 40, "Req", key=1),
        _c("USUBJID", "Unique Subject Identifier", 60, "Req", key=2),
        _c("SUBJID", "Subject Identifier for the Study", 20, "Perm"),
        _c("SITEID", "Study Site Identifier", 20, "Perm"),
        _c("TRTP", "Planned Treatment", 40, "Cond"),
        _n("TRTPN", "Planned Treatment (N)", "Perm"),
        _c("SAFFL", "Safety Population Flag", 1, "Cond", "NY"),
        _c("PARAMCD", "Parameter Code", 8, "Req", "PARAMCD", key=3),
        _c("PARAM", "Parameter", 40, "Req"),
        _n("AVAL", "Analysis Value", "Cond"),
        _n("STARTDT", "Time-to-Event Origin Date for Subject", "Cond", date=True),
        _n("ADT", "Analysis Date", "Cond", date=True),
        _n("CNSR", "Censor", "Cond"),
        _c("EVNTDESC", "Event or Censoring Description", 200, "Perm"),
        _c("CNSDTDSC", "Censor Date Description", 200, "Perm"),
        _c("STARTSRC", "Origin of Time to Event", 10, "Perm", "STARTSRC"),
    ),
)

DATASETS: dict[str, DatasetSpec] = {
    d.name: d for d in (TS, TA, TE, TV, TI, DM, AE, EX, DS, LB, CM, MH, RS, SUPPAE, SUPPEX, ADSL, ADAE, ADTTE)
}


def check(spec: DatasetSpec) -> tuple[str, ...]:
    """XPT v5 limits broken by the metadata itself (names <= 8, labels <= 40, lengths 1-200)."""
    problems = []
    if len(spec.name) > 8:
        problems.append(f"{spec.name}: dataset name longer than 8")
    if len(spec.label) > 40:
        problems.append(f"{spec.name}: dataset label longer than 40")
    for v in spec.variables:
        if len(v.name) > 8 or not v.name.isupper():
            problems.append(f"{spec.name}.{v.name}: name must be upper case, at most 8 characters")
        if len(v.label) > 40:
            problems.append(f"{spec.name}.{v.name}: label longer than 40 characters")
        if not 1 <= v.length <= 200:
            problems.append(f"{spec.name}.{v.name}: length {v.length} outside 1-200")
    return tuple(problems)
