"""CTCAE v5.0 terminology: parsing, grade validation, search (PROTOCOL section 4).

Pure module: no Django import. The CSV is handed in by the caller (a path or an
open text stream) because the app ships its own copy of the file; nothing here
knows where it lives.

The CSV is NCI's CTCAE v5.0 spreadsheet exported row for row (837 terms, 26
system organ classes). Columns: meddra_code, soc, term, grade_1 .. grade_5
("-" means the grade does not exist for the term), definition,
navigational_note, v5_change.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TextIO

CTCAE_VERSION = "5.0"
# The dictionary shipped with the app (safety/data/README.md).
BUNDLED_CSV = Path(__file__).resolve().parent / "data" / "ctcae_v5.csv"
GRADES = (1, 2, 3, 4, 5)

# MedDRA codes of the terms the rules below refer to by name. They are the codes
# printed in the CTCAE v5.0 file; tests check each one against it.
ANEMIA = "10002272"
LYMPHOCYTE_COUNT_DECREASED = "10025256"
NEUTROPHIL_COUNT_DECREASED = "10029366"
PLATELET_COUNT_DECREASED = "10035528"
WHITE_BLOOD_CELL_DECREASED = "10049182"
BLOOD_BILIRUBIN_INCREASED = "10005364"
ALANINE_AMINOTRANSFERASE_INCREASED = "10001551"
ASPARTATE_AMINOTRANSFERASE_INCREASED = "10003481"
SINUSOIDAL_OBSTRUCTION_SYNDROME = "10063675"
FEBRILE_NEUTROPENIA = "10016288"

# "Haematological" for the DLT rules (PROTOCOL section 5 (b) and (c)) means the
# laboratory cytopenias: the blood-count terms of the Investigations SOC plus
# Anemia. An AE with one of these codes is never a DLT under rule (c)
# (non-haematological grade >= 3), and only neutropenia and thrombocytopenia can
# be DLTs at all, under rule (b) (prolonged cytopenia).
# Deliberately NOT haematological: Febrile neutropenia and the other clinical
# terms of the "Blood and lymphatic system disorders" SOC (haemolysis, TTP,
# DIC, ...). They are clinical events, not blood counts, so a related grade >= 3
# one is a candidate DLT under rule (c); the investigator adjudicates.
HAEMATOLOGICAL_MEDDRA_CODES: frozenset[str] = frozenset(
    {
        ANEMIA,
        LYMPHOCYTE_COUNT_DECREASED,
        NEUTROPHIL_COUNT_DECREASED,
        PLATELET_COUNT_DECREASED,
        WHITE_BLOOD_CELL_DECREASED,
    }
)

# Rule (b) of PROTOCOL section 5 names only these two cytopenias.
DLT_CYTOPENIA_MEDDRA_CODES: frozenset[str] = frozenset({NEUTROPHIL_COUNT_DECREASED, PLATELET_COUNT_DECREASED})

# Every SOC has a catch-all "<SOC> - Other, specify" term (26 of them; one SOC
# name is misspelt in the file, "Musculoskeletal and connective tissue disorder",
# so match the suffix, not "<soc> - Other, specify").
_OTHER_SPECIFY_SUFFIX = " - other, specify"

_COLUMNS = (
    "meddra_code",
    "soc",
    "term",
    "grade_1",
    "grade_2",
    "grade_3",
    "grade_4",
    "grade_5",
    "definition",
    "navigational_note",
    "v5_change",
)
_ABSENT = "-"
_MEDDRA_CODE = re.compile(r"\d{8}")


class CtcaeFormatError(ValueError):
    """The CSV is not a CTCAE v5.0 export as described in the module docstring."""


@dataclass(frozen=True, slots=True)
class CtcaeTerm:
    meddra_code: str
    soc: str
    term: str
    # Index 0 is grade 1; None where the file has "-" (grade not defined).
    grade_texts: tuple[str | None, str | None, str | None, str | None, str | None]
    available_grades: frozenset[int]
    definition: str
    navigational_note: str
    v5_change: str
    haematological: bool
    version: str = CTCAE_VERSION

    def grade_text(self, grade: int) -> str | None:
        if grade not in GRADES:
            return None
        return self.grade_texts[grade - 1]

    @property
    def requires_specify(self) -> bool:
        return is_other_specify(self)


@dataclass(frozen=True)
class CtcaeCatalogue:
    terms: tuple[CtcaeTerm, ...]
    version: str = CTCAE_VERSION
    _by_code: Mapping[str, CtcaeTerm] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, CtcaeTerm] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the indexes are set once here, read-only afterwards.
        object.__setattr__(self, "_by_code", MappingProxyType({t.meddra_code: t for t in self.terms}))
        object.__setattr__(self, "_by_name", MappingProxyType({_fold(t.term): t for t in self.terms}))

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def socs(self) -> tuple[str, ...]:
        return tuple(sorted({t.soc for t in self.terms}))

    def by_code(self, meddra_code: str) -> CtcaeTerm | None:
        return self._by_code.get(meddra_code.strip())

    def by_term(self, term: str) -> CtcaeTerm | None:
        """Exact term name, case-insensitive."""
        return self._by_name.get(_fold(term))

    def search(
        self,
        query: str,
        *,
        by: Literal["any", "term", "soc", "code"] = "any",
        limit: int | None = None,
        synonyms: Mapping[str, tuple[str, ...]] | None = None,
    ) -> list[CtcaeTerm]:
        """Case-insensitive search by term, synonym/abbreviation, MedDRA code or SOC; best first.

        A term matches when the whole query is a substring of its name, one of
        its synonyms (``SYNONYMS``: "VOD" and "veno-occlusive" find Sinusoidal
        obstruction syndrome, "thrombo" finds Platelet count decreased through
        "thrombocytopenia"), its code or its SOC; failing that, when every word
        of the query is found in one of those (so "liver failure" and
        "hepatobiliary portal" find their terms).

        Rank: exact match, then prefix match, then a match at the start of a
        word, then any other substring, then an every-word match; within a rank
        a term-name match beats a synonym beats a code beats an SOC, then
        alphabetical. A coordinator typing "plate" wants "Platelet count
        decreased" before every term that merely contains the letters.
        """
        q = _fold(query)
        if not q:
            return []
        table = SYNONYMS if synonyms is None else synonyms
        fields: tuple[_Field, ...] = ("term", "synonym", "code", "soc") if by == "any" else (by,)
        words = _words(q)
        ranked: list[tuple[int, int, str, CtcaeTerm]] = []
        for t in self.terms:
            values = _field_values(t, table)
            best: tuple[int, int] | None = None
            for field_rank, name in enumerate(fields):
                for value in values[name]:
                    match = _match_rank(q, value)
                    if match is not None and (best is None or (match, field_rank) < best):
                        best = (match, field_rank)
            if best is None and len(words) > 1:
                haystack = " | ".join(_normalise(v) for name in fields for v in values[name])
                if all(w in haystack for w in words):
                    best = (_EVERY_WORD, 0)
            if best is not None:
                ranked.append((best[0], best[1], _fold(t.term), t))
        ranked.sort(key=lambda r: r[:3])
        hits = [r[3] for r in ranked]
        return hits if limit is None else hits[:limit]


_Field = Literal["term", "synonym", "code", "soc"]
_EVERY_WORD = 4  # rank of a match of every query word, after all whole-query matches


def _field_values(term: CtcaeTerm, synonyms: Mapping[str, tuple[str, ...]]) -> dict[_Field, tuple[str, ...]]:
    return {
        "term": (_fold(term.term),),
        "synonym": tuple(_fold(s) for s in synonyms.get(term.meddra_code, ())),
        "code": (term.meddra_code,),
        "soc": (_fold(term.soc),),
    }


def _normalise(text: str) -> str:
    """Folded, with punctuation as spaces: "veno occlusive" finds "veno-occlusive"."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", _fold(text)).split())


