"""The demo: the seed trial replayed from its bundle (exchange/data, written by
exchange/seed.py) plus one demo user per role (trial.demo.demo_users)."""

import json
from pathlib import Path
from typing import Any

from django.db import transaction

from exchange.bundle import bundle_import
from trial.demo import SEED_TRIAL, demo_users
from trial.models import Trial

SEED_BUNDLE = Path(__file__).resolve().parent / "data" / "ino_post_hct_seed.json"


def seed_bundle() -> dict[str, Any]:
    with SEED_BUNDLE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def load_demo() -> tuple[Trial, bool, dict[str, str]]:
    """Import the seed trial if it is not there yet, then the demo users.

    Returns the trial, whether it was imported now, and the new users' passwords (empty
    when they already existed: passwords are shown once, at first setup). Idempotent.
    """
    with transaction.atomic():
        trial = Trial.objects.filter(code=SEED_TRIAL["code"]).first()
        imported = trial is None
        if trial is None:
            trial = bundle_import(seed_bundle())
        passwords = demo_users(trial)
    return trial, imported, passwords
