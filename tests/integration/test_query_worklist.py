"""The site worklist of unclosed queries (age, counts per site, scope), the counts on the
investigator dashboard and the coordinator's home; 10,000 open queries cost what 10 do."""

import datetime
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cleaning.models import DataQuery
from cleaning.selectors import query_counts_by_site
from tests.factories import AdverseEventFactory, PatientFactory

pytestmark = pytest.mark.django_db


def _bulk_queries(world, site, n, *, state="open", age_days=0):  # type: ignore[no-untyped-def]
    """``n`` manual queries on AEs of a patient at ``site``, written in bulk (a test of
    reading cost: no service, no history)."""
    patient = PatientFactory(site=site, trial=world["trial"])
    ae = AdverseEventFactory(patient=patient)
    content_type = ContentType.objects.get_for_model(ae)
    rows = [
        DataQuery(
            trial=world["trial"],
            site=site,
            patient=patient,
            content_type=content_type,
            object_id=ae.pk,
            field_name="grade",
            question=f"Check the grade against the source ({i}).",
            state=state,
            closed_at=timezone.now() if state == "closed" else None,
            raised_by=world["monitor"],
        )
        for i in range(n)
    ]
    created = DataQuery.objects.bulk_create(rows, batch_size=2000)
    if age_days:
        DataQuery.objects.filter(pk__in=[q.pk for q in created]).update(
            created_at=timezone.now() - datetime.timedelta(days=age_days, hours=1)
        )
    return patient


def _get(client, url):  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode(), elapsed


def test_worklist_at_10000_open_queries_costs_what_10_do(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    url = f"/trials/{world['trial'].pk}/queries/"
    _bulk_queries(world, world["site_a"], 10)
    small, page, _ = _get(client, url)
    assert "10 queries, oldest first" in page
    _bulk_queries(world, world["site_a"], 9_990)
    large, page, elapsed = _get(client, url)
    assert small == large, f"{small} SQL queries at 10 open queries, {large} at 10,000"
    assert "10000 queries, oldest first" in page and "Page 1 of 200" in page
    assert page.count('class="badge query-open"') == 50  # one page, not 10,000 rows
    assert elapsed < 5, f"the worklist took {elapsed:.2f} s at 10,000 open queries"
    print(f"\nworklist: {large} SQL queries at 10 and at 10,000 open queries; {elapsed * 1000:.0f} ms at 10,000")


def test_worklist_shows_age_oldest_first_and_only_own_sites(world, login):  # type: ignore[no-untyped-def]
    old = _bulk_queries(world, world["site_a"], 1, age_days=12)
    new = _bulk_queries(world, world["site_a"], 1)
    hidden = _bulk_queries(world, world["site_b"], 2)
    page = login(world["coordinator_a"]).get(f"/trials/{world['trial'].pk}/queries/").content.decode()
    assert old.subject_id in page and new.subject_id in page and hidden.subject_id not in page
    assert page.index(old.subject_id) < page.index(new.subject_id)
    assert "<td>12</td>" in page  # age in whole days
    assert "adverse event #" in page and "<td>grade</td>" in page
    assert ">SB<" not in page  # no row or count of site B


def test_worklist_filters_by_state_and_site(world, login):  # type: ignore[no-untyped-def]
    a_open = _bulk_queries(world, world["site_a"], 1)
    a_answered = _bulk_queries(world, world["site_a"], 1, state="answered")
    b_open = _bulk_queries(world, world["site_b"], 1)
    _bulk_queries(world, world["site_b"], 1, state="closed")
    client = login(world["investigator"])
    base = f"/trials/{world['trial'].pk}/queries/"
    page = client.get(base).content.decode()
    assert all(p.subject_id in page for p in (a_open, a_answered, b_open))
    page = client.get(base + "?state=answered").content.decode()
    assert a_answered.subject_id in page and a_open.subject_id not in page
    page = client.get(base + f"?site={world['site_b'].pk}").content.decode()
    assert b_open.subject_id in page and a_open.subject_id not in page
    page = client.get(base + "?state=nonsense&site=nowhere").content.decode()  # ignored, not a 500
    assert "3 queries" in page


def test_counts_per_site(world):  # type: ignore[no-untyped-def]
    _bulk_queries(world, world["site_a"], 3, age_days=5)
    _bulk_queries(world, world["site_a"], 2, state="answered")
    _bulk_queries(world, world["site_b"], 1, state="closed")
    counts = {
        c.site.code: (c.open, c.answered, c.oldest_days)
        for c in query_counts_by_site(world["investigator"], world["trial"])
    }
    assert counts == {"SA": (3, 2, 5), "SB": (0, 0, None)}
    mine = {c.site.code for c in query_counts_by_site(world["coordinator_a"], world["trial"])}
    assert mine == {"SA"}


def test_investigator_dashboard_shows_open_queries_per_site(world, login):  # type: ignore[no-untyped-def]
    _bulk_queries(world, world["site_a"], 4)
    _bulk_queries(world, world["site_b"], 2, state="answered")
    page = login(world["investigator"]).get(f"/trials/{world['trial'].pk}/dashboard/").content.decode()
    assert "Open queries per site" in page
    assert 'data-site="SA" data-open="4" data-answered="0"' in page
    assert 'data-site="SB" data-open="0" data-answered="2"' in page
    assert f"/trials/{world['trial'].pk}/queries/" in page


def test_coordinator_home_lists_open_queries_of_own_sites(world, login):  # type: ignore[no-untyped-def]
    mine = _bulk_queries(world, world["site_a"], 2, age_days=3)
    theirs = _bulk_queries(world, world["site_b"], 2)
    page = login(world["coordinator_a"]).get("/").content.decode()
    assert "Open queries (2)" in page
    assert mine.subject_id in page and theirs.subject_id not in page
    assert f"/trials/{world['trial'].pk}/queries/" in page


def test_home_query_count_does_not_grow_with_the_queries(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    _bulk_queries(world, world["site_a"], 3)
    small, _, _ = _get(client, "/")
    _bulk_queries(world, world["site_a"], 300)
    large, page, _ = _get(client, "/")
    assert small == large
    assert "Open queries (303)" in page
