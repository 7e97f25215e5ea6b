"""Backfill live (issue 17): the escalation resource's ``backfill_slots`` and per-level
backfill counts, backfill DLTs that de-escalate or eliminate (BOIN and 3+3), enrolment
into a backfill place (no deviation, the patient marked and audited), the settings in the
bundle (round trip exact, bad keys refused by name), the design-change rule, the page."""

import copy
import datetime
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction

from analysis import services as analysis_services
from core.tokens import token_issue
from exchange.bundle import BundleInvalid, bundle_export, bundle_import
from exchange.generate import _patient
from patients import services as patient_services
from patients.models import Patient
from tests.factories import (
    PASSWORD,
    CycleFactory,
    DltAdjudicationFactory,
    DoseLevelFactory,
    PatientFactory,
    ProtocolVersionFactory,
    SiteFactory,
    TrialFactory,
    grant,
)
from tests.integration.test_design_engine import design_bundle, escalation, investigator_of
from trial import selectors as trial_selectors
from trial import services
from trial.models import EscalationSignoff, RoleGrant, Trial

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
BACKFILL = {"backfill_enabled": True, "backfill_max_per_level": 3, "backfill_levels": 0}


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("staffer", password=PASSWORD, is_staff=True)


def lean(p: dict) -> dict:  # type: ignore[type-arg]
    """A generated patient with what the escalation reads (enrolment, the two DLT-window
    cycles, the DLT's AE and adjudication) and nothing else: a cheaper import."""
    for key in ("labs", "assessments", "gvhd_episodes", "concomitant_medications", "events"):
        p.pop(key, None)
    if "cycles" in p:
        p["cycles"] = p["cycles"][:2]
    p["adverse_events"] = p.get("adverse_events", [])[:1] if p.get("dlt_adjudications") else []
    return p


def backfill_bundle(design: str, cohorts: list[tuple[int, int]], signed: list[tuple[str, int]],
                    backfill: list[tuple[int, ...]], *, code: str, not_enrolled: int = 0,
                    deviation_checked: tuple[int, ...] = (), **params) -> dict:  # type: ignore[no-untyped-def]  # fmt: skip
    """``design_bundle``'s cohorts and sign-offs, then ``backfill``: (level, DLTs[, n]) groups of
    n (default 3) backfill patients enrolled after the last cohort's DLT window; ``not_enrolled``
    more patients consented and screened but not enrolled."""
    bundle = design_bundle(design, cohorts, signed=signed, code=code, **{**BACKFILL, **params})
    rng = random.Random(11)
    t = datetime.date(2017, 8, 1) + 81 * len(cohorts) * DAY
    number = 500
    for level, dlts, *size in backfill:
        for j in range(size[0] if size else 3):
            number += 1
            p = _patient(rng, number, "UHC", level, t + j * DAY, dlt=j < dlts, today=datetime.date(2026, 1, 1))
            p["enrolled_as_backfill"] = True
            if level not in deviation_checked:
                # Enrolled into an open backfill place before any of the group's DLTs was known.
                p["enrolment_deviation"] = ""
            bundle["patients"].append(p)
        t += 4 * DAY
    for _ in range(not_enrolled):
        number += 1
        p = _patient(rng, number, "UHC", 1, t, dlt=False, today=datetime.date(2026, 1, 1))
        for key in ("enrolled", "dose_level", "labs", "cycles", "adverse_events", "gvhd_episodes",
                    "dlt_adjudications", "assessments", "events", "concomitant_medications"):  # fmt: skip
            p.pop(key, None)
        bundle["patients"].append(p)
    bundle["patients"] = [lean(p) for p in bundle["patients"]]
    return bundle


def slots(state: dict) -> list[int]:  # type: ignore[type-arg]
    return [row["slots"] for row in state["backfill_slots"]]


def treated(trial: Trial, level: int, dlts: int, n: int = 3, *, start: datetime.date = datetime.date(2019, 1, 7),
            backfill: bool = True) -> None:  # fmt: skip
    """``n`` patients at ``level`` (backfill ones by default) whose DLT window is complete,
    ``dlts`` of them with a DLT (signed adjudication), all enrolled on ``start``."""
    dose_level = trial.dose_levels.get(level=level)
    for j in range(n):
        patient = PatientFactory(site=trial.sites.first(), trial=trial, dose_level=dose_level, enrolled_on=start,
                                 enrolled_as_backfill=backfill)  # fmt: skip
        for number, offset in ((1, 0), (2, 28)):
            CycleFactory(patient=patient, number=number, dose_level=dose_level, due_date=start,
                         day1=start + datetime.timedelta(days=offset))  # fmt: skip
        if j < dlts:
            DltAdjudicationFactory(patient=patient, is_dlt=True, event_date=start + datetime.timedelta(days=10),
                                   signed_by_name="Dr Test")  # fmt: skip


