"""The investigator's home says what waits for him or her, with counts (issue 19 item 9):
DLT candidates awaiting adjudication (and signed decisions to re-adjudicate), escalation
decisions awaiting signature, serious AEs not yet reported inside or past their clock.
One selector, a fixed number of queries whatever the trial's size."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis.services import computation_run
from dashboard.selectors import investigator_waiting
from safety import services
from tests.integration.test_escalation_service import _treated
from tests.integration.test_safety_services import ae_data, make_patient
from trial.models import TrialComputation
from trial.services import computation_request


def _recompute(trial) -> None:  # type: ignore[no-untyped-def]
    for kind in (TrialComputation.Kind.ESCALATION, TrialComputation.Kind.DASHBOARD):
        computation_request(trial.pk, kind)
        computation_run(trial.pk, kind)


def _waiting_work(world, n: int):  # type: ignore[no-untyped-def]
    """n patients with a grade 3 related AE (a candidate) that is also an unreported SAE."""
    patients = []
    for _ in range(n):
        patient = make_patient(world)
        services.ae_record(
            user=world["coordinator_a"],
            patient=patient,
            data=ae_data(grade=3, serious=True, sae_hospitalisation=True),
        )
        patients.append(patient)
    return patients


def test_the_home_page_lists_what_waits_with_counts(world, login):  # type: ignore[no-untyped-def]
    _waiting_work(world, 2)
    level = world["trial"].dose_levels.get(level=1)
    # Three more at level 1 with their window over and no DLT.
    for i in range(3):
        _treated(world, level, i, start=datetime.date(2023, 1, 1))
    _recompute(world["trial"])
    page = login(world["investigator"]).get(reverse("home")).content.decode()
    assert "Waiting for you" in page
    dlt = page.split(f'id="waiting-dlt-{world["trial"].pk}"')[1].split("</li>\n")[0]
    assert "DLT candidates awaiting adjudication: <strong>2</strong>" in dlt
    assert "Serious AEs not yet reported to the sponsor: <strong>2</strong>" in page
    assert "report due" in page
    esc = page.split(f'id="waiting-esc-{world["trial"].pk}"')[1].split("</li>")[0]
    # Level 1's first cohort: 5 patients, 2 pending with a candidate each -> wait, no decision yet.
    assert "Escalation decisions awaiting your signature: <strong>" in esc
    # A coordinator's home has no such section.
    assert "Waiting for you" not in login(world["coordinator_a"]).get(reverse("home")).content.decode()


def test_an_escalation_awaiting_signature_is_counted(world, login):  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from tests.factories import DoseLevelFactory

    level = DoseLevelFactory(trial=world["trial"], level=1, dose_mg_m2=Decimal("0.3"))
    DoseLevelFactory(trial=world["trial"], level=2, dose_mg_m2=Decimal("0.4"))
    for i in range(3):
        _treated(world, level, i, start=datetime.date(2023, 1, 1))
    _recompute(world["trial"])
    waiting = investigator_waiting(world["investigator"], world["trial"], timezone.now())
    assert waiting["awaiting_signoff"] == {"decision": "escalate", "dose_level": 2}
    page = login(world["investigator"]).get(reverse("home")).content.decode()
    assert "Escalation decisions awaiting your signature: <strong>1</strong></a> (escalate, level 2)" in page


def test_overdue_saes_are_flagged(world):  # type: ignore[no-untyped-def]
    _waiting_work(world, 1)
    _recompute(world["trial"])
    later = timezone.now() + datetime.timedelta(hours=world["trial"].sae_report_hours + 1)
    waiting = investigator_waiting(world["investigator"], world["trial"], later)
    assert waiting["sae_count"] == 1 and waiting["sae_overdue"] == 1
    assert waiting["saes"][0].sae.status == "overdue"


@pytest.mark.parametrize("n", [2, 12])
def test_the_waiting_list_costs_three_queries_whatever_the_size(world, django_assert_num_queries, n):  # type: ignore[no-untyped-def]
    _waiting_work(world, n)
    _recompute(world["trial"])
    from trial import access

    access.active_grants(world["investigator"])  # read once per request (the home page has them)
    with django_assert_num_queries(3):
        waiting = investigator_waiting(world["investigator"], world["trial"], timezone.now())
    assert waiting["awaiting_count"] == n and waiting["sae_count"] == n
    assert len(waiting["saes"]) == min(n, 10)
