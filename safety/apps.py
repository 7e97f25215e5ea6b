from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ctcae_dictionary_after_migrate(sender, using="default", **kwargs):  # type: ignore[no-untyped-def]
    """The CTCAE dictionary is reference data every AE needs: migration 0002 loads it, and
    after every migrate or flush (a test database emptied between transactional tests,
    `manage.py flush`) it is put back if missing. Idempotent: a no-op when present."""
    from django.db import connections

    from safety.models import CtcaeTerm
    from safety.services import ctcae_dictionary_load

    if CtcaeTerm._meta.db_table in connections[using].introspection.table_names():  # not after "migrate safety zero"
        ctcae_dictionary_load()


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety (CTCAE adverse events, DLT adjudication)"

    def ready(self) -> None:
        post_migrate.connect(ctcae_dictionary_after_migrate, sender=self, dispatch_uid="safety.ctcae_dictionary")
