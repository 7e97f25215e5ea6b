"""Controlled terms the CDISC datasets use: CDISC CT codelists (NCI C-code, submission
values Trialdesk emits) and the sponsor-defined lists where CDISC has none. Pure.

Only the terms Trialdesk can produce are listed; an extensible CDISC list says so.
Trialdesk's own choice values (docs/api.md, lower case) map here in :mod:`mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The CDISC CT release the codelist C-codes were taken from (they have not changed since).
# Every C-code, extensibility flag and term here was checked against CDISC SDTM CT tables
# (the 2022-09-30 SDTM Terminology and the 2025-03-28 SEND/Protocol CT exports);
# define.xml names it, TS.TSVCDVER gives it for the values coded in CDISC CT.
CT_VERSION = "2025-03-28"

# Trial Summary parameters Trialdesk writes (SDTMIG 3.4 TS; CDISC CT TSPARMCD / TSPARM), in
# the order TS lists them.
TS_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("TITLE", "Trial Title"),
    ("TPHASE", "Trial Phase Classification"),
    ("STYPE", "Study Type"),
    ("TTYPE", "Trial Type"),
    ("INDIC", "Trial Disease/Condition Indication"),
    ("TDIGRP", "Diagnosis Group"),
    ("TRT", "Investigational Therapy or Treatment"),
    ("DOSE", "Dose per Administration"),
    ("DOSU", "Dose Units"),
    ("DOSFRQ", "Dosing Frequency"),
    ("ROUTE", "Route of Administration"),
    ("ADDON", "Added on to Existing Treatments"),
    ("AGEMIN", "Planned Minimum Age of Subjects"),
    ("AGEMAX", "Planned Maximum Age of Subjects"),
    ("SEXPOP", "Sex of Participants"),
    ("PLANSUB", "Planned Number of Subjects"),
    ("ACTSUB", "Actual Number of Subjects"),
    ("NARMS", "Planned Number of Arms"),
    ("RANDOM", "Trial is Randomized"),
    ("TBLIND", "Trial Blinding Schema"),
    ("TCNTRL", "Control Type"),
    ("FCNTRY", "Planned Country of Investigational Sites"),
    ("SSTDTC", "Study Start Date"),
    ("SPONSOR", "Clinical Study Sponsor"),
    ("DCUTDTC", "Data Cutoff Date"),
    ("DCUTDESC", "Data Cutoff Description"),
)

# NCI C-codes of the Trial Summary values Trialdesk writes (TSVALCD, TSVCDREF "CDISC CT").
TS_VALUE_CODES: dict[str, str] = {
    "PHASE I TRIAL": "C15600",
    "INTERVENTIONAL": "C98388",
    "SAFETY": "C49667",
    "INTRAVENOUS": "C38276",
    "Y": "C49488",
    "N": "C49487",
    "BOTH": "C49636",
    "OPEN LABEL": "C49659",
    "NONE": "C41132",
    "mg/m2": "C67402",
    "EVERY WEEK": "C67069",
    "EVERY 2 WEEKS": "C71127",
    "EVERY 3 WEEKS": "C64535",
    "EVERY 4 WEEKS": "C64529",
}


@dataclass(frozen=True)
class Codelist:
    name: str
    c_code: str | None  # None: sponsor-defined
    extensible: bool
    terms: tuple[str, ...]


def _cl(name: str, c_code: str | None, terms: tuple[str, ...], extensible: bool = False) -> Codelist:
    return Codelist(name, c_code, extensible, terms)


CODELISTS: dict[str, Codelist] = {
    c.name: c
    for c in (
        _cl("NY", "C66742", ("Y", "N")),
        _cl("SEX", "C66731", ("F", "M", "U")),
        _cl(
            "RACE",
            "C74457",
            ("WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "OTHER", "NOT REPORTED"),
        ),
        _cl("AGEU", "C66781", ("YEARS",)),
        _cl(
            "ACN",
            "C66767",
            ("DOSE NOT CHANGED", "DRUG INTERRUPTED", "DOSE REDUCED", "DRUG WITHDRAWN"),
        ),
        _cl(
            "OUT",
            "C66768",
            (
                "RECOVERED/RESOLVED",
                "RECOVERING/RESOLVING",
                "NOT RECOVERED/NOT RESOLVED",
                "RECOVERED/RESOLVED WITH SEQUELAE",
                "FATAL",
                "UNKNOWN",
            ),
        ),
        _cl("EPOCH", "C99079", ("SCREENING", "TREATMENT", "FOLLOW-UP"), extensible=True),
        _cl(
            "NCOMPLT",
            "C66727",
            (
                "COMPLETED",
                "ADVERSE EVENT",
                "DEATH",
                "PROGRESSIVE DISEASE",
                "WITHDRAWAL BY SUBJECT",
                "SCREEN FAILURE",
                "OTHER",
            ),
            extensible=True,
        ),  # fmt: skip
        _cl("PROTMLST", "C114118", ("INFORMED CONSENT OBTAINED", "ENTERED INTO TRIAL"), extensible=True),
        _cl("DSCAT", "C74558", ("DISPOSITION EVENT", "PROTOCOL MILESTONE")),
        _cl("ROUTE", "C66729", ("INTRAVENOUS",), extensible=True),
        _cl("UNIT", "C71620", ("mg", "mg/m2", "m2", "10^9/L", "g/L", "umol/L", "U/L", "%"), extensible=True),
        _cl("FRM", "C66726", ("INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION",), extensible=True),
        _cl(
            "FREQ",
            "C71113",
            ("ONCE", "EVERY WEEK", "EVERY 2 WEEKS", "EVERY 3 WEEKS", "EVERY 4 WEEKS"),
            extensible=True,
        ),
        _cl("STENRF", "C66728", ("BEFORE", "DURING", "AFTER", "DURING/AFTER", "ONGOING", "UNKNOWN")),
        _cl("ARMNULRS", "C142179", ("NOT ASSIGNED", "ASSIGNED, NOT TREATED", "SCREEN FAILURE"), extensible=True),
        _cl("LBTESTCD", "C65047", ("PLAT", "NEUT", "HGB", "BILI", "ALT", "AST"), extensible=True),
        _cl(
            "LBTEST",
            "C67154",
            (
                "Platelets",
                "Neutrophils",
                "Hemoglobin",
                "Bilirubin",
                "Alanine Aminotransferase",
                "Aspartate Aminotransferase",
            ),
            extensible=True,
        ),  # fmt: skip
        _cl("NRIND", "C78736", ("LOW", "NORMAL", "HIGH"), extensible=True),
        # Sponsor-defined: the panel's two sections.
        _cl("LBCAT", None, ("HEMATOLOGY", "CHEMISTRY")),
        _cl("CMCAT", None, ("TYROSINE KINASE INHIBITOR",)),
        _cl("MHCAT", None, ("PRIMARY DIAGNOSIS", "TRANSPLANT")),
        # Sponsor-defined: CTCAE v5.0 grades; the attribution scale of the CRF (PROTOCOL s4).
        _cl("TOXGRV5", None, ("1", "2", "3", "4", "5")),
        _cl("AEREL", None, ("NOT RELATED", "UNLIKELY RELATED", "POSSIBLY RELATED", "PROBABLY RELATED", "RELATED")),
        _cl("PARAMCD", None, ("OS", "PFS", "NRM")),
        _cl("STARTSRC", None, ("HCT", "FIRST DOSE")),
        _cl("COUNTRY", None, ()),  # ISO 3166-1 alpha-3 (Site.country): an external dictionary in define.xml
        # Trial design (SDTMIG 3.4 section 7).
        _cl("TSPARMCD", "C66738", tuple(code for code, _ in TS_PARAMETERS), extensible=True),
        _cl("TSPARM", "C67152", tuple(name for _, name in TS_PARAMETERS), extensible=True),
        # ISO 21090 null flavors (the CDISC list's C-code is not recorded here: listed as sponsor's).
        _cl("NULLFLAV", None, ("NI", "UNK", "NA", "NASK")),
        _cl("DICTNAM", "C66788", ("CDISC CT", "ISO 8601", "ISO 3166"), extensible=True),
        _cl("IECAT", "C66797", ("INCLUSION", "EXCLUSION")),
        # Disease response (RS): the protocol's own assessments (PROTOCOL s7, s8); sponsor-defined
        # where CDISC has no term for an MRD status or this trial's marrow response.
        _cl("RSTESTCD", None, ("MRD", "MRDLVL", "OVRLRESP", "BLASTS", "EXTRAMED")),
        _cl(
            "RSTEST",
            None,
            (
                "Minimal Residual Disease",
                "Minimal Residual Disease Level",
                "Overall Response",
                "Bone Marrow Blasts",
                "Extramedullary Disease",
            ),
        ),  # fmt: skip
        _cl("RSCAT", None, ("MINIMAL RESIDUAL DISEASE", "BONE MARROW RESPONSE")),
        # RSSTRESC by RSTESTCD (VALUE_LEVEL): MRD status, marrow response, extramedullary disease.
        _cl("RSMRD", None, ("POSITIVE", "NEGATIVE", "INDETERMINATE")),
        _cl("RSRESP", None, ("CR", "CRI", "RELAPSE")),
        _cl("RSEMD", None, ("PRESENT", "ABSENT")),
        _cl(
            "METHOD",
            "C85492",
            ("FLOW CYTOMETRY", "POLYMERASE CHAIN REACTION", "NEXT GENERATION SEQUENCING"),
            extensible=True,
        ),  # fmt: skip
        _cl("EVAL", "C78735", ("INVESTIGATOR",), extensible=True),
    )
}

# Trialdesk value (docs/api.md) -> submission value.
SEX = {"female": "F", "male": "M"}
RACE = {
    "white": "WHITE",
    "black": "BLACK OR AFRICAN AMERICAN",
    "asian": "ASIAN",
    "other": "OTHER",
    "unreported": "NOT REPORTED",
}
AE_ACTION = {
    "none": "DOSE NOT CHANGED",
    "delayed": "DRUG INTERRUPTED",
    "reduced": "DOSE REDUCED",
    "discontinued": "DRUG WITHDRAWN",
}
AE_OUTCOME = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
# The CRF's five-point attribution to the study drug -> AEREL (sponsor-defined list).
AE_RELATION = {
    "unrelated": "NOT RELATED",
    "unlikely": "UNLIKELY RELATED",
    "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED",
    "definite": "RELATED",
}
EOT_REASON = {
    "completed": "COMPLETED",
    "withdrawal": "WITHDRAWAL BY SUBJECT",
    "toxicity": "ADVERSE EVENT",
    "relapse": "PROGRESSIVE DISEASE",
    "death": "DEATH",
    "other": "OTHER",
}
# Trialdesk's TKI agent (docs/api.md) -> CMDECOD; "other" keeps the reported name only.
CM_AGENT = {"imatinib": "IMATINIB", "dasatinib": "DASATINIB", "nilotinib": "NILOTINIB", "ponatinib": "PONATINIB"}
# Patient diagnosis -> MHTERM.
DIAGNOSIS = {
    "b_all": "CD22-POSITIVE B-CELL ACUTE LYMPHOBLASTIC LEUKEMIA",
    "cml_lymphoid_blast": "CHRONIC MYELOID LEUKEMIA IN LYMPHOID BLAST CRISIS",
}
# Assessment (PROTOCOL s7) values -> RS (docs/api.md: kind, method, result, response).
RS_METHOD = {"flow": "FLOW CYTOMETRY", "pcr": "POLYMERASE CHAIN REACTION", "ngs": "NEXT GENERATION SEQUENCING"}
RS_RESULT = {"positive": "POSITIVE", "negative": "NEGATIVE", "indeterminate": "INDETERMINATE"}
RS_RESPONSE = {"cr": ("CR", "CR"), "cri": ("CRi", "CRI"), "relapse": ("RELAPSE", "RELAPSE")}
DEATH_CAUSE = {
    "relapse": "RELAPSE",
    "gvhd": "GVHD",
    "infection": "INFECTION",
    "organ_failure": "ORGAN FAILURE",
    "other": "OTHER",
}

# Value-level codelists (define.xml ValueListDef, next session): the codelist of a variable
# that depends on another variable's value. DSDECOD: NCOMPLT for disposition events,
# PROTMLST for protocol milestones (SDTMIG 3.4 DS assumptions).
VALUE_LEVEL: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("DS", "DSDECOD"): ("DSCAT", {"DISPOSITION EVENT": "NCOMPLT", "PROTOCOL MILESTONE": "PROTMLST"}),
    # RS: the coded results; MRDLVL and BLASTS are numbers (RSSTRESN), uncontrolled.
    ("RS", "RSSTRESC"): ("RSTESTCD", {"MRD": "RSMRD", "OVRLRESP": "RSRESP", "EXTRAMED": "RSEMD"}),
}


def codelist_for(dataset: str, variable: str, default: str | None, record: Mapping[str, object]) -> str | None:
    """The codelist that applies to ``variable`` in ``record`` (value-level where defined)."""
    rule = VALUE_LEVEL.get((dataset, variable))
    if rule is None:
        return default
    by, lists = rule
    value = record.get(by)
    return lists.get(value, default) if isinstance(value, str) else default


def in_codelist(codelist: str, value: str | None) -> bool:
    """True when ``value`` is empty or one of the list's terms (an empty list accepts all)."""
    terms = CODELISTS[codelist].terms
    return value in (None, "") or not terms or value in terms
