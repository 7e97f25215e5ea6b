"""Database triggers that make audit tables append-only.

A bug, a shell session or a compromised view using the app's own connection cannot
UPDATE or DELETE an audit row: the database refuses. Covered tables: every
django-simple-history table (found through the registry, so new audited models are
covered automatically), electronic signatures, and the login-attempt log.

TRUNCATE is deliberately not blocked: the test runner empties tables with it between
transactional tests on PostgreSQL. In production run the app as a role that does not
own the tables (docs/ARCHITECTURE.md, "Audit"), which removes TRUNCATE as well.
"""

from collections.abc import Iterable

from django.apps import apps
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

MESSAGE = "audit rows are append-only: UPDATE and DELETE are refused"


# The sign-in log (django-axes): one row per sign-in, which axes completes once with the
# sign-out time, so an UPDATE may set ``logout_time`` and nothing else.
UPDATABLE_COLUMNS = {"axes_accesslog": {"logout_time"}}


def audit_tables() -> list[str]:
    tables = {
        model._meta.db_table
        for model in apps.get_models()
        if model.__name__.startswith("Historical") and hasattr(model, "history_id")
    }
    tables.add(apps.get_model("core", "Signature")._meta.db_table)
    # Every sign-in and every failed password (sign-in or e-signature): axes' access log
    # and failure log. The failure counters (axes_accessattempt) are not a log: they are
    # reset by a successful sign-in and expire after the cool-off.
    tables.add(apps.get_model("axes", "AccessLog")._meta.db_table)
    tables.add(apps.get_model("axes", "AccessFailureLog")._meta.db_table)
    return sorted(tables)


def _guarded_update(table: str) -> str:
    """``UPDATE`` or ``UPDATE OF <every column but the updatable ones>``."""
    if table not in UPDATABLE_COLUMNS:
        return "UPDATE"
    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    columns = [f.column for f in model._meta.concrete_fields if f.column not in UPDATABLE_COLUMNS[table]]
    return "UPDATE OF " + ", ".join(f'"{c}"' for c in columns)


def _postgres_sql(table: str) -> list[str]:
    trigger = f"{table}_append_only"
    return [
        f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"',
        f'CREATE TRIGGER "{trigger}" BEFORE {_guarded_update(table)} OR DELETE ON "{table}" '
        "FOR EACH ROW EXECUTE FUNCTION trialdesk_audit_append_only()",
    ]


def _sqlite_sql(table: str) -> list[str]:
    sql = []
    for op in ("UPDATE", "DELETE"):
        trigger = f"{table}_no_{op.lower()}"
        event = _guarded_update(table) if op == "UPDATE" else op
        sql.append(f'DROP TRIGGER IF EXISTS "{trigger}"')
        raise_abort = f"SELECT RAISE(ABORT, '{MESSAGE}')"
        sql.append(f'CREATE TRIGGER "{trigger}" BEFORE {event} ON "{table}" BEGIN {raise_abort}; END')
    return sql


def install_audit_guards(connection: BaseDatabaseWrapper, tables: Iterable[str]) -> None:
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE OR REPLACE FUNCTION trialdesk_audit_append_only() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION '{MESSAGE} (table %)', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
                "END $$"
            )
            make = _postgres_sql
        elif connection.vendor == "sqlite":
            make = _sqlite_sql
        else:  # pragma: no cover - only PostgreSQL and SQLite are supported
            raise RuntimeError(f"no audit guard for database vendor {connection.vendor}")
        for table in tables:
            if table in existing:
                for statement in make(table):
                    cursor.execute(statement)


def install_audit_guards_after_migrate(sender, using: str = "default", **kwargs) -> None:  # type: ignore[no-untyped-def]
    if sender.name != "core":  # once per migrate run is enough; core is always migrated
        return
    install_audit_guards(connections[using], audit_tables())
