"""A record's versions as ODM 1.3.2 transactions (issue 18: the casebook with its audit
trail, for moving it to another EDC). No Django.

ODM's audit style in a ``FileType="Transactional"`` file: a record's item group appears
once per change, in the order the changes were made, each with its ``AuditRecord``
(who, where, when, why) and ``TransactionType``; reading them in order replays the record
to its current values, and the earlier values stay in the file. So:

- the first version is an ``Insert`` group with every item that has a value, each an
  ``Insert``;
- a later version is an ``Update`` group with only the items that changed: an item that
  had no value and now has one is an ``Insert``, a changed value an ``Update``, a value
  cleared a ``Remove`` (without ``Value``); a version that changed none of the exported
  items (a signature link, a void's own fields) is an ``Update`` group with no item, kept
  for its audit record;
- the version that voided the record (entered in error, never deleted) is a ``Remove``
  group: who voided it, when and why are its audit record.

Values are already ODM text (:func:`odm_text`); ``None`` means "no value".
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

TransactionType = Literal["Insert", "Update", "Remove", "Context"]
ItemValue = tuple[str, str | None]  # (item OID, ODM text or None)


@dataclass(frozen=True)
class Version:
    """One stored version of a record: its exported item values and whether it is voided."""

    values: tuple[ItemValue, ...]
    voided: bool = False
    deleted: bool = False  # simple-history's "-" (never written: records are not deleted)


class ItemChange(NamedTuple):
    """One item of a version (a named tuple: a casebook has hundreds of thousands)."""

    item: str
    value: str | None
    transaction: TransactionType


@dataclass(frozen=True)
class Change:
    """What one version did to the record, as ODM says it."""

    transaction: TransactionType
    items: tuple[ItemChange, ...]


def version_changes(versions: Sequence[Version]) -> list[Change]:
    """One :class:`Change` per version, oldest first (rules in the module docstring)."""
    changes: list[Change] = []
    previous: dict[str, str | None] | None = None
    previous_voided = False
    for version in versions:
        values = dict(version.values)
        if previous is None:
            items = tuple(ItemChange(oid, v, "Insert") for oid, v in version.values if v is not None)
            changes.append(Change("Insert", items))
        elif version.deleted or (version.voided and not previous_voided):
            changes.append(Change("Remove", ()))
        else:
            moved: list[ItemChange] = []
            for oid, value in version.values:
                before = previous.get(oid)
                if value == before:
                    continue
                kind: TransactionType = "Remove" if value is None else "Insert" if before is None else "Update"
                moved.append(ItemChange(oid, value, kind))
            changes.append(Change("Update", tuple(moved)))
        previous = values
        previous_voided = version.voided
    return changes


def odm_text(value: object) -> str | None:
    """A stored value as ODM text: dates ``YYYY-MM-DD``, date-times in UTC with ``Z``,
    booleans ``1``/``0`` (xs:boolean), decimals as written (no exponent), JSON compact
    with sorted keys; empty text and ``None`` are no value."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError("naive date-time: every stored date-time is aware (UTC)")
        return value.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def user_oid(secret: str, user_id: int | None) -> str:
    """A user as a pseudonymous OID: the same user is the same OID in every export of this
    server, and nothing in the file (or the rest of the API) maps it back to a name
    (docs/exports.md, de-identification). ``None`` (a change made by the system, e.g. a
    migration or a bundle import without a user) is ``USR.SYSTEM``."""
    if user_id is None:
        return "USR.SYSTEM"
    digest = hmac.new(secret.encode(), f"odm-user:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"USR.{digest[:16].upper()}"


def oid_part(text: str) -> str:
    """Text as a piece of an OID: letters, digits and ``-`` kept, everything else ``_``,
    upper case."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "-") else "_" for c in text).upper()
