"""CTCAE v5.0 parsing and helpers (safety/ctcae.py), checked against NCI's file."""

from __future__ import annotations

import io

import pytest

from safety.ctcae import (
    BUNDLED_CSV,
    DLT_CYTOPENIA_MEDDRA_CODES,
    HAEMATOLOGICAL_MEDDRA_CODES,
    SYNONYMS,
    CtcaeCatalogue,
    CtcaeFormatError,
    check_grade,
    check_specify,
    format_grades,
    is_grade_allowed,
    is_other_specify,
    load_ctcae,
    search_hint,
)


@pytest.fixture(scope="module")
def catalogue() -> CtcaeCatalogue:
    path = BUNDLED_CSV
    if not path.is_file():
        pytest.fail(f"the bundled CTCAE CSV is missing: {path}")
    return load_ctcae(path)


def test_file_level_facts(catalogue: CtcaeCatalogue) -> None:
    assert len(catalogue) == 837
    assert len(catalogue.socs) == 26
    assert sum(5 not in t.available_grades for t in catalogue.terms) == 343
    assert catalogue.version == "5.0"
    assert {t.version for t in catalogue.terms} == {"5.0"}


def test_sos_starts_at_grade_2(catalogue: CtcaeCatalogue) -> None:
    sos = catalogue.by_code("10063675")
    assert sos is not None
    assert sos.term == "Sinusoidal obstruction syndrome"
    assert sos.soc == "Hepatobiliary disorders"
    assert sos.available_grades == frozenset({2, 3, 4, 5})
    assert sos.grade_text(1) is None
    assert "Blood bilirubin 2-5 mg/dL" in (sos.grade_text(2) or "")


@pytest.mark.parametrize(
    ("code", "term", "soc", "grades"),
    [
        ("10002272", "Anemia", "Blood and lymphatic system disorders", {1, 2, 3, 4, 5}),
        (
            "10016288",
            "Febrile neutropenia",
            "Blood and lymphatic system disorders",
            {3, 4, 5},
        ),
        ("10035528", "Platelet count decreased", "Investigations", {1, 2, 3, 4}),
        ("10029366", "Neutrophil count decreased", "Investigations", {1, 2, 3, 4}),
        ("10005364", "Blood bilirubin increased", "Investigations", {1, 2, 3, 4}),
        (
            "10001551",
            "Alanine aminotransferase increased",
            "Investigations",
            {1, 2, 3, 4},
        ),
        (
            "10003481",
            "Aspartate aminotransferase increased",
            "Investigations",
            {1, 2, 3, 4},
        ),
        ("10028813", "Nausea", "Gastrointestinal disorders", {1, 2, 3}),
        ("10047700", "Vomiting", "Gastrointestinal disorders", {1, 2, 3, 4, 5}),
        (
            "10011914",
            "Death NOS",
            "General disorders and administration site conditions",
            {5},
        ),
        ("10019663", "Hepatic failure", "Hepatobiliary disorders", {3, 4, 5}),
        (
            "10052015",
            "Cytokine release syndrome",
            "Immune system disorders",
            {1, 2, 3, 4, 5},
        ),
        ("10040047", "Sepsis", "Infections and infestations", {3, 4, 5}),
        ("10014950", "Eosinophilia", "Blood and lymphatic system disorders", {1, 3}),
        (
            "10011912",
            "Death neonatal",
            "General disorders and administration site conditions",
            {4},
        ),
        (
            "10001598",
            "Alcohol intolerance",
            "Metabolism and nutrition disorders",
            {2, 3, 4, 5},
        ),
    ],
)
def test_terms_match_the_file(catalogue: CtcaeCatalogue, code: str, term: str, soc: str, grades: set[int]) -> None:
    by_code = catalogue.by_code(code)
    assert by_code is not None
    assert by_code.term == term
    assert by_code.soc == soc
    assert by_code.available_grades == frozenset(grades)
    assert catalogue.by_term(term.upper()) is by_code
    for g in range(1, 6):
        assert (by_code.grade_text(g) is not None) == (g in grades)


