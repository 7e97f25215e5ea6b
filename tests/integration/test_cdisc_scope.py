"""The CDISC selector is scoped like the sponsor exports, and leaves voided records out
(issue 18; docs/exports.md)."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from cleaning.services import casebook_record_void
from exchange.cdisc import mapping
from exchange.cdisc.selectors import casebook_subjects_for
from patients.models import Patient
from tests.factories import AdverseEventFactory, AssessmentFactory, DoseLevelFactory, PatientFactory
from trial.models import Site, Trial, TrialLock


@pytest.fixture
def casebooks(world):  # type: ignore[no-untyped-def]
    a = PatientFactory(site=world["site_a"], subject_id="SA-001")
    b = PatientFactory(site=world["site_b"], subject_id="SB-001")
    PatientFactory(site=world["site_c"], subject_id="SC-001")  # another trial
    kept = AdverseEventFactory(patient=a, onset=datetime.date(2024, 4, 20))
    voided = AdverseEventFactory(patient=a, onset=datetime.date(2024, 4, 21))
    casebook_record_void(user=world["coordinator_a"], target=voided, reason="Entered on the wrong patient")
    return {"a": a, "b": b, "kept": kept, "voided": voided}


@pytest.mark.parametrize("role", ["sponsor", "investigator"])
def test_exporters_get_every_site_of_the_trial_and_no_voided_record(world, casebooks, role):  # type: ignore[no-untyped-def]
    study, subjects = casebook_subjects_for(world[role], "TRIAL-T")
    assert study.code == "TRIAL-T"
    assert [s.subject_id for s in subjects] == ["SA-001", "SB-001"]
    ae = mapping.map_ae(study, subjects)
    assert [r["AESPID"] for r in ae] == [f"AE-{casebooks['kept'].pk}"]
    _, by_id = casebook_subjects_for(world[role], str(world["trial"].pk))
    assert by_id == subjects


@pytest.mark.parametrize("role", ["coordinator_a", "data_manager", "monitor", "nobody"])
def test_others_get_404(world, casebooks, role):  # type: ignore[no-untyped-def]
    with pytest.raises(Http404):
        casebook_subjects_for(world[role], "TRIAL-T")


def test_another_trials_exporter_gets_404(world, casebooks):  # type: ignore[no-untyped-def]
    with pytest.raises(Http404):
        casebook_subjects_for(world["sponsor"], "OTHER-U")


def test_query_count_does_not_grow_with_the_casebooks(world, casebooks):  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    casebook_subjects_for(world["sponsor"], "TRIAL-T")  # warm Django's per-process caches
    with CaptureQueriesContext(connection) as before:
        casebook_subjects_for(world["sponsor"], "TRIAL-T")
    for n in range(3):
        patient = PatientFactory(site=world["site_b"], subject_id=f"SB-10{n}")
        AdverseEventFactory(patient=patient)
    with CaptureQueriesContext(connection) as after:
        _, subjects = casebook_subjects_for(world["sponsor"], "TRIAL-T")
    assert len(subjects) == 5
    assert len(after) == len(before)


def test_design_and_response_datasets_read_the_trial_and_its_casebooks(world, casebooks):  # type: ignore[no-untyped-def]
    """TS/TA from the trial's own configuration (dose levels, site countries, the lock),
    DM.COUNTRY from the site, RS from the current assessments (a voided one is left out)."""
    trial, site = world["trial"], world["site_a"]
    site.country = "FRA"
    site._change_reason = "country recorded"
    site.save()
    for level, dose in ((1, "0.25"), (2, "0.5")):
        DoseLevelFactory(trial=trial, level=level, dose_mg_m2=Decimal(dose))
    kept = AssessmentFactory(patient=casebooks["a"], result="positive")
    voided = AssessmentFactory(patient=casebooks["a"], date=datetime.date(2024, 4, 12))
    casebook_record_void(user=world["coordinator_a"], target=voided, reason="Entered on the wrong patient")

    Trial.objects.filter(pk=trial.pk).update(sponsor="Acme Oncology")
    Patient.objects.filter(pk=casebooks["a"].pk).update(
        enrolled_as_backfill=True, enrolled_on=datetime.date(2024, 3, 1)
    )
    TrialLock.objects.create(  # last: a locked trial refuses casebook writes
        trial=trial,
        state=TrialLock.State.LOCKED,
        changed_at=datetime.datetime(2026, 11, 30, 23, 30, tzinfo=datetime.UTC),
    )
    study, subjects = casebook_subjects_for(world["sponsor"], "TRIAL-T")
    ts = {(r["TSPARMCD"], r["TSSEQ"]): r["TSVAL"] for r in mapping.map_ts(study, subjects)}
    assert ts[("SPONSOR", 1)] == "ACME ONCOLOGY"
    assert ts[("TITLE", 1)] == "Trial T" and ts[("FCNTRY", 1)] == "FRA" and ("FCNTRY", 2) not in ts
    assert (ts[("DOSE", 1)], ts[("DOSE", 2)], ts[("NARMS", 1)]) == ("0.25", "0.5", "2")
    assert (ts[("DCUTDTC", 1)], ts[("DCUTDESC", 1)]) == ("2026-11-30", "DATABASE LOCK")
    assert [r["ARM"] for r in mapping.map_ta(study, subjects) if r["TAETORD"] == 1] == [
        "Dose level 1: 0.25 mg/m2",
        "Dose level 2: 0.5 mg/m2",
    ]
    assert [r["COUNTRY"] for r in mapping.map_dm(study, subjects)] == ["FRA", None]  # site B: not recorded
    assert [r["BFILLFL"] for r in mapping.map_adsl(study, subjects)] == [
        "Y",
        None,
    ]  # A: a backfill patient; B: not enrolled
    rs = mapping.map_rs(study, subjects)
    assert [(r["RSSPID"], r["RSSTRESC"]) for r in rs] == [(f"ASSESSMENT-{kept.pk}", "POSITIVE")]


@pytest.mark.parametrize(("country", "refused"), [("USA", False), ("", False), ("XYZ", True), ("usa", True)])
def test_a_site_country_is_an_iso_3166_alpha3_code(world, country, refused):  # type: ignore[no-untyped-def]
    """The form check names the field and the rule; the database refuses what is not even
    three capital letters (a bulk update skips the form)."""
    site = world["site_a"]
    site.country = country
    if refused:
        with pytest.raises(ValidationError) as err:
            site.full_clean()
        assert "is not an ISO 3166-1 alpha-3 country code" in str(err.value.message_dict["country"])
    else:
        site.full_clean()
    if country == "usa":
        with pytest.raises(IntegrityError), transaction.atomic():
            Site.objects.filter(pk=site.pk).update(country=country)


def test_batches_are_the_casebook_a_few_patients_at_a_time(world, casebooks):  # type: ignore[no-untyped-def]
    """The package reads the patients in batches (flat memory): joined, the batches are the
    whole casebook in subject ID order; each batch is a fixed number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from exchange.cdisc.selectors import casebook_batches, casebook_subjects

    trial = world["trial"]
    for n in range(3):
        patient = PatientFactory(site=world["site_b"], subject_id=f"SB-10{n}")
        for _ in range(n):
            AdverseEventFactory(patient=patient)
    site_ids = list(trial.sites.values_list("pk", flat=True))
    _, whole = casebook_subjects(trial, site_ids)
    for batch_rows in (1, 3, 10_000):
        study, batches = casebook_batches(trial, site_ids, batch_rows=batch_rows)
        queries = []
        subjects = []
        iterator = iter(batches)
        while True:
            with CaptureQueriesContext(connection) as captured:
                batch = next(iterator, None)
            if batch is None:
                break
            queries.append(len(captured))
            subjects += batch
        assert subjects == whole and len(queries) == len(batches)
        assert len(set(queries)) == 1, queries  # the same queries whatever the batch holds
    assert len(casebook_batches(trial, site_ids, batch_rows=1)[1]) == len(whole) == 5
