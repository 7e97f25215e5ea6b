"""exchange.cdisc.mapping and metadata: worked examples (issue 18). Pure: no database."""

import datetime
from decimal import Decimal

import pytest

from exchange.cdisc import mapping, metadata, terminology
from exchange.cdisc.mapping import AdverseEvent, Disposition, Dose, Study, Subject

D = datetime.date
DESIGN = mapping.TrialDesign(
    title="Low-dose inotuzumab ozogamicin after allogeneic HCT",
    dose_levels=((1, Decimal("0.300")), (2, Decimal("0.400")), (3, Decimal("0.500")), (4, Decimal("0.600"))),
    planned_subjects=30,
    countries=("USA",),
)
STUDY = Study(code="STUDY-1", drug="INOTUZUMAB OZOGAMICIN", design=DESIGN)


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("value", "reference", "day"),
    [
        ("2024-03-10", "2024-03-10", 1),  # the first dose is day 1
        ("2024-03-11", "2024-03-10", 2),
        ("2024-03-09", "2024-03-10", -1),  # no day 0: the day before is -1
        ("2024-03-01", "2024-03-10", -9),
        ("2024-04-09", "2024-03-10", 31),
        ("2025-03-10", "2024-03-10", 366),  # across 29 February 2025? no: 2024 is the leap year
        ("2024-03-10T14:30", "2024-03-10", 1),  # a date-time counts by its date
        ("2024-03", "2024-03-10", None),  # partial: no study day
        ("2024", "2024-03-10", None),
        ("2024-03-10", "2024-03", None),
        (None, "2024-03-10", None),
        ("2024-03-10", None, None),  # never dosed
    ],
)
def test_study_day_has_no_day_zero(value, reference, day):  # type: ignore[no-untyped-def]
    assert mapping.study_day(value, reference) == day


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        ((1975,), "1975"),
        ((1975, 3), "1975-03"),
        ((1975, 3, 7), "1975-03-07"),
        ((None,), None),
        ((2024, 2, 29), "2024-02-29"),
    ],
)
def test_iso8601_partial_dates_are_right_truncated(parts, text):  # type: ignore[no-untyped-def]
    assert mapping.iso8601(*parts) == text


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ((1975, None, 7), "a day without a month"),
        ((None, 3), "without a year"),
        ((1975, 13), "month 13"),
        ((2023, 2, 29), "day is out of range"),
    ],
)
def test_iso8601_refuses_gaps_and_impossible_dates(parts, message):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        mapping.iso8601(*parts)


# ------------------------------------------------------------------ controlled terminology


@pytest.mark.parametrize(
    ("table", "codelist"),
    [
        (terminology.SEX, "SEX"),
        (terminology.RACE, "RACE"),
        (terminology.AE_ACTION, "ACN"),
        (terminology.AE_OUTCOME, "OUT"),
        (terminology.AE_RELATION, "AEREL"),
        (terminology.EOT_REASON, "NCOMPLT"),
    ],
)
def test_every_mapped_value_is_a_term_of_its_codelist(table, codelist):  # type: ignore[no-untyped-def]
    assert set(table.values()) <= set(terminology.CODELISTS[codelist].terms)


@pytest.mark.parametrize(
    ("attribution", "aerel"),
    [
        ("unrelated", "NOT RELATED"),
        ("unlikely", "UNLIKELY RELATED"),
        ("possible", "POSSIBLY RELATED"),
        ("probable", "PROBABLY RELATED"),
        ("definite", "RELATED"),
    ],
)
def test_aerel_from_the_crf_attribution(attribution, aerel):  # type: ignore[no-untyped-def]
    subject = Subject(
        "001", "S1", 1970, "male", "white", adverse_events=(_ae(1, D(2024, 1, 2), attribution=attribution),)
    )
    assert mapping.map_ae(STUDY, [subject])[0]["AEREL"] == aerel


