"""The seed trial's configuration (docs/protocol.md s1) and one demo user per role.

``manage.py load_demo`` (exchange/management/commands/load_demo.py) loads the whole seed
trial from its bundle and then calls :func:`demo_users`; :func:`load_demo` here creates
the configuration alone (no patients), for tests that need only that.
"""

import secrets
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from trial.models import DoseLevel, ProtocolVersion, RoleGrant, Site, Trial
from trial.services import role_grant

SEED_TRIAL = {
    "code": "INO-POST-HCT",
    "title": "Low-dose inotuzumab ozogamicin after allogeneic HCT for ALL: phase 1 (NCT03104491)",
}
SITES = [
    ("UHC", "University Hospitals Cleveland", "USA"),
    ("CCF", "Cleveland Clinic", "USA"),
    ("MSK", "Memorial Sloan Kettering", "USA"),
]
DOSE_LEVELS = [(1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6")]
# v2 raised the maximum from 4 to 12 cycles after 15 patients had enrolled.
PROTOCOL_VERSIONS = [("1", date(2017, 7, 1), 4), ("2", date(2020, 8, 17), 12)]
DEMO_USERS = [
    # username, full name, role, site code
    ("coordinator", "Casey Coordinator", RoleGrant.Role.COORDINATOR, "UHC"),
    ("investigator", "Ivy Investigator", RoleGrant.Role.INVESTIGATOR, None),
    ("sponsor", "Sam Sponsor", RoleGrant.Role.SPONSOR, None),
    ("datamanager", "Dana Datamanager", RoleGrant.Role.DATA_MANAGER, None),
    ("monitor", "Mo Monitor", RoleGrant.Role.MONITOR, None),
    ("admin", "Ada Admin", RoleGrant.Role.ADMIN, None),
]
SYSTEM_REASON = "demo setup (load_demo)"


def _audited(obj):  # type: ignore[no-untyped-def]
    obj._change_reason = SYSTEM_REASON
    return obj


@transaction.atomic
def load_demo() -> tuple[Trial, dict[str, str]]:
    """Create the seed trial and demo users if absent. Returns new users' passwords
    (empty when they already existed: passwords are shown once, at first setup)."""
    trial = Trial.objects.filter(code=SEED_TRIAL["code"]).first()
    if trial is None:
        trial = _audited(Trial(**SEED_TRIAL))
        trial.full_clean()
        trial.save()
        for code, name, country in SITES:
            _audited(Site(trial=trial, code=code, name=name, country=country)).save()
        for level, dose in DOSE_LEVELS:
            _audited(DoseLevel(trial=trial, level=level, dose_mg_m2=Decimal(dose))).save()
        for version, effective, max_cycles in PROTOCOL_VERSIONS:
            _audited(ProtocolVersion(trial=trial, version=version, effective=effective, max_cycles=max_cycles)).save()
    return trial, demo_users(trial)


@transaction.atomic
def demo_users(trial: Trial) -> dict[str, str]:
    """One demo user per role in ``trial``, created if absent. Returns the new users'
    passwords (empty when they already existed: passwords are shown once, at first setup)."""
    User = get_user_model()
    passwords: dict[str, str] = {}
    admin_user = None
    for username, full_name, role, site_code in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            first, last = full_name.split(" ", 1)
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username, password=password, first_name=first, last_name=last)
            if role == RoleGrant.Role.ADMIN:
                user.is_staff = user.is_superuser = True
                user.save()
            passwords[username] = password
        if role == RoleGrant.Role.ADMIN:
            admin_user = user
        site = trial.sites.get(code=site_code) if site_code else None
        if not RoleGrant.objects.filter(user=user, trial=trial, role=role, site=site, revoked_at__isnull=True).exists():
            role_grant(user=user, trial=trial, role=role, site=site, by=admin_user, reason=SYSTEM_REASON)
    return passwords