def _words(folded_query: str) -> tuple[str, ...]:
    return tuple(_normalise(folded_query).split())


# Synonyms and abbreviations a coordinator types for a CTCAE v5.0 term, keyed by
# the term's MedDRA code (tests check every code is in the file). CTCAE names lab
# abnormalities as "<test> increased/decreased" and SOS by its newer name, while
# the clinic says "thrombocytopenia", "ALT", "VOD" (PROTOCOL section 4: SOS/VOD is
# inotuzumab's key toxicity). Search only: the AE stores the CTCAE term itself.
SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        SINUSOIDAL_OBSTRUCTION_SYNDROME: (
            "SOS",
            "VOD",
            "SOS/VOD",
            "veno-occlusive disease",
            "hepatic veno-occlusive disease",
        ),
        PLATELET_COUNT_DECREASED: ("thrombocytopenia", "low platelets", "PLT"),
        NEUTROPHIL_COUNT_DECREASED: ("neutropenia", "ANC", "absolute neutrophil count", "granulocytopenia"),
        ANEMIA: ("anaemia", "low hemoglobin", "low haemoglobin", "Hb", "Hgb"),
        LYMPHOCYTE_COUNT_DECREASED: ("lymphopenia", "lymphocytopenia", "ALC"),
        WHITE_BLOOD_CELL_DECREASED: ("leukopenia", "leucopenia", "WBC", "low white cell count"),
        FEBRILE_NEUTROPENIA: ("FN", "neutropenic fever"),
        ALANINE_AMINOTRANSFERASE_INCREASED: ("ALT", "SGPT", "transaminases", "transaminitis", "liver enzymes"),
        ASPARTATE_AMINOTRANSFERASE_INCREASED: ("AST", "SGOT", "transaminases", "transaminitis", "liver enzymes"),
        BLOOD_BILIRUBIN_INCREASED: ("bilirubin", "hyperbilirubinemia", "hyperbilirubinaemia", "jaundice"),
        "10001675": ("ALP", "alk phos"),  # Alkaline phosphatase increased
        "10056910": ("gamma-glutamyl transferase", "gamma GT", "GGTP"),  # GGT increased
        "10011368": ("serum creatinine", "renal impairment"),  # Creatinine increased
        "10069339": ("AKI", "acute renal failure"),  # Acute kidney injury
        "10019663": ("liver failure", "hepatic insufficiency"),  # Hepatic failure
        "10052015": ("CRS",),  # Cytokine release syndrome
        "10058666": ("CMV", "CMV reactivation"),  # Cytomegalovirus infection reactivation
        "10015109": ("EBV", "EBV reactivation"),  # Epstein-Barr virus infection reactivation
        "10016558": ("pyrexia",),  # Fever
        "10012727": ("diarrhoea",),  # Diarrhea
        "10028130": ("stomatitis", "oral mucositis"),  # Mucositis oral
        "10028813": ("sickness",),  # Nausea
        "10061229": ("pneumonia", "chest infection"),  # Lung infection
        "10040047": ("septicaemia", "septicemia"),  # Sepsis
        "10021018": ("low potassium",),  # Hypokalemia
        "10021028": ("low magnesium",),  # Hypomagnesemia
        "10043565": (
            "thrombosis",
            "DVT",
            "deep vein thrombosis",
            "PE",
            "pulmonary embolism",
            "VTE",
        ),  # Thromboembolic event
        "10013442": ("DIC",),  # Disseminated intravascular coagulation
        "10043648": ("TTP",),  # Thrombotic thrombocytopenic purpura
        "10019515": ("HUS", "TMA", "thrombotic microangiopathy"),  # Hemolytic uremic syndrome
    }
)