def test_trialdesk_choices_all_mapped():  # type: ignore[no-untyped-def]
    """Every value the models allow has a submission value (a new choice must be mapped)."""
    assert set(terminology.SEX) == {"female", "male"}
    assert set(terminology.RACE) == {"white", "black", "asian", "other", "unreported"}
    assert set(terminology.AE_RELATION) == {"unrelated", "unlikely", "possible", "probable", "definite"}
    assert set(terminology.EOT_REASON) == {"completed", "withdrawal", "toxicity", "relapse", "death", "other"}


# ------------------------------------------------------------------ metadata


@pytest.mark.parametrize("name", list(metadata.DATASETS))
def test_metadata_fits_xpt_v5(name):  # type: ignore[no-untyped-def]
    spec = metadata.DATASETS[name]
    assert metadata.check(spec) == ()
    assert len(set(spec.names)) == len(spec.names)
    for v in spec.variables:
        assert v.codelist is None or v.codelist in terminology.CODELISTS


def test_metadata_check_names_what_is_wrong():  # type: ignore[no-untyped-def]
    bad = metadata.DatasetSpec(
        "TOOLONGNAME", "x", "s", "c", "SDTMIG 3.4",
        (metadata.Variable("AVERYLONGNAME", "y" * 41, "Char", 201, "Req"),),
    )  # fmt: skip
    problems = metadata.check(bad)
    assert "TOOLONGNAME: dataset name longer than 8" in problems
    assert any("AVERYLONGNAME: name must be upper case, at most 8" in p for p in problems)
    assert any("label longer than 40" in p for p in problems)
    assert any("length 201 outside 1-200" in p for p in problems)


# ------------------------------------------------------------------ worked examples


def _ae(record_id, onset, resolved=None, **kw):  # type: ignore[no-untyped-def]
    base = {"term": "Nausea", "meddra_code": "10028813", "soc": "Gastrointestinal disorders", "grade": 2,
            "attribution": "possible"}  # fmt: skip
    return AdverseEvent(record_id=record_id, onset=onset, resolved=resolved, **(base | kw))


def _subject(**kw):  # type: ignore[no-untyped-def]
    base = {
        "subject_id": "UHC-001",
        "site_code": "UHC",
        "birth_year": 1975,
        "sex": "female",
        "race": "black",
        "level": 2,
        "level_dose_mg_m2": Decimal("0.600"),
        "enrolled_on": D(2024, 3, 1),
        "hct_date": D(2024, 1, 15),
        "doses": (
            Dose(1, D(2024, 3, 10), 2, Decimal("1.02"), Decimal("0.600"), Decimal("1.70")),
            Dose(2, D(2024, 4, 10), 2, Decimal("0.85"), Decimal("0.500"), Decimal("1.70"), True, "cytopenia", 3),
        ),
        "dispositions": (
            Disposition("consent", 11, D(2024, 2, 20), protocol_version="2"),
            Disposition("enrolment", 1, D(2024, 3, 1)),
            Disposition("end_of_treatment", 12, D(2024, 5, 8), reason="toxicity"),
            Disposition("death", 13, D(2024, 9, 1), cause="infection"),
        ),
        "death_date": D(2024, 9, 1),
        "death_cause": "infection",
        "country": "USA",
    }
    return Subject(**(base | kw))


