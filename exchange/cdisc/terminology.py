"""Controlled terms the CDISC datasets use: CDISC CT codelists (NCI C-code, submission
values Trialdesk emits) and the sponsor-defined lists where CDISC has none. Pure.

Only the terms Trialdesk can produce are listed; an extensible CDISC list says so.
Trialdesk's own choice values (docs/api.md, lower case) map here in :mod:`mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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
            extensible=True,
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
        _cl("PROTMLST", "C114118", ("INFORMED CONSENT OBTAINED", "ENROLLED"), extensible=True),
        _cl("DSCAT", "C74558", ("DISPOSITION EVENT", "PROTOCOL MILESTONE")),
        _cl("ROUTE", "C66729", ("INTRAVENOUS",), extensible=True),
        _cl("UNIT", "C71620", ("mg", "mg/m2", "m2", "10^9/L", "g/L", "umol/L", "U/L"), extensible=True),
        _cl("FRM", "C66726", ("INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION",), extensible=True),
        _cl("FREQ", "C71113", ("ONCE",), extensible=True),
        _cl("STENRF", "C66728", ("BEFORE", "DURING", "AFTER", "DURING/AFTER", "ONGOING", "U")),
        _cl("ARMNULRS", "C142179", ("NOT ASSIGNED", "ASSIGNED, NOT TREATED", "SCREEN FAILURE")),
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
        _cl("COUNTRY", None, ()),  # ISO 3166-1 alpha-3 (an external dictionary): the site's country
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