# Queries that name something recorded elsewhere, with where: CTCAE v5.0 has no GVHD
# term (PROTOCOL: GVHD is staged by MAGIC/NIH on its own GVHD episode form).
_ELSEWHERE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("gvhd", "graft versus host", "graft-versus-host", "graft vs host"),
        "GVHD is not a CTCAE term: record it as a GVHD episode (MAGIC/NIH) on the patient's Safety tab.",
    ),
)


def search_hint(query: str) -> str | None:
    """A pointer when the query names something recorded on another form (GVHD)."""
    q = _normalise(query)
    if len(q) < 3:
        return None
    for names, hint in _ELSEWHERE:
        if any(_normalise(n).startswith(q) or q.startswith(_normalise(n)) for n in names):
            return hint
    return None


def load_ctcae(source: str | os.PathLike[str] | TextIO) -> CtcaeCatalogue:
    """Parse the CTCAE v5.0 CSV from a path or an open text stream.

    A `str` is a path; to parse CSV text, pass `io.StringIO(text)`.
    Raises CtcaeFormatError on a malformed file rather than loading a partial
    dictionary: a missing term would silently block AE entry.
    """
    if isinstance(source, (str, os.PathLike)):
        # utf-8-sig: tolerate a BOM if someone re-saves the file from a spreadsheet.
        with open(source, encoding="utf-8-sig", newline="") as stream:
            return CtcaeCatalogue(_parse_rows(stream))
    return CtcaeCatalogue(_parse_rows(source))