def test_grade_texts_and_notes_are_kept(catalogue: CtcaeCatalogue) -> None:
    plt = catalogue.by_term("Platelet count decreased")
    assert plt is not None
    assert plt.grade_text(2) == "<75,000 - 50,000/mm3; <75.0 - 50.0 x 10e9 /L"
    assert plt.grade_text(5) is None
    assert plt.grade_text(0) is None
    assert plt.definition.startswith("A finding based on laboratory test results")
    alt = catalogue.by_code("10001551")
    assert alt is not None
    assert alt.navigational_note == "Also consider Hepatobiliary disorders: Hepatic failure"


def test_haematological_set_is_the_five_cytopenias(catalogue: CtcaeCatalogue) -> None:
    flagged = {t.term for t in catalogue.terms if t.haematological}
    assert flagged == {
        "Anemia",
        "Lymphocyte count decreased",
        "Neutrophil count decreased",
        "Platelet count decreased",
        "White blood cell decreased",
    }
    codes = {t.meddra_code for t in catalogue.terms if t.haematological}
    assert codes == HAEMATOLOGICAL_MEDDRA_CODES
    assert {"10029366", "10035528"} == DLT_CYTOPENIA_MEDDRA_CODES
    assert DLT_CYTOPENIA_MEDDRA_CODES <= HAEMATOLOGICAL_MEDDRA_CODES
    # A clinical event, not a count: may be a DLT under rule (c).
    fn = catalogue.by_term("Febrile neutropenia")
    assert fn is not None and not fn.haematological


def test_other_specify_terms(catalogue: CtcaeCatalogue) -> None:
    others = [t for t in catalogue.terms if t.requires_specify]
    assert len(others) == 26
    assert {t.soc for t in others} == set(catalogue.socs)
    immune = catalogue.by_term("Immune system disorders - Other, specify")
    assert immune is not None and is_other_specify(immune)
    assert is_other_specify("Musculoskeletal and connective tissue disorder - Other, specify")
    assert not is_other_specify("Nausea")
    assert check_specify(immune, "  ") == (
        "'Immune system disorders - Other, specify' requires the event to be specified"
    )
    assert check_specify(immune, "acute GVHD, skin stage 3") is None
    nausea = catalogue.by_term("Nausea")
    assert nausea is not None and check_specify(nausea, None) is None


@pytest.mark.parametrize(
    ("term", "grade", "message"),
    [
        (
            "Platelet count decreased",
            5,
            "grade 5 is not defined for 'Platelet count decreased' (grades 1-4)",
        ),
        ("Platelet count decreased", 4, None),
        (
            "Sinusoidal obstruction syndrome",
            1,
            "grade 1 is not defined for 'Sinusoidal obstruction syndrome' (grades 2-5)",
        ),
        ("Sinusoidal obstruction syndrome", 2, None),
        ("Death NOS", 3, "grade 3 is not defined for 'Death NOS' (grade 5)"),
        ("Eosinophilia", 2, "grade 2 is not defined for 'Eosinophilia' (grades 1, 3)"),
        ("Nausea", 4, "grade 4 is not defined for 'Nausea' (grades 1-3)"),
        ("Nausea", 0, "grade 0 is not a CTCAE grade (1-5)"),
        ("Nausea", 6, "grade 6 is not a CTCAE grade (1-5)"),
        ("Nausea", True, "grade must be a whole number 1-5, not True"),
        ("Nausea", "3", "grade must be a whole number 1-5, not '3'"),
        ("Nausea", 3.0, "grade must be a whole number 1-5, not 3.0"),
    ],
)
def test_check_grade(catalogue: CtcaeCatalogue, term: str, grade: object, message: str | None) -> None:
    t = catalogue.by_term(term)
    assert t is not None
    assert check_grade(t, grade) == message
    assert is_grade_allowed(t, grade) is (message is None)


