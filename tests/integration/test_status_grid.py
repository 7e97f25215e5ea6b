"""The record status grid (issue 16 item 17): a subject-by-form grid per site, with
complete / incomplete / query open / verified / locked marks, in a fixed number of SQL
queries whatever the number of patients; completeness markers on the patient list."""

import datetime
import re

import pytest
from django.urls import reverse

from patients.models import CasebookLock
from tests.factories import (
    AdverseEventFactory,
    AssessmentFactory,
    AuditedFactory,
    CycleFactory,
    DataQueryFactory,
    DoseLevelFactory,
    PatientFactory,
    ProtocolVersionFactory,
    ScreeningFactory,
    SourceVerificationFactory,
)

pytestmark = pytest.mark.django_db


def _patients(world, n, site=None):  # type: ignore[no-untyped-def]
    level = world["trial"].dose_levels.first() or DoseLevelFactory(trial=world["trial"], level=1)
    made = []
    for i in range(n):
        p = PatientFactory(
            trial=world["trial"], site=site or (world["site_a"] if i % 2 == 0 else world["site_b"]),
            dose_level=level, enrolled_on=datetime.date(2024, 4, 1),
        )  # fmt: skip
        ScreeningFactory(patient=p)
        CycleFactory(patient=p, number=1, dose_level=level, day1=datetime.date(2024, 4, 2))
        AdverseEventFactory(
            patient=p, onset=datetime.date(2024, 4, 5), resolved=datetime.date(2024, 4, 9), outcome="recovered"
        )
        AssessmentFactory(patient=p)
        made.append(p)
    return made


def _cells(body, subject_id):  # type: ignore[no-untyped-def]
    row = re.search(rf'<tr id="subject-{re.escape(subject_id)}".*?</tr>', body, re.S)
    assert row, f"no row for {subject_id}"
    return re.findall(r'data-mark="(\w+)" href="([^"]+)"', row.group(0))


@pytest.mark.parametrize("n", [3, 30])
def test_grid_costs_a_fixed_number_of_queries(world, login, django_assert_num_queries, n):  # type: ignore[no-untyped-def]
    ProtocolVersionFactory(trial=world["trial"], max_cycles=4)
    _patients(world, n)
    client = login(world["investigator"])
    url = reverse("status_grid", args=[world["trial"].pk])
    client.get(url)  # warm the session and the content types
    # session, user, grants, the trial (levels, versions), sites, count, patients, cycles,
    # AEs, assessments, queries, SDV marks, protocol cycles, trial lock, stored lists and
    # the session's save: the same at 3 and 30.
    with django_assert_num_queries(21):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('<tr id="subject-') == n


def test_marks_and_links(world, login):  # type: ignore[no-untyped-def]
    ProtocolVersionFactory(trial=world["trial"], max_cycles=3)
    clean, queried, verified, locked = _patients(world, 4, site=world["site_a"])
    CycleFactory(patient=clean, number=2, dose_level=clean.dose_level, day1=None)  # due, no dose date
    ae = queried.adverse_events.get()
    DataQueryFactory(record=ae)
    SourceVerificationFactory(record=verified.cycles.get(number=1))
    AuditedFactory._create(CasebookLock, patient=locked, state="locked")
    unscreened = PatientFactory(trial=world["trial"], site=world["site_a"])

    body = login(world["coordinator_a"]).get(reverse("status_grid", args=[world["trial"].pk])).content.decode()
    header = re.search(r"<thead>.*?</thead>", body, re.S).group(0)
    for column in ("Screening", "Enrolment", "Cycle 1", "Cycle 2", "Cycle 3", "Adverse events", "Assessments"):
        assert f">{column}<" in header

    marks = dict(enumerate(_cells(body, clean.subject_id)))
    assert marks[0] == ("complete", reverse("screening_detail", args=[clean.screenings.get().pk]))
    assert marks[1] == ("complete", reverse("patient_detail", args=[clean.pk]))
    assert marks[2] == ("complete", reverse("patient_dosing", args=[clean.pk]) + "#cycle-1")
    assert marks[3][0] == "incomplete"  # cycle 2 is there without a dose date
    assert marks[4][0] == "empty"  # no cycle 3 yet
    assert marks[5] == ("complete", reverse("patient_safety", args=[clean.pk]))
    assert marks[6] == ("complete", reverse("patient_assessments", args=[clean.pk]))

    assert _cells(body, queried.subject_id)[5][0] == "query"
    assert _cells(body, verified.subject_id)[2][0] == "verified"
    assert {mark for mark, _ in _cells(body, locked.subject_id)} == {"locked"}
    assert [mark for mark, _ in _cells(body, unscreened.subject_id)][:2] == ["empty", "empty"]
    # An edit after the verification clears the mark (the version moved on).
    cycle = verified.cycles.get(number=1)
    cycle.dose_mg = 1
    cycle._change_reason = "typo"
    cycle.save()
    body = login(world["coordinator_a"]).get(reverse("status_grid", args=[world["trial"].pk])).content.decode()
    assert _cells(body, verified.subject_id)[2][0] == "complete"


def test_coordinator_sees_own_sites_only_and_the_site_filter(world, login):  # type: ignore[no-untyped-def]
    a = _patients(world, 1, site=world["site_a"])[0]
    b = _patients(world, 1, site=world["site_b"])[0]
    url = reverse("status_grid", args=[world["trial"].pk])
    body = login(world["coordinator_a"]).get(url).content.decode()
    assert a.subject_id in body and b.subject_id not in body
    assert f'value="{world["site_b"].code}"' not in body  # not even in the filter
    body = login(world["coordinator_a"]).get(url + f"?site={world['site_b'].code}").content.decode()
    assert b.subject_id not in body  # another site's code in the URL shows nothing of it
    body = login(world["investigator"]).get(url + f"?site={world['site_b'].code}").content.decode()
    assert b.subject_id in body and a.subject_id not in body
    assert login(world["sponsor"]).get(url).status_code == 403  # no patient data for sponsors


def test_linked_from_trial_page_and_patient_list_with_markers(world, login):  # type: ignore[no-untyped-def]
    p = _patients(world, 1, site=world["site_a"])[0]
    DataQueryFactory(record=p.adverse_events.get())
    client = login(world["coordinator_a"])
    grid_url = reverse("status_grid", args=[world["trial"].pk])
    assert grid_url in client.get(reverse("trial_detail", args=[world["trial"].pk])).content.decode()
    body = client.get(reverse("patient_list", args=[world["trial"].pk])).content.decode()
    assert grid_url in body
    assert re.search(r'class="mark mark-query" data-mark="query"[^>]*>Query open<', body)