def _parse_rows(lines: Iterable[str]) -> tuple[CtcaeTerm, ...]:
    reader = csv.DictReader(lines)
    header = tuple(reader.fieldnames or ())
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise CtcaeFormatError(f"CTCAE CSV lacks column(s): {', '.join(missing)}")
    terms: list[CtcaeTerm] = []
    seen_codes: set[str] = set()
    seen_terms: set[str] = set()
    for row in reader:
        line = reader.line_num
        cells = {c: (row.get(c) or "").strip() for c in _COLUMNS}
        code, name = cells["meddra_code"], cells["term"]
        if not _MEDDRA_CODE.fullmatch(code):
            raise CtcaeFormatError(f"line {line}: MedDRA code {code!r} is not 8 digits")
        if not name or not cells["soc"]:
            raise CtcaeFormatError(f"line {line}: empty term or SOC")
        # Codes and names are how AEs point at a term; both must be unique or a
        # lookup could silently pick the wrong one.
        if code in seen_codes:
            raise CtcaeFormatError(f"line {line}: duplicate MedDRA code {code}")
        if _fold(name) in seen_terms:
            raise CtcaeFormatError(f"line {line}: duplicate term {name!r}")
        seen_codes.add(code)
        seen_terms.add(_fold(name))
        texts = tuple(_grade_cell(cells[f"grade_{g}"], line, g) for g in GRADES)
        available = frozenset(g for g, text in zip(GRADES, texts, strict=True) if text)
        if not available:
            raise CtcaeFormatError(f"line {line}: {name!r} defines no grade")
        terms.append(
            CtcaeTerm(
                meddra_code=code,
                soc=cells["soc"],
                term=name,
                grade_texts=(texts[0], texts[1], texts[2], texts[3], texts[4]),
                available_grades=available,
                definition=_dash_to_empty(cells["definition"]),
                navigational_note=cells["navigational_note"],
                v5_change=cells["v5_change"],
                haematological=code in HAEMATOLOGICAL_MEDDRA_CODES,
            )
        )
    return tuple(terms)


def _grade_cell(text: str, line: int, grade: int) -> str | None:
    if text == _ABSENT:
        return None
    if not text:
        # An empty cell is neither "-" nor a definition: refuse to guess.
        raise CtcaeFormatError(f"line {line}: grade_{grade} is empty (use '-')")
    return text


def _dash_to_empty(text: str) -> str:
    # The "Other, specify" rows carry "-" as their definition.
    return "" if text == _ABSENT else text


def is_other_specify(term: CtcaeTerm | str) -> bool:
    """An "<SOC> - Other, specify" term: the AE needs the actual event named."""
    name = term.term if isinstance(term, CtcaeTerm) else term
    return _fold(name).endswith(_OTHER_SPECIFY_SUFFIX)


def check_specify(term: CtcaeTerm, specify_text: str | None) -> str | None:
    """Message if an "Other, specify" AE lacks its text; None when acceptable."""
    if term.requires_specify and not (specify_text or "").strip():
        return f"'{term.term}' requires the event to be specified"
    return None


def check_grade(term: CtcaeTerm, grade: object) -> str | None:
    """Message if the grade is not one the term defines; None when allowed.

    PROTOCOL section 4: an AE takes only the grades its CTCAE term defines
    (e.g. Platelet count decreased stops at 4, SOS starts at 2).
    """
    if isinstance(grade, bool) or not isinstance(grade, int):
        return f"grade must be a whole number 1-5, not {grade!r}"
    if grade not in GRADES:
        return f"grade {grade} is not a CTCAE grade (1-5)"
    if grade not in term.available_grades:
        return f"grade {grade} is not defined for '{term.term}' ({format_grades(term.available_grades)})"
    return None


def is_grade_allowed(term: CtcaeTerm, grade: object) -> bool:
    return check_grade(term, grade) is None


def format_grades(grades: Iterable[int]) -> str:
    """'grades 1-4', 'grade 5', 'grades 1, 3-5' for messages."""
    ordered = sorted(set(grades))
    if not ordered:
        return "no grades"
    if len(ordered) == 1:
        return f"grade {ordered[0]}"
    runs: list[list[int]] = []
    for g in ordered:
        if runs and g == runs[-1][-1] + 1:
            runs[-1].append(g)
        else:
            runs.append([g])
    parts = [str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs]
    return "grades " + ", ".join(parts)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _match_rank(query: str, value: str) -> int | None:
    if value == query:
        return 0
    if value.startswith(query):
        return 1
    position = value.find(query)
    if position < 0:
        return None
    # Start of a later word (after a space, hyphen, parenthesis...).
    while position >= 0:
        if not value[position - 1].isalnum():
            return 2
        position = value.find(query, position + 1)
    return 3
