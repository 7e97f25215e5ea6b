"""Cursor pagination of the large lists, patients/ and adverse-events/ (core.api.CursorPagination)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.tokens import token_issue
from tests.factories import AdverseEventFactory, PatientFactory


def _walk_pages(client, url, key):  # type: ignore[no-untyped-def]
    ids, queries, next_url = [], [], url
    while next_url:
        with CaptureQueriesContext(connection) as captured:
            body = client.get(next_url, HTTP_AUTHORIZATION=f"Token {key}").json()
        queries.append(len(captured))
        ids += [row["id"] for row in body["results"]]
        next_url = body["next"]
    return ids, body, queries


@pytest.mark.parametrize("resource", ["patients", "adverse-events"])
def test_cursor_pages_are_complete_stable_and_cost_the_same(client, world, resource):  # type: ignore[no-untyped-def]
    for _ in range(7):
        AdverseEventFactory(patient=PatientFactory(trial=world["trial"], site=world["site_a"]))
    _, key = token_issue(user=world["investigator"], name="t")
    client.get(f"/api/v1/{resource}/", HTTP_AUTHORIZATION=f"Token {key}")  # the token's first use
    ids, last, queries = _walk_pages(client, f"/api/v1/{resource}/?page_size=3", key)
    assert len(ids) == 7 and ids == sorted(ids) and len(set(ids)) == 7
    assert "cursor=" in (last["previous"] or "") and last["count"] == 7
    assert len(queries) == 3 and len(set(queries)) == 1, queries  # page 3 costs what page 1 costs


def test_rows_added_between_pages_are_neither_skipped_nor_repeated(client, world):  # type: ignore[no-untyped-def]
    patients = [PatientFactory(trial=world["trial"], site=world["site_a"]) for _ in range(4)]
    _, key = token_issue(user=world["investigator"], name="t")
    first = client.get("/api/v1/patients/?page_size=2", HTTP_AUTHORIZATION=f"Token {key}").json()
    PatientFactory(trial=world["trial"], site=world["site_a"])  # arrives while the client pages
    ids, _, _ = _walk_pages(client, first["next"], key)
    seen = [row["id"] for row in first["results"]] + ids
    assert seen[:4] == [p.pk for p in patients] and len(seen) == len(set(seen)) == 5