def test_dm_worked_example():  # type: ignore[no-untyped-def]
    [dm] = mapping.map_dm(STUDY, [_subject()])
    assert dm == {
        "STUDYID": "STUDY-1", "DOMAIN": "DM", "USUBJID": "STUDY-1-UHC-001", "SUBJID": "UHC-001",
        "RFSTDTC": "2024-03-10", "RFENDTC": "2024-04-10", "RFXSTDTC": "2024-03-10", "RFXENDTC": "2024-04-10",
        "RFICDTC": "2024-02-20", "RFPENDTC": "2024-09-01", "DTHDTC": "2024-09-01", "DTHFL": "Y",
        "SITEID": "UHC", "BRTHDTC": "1975", "AGE": 49, "AGEU": "YEARS", "SEX": "F",
        "RACE": "BLACK OR AFRICAN AMERICAN", "ARMCD": "L2", "ARM": "Dose level 2: 0.6 mg/m2", "ACTARMCD": "L2",
        "ACTARM": "Dose level 2: 0.6 mg/m2", "ARMNRS": None, "ACTARMUD": None, "COUNTRY": "USA",
    }  # fmt: skip
    assert mapping.map_dm(STUDY, [_subject(country="")])[0]["COUNTRY"] is None  # not recorded: null


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"level": None, "level_dose_mg_m2": None, "enrolled_on": None, "doses": (),
          "dispositions": (Disposition("screening_failure", 5, D(2024, 2, 25)),)},
         (None, None, None, None, "SCREEN FAILURE")),
        ({"level": None, "level_dose_mg_m2": None, "enrolled_on": None, "doses": (), "dispositions": ()},
         (None, None, None, None, "NOT ASSIGNED")),
        ({"doses": ()}, ("L2", "Dose level 2: 0.6 mg/m2", None, None, "ASSIGNED, NOT TREATED")),
    ],
)  # fmt: skip
def test_dm_null_arms_say_why(changes, expected):  # type: ignore[no-untyped-def]
    [dm] = mapping.map_dm(STUDY, [_subject(**changes)])
    assert (dm["ARMCD"], dm["ARM"], dm["ACTARMCD"], dm["ACTARM"], dm["ARMNRS"]) == expected


def test_ae_sequence_study_days_and_epoch():  # type: ignore[no-untyped-def]
    subject = _subject(
        adverse_events=(
            _ae(40, D(2024, 3, 12), D(2024, 3, 20), grade=3, serious=True, sae_hospitalisation=True,
                action="delayed", outcome="recovered", dlt=True, dlt_rule="non_hematologic_grade3_related"),
            _ae(7, D(2024, 3, 9), specify="hiccups", term="Other, specify"),  # the day before the first dose
            _ae(41, D(2024, 6, 1), outcome="not_recovered"),  # after end of treatment (8 May)
        )
    )  # fmt: skip
    rows = mapping.map_ae(STUDY, [subject])
    assert [(r["AESEQ"], r["AESPID"], r["AESTDY"], r["EPOCH"]) for r in rows] == [
        (1, "AE-7", -1, "SCREENING"),
        (2, "AE-40", 3, "TREATMENT"),
        (3, "AE-41", 84, "FOLLOW-UP"),
    ]
    assert rows[0]["AETERM"] == "Other, specify - hiccups" and rows[0]["AEDECOD"] == "Other, specify"
    assert rows[0]["AEENRF"] == "ONGOING" and rows[0]["AEENDTC"] is None and rows[0]["AEENDY"] is None
    second = rows[1]
    assert (second["AETOXGR"], second["AESER"], second["AESHOSP"], second["AESDTH"]) == ("3", "Y", "Y", "N")
    assert (second["AEACN"], second["AEOUT"], second["AEENDY"], second["AELLTCD"]) == (
        "DRUG INTERRUPTED", "RECOVERED/RESOLVED", 11, 10028813,
    )  # fmt: skip
    supp = mapping.map_suppae(STUDY, [subject])
    assert [(r["IDVAR"], r["IDVARVAL"], r["QNAM"], r["QVAL"]) for r in supp] == [
        ("AESEQ", "2", "AEDLT", "Y"),
        ("AESEQ", "2", "AEDLTRUL", "NON_HEMATOLOGIC_GRADE3_RELATED"),
    ]


def test_ex_one_record_per_dose_with_bsa_in_suppex():  # type: ignore[no-untyped-def]
    rows = mapping.map_ex(STUDY, [_subject()])
    assert [(r["EXSEQ"], r["EXDOSE"], r["EXDOSU"], r["EXSTDY"], r["VISIT"], r["EXADJ"]) for r in rows] == [
        (1, 1.02, "mg", 1, "CYCLE 1 DAY 1", None),
        (2, 0.85, "mg", 32, "CYCLE 2 DAY 1", "DOSE REDUCED: CYTOPENIA"),
    ]
    supp = mapping.map_suppex(STUDY, [_subject()])
    assert [(r["IDVARVAL"], r["QNAM"], r["QVAL"]) for r in supp if r["IDVARVAL"] == "2"] == [
        ("2", "DOSLVL", "2"), ("2", "DOSMGM2", "0.5"), ("2", "BSA", "1.7"),
    ]  # fmt: skip


