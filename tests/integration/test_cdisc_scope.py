"""The CDISC selector is scoped like the sponsor exports, and leaves voided records out
(issue 18; docs/exports.md)."""

import datetime

import pytest
from django.http import Http404

from cleaning.services import casebook_record_void
from exchange.cdisc import mapping
from exchange.cdisc.selectors import casebook_subjects_for
from tests.factories import AdverseEventFactory, PatientFactory


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
