"""The trial dashboard: its parts, its scope, and a query count that does not grow."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analysis.services import computation_run
from tests.factories import (
    AdverseEventFactory,
    CycleFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    TransplantFactory,
)
from trial.services import computation_request

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
    for kind in ("escalation", "survival", "dashboard"):
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
    # 19 (35 while every view recomputed the lists): the DLT review, worklist, swimmer and
    # Table 2 reads are now one stored row (TrialComputation kind "dashboard"); the same 19
    # on PostgreSQL in bench/latency.py.
    assert small == 19, small


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


def _fresh(trial):  # type: ignore[no-untyped-def]
    """The dashboard lists computed now, as JSON stores them."""
    import json

    from django.utils import timezone

    from analysis.selectors import dashboard_lists

    return json.loads(json.dumps(dashboard_lists(trial, timezone.localdate())))


def test_stored_dashboard_equals_a_fresh_computation_after_each_write(world, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Every kind of write marks the stored lists stale in its transaction, and the task it
    enqueues (the worker's path) leaves them equal to a computation from scratch."""
    from django.utils import timezone

    from analysis.tasks import trial_recompute
    from dashboard import selectors
    from dosing.services import cycle_record, lab_panel_record
    from patients.models import Patient
    from patients.services import assessment_record, event_record
    from safety.models import CtcaeTerm
    from safety.services import ae_record
    from tests.factories import ConsentFactory, ProtocolVersionFactory
    from trial.models import TrialComputation

    trial = world["trial"]
    _populate(world, 6)
    v1 = ProtocolVersionFactory(trial=trial, version="1", max_cycles=4, effective=datetime.date(2017, 7, 1))
    a, b = Patient.objects.filter(site=world["site_a"]).order_by("subject_id")[:2]
    ConsentFactory(patient=a, protocol_version=v1, date=HCT + datetime.timedelta(days=50))
    coordinator = world["coordinator_a"]
    nausea = CtcaeTerm.objects.get(version="5.0", meddra_code="10028813")

    def day(n: int) -> datetime.date:
        return HCT + datetime.timedelta(days=n)

    visit = {
        "day1": day(126), "lab_date": day(125), "platelets": Decimal("120"), "anc": Decimal("2.0"),
        "hemoglobin": Decimal("110"), "acute_gvhd_grade": 0, "liver_gvhd": False, "sos": False,
        "height_cm": Decimal("170"), "weight_kg": Decimal("70"), "given": True,
    }  # fmt: skip
    writes = [
        # (write, the tasks it enqueues)
        (
            lambda: ae_record(
                user=coordinator,
                patient=a,
                data={"term": nausea, "grade": 3, "onset": day(75), "attribution": "probable"},
            ),
            ["escalation"],
        ),
        (
            lambda: assessment_record(
                user=coordinator,
                patient=b,
                data={"kind": "mrd", "date": day(95), "method": "flow", "result": "negative"},
            ),
            ["dashboard"],
        ),
        (
            lambda: lab_panel_record(
                user=coordinator, patient=b, data={"date": day(85), "platelets": Decimal("10"), "anc": Decimal("0.2")}
            ),
            ["escalation"],  # a cytopenia DLT candidate changes the escalation input too
        ),
        (
            lambda: event_record(
                user=coordinator,
                patient=b,
                data={"kind": "relapse", "date": day(300), "blasts_pct": Decimal("12"), "relapse_site": "marrow"},
            ),
            ["survival"],
        ),
        (lambda: cycle_record(user=coordinator, patient=a, data=visit), ["escalation", "survival"]),
    ]
    stored = TrialComputation.objects.get(trial=trial, kind="dashboard")
    assert not stored.stale and stored.data == _fresh(trial)
    for write, tasks in writes:
        before = stored.data
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            write()
        assert len(callbacks) == len(tasks)  # no extra task: the dashboard follows its request's task
        stored.refresh_from_db()
        assert stored.stale, write
        for kind in tasks:
            trial_recompute.apply(args=(trial.pk, kind))
        stored.refresh_from_db()
        assert not stored.stale and stored.data == _fresh(trial), tasks
        assert stored.data != before, tasks  # each write changed what the dashboard shows
    # What the page shows from the stored lists equals what it shows computed in the request
    # (no stored row), for a trial-wide and a site-limited user, with and without filters.
    today = timezone.localdate()
    views = [(world["investigator"], selectors.Filters()), (world["investigator"], selectors.Filters("SA", 1)),
             (world["coordinator_b"], selectors.Filters())]  # fmt: skip
    keys = ("awaiting_adjudication", "overdue", "swimmer", "ae_summary")
    from_store = [{k: selectors.dashboard(u, trial, f, today)[k] for k in keys} for u, f in views]
    TrialComputation.objects.filter(trial=trial, kind="dashboard").delete()
    live = [{k: selectors.dashboard(u, trial, f, today)[k] for k in keys} for u, f in views]
    assert from_store == live
    assert any(o["subject_id"] == a.subject_id for o in from_store[0]["awaiting_adjudication"])
    assert all(r["site"] == "SB" for r in from_store[2]["swimmer"]) and from_store[2]["swimmer"]