def test_ds_milestones_and_disposition_events():  # type: ignore[no-untyped-def]
    rows = mapping.map_ds(STUDY, [_subject()])
    assert [(r["DSSEQ"], r["DSDECOD"], r["DSCAT"], r["EPOCH"], r["DSSTDY"]) for r in rows] == [
        (1, "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", "SCREENING", -19),
        (2, "ENTERED INTO TRIAL", "PROTOCOL MILESTONE", "SCREENING", -9),
        (3, "ADVERSE EVENT", "DISPOSITION EVENT", "TREATMENT", 60),
        (4, "DEATH", "DISPOSITION EVENT", "FOLLOW-UP", 176),
    ]
    assert rows[0]["DSTERM"] == "INFORMED CONSENT OBTAINED, PROTOCOL VERSION 2" and rows[1]["DSTERM"] == "ENROLLED"
    assert rows[2]["DSTERM"] == "END OF TREATMENT: ADVERSE EVENT"
    assert rows[3]["DSTERM"] == "DEATH: INFECTION"
    for r in rows:
        assert terminology.in_codelist("DSCAT", r["DSCAT"])
        codelist = terminology.codelist_for("DS", "DSDECOD", None, r)
        assert codelist == {"PROTOCOL MILESTONE": "PROTMLST", "DISPOSITION EVENT": "NCOMPLT"}[r["DSCAT"]]
        assert terminology.in_codelist(codelist, r["DSDECOD"])


def test_adsl_populations():  # type: ignore[no-untyped-def]
    dosed = _subject(dlt_evaluable=True)
    not_dosed = _subject(subject_id="UHC-002", doses=(), dlt_evaluable=False, backfill=True)
    screen_fail = _subject(subject_id="UHC-003", level=None, level_dose_mg_m2=None, enrolled_on=None, doses=(),
                           dispositions=(), dlt_evaluable=None)  # fmt: skip
    rows = mapping.map_adsl(STUDY, [dosed, not_dosed, screen_fail])
    assert [(r["ENRLFL"], r["SAFFL"], r["DLTEVLFL"], r["BFILLFL"]) for r in rows] == [
        ("Y", "Y", "Y", "N"),
        ("Y", "N", "N", "Y"),  # a backfill patient
        ("N", "N", "N", None),  # never enrolled: neither
    ]
    assert (rows[0]["TRTSDT"], rows[0]["TRTEDT"], rows[0]["TRT01P"], rows[0]["TRT01AN"]) == (
        D(2024, 3, 10), D(2024, 4, 10), "0.6 mg/m2", 2,
    )  # fmt: skip
    assert (rows[0]["DTHDT"], rows[0]["DTHCAUS"]) == (D(2024, 9, 1), "INFECTION")


def _tte(rows, subject):  # type: ignore[no-untyped-def]
    return {
        r["PARAMCD"]: (r["AVAL"], r["CNSR"], r["STARTDT"], r["ADT"], r["EVNTDESC"])
        for r in rows
        if r["SUBJID"] == subject
    }


def test_adtte_events_censoring_and_the_competing_event():  # type: ignore[no-untyped-def]
    relapsed = _subject(subject_id="R", relapse_date=D(2024, 7, 1), death_date=D(2024, 9, 1))
    alive = _subject(subject_id="A", death_date=None, last_contact_date=D(2025, 1, 15),
                     dispositions=())  # fmt: skip
    rows = mapping.map_adtte(STUDY, [relapsed, alive])
    hct, dose = D(2024, 1, 15), D(2024, 3, 10)
    assert _tte(rows, "R") == {
        "OS": (230, 0, hct, D(2024, 9, 1), "DEATH"),
        "PFS": (168, 0, hct, D(2024, 7, 1), "RELAPSE OR DEATH"),
        "NRM": (113, 2, dose, D(2024, 7, 1), "RELAPSE (COMPETING EVENT)"),  # from the first dose
    }
    assert _tte(rows, "A") == {
        "OS": (366, 1, hct, D(2025, 1, 15), "CENSORED"),
        "PFS": (366, 1, hct, D(2025, 1, 15), "CENSORED"),
        "NRM": (311, 1, dose, D(2025, 1, 15), "CENSORED"),
    }


