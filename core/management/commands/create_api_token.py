from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.tokens import token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user; the key is printed once and stored only as a hash."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")
        parser.add_argument("--name", default="API token")
        parser.add_argument("--days", type=int, default=90)

    def handle(self, *args, username, name, days, **options):  # type: ignore[no-untyped-def]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366.")
        token, key = token_issue(user=user, name=name, lifetime=timedelta(days=days))
        self.stdout.write(f"{key}\n(expires {token.expires_at:%Y-%m-%d}; copy it now, it is not shown again)")
