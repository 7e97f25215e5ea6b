from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Trialdesk core (audit, signatures, API tokens)"

    def ready(self) -> None:
        # Infrastructure, not domain logic: after every migrate, (re)install the
        # database triggers that make audit tables append-only, so a table added by a
        # later migration is covered without anyone remembering to do it.
        import core.schema  # noqa: F401 - registers the OpenAPI token scheme
        from core.audit_guard import install_audit_guards_after_migrate

        post_migrate.connect(install_audit_guards_after_migrate, dispatch_uid="core.audit_guards")