def test_adtte_first_dose_origin_and_exclusions():  # type: ignore[no-untyped-def]
    study = Study(code="STUDY-1", drug="X", survival_origin="first_dose")
    never_dosed = _subject(subject_id="N", doses=(), death_date=None, last_contact_date=D(2024, 5, 1))
    bad_dates = _subject(subject_id="B", relapse_date=D(2024, 10, 1))  # relapse after death
    no_hct = _subject(subject_id="H", hct_date=None)
    not_enrolled = _subject(subject_id="E", enrolled_on=None)
    rows = mapping.map_adtte(study, [never_dosed, bad_dates, no_hct, not_enrolled])
    assert {r["SUBJID"] for r in rows} == {"N", "B"}  # no origin / not enrolled: not in the survival API either
    assert all(
        r["AVAL"] is None and r["EVNTDESC"] == "NOT EVALUABLE: NO FIRST DOSE" for r in rows if r["SUBJID"] == "N"
    )
    bad = [r for r in rows if r["SUBJID"] == "B"]
    assert len(bad) == 3 and all(r["AVAL"] is None and r["CNSR"] is None for r in bad)
    assert all(r["EVNTDESC"].startswith("DATE ERROR: B: relapse 2024-10-01 is after death") for r in bad)


@pytest.mark.parametrize("name", list(mapping.MAPPERS))
def test_records_carry_exactly_the_dataset_variables(name):  # type: ignore[no-untyped-def]
    subject = _subject(
        adverse_events=(_ae(1, D(2024, 3, 12), dlt=False),),
        last_contact_date=D(2024, 8, 1),
        labs=(mapping.LabDraw(5, D(2024, 3, 10), 1, platelets=Decimal("140"), alt=Decimal("45")),),
        medications=(mapping.Medication(6, "dasatinib", D(2024, 2, 1)),),
        diagnosis="b_all",
        assessments=(
            mapping.ResponseAssessment(7, "mrd", D(2024, 3, 1), "flow", "positive", Decimal("0.0012")),
            mapping.ResponseAssessment(8, "bone_marrow", D(2024, 6, 9), response="cr", blasts_pct=Decimal("1.5")),
        ),
    )
    rows = mapping.MAPPERS[name](STUDY, [subject])
    assert rows, name
    spec = metadata.DATASETS[name]
    for row in rows:
        assert tuple(row) == spec.names
        for v in spec.variables:
            codelist = terminology.codelist_for(name, v.name, v.codelist, row)
            if codelist is not None and v.type == "Char":
                assert terminology.in_codelist(codelist, row[v.name]), (v.name, row[v.name])  # type: ignore[arg-type]
            if v.core == "Req":
                assert row[v.name] is not None, v.name


def test_datasets_in_batches_join_to_the_whole_trials_datasets():  # type: ignore[no-untyped-def]
    """The streamed package maps a batch of subjects at a time: joined per dataset, in the
    subjects' order, the batches' records are the records of the whole trial."""
    import dataclasses

    from .test_cdisc_conformance import STUDY as STUDY_1
    from .test_cdisc_conformance import _subjects as two_subjects

    dosed, failed = two_subjects()
    subjects = [
        dataclasses.replace(template, subject_id=f"UHC-{n:03d}")
        for n, template in enumerate([dosed, failed, dosed, dosed, failed], start=1)
    ]
    whole = mapping.datasets(STUDY_1, subjects)
    for size in (1, 2, 3, 5):
        joined: dict[str, list[dict[str, object]]] = {}
        batches = [subjects[i : i + size] for i in range(0, len(subjects), size)]
        for name, records in mapping.datasets_in_batches(STUDY_1, batches):
            joined.setdefault(name, []).extend(records)
        assert joined == whole, size
        assert list(joined) != [] and set(joined) == set(mapping.MAPPERS)
    empty = dict(mapping.datasets_in_batches(STUDY_1, []))
    assert empty == mapping.datasets(STUDY_1, [])
