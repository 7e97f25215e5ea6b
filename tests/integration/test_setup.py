"""Health check, deployment settings, the demo loader and trial configuration rules."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import TrialFactory
from trial.models import DoseLevel, RoleGrant, Trial

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_database_broker_and_worker(client, db):  # type: ignore[no-untyped-def]
    body = client.get("/healthz").json()
    assert body["database"]["ok"] is True
    assert set(body) == {"status", "database", "broker", "worker"}


def test_deploy_check_passes_with_production_settings():  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-for-the-check-0123456789",
        "ALLOWED_HOSTS": "trialdesk.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_ENV="production", ALLOWED_HOSTS="trialdesk.example.org")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_load_demo_loads_the_seed_trial_once(db, capsys):  # type: ignore[no-untyped-def]
    call_command("load_demo")
    first = capsys.readouterr().out
    call_command("load_demo")
    second = capsys.readouterr().out
    trial = Trial.objects.get(code="INO-POST-HCT")
    assert [(d.level, d.dose_mg_m2) for d in trial.dose_levels.order_by("level")] == [
        (1, Decimal("0.300")), (2, Decimal("0.400")), (3, Decimal("0.500")), (4, Decimal("0.600")),
    ]  # fmt: skip
    assert sorted(trial.sites.values_list("code", flat=True)) == ["CCF", "MSK", "UHC"]
    assert [(p.version, p.max_cycles) for p in trial.protocol_versions.all()] == [("1", 4), ("2", 12)]
    assert set(RoleGrant.objects.values_list("role", flat=True)) == {
        "coordinator",
        "investigator",
        "sponsor",
        "admin",
        "data_manager",
        "monitor",
    }
    assert "passwords shown once" in first and first.count("  coordinator ") == 1
    # The seed trial's bundle (exchange/data): 18 treated patients and the screen failure.
    assert "imported: 3 sites, 4 dose levels, 19 patients (18 treated)" in first and "already loaded" in second
    assert trial.patients.count() == 19
    assert "already exist" in second and "coordinator " not in second.split("\n", 1)[1].split("Reset")[0]


def _admin_post(client, trial, levels, reason=""):  # type: ignore[no-untyped-def]
    data = {
        "code": trial.code, "title": trial.title, "design": "3+3", "escalation_variant": "storer_a", "expansion_cohort_size": 2,
        "cycle_length_days": 28, "dlt_window_cycles": 2, "bsa_method": "mosteller", "age_min": 16, "age_max": 75,
        "enrol_day_min": 40, "enrol_day_max": 100, "min_platelets": 50, "min_anc": "1.0", "screening_lab_days": 14,
        "max_delay_days": 7, "reduction_percent": 50, "dlt_min_grade": 3, "dlt_cytopenia_days": 28,
        "sae_report_hours": 24, "survival_origin": "hct", "landmark_days": "365.25", "reason_for_change": reason,
        "sites-TOTAL_FORMS": 0, "sites-INITIAL_FORMS": 0,
        "protocol_versions-TOTAL_FORMS": 0, "protocol_versions-INITIAL_FORMS": 0,
        "dose_levels-TOTAL_FORMS": len(levels), "dose_levels-INITIAL_FORMS": 0,
    }  # fmt: skip
    for i, (level, dose) in enumerate(levels):
        data[f"dose_levels-{i}-level"] = level
        data[f"dose_levels-{i}-dose_mg_m2"] = dose
    return client.post(f"/admin/trial/trial/{trial.pk}/change/", data)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([(1, "0.3"), (2, "0.3")], "must be a higher dose than level 1"),
        ([(1, "0.4"), (2, "0.3")], "must be a higher dose than level 1"),
        ([(1, "0.3"), (3, "0.5")], "numbered 1 to 2 without gaps"),
        ([(2, "0.3")], "numbered 1 to 1 without gaps"),
    ],
)
def test_admin_refuses_dose_levels_that_do_not_increase(admin_client, db, levels, message):  # type: ignore[no-untyped-def]
    trial = TrialFactory()
    response = _admin_post(admin_client, trial, levels, reason="add levels")
    assert response.status_code == 200 and message in response.content.decode()
    assert not DoseLevel.objects.exists()


def test_admin_edit_needs_a_reason_and_is_audited(admin_client, admin_user, db):  # type: ignore[no-untyped-def]
    trial = TrialFactory()
    response = _admin_post(admin_client, trial, [(1, "0.3"), (2, "0.4")])
    assert "reason for change is required" in response.content.decode()
    assert not DoseLevel.objects.exists()
    assert _admin_post(admin_client, trial, [(1, "0.3"), (2, "0.4")], reason="levels per protocol").status_code == 302
    assert DoseLevel.objects.filter(trial=trial).count() == 2
    trial.refresh_from_db()
    assert trial.history.first().history_user == admin_user