@pytest.mark.parametrize(
    ("grades", "text"),
    [
        ({1, 2, 3, 4}, "grades 1-4"),
        ({5}, "grade 5"),
        ({1, 3, 4, 5}, "grades 1, 3-5"),
        ({1, 2, 3, 5}, "grades 1-3, 5"),
        (set(), "no grades"),
    ],
)
def test_format_grades(grades: set[int], text: str) -> None:
    assert format_grades(grades) == text


@pytest.mark.parametrize(
    ("query", "by", "first"),
    [
        ("plate", "any", "Platelet count decreased"),
        ("PLATELET COUNT", "term", "Platelet count decreased"),
        ("  nausea ", "any", "Nausea"),
        ("neutro", "term", "Neutrophil count decreased"),
        ("10063675", "code", "Sinusoidal obstruction syndrome"),
        ("1006367", "any", "Sinusoidal obstruction syndrome"),
        ("anemia", "any", "Anemia"),
    ],
)
def test_search_first_hit(catalogue: CtcaeCatalogue, query: str, by: str, first: str) -> None:
    hits = catalogue.search(query, by=by)  # type: ignore[arg-type]
    assert hits[0].term == first


def test_search_ranks_exact_then_prefix_then_word_then_substring(
    catalogue: CtcaeCatalogue,
) -> None:
    hits = [t.term for t in catalogue.search("ure", by="term")]
    # Prefix matches, then a word starting with "ure", then mid-word matches
    # (alphabetical within each tier).
    assert hits[:4] == [
        "Ureteric anastomotic leak",
        "Urethral anastomotic leak",
        "Urethral infection",
        "Hemolytic uremic syndrome",
    ]
    assert hits[4:6] == ["Anal fissure", "Ankle fracture"]
    pain = [t.term for t in catalogue.search("pain", by="term")]
    assert pain[:4] == ["Pain", "Pain in extremity", "Pain of skin", "Abdominal pain"]


def test_search_any_ranks_by_match_quality_then_field(
    catalogue: CtcaeCatalogue,
) -> None:
    # "Investigations" is exactly an SOC name: all its members tie on an exact
    # SOC match and are listed alphabetically.
    hits = [t.term for t in catalogue.search("investigations")]
    members = [t.term for t in catalogue.terms if t.soc == "Investigations"]
    assert hits == sorted(members, key=str.casefold)
    # No SOC contains "blood bil"; one term does.
    assert [t.term for t in catalogue.search("blood bil")] == ["Blood bilirubin increased"]
    # Equal quality (prefix): term matches come before the SOC's members.
    blood = catalogue.search("blood")
    assert blood[0].term == "Blood and lymphatic system disorders - Other, specify"
    assert blood[1].term == "Blood antidiuretic hormone abnormal"


def test_search_by_soc_and_limit(catalogue: CtcaeCatalogue) -> None:
    hepato = catalogue.search("hepatobiliary", by="soc")
    assert {t.soc for t in hepato} == {"Hepatobiliary disorders"}
    assert len(hepato) == sum(t.soc == "Hepatobiliary disorders" for t in catalogue.terms)
    assert len(catalogue.search("a", limit=5)) == 5
    assert catalogue.search("   ") == []
    assert catalogue.search("no such term xyz") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Issue 16: "thrombo" finds both the thrombocytopenia term and the clot term.
        ("thrombo", {"Platelet count decreased", "Thromboembolic event"}),
        ("thrombocytopenia", {"Platelet count decreased"}),
        # Issue 19.1: SOS/VOD, the drug's key toxicity, by every name a coordinator uses.
        ("VOD", {"Sinusoidal obstruction syndrome"}),
        ("SOS", {"Sinusoidal obstruction syndrome"}),
        ("veno-occlusive", {"Sinusoidal obstruction syndrome"}),
        ("veno occlusive disease", {"Sinusoidal obstruction syndrome"}),
        ("hepatic VOD", {"Sinusoidal obstruction syndrome"}),
        ("ALT", {"Alanine aminotransferase increased"}),
        ("AST", {"Aspartate aminotransferase increased"}),
        ("ANC", {"Neutrophil count decreased"}),
        ("neutropenia", {"Neutrophil count decreased", "Febrile neutropenia"}),
        ("anaemia", {"Anemia"}),
        ("bilirubin", {"Blood bilirubin increased"}),
        ("10063675", {"Sinusoidal obstruction syndrome"}),
        # Every word must be found, across term, synonym and SOC.
        ("hepatobiliary portal", {"Portal hypertension", "Portal vein thrombosis"}),
        ("count decreased platelet", {"Platelet count decreased"}),
    ],
)
def test_search_synonyms_abbreviations_codes_and_words(
    catalogue: CtcaeCatalogue, query: str, expected: set[str]
) -> None:
    hits = [t.term for t in catalogue.search(query, limit=20)]
    assert expected <= set(hits), hits
    # The term the abbreviation stands for comes first when there is only one.
    if len(expected) == 1:
        assert hits[0] == next(iter(expected))