def made_trial(design: str, cohorts: list[tuple[int, int]], signed: list[tuple[str, int]], **params) -> Trial:  # type: ignore[no-untyped-def]
    """A trial built directly (cheaper than a bundle import): four levels, one site, the
    cohorts of 3 (level, DLTs) 81 days apart, the sign-offs as historic ones."""
    trial = TrialFactory(design=design, **{**BACKFILL, **params})
    for n, dose in ((1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6")):
        DoseLevelFactory(trial=trial, level=n, dose_mg_m2=Decimal(dose))
    SiteFactory(trial=trial, code="UHC")
    for k, (level, dlts) in enumerate(cohorts):
        treated(trial, level, dlts, start=datetime.date(2018, 1, 1) + 81 * k * DAY, backfill=False)
    for k, (decision, level) in enumerate(signed):
        at = datetime.datetime(2018, 3, 20, tzinfo=datetime.UTC) + 81 * k * DAY
        EscalationSignoff.objects.create(trial=trial, decision=decision, dose_level=level, signed_by_name="Dr Test",
                                         signed_at=at, imported=True, rationale="meeting")  # fmt: skip
    return trial


def state_now(client, user, trial: Trial) -> dict:  # type: ignore[no-untyped-def, type-arg]
    services.computation_request(trial.pk, "escalation")
    analysis_services.computation_run(trial.pk, "escalation")
    return escalation(client, user, trial)  # type: ignore[no-any-return]


@contextmanager
def undone() -> Iterator[None]:
    """Run the block in a savepoint and roll it back: the next scenario starts from the same trial."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# BOIN, target 0.2: 0/3 at levels 1, 2 and 3 (escalations to 2 and 3 signed; the one to 4
# awaits its signature), so the dose finding stands at level 3 and levels 1 and 2 are cleared.
# At n=6, 3 DLTs eliminate a level (P(p > 0.2 | Beta(4, 4)) = 0.967 > 0.95).
BOIN_COHORTS = [(1, 0), (2, 0), (3, 0)]
BOIN_SIGNED = [("escalate", 2), ("escalate", 3)]


def test_boin_backfill_slots_then_backfill_dlts_eliminate_and_de_escalate(client, staff) -> None:  # type: ignore[no-untyped-def]
    trial = made_trial("boin", BOIN_COHORTS, BOIN_SIGNED, target_dlt_rate=0.2)
    user = investigator_of(trial, staff)
    state = state_now(client, user, trial)
    assert (state["decision"], state["awaiting_signoff"]) == ("escalate", {"decision": "escalate", "dose_level": 4})
    assert slots(state) == [3, 3, 0, 0]
    assert state["backfill_slots"][0]["reason"].startswith("Level 1 is cleared (below the current level 3)")
    assert [c["backfill"] for c in state["cohorts"]] == [0, 0, 0]
    assert trial_selectors.escalation_backfill_slots(trial) == {1: 3, 2: 3}

    with undone():
        # Three backfill patients at level 2, all with a DLT: 3 of 6 eliminate levels 2-4
        # and the dose finding goes down to level 1 (below the eliminated level 2).
        treated(trial, 2, dlts=3)
        state = state_now(client, user, trial)
        assert (state["decision"], state["recommended_dose_level"]) == ("de_escalate", 1)
        assert state["eliminated_dose_levels"] == [2, 3, 4]
        assert [(c["dose_level"], c["dlts"], c["backfill"]) for c in state["cohorts"]] == [
            (1, 0, 0), (2, 3, 3), (3, 0, 0)
        ]  # fmt: skip
        assert slots(state) == [0, 0, 0, 0]  # level 1 is where the dose finding now goes
        assert sum(p["backfill"] for p in state["patients"]) == 3

    with undone():
        # At level 1 the same: level 1 eliminated, stop, no MTD.
        treated(trial, 1, dlts=3)
        state = state_now(client, user, trial)
        assert (state["decision"], state["eliminated_dose_levels"]) == ("stop_no_mtd", [1, 2, 3, 4])
        assert slots(state) == [0, 0, 0, 0]

    with undone():
        # One DLT among 4 at level 1 is in BOIN's de-escalation zone (>= 1 of 4 at target 0.2):
        # level 1 closes to backfill, the dose finding stays where it is.
        treated(trial, 1, dlts=1, n=1)
        state = state_now(client, user, trial)
        assert (state["decision"], slots(state)) == ("escalate", [0, 3, 0, 0])
        assert "de-escalation zone" in state["backfill_slots"][0]["reason"]
        # The ladder on the escalation page (one check of the HTML).
        client.force_login(user)
        html = client.get(f"/trials/{trial.pk}/escalation/").content.decode()
        assert 'id="backfill"' in html and "Backfill patients</th>" in html
        assert "Level 2 is cleared (below the current level 3): 3 of 3 backfill places open (0 taken)." in html
        assert html.count('<span class="badge">backfill</span>') == 1

    # Backfill off: the same trial opens no backfill place.
    Trial.objects.filter(pk=trial.pk).update(backfill_enabled=False)
    state = state_now(client, user, trial)
    assert slots(state) == [0, 0, 0, 0] and "off" in state["backfill_slots"][0]["reason"]


def test_three_plus_three_backfill_dlts_count_for_their_level(client, staff) -> None:  # type: ignore[no-untyped-def]
    """3+3 (Storer A): 0/3 at levels 1 and 2, escalations to 2 and 3 signed: level 3 is open,
    levels 1 and 2 take backfill. A backfill patient is a patient of the level: >= 2 DLTs
    among all its patients make it too toxic (PROTOCOL s6): at level 2 the trial comes back
    to level 1 (declared the MTD), at level 1 it stops without an MTD."""
    trial = made_trial("3+3", [(1, 0), (2, 0)], [("escalate", 2), ("escalate", 3)])
    user = investigator_of(trial, staff)
    state = state_now(client, user, trial)
    assert (state["decision"], state["current_dose_level"]) == ("escalate", 3)
    assert slots(state) == [3, 3, 0, 0]

    with undone():
        treated(trial, 2, dlts=1)
        state = state_now(client, user, trial)
        # 1 DLT in 6 at level 2: still cleared, the trial still stands at level 3; level 2 full
        assert (state["decision"], state["current_dose_level"]) == ("escalate", 3)
        assert slots(state) == [3, 0, 0, 0]

    with undone():
        treated(trial, 2, dlts=2)
        state = state_now(client, user, trial)
        # Level 2 too toxic: Storer A declares level 1 (0 of 3) the MTD, to be signed.
        assert (state["decision"], state["recommended_dose_level"]) == ("mtd_declared", 1)
        assert any("Level 2" in r and "2 DLTs" in r for r in state["reasons"]), state["reasons"]
        assert [(c["dose_level"], c["dlts"], c["backfill"]) for c in state["cohorts"]][:2] == [(1, 0, 0), (2, 2, 3)]
        assert slots(state) == [0, 0, 0, 0]

    treated(trial, 1, dlts=2)
    state = state_now(client, user, trial)
    assert state["decision"] == "stop_no_mtd"
    assert slots(state) == [0, 0, 0, 0]


def test_enrolment_into_a_backfill_place(client, world, staff) -> None:  # type: ignore[no-untyped-def]
    bundle = backfill_bundle("boin", BOIN_COHORTS, BOIN_SIGNED, [], code="BF-ENROL", target_dlt_rate=0.2,
                             not_enrolled=3)  # fmt: skip
    trial = bundle_import(bundle)
    waiting = list(Patient.objects.filter(trial=trial, enrolled_on__isnull=True).order_by("subject_id"))
    on = datetime.date.fromisoformat(bundle["patients"][-1]["screenings"][0]["date"]) + DAY
    coordinator = world["coordinator_a"]
    grant(coordinator, trial, RoleGrant.Role.COORDINATOR, waiting[0].site)

    # No dose-finding slot (the escalation to 4 awaits its signature): the refusal names
    # the backfill places.
    with pytest.raises(ValidationError) as refused:
        patient_services.patient_enrol(user=coordinator, patient=waiting[0], on=on)
    assert "Backfill places are open at L1 (3), L2 (3)" in refused.value.message_dict["dose_level"][0]

    # The enrol page says which backfill places are open and offers the choice.
    client.force_login(coordinator)
    page = client.get(f"/patients/{waiting[0].pk}/enrol/").content.decode()
    assert 'id="backfill-places"' in page and 'name="backfill"' in page
    assert "level 2 (0.4 mg/m²): 3; level 1 (0.3 mg/m²): 3" in page

    # A coordinator takes a backfill place: the highest level with one, no deviation.
    first = patient_services.patient_enrol(user=coordinator, patient=waiting[0], on=on, backfill=True)
    assert (first.dose_level.level, first.enrolled_as_backfill, first.enrolment_deviation) == (2, True, "")
    assert first.history.first().history_change_reason == "enrolment at L2 (backfill)"
    analysis_services.computation_run(trial.pk, "escalation")
    assert trial_selectors.escalation_backfill_slots(trial) == {1: 3, 2: 2}
    assert 'id="backfill-badge"' in client.get(f"/patients/{first.pk}/").content.decode()

    # A chosen level without a backfill place is refused by name; level 1 has one.
    level_3 = trial.dose_levels.get(level=3)
    with pytest.raises(ValidationError) as refused:
        patient_services.patient_enrol(user=coordinator, patient=waiting[1], on=on, backfill=True, dose_level=level_3)
    assert refused.value.message_dict["dose_level"] == [
        "L3 has no open backfill place (open backfill places: L1 (3), L2 (2))."
    ]
    waiting[1].refresh_from_db()
    assert waiting[1].enrolled_on is None  # nothing half-written
    second = patient_services.patient_enrol(
        user=coordinator, patient=waiting[1], on=on, backfill=True, dose_level=trial.dose_levels.get(level=1)
    )
    assert (second.dose_level.level, second.enrolled_as_backfill) == (1, True)

    # The API: {"backfill": true}; a deviation reason with it is refused by name.
    analysis_services.computation_run(trial.pk, "escalation")  # the worker's part after an enrolment
    _, key = token_issue(user=coordinator, name="t")
    url, auth = f"/api/v1/patients/{waiting[2].pk}/enrol/", {"HTTP_AUTHORIZATION": f"Token {key}"}
    body = {"enrolled_on": on.isoformat(), "backfill": True, "version": waiting[2].version}
    refused_api = client.post(url, {**body, "deviation_reason": "x"}, content_type="application/json", **auth)
    assert refused_api.status_code == 400 and "deviation_reason" in refused_api.json()["errors"]
    answer = client.post(url, body, content_type="application/json", **auth)
    assert answer.status_code == 200, answer.content
    assert (answer.json()["enrolled_as_backfill"], answer.json()["enrolment_deviation"]) == (True, "")


def test_backfill_settings_and_patients_round_trip_exactly() -> None:
    """Also: a backfill patient at level 3, where the dose finding stands (0/3 at levels 1
    and 2, escalations to 2 and 3 signed), had no backfill place: the importer records the
    deviation, naming the places that were open."""
    bundle = backfill_bundle("boin", [(1, 0), (2, 0)], [("escalate", 2), ("escalate", 3)], [(1, 1, 1), (3, 0, 1)],
                             code="BF-RT", target_dlt_rate=0.2, backfill_max_per_level=2, backfill_levels=2,
                             deviation_checked=(3,))  # fmt: skip
    first = json.loads(json.dumps(bundle_export(bundle_import(copy.deepcopy(bundle)))))
    assert {k: first["trial"][k] for k in BACKFILL} == {
        "backfill_enabled": True,
        "backfill_max_per_level": 2,
        "backfill_levels": 2,
    }
    assert [p["enrolled_as_backfill"] for p in first["patients"]] == [False] * 6 + [True] * 2
    deviations = [p["enrolment_deviation"] for p in first["patients"]]
    assert deviations[:7] == [""] * 7
    assert deviations[7].startswith("Enrolled as backfill at L3; open backfill places on")
    assert "L2 (2)" in deviations[7]
    again = copy.deepcopy(first)
    again["trial"]["code"] = "BF-RT-2"
    second = json.loads(json.dumps(bundle_export(bundle_import(again))))
    second["trial"]["code"] = first["trial"]["code"]
    assert second == first


def table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"backfill_max_per_level": 0}, "trial.backfill_max_per_level: With backfill on, at least 1"),
        ({"backfill_max_per_level": 500}, "trial.backfill_max_per_level: Backfill patients per level must be"),
        ({"backfill_levels": -2}, "trial.backfill_levels: Backfill levels must be a whole number from 0"),
        ({"backfill_enabled": "yes"}, "trial.backfill_enabled:"),
        ({"backfill_levels": 1.5}, "trial.backfill_levels:"),
    ],
)
def test_bad_backfill_settings_are_refused_by_key_and_nothing_is_written(change, problem) -> None:  # type: ignore[no-untyped-def]
    bundle = backfill_bundle("boin", [(1, 0)], [], [], code="BF-BAD")
    bundle["trial"].update(change)
    before = table_counts()
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems
    assert table_counts() == before


def test_a_backfill_change_after_the_first_enrolment_needs_a_protocol_version_and_a_reason(client, staff) -> None:  # type: ignore[no-untyped-def]
    trial = made_trial("boin", [(1, 0)], [], backfill_enabled=False)
    ProtocolVersionFactory(trial=trial, version="2")
    with pytest.raises(ValidationError) as refused:
        services.trial_design_change(trial, user=staff, values={"backfill_enabled": True}, protocol_version=None,
                                     reason="")  # fmt: skip
    assert set(refused.value.message_dict) == {"protocol_version", "reason"}
    assert "backfill_enabled" in refused.value.message_dict["reason"][0]
    with pytest.raises(ValidationError) as refused:
        services.trial_design_change(trial, user=staff, values={"backfill_enabled": True, "backfill_max_per_level": 0},
                                     protocol_version="2", reason="amendment")  # fmt: skip
    assert list(refused.value.message_dict) == ["backfill_max_per_level"]
    services.trial_design_change(
        trial, user=staff, values={"backfill_enabled": True, "backfill_levels": 2}, protocol_version="2",
        reason="amendment: backfill",
    )  # fmt: skip
    trial.refresh_from_db()
    assert (trial.backfill_enabled, trial.backfill_levels) == (True, 2)
    assert trial.history.first().history_change_reason == "design change under protocol version 2: amendment: backfill"

    # The trial API reads the settings.
    investigator_of(trial, staff)
    _, key = token_issue(user=staff, name="t")
    data = client.get(f"/api/v1/trials/{trial.pk}/", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert {k: data[k] for k in BACKFILL} == {**BACKFILL, "backfill_levels": 2}


def test_the_admin_sets_and_unticks_backfill_under_the_design_change_rule(staff) -> None:  # type: ignore[no-untyped-def]
    from django.forms.models import model_to_dict, modelform_factory

    from trial.admin import TrialAdminForm as Base

    form_class = modelform_factory(Trial, form=Base, fields="__all__")  # as the admin builds it
    trial = made_trial("boin", [(1, 0)], [], backfill_enabled=False)
    ProtocolVersionFactory(trial=trial, version="2")
    data = {k: v for k, v in model_to_dict(trial).items() if v is not None and k != "backfill_enabled"}
    data |= {"crm_skeleton": "[]", "reason_for_change": "amendment 2"}
    ticked = form_class({**data, "backfill_enabled": "on", "backfill_levels": 1}, instance=trial)
    assert not ticked.is_valid()
    assert "needs the protocol version" in ticked.errors["design_protocol_version"][0]
    assert "backfill_enabled" in ticked.errors["design_protocol_version"][0]
    ticked = form_class({**data, "backfill_enabled": "on", "design_protocol_version": "2"}, instance=trial)
    assert ticked.is_valid(), ticked.errors
    assert ticked.cleaned_data["backfill_enabled"] is True and ticked.design_changed_after_enrolment
    Trial.objects.filter(pk=trial.pk).update(backfill_enabled=True)
    saved = Trial.objects.get(pk=trial.pk)
    # An unticked checkbox is absent from the POST: that is "off", not "left out".
    unticked = form_class({**data, "design_protocol_version": "2"}, instance=saved)
    assert unticked.is_valid(), unticked.errors
    assert unticked.cleaned_data["backfill_enabled"] is False and unticked.design_changed_after_enrolment
    bad = form_class({**data, "backfill_enabled": "on", "backfill_max_per_level": 0, "design_protocol_version": "2"},
                     instance=trial)  # fmt: skip
    assert not bad.is_valid() and "at least 1" in bad.errors["backfill_max_per_level"][0]
