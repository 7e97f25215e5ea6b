from django.core.management.base import BaseCommand

from exchange.demo import load_demo


class Command(BaseCommand):
    help = "Load the seed trial (18 treated patients, from its bundle) and one demo user per role (idempotent)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        trial, imported, passwords = load_demo()
        treated = trial.patients.filter(dose_level__isnull=False).count()
        verb = "imported" if imported else "already loaded"
        self.stdout.write(
            f"Demo trial {trial.code} {verb}: {trial.sites.count()} sites, {trial.dose_levels.count()} dose levels, "
            f"{trial.patients.count()} patients ({treated} treated)."
        )
        if passwords:
            self.stdout.write(self.style.WARNING("Demo users (passwords shown once; write them down):"))
            for username, password in passwords.items():
                self.stdout.write(f"  {username:<13} {password}")
        else:
            self.stdout.write("Demo users already exist; their passwords were printed at first setup.")
            self.stdout.write("Reset one with: python manage.py changepassword USERNAME")