def test_search_every_word_must_match(catalogue: CtcaeCatalogue) -> None:
    assert [t.term for t in catalogue.search("platelet increased")] == []
    assert catalogue.search("hepatobiliary zzz") == []


def test_synonym_table_points_at_real_terms(catalogue: CtcaeCatalogue) -> None:
    for code, names in SYNONYMS.items():
        assert catalogue.by_code(code) is not None, code
        assert names and all(n.strip() for n in names)


def test_gvhd_is_pointed_to_its_own_form() -> None:
    assert "GVHD episode" in (search_hint("GVHD") or "")
    assert "GVHD episode" in (search_hint("graft versus") or "")
    assert search_hint("gv") is None
    assert search_hint("platelet") is None


_HEADER = "meddra_code,soc,term,grade_1,grade_2,grade_3,grade_4,grade_5,definition,navigational_note,v5_change\n"


def test_load_from_stream() -> None:
    text = _HEADER + "10028813,Gastrointestinal disorders,Nausea,a,b,c,-,-,def,,\n"
    cat = load_ctcae(io.StringIO(text))
    (nausea,) = cat.terms
    assert nausea.available_grades == frozenset({1, 2, 3})
    assert nausea.grade_texts == ("a", "b", "c", None, None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", None),
        ("1002,Soc,Term,a,-,-,-,-,d,,\n", "not 8 digits"),
        ("10028813,Soc,Term,,-,-,-,-,d,,\n", "grade_1 is empty"),
        ("10028813,Soc,Term,-,-,-,-,-,d,,\n", "defines no grade"),
        (
            "10028813,Soc,Term,a,-,-,-,-,d,,\n10028813,Soc,Other,a,-,-,-,-,d,,\n",
            "duplicate MedDRA code",
        ),
        (
            "10028813,Soc,Term,a,-,-,-,-,d,,\n10028814,Soc,TERM,a,-,-,-,-,d,,\n",
            "duplicate term",
        ),
    ],
)
def test_malformed_rows_are_refused(body: str, error: str | None) -> None:
    if error is None:
        assert len(load_ctcae(io.StringIO(_HEADER + body))) == 0
        return
    with pytest.raises(CtcaeFormatError, match=error):
        load_ctcae(io.StringIO(_HEADER + body))


def test_missing_column_is_refused() -> None:
    with pytest.raises(CtcaeFormatError, match="lacks column"):
        load_ctcae(io.StringIO("meddra_code,soc,term\n"))


def test_bundled_dictionary_is_the_reference_file() -> None:
    """The shipped CSV is byte for byte the converted NCI file (its checksum, safety/data/SHA256SUMS)."""
    import hashlib

    sums = (BUNDLED_CSV.parent / "SHA256SUMS").read_text().split()
    assert sums[1] == BUNDLED_CSV.name
    assert hashlib.sha256(BUNDLED_CSV.read_bytes()).hexdigest() == sums[0]
