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


def audit_tables() -> list[str]:
    tables = {
        model._meta.db_table
        for model in apps.get_models()
        if model.__name__.startswith("Historical") and hasattr(model, "history_id")
    }
    tables.add(apps.get_model("core", "Signature")._meta.db_table)
    return sorted(tables)


def _postgres_sql(table: str) -> list[str]:
    trigger = f"{table}_append_only"
    return [
        f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"',
        f'CREATE TRIGGER "{trigger}" BEFORE UPDATE OR DELETE ON "{table}" '
        "FOR EACH ROW EXECUTE FUNCTION trialdesk_audit_append_only()",
    ]


def _sqlite_sql(table: str) -> list[str]:
    sql = []
    for op in ("UPDATE", "DELETE"):
        trigger = f"{table}_no_{op.lower()}"
        sql.append(f'DROP TRIGGER IF EXISTS "{trigger}"')
        sql.append(f'CREATE TRIGGER "{trigger}" BEFORE {op} ON "{table}" BEGIN SELECT RAISE(ABORT, \'{MESSAGE}\'); END')
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
