"""One audit trail per casebook (issue 19 item 5): every record's versions with old, new
and reason as words, filterable by record type, user and dates, in a fixed number of
queries, scoped like the casebook."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.audit import casebook_history, casebook_history_filter, record_update
from dosing import services as dosing_services
from patients.models import Transplant
from tests.integration.test_cycle_correction import give, patient  # noqa: F401 - the fixture
from tests.integration.test_dosing_services import C1D1, HCT, visit

pytestmark = pytest.mark.django_db


def test_every_record_type_is_in_the_casebook_trail_with_readable_values(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    (c1,) = give(world, patient, visit(C1D1))
    panel = dosing_services.lab_panel_record(
        user=world["coordinator_a"], patient=patient, data={"date": datetime.date(2024, 4, 2), "anc": Decimal("1.0")}
    )
    dosing_services.lab_panel_update(
        user=world["coordinator_a"], panel=panel, changes={"anc": Decimal("0.4")}, reason="lab report"
    )
    transplant = Transplant.objects.get(patient=patient)
    record_update(transplant, {"date": datetime.date(2024, 1, 16)}, user=world["coordinator_a"], reason="HCT date typo")
    rows = casebook_history(patient.pk)
    types = {r.record_type for r in rows}
    assert {"patients.patient", "patients.transplant", "patients.consent", "dosing.cycle", "dosing.labpanel"} <= types
    lab = next(r for r in rows if r.record_type == "dosing.labpanel" and r.row.reason == "lab report")
    assert [(c.field, c.old, c.new) for c in lab.row.changes] == [("anc", "1.00", "0.40")]
    hct = next(r for r in rows if r.record_type == "patients.transplant" and r.row.action == "changed")
    assert [(c.field, c.old, c.new) for c in hct.row.changes] == [("date", HCT.isoformat(), "2024-01-16")]
    cycle = next(r for r in rows if r.record_type == "dosing.cycle" and r.record_id == c1.pk)
    changes = {c.field: c.new for c in cycle.row.changes}
    assert "{" not in changes["safety_check"] and "'" not in changes["safety_check"]  # words, not a Python dict
    assert changes["dose_level"] == str(c1.dose_level)  # a related row by its name


def test_filters_by_type_user_and_dates(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    give(world, patient, visit(C1D1))
    rows = casebook_history(patient.pk)
    only_cycles = casebook_history_filter(rows, record_type="dosing.cycle")
    assert only_cycles and {r.record_type for r in only_cycles} == {"dosing.cycle"}
    mine = casebook_history_filter(rows, user_id=world["coordinator_a"].pk)
    assert mine and all(r.user_id == world["coordinator_a"].pk for r in mine)
    assert casebook_history_filter(rows, user_id=world["monitor"].pk) == []
    today = rows[0].row.at.date()
    assert casebook_history_filter(rows, until=today - datetime.timedelta(days=1)) == []
    assert len(casebook_history_filter(rows, since=today, until=today)) == len(rows)


def test_query_count_does_not_grow_with_the_records(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    give(world, patient, visit(C1D1))
    with CaptureQueriesContext(connection) as few:
        casebook_history(patient.pk)
    give(world, patient, visit(C1D1 + datetime.timedelta(days=28)), visit(C1D1 + datetime.timedelta(days=56)))
    with CaptureQueriesContext(connection) as more:
        casebook_history(patient.pk)
    assert len(more) == len(few), (len(few), len(more))


def test_audit_page_filters_prints_and_respects_site_walls(world, patient, login):  # type: ignore[no-untyped-def]  # noqa: F811
    give(world, patient, visit(C1D1))
    url = reverse("patient_history", args=[patient.pk])
    page = login(world["coordinator_a"]).get(url).content.decode()
    assert 'data-record-type="dosing.cycle"' in page and 'data-record-type="patients.transplant"' in page
    filtered = login(world["coordinator_a"]).get(url, {"record_type": "patients.transplant"}).content.decode()
    assert 'data-record-type="patients.transplant"' in filtered and 'data-record-type="dosing.cycle"' not in filtered
    eligibility = login(world["coordinator_a"]).get(reverse("patient_eligibility", args=[patient.pk])).content.decode()
    assert f"{url}?record_type=patients.transplant" in eligibility
    assert login(world["coordinator_b"]).get(url).status_code == 404
