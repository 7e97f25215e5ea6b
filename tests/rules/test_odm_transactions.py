"""A record's versions as ODM transactions, and values as ODM text (exchange.odm.transactions)."""

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from exchange.odm.transactions import ItemChange, Version, odm_text, oid_part, user_oid, version_changes


def _v(voided: bool = False, **values: str | None) -> Version:
    return Version(tuple(values.items()), voided=voided)


CASES = [
    # (versions, [(group transaction, [(item, value, item transaction)])])
    ([_v(A="1", B=None)], [("Insert", [("A", "1", "Insert")])]),
    ([_v(A="1", B=None), _v(A="2", B=None)], [("Insert", [("A", "1", "Insert")]), ("Update", [("A", "2", "Update")])]),
    ([_v(A="1", B=None), _v(A="1", B="x")], [("Insert", [("A", "1", "Insert")]), ("Update", [("B", "x", "Insert")])]),
    (
        [_v(A="1", B="x"), _v(A="1", B=None)],
        [("Insert", [("A", "1", "Insert"), ("B", "x", "Insert")]), ("Update", [("B", None, "Remove")])],
    ),
    # a version that changed no exported item keeps its audit record
    ([_v(A="1"), _v(A="1")], [("Insert", [("A", "1", "Insert")]), ("Update", [])]),
    # the void is a Remove without items, whatever else the version wrote
    ([_v(A="1"), _v(True, A="1")], [("Insert", [("A", "1", "Insert")]), ("Remove", [])]),
    (
        [_v(A="1"), _v(A="2"), _v(True, A="2")],
        [("Insert", [("A", "1", "Insert")]), ("Update", [("A", "2", "Update")]), ("Remove", [])],
    ),
    ([], []),
]


@pytest.mark.parametrize(("versions", "expected"), CASES)
def test_version_changes(versions, expected):  # type: ignore[no-untyped-def]
    got = [(c.transaction, [(i.item, i.value, i.transaction) for i in c.items]) for c in version_changes(versions)]
    assert got == expected


def test_a_deleted_version_is_a_remove():  # type: ignore[no-untyped-def]
    changes = version_changes([_v(A="1"), Version((("A", "1"),), deleted=True)])
    assert changes[1].transaction == "Remove" and changes[1].items == ()
    assert changes[0].items == (ItemChange("A", "1", "Insert"),)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", None),
        ("grade 3", "grade 3"),
        (True, "1"),
        (False, "0"),
        (3, "3"),
        (Decimal("0.50"), "0.50"),
        (Decimal("1E+1"), "10"),
        (datetime.date(2024, 4, 20), "2024-04-20"),
        (datetime.datetime(2024, 4, 20, 10, 0, 30, 123, tzinfo=ZoneInfo("Europe/Berlin")), "2024-04-20T08:00:30Z"),
        ([{"b": 1, "a": "é"}], '[{"a":"é","b":1}]'),
    ],
)
def test_odm_text(value, text):  # type: ignore[no-untyped-def]
    assert odm_text(value) == text


def test_a_naive_datetime_is_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="naive"):
        odm_text(datetime.datetime(2024, 4, 20, 10, 0))  # noqa: DTZ001 - the point of the test


def test_user_oids_are_stable_pseudonyms():  # type: ignore[no-untyped-def]
    assert user_oid("s1", 7) == user_oid("s1", 7)
    assert user_oid("s1", 7) != user_oid("s2", 7) != user_oid("s1", 8)
    assert user_oid("s1", None) == "USR.SYSTEM"
    assert user_oid("s1", 7).startswith("USR.") and user_oid("s1", 7)[4:] != "7"


def test_oid_part():  # type: ignore[no-untyped-def]
    assert oid_part("INO-POST-HCT") == "INO-POST-HCT"
    assert oid_part("a b/c.é") == "A_B_C__"
