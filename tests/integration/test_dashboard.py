"""The trial dashboard: its parts, its scope, and a query count that does not grow."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    AdverseEventFactory,
    CycleFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    TransplantFactory,
)
from trial.services import computation_request, computation_run

HCT = datetime.date(2023, 1, 10)


def _populate(world, n):  # type: ignore[no-untyped-def]
    levels = [
        DoseLevelFactory(trial=world["trial"], level=i, dose_mg_m2=Decimal(d)) for i, d in ((1, "0.3"), (2, "0.4"))
    ]
    for i in range(n):
        site = world["site_a"] if i % 2 == 0 else world["site_b"]
        p = PatientFactory(
            site=site, trial=world["trial"], dose_level=levels[i % 2], enrolled_on=HCT + datetime.timedelta(days=60)
        )
        TransplantFactory(patient=p, date=HCT)
        CycleFactory(patient=p, number=1, dose_level=levels[i % 2], day1=HCT + datetime.timedelta(days=70))
        CycleFactory(patient=p, number=2, dose_level=levels[i % 2], day1=HCT + datetime.timedelta(days=98))
        AdverseEventFactory(patient=p, grade=1 + i % 4, onset=HCT + datetime.timedelta(days=80))
        PatientEventFactory(patient=p, kind="last_contact", date=HCT + datetime.timedelta(days=400 + i))
    for kind in ("escalation", "survival"):
        computation_request(world["trial"].pk, kind)
        computation_run(world["trial"].pk, kind)


def _queries(client, url):  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.parametrize("sizes", [(10, 200)])
def test_dashboard_query_count_does_not_grow(world, login, sizes):  # type: ignore[no-untyped-def]
    client = login(world["investigator"])
    url = f"/trials/{world['trial'].pk}/dashboard/"
    _populate(world, sizes[0])
    small, page = _queries(client, url)
    assert "Escalation ladder" in page and "Swimmer plot" in page
    # The same trial grows to the larger size, at the levels it already has.
    levels = list(world["trial"].dose_levels.order_by("level"))
    for i in range(sizes[1] - sizes[0]):
        p = PatientFactory(site=world["site_a"], trial=world["trial"], dose_level=levels[i % 2], enrolled_on=HCT)
        TransplantFactory(patient=p, date=HCT)
        CycleFactory(patient=p, number=1, dose_level=levels[i % 2], day1=HCT + datetime.timedelta(days=70))
        AdverseEventFactory(patient=p, grade=2, onset=HCT + datetime.timedelta(days=80))
    large, _ = _queries(client, url)
    assert small == large, f"{small} queries at {sizes[0]} patients, {large} at {sizes[1]}"


def test_coordinator_dashboard_shows_only_own_site(world, login):  # type: ignore[no-untyped-def]
    _populate(world, 4)
    page = login(world["coordinator_a"]).get(f"/trials/{world['trial'].pk}/dashboard/").content.decode()
    from patients.models import Patient

    for p in Patient.objects.select_related("site"):
        assert (p.subject_id in page) == (p.site.code == "SA")


def test_sponsor_has_no_dashboard(world, login):  # type: ignore[no-untyped-def]
    assert login(world["sponsor"]).get(f"/trials/{world['trial'].pk}/dashboard/").status_code == 403


def test_filters_narrow_the_patient_lists(world, login):  # type: ignore[no-untyped-def]
    _populate(world, 4)
    client = login(world["investigator"])
    page = client.get(f"/trials/{world['trial'].pk}/dashboard/?site=SB&dose_level=2").content.decode()
    from patients.models import Patient

    for p in Patient.objects.select_related("site", "dose_level"):
        expected = p.site.code == "SB" and p.dose_level.level == 2
        assert (f'"subject_id": "{p.subject_id}"' in page) == expected


def test_coordinator_home_shows_the_week_worklist_and_timeline(world, login):  # type: ignore[no-untyped-def]
    _populate(world, 2)
    client = login(world["coordinator_a"])
    page = client.get("/").content.decode()
    assert "Due or overdue this week" in page and "overdue" in page
    from patients.models import Patient

    patient = Patient.objects.filter(site=world["site_a"]).first()
    timeline = client.get(f"/patients/{patient.pk}/timeline/").content.decode()
    assert "Allogeneic HCT" in timeline and "Cycle 1" in timeline and "AE: Platelet count decreased" in timeline
    other = Patient.objects.filter(site=world["site_b"]).first()
    assert client.get(f"/patients/{other.pk}/timeline/").status_code == 404
    assert "Due or overdue" not in login(world["investigator"]).get("/").content.decode()
