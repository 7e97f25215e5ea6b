"""The dose-finding designs beyond 3+3 run live (issue 17 slice 2): trial settings in the
bundle and the API, the escalation resource of a BOIN / i3+3 trial equal to a direct call
of the pure design on the same counts, signing, design changes, dose-transition pathways."""

import copy
import datetime
import json
import random
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from analysis import services as analysis_services
from analysis.designs.boin import Boin
from analysis.designs.common import LevelOutcome
from analysis.designs.i3plus3 import I3Plus3
from analysis.designs.interval import IntervalSettings
from core.tokens import token_issue
from exchange.bundle import BundleInvalid, bundle_export, bundle_import
from exchange.generate import INVESTIGATOR, LEVELS, SITES, _patient, generate_trial
from tests.factories import PASSWORD, CycleFactory, DoseLevelFactory, PatientFactory, ProtocolVersionFactory
from trial import selectors as trial_selectors
from trial import services
from trial.models import Trial, TrialComputation

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
DOSES = tuple(dose for _, dose in LEVELS)


def design_bundle(design: str, cohorts: list[tuple[int, int]], *, signed: list[tuple[str, int]] | None = None,
                  code: str = "DES-1", **params) -> dict:  # type: ignore[no-untyped-def]  # fmt: skip
    """A trial-bundle/1 dict: cohorts of 3 patients (level, DLTs among them), each cohort's
    DLT window closed before the next; ``signed``: the decision signed after each cohort."""
    bundle = generate_trial(0, seed=3, code=code)
    bundle["trial"].update({"design": design, "title": f"{design} trial", **params})
    bundle["patients"], bundle["escalation_signoffs"] = [], []
    rng, numbers, t = random.Random(5), {c: 0 for c, _ in SITES}, datetime.date(2017, 8, 1)
    for k, (level, dlts) in enumerate(cohorts):
        for j in range(3):
            site = SITES[len(bundle["patients"]) % len(SITES)][0]
            numbers[site] += 1
            bundle["patients"].append(
                _patient(
                    rng, numbers[site], site, level, t + 3 * j * DAY, dlt=j < dlts, today=datetime.date(2026, 1, 1)
                )
            )
        t += 76 * DAY
        if signed and k < len(signed):
            decision, level_signed = signed[k]
            bundle["escalation_signoffs"].append(
                {"dose_level": level_signed, "decision": decision, "by": INVESTIGATOR, "at": t.isoformat(),
                 "rationale": "Dose-escalation meeting."}
            )  # fmt: skip
        t += 5 * DAY
    return bundle


def counts(cohorts: list[tuple[int, int]]) -> tuple[list[LevelOutcome], int | None]:
    n, y = [0] * len(LEVELS), [0] * len(LEVELS)
    for level, dlts in cohorts:
        n[level - 1] += 3
        y[level - 1] += dlts
    return [LevelOutcome(a, b) for a, b in zip(n, y, strict=True)], (cohorts[-1][0] if cohorts else None)


def pure_design(design: str, target: float, max_n: int):  # type: ignore[no-untyped-def]
    settings = IntervalSettings(target, 3, max_n)
    return Boin(DOSES, settings) if design == "boin" else I3Plus3(DOSES, settings)


def escalation(client, user, trial: Trial) -> dict:  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="t")
    response = client.get(f"/api/v1/trials/{trial.pk}/escalation/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("staffer", password=PASSWORD, is_staff=True)


def investigator_of(trial: Trial, staff):  # type: ignore[no-untyped-def]
    services.role_grant(user=staff, trial=trial, role="investigator", by=staff, reason="test")
    return staff


def test_boin_hand_worked(client, staff) -> None:  # type: ignore[no-untyped-def]
    """BOIN, target 0.3 (lambda_e 0.236, lambda_d 0.359): 0/3 at level 1 escalates; 3/3 at
    level 2 has P(p > 0.3 | Beta(4, 1)) = 1 - 0.3^4 = 0.992 > 0.95, so levels 2-4 are
    eliminated and the trial de-escalates to 1; 0/3 more there would escalate, but level 2
    is eliminated: stay."""
    first = bundle_import(design_bundle("boin", [(1, 0)], code="BOIN-A", target_dlt_rate=0.3))
    state = escalation(client, investigator_of(first, staff), first)
    assert (state["design"], state["decision"], state["recommended_dose_level"]) == ("boin", "escalate", 2)
    assert state["eliminated_dose_levels"] == [] and state["awaiting_signoff"] == {
        "decision": "escalate",
        "dose_level": 2,
    }
    assert state["open_slots"] == []  # not signed yet

    second = bundle_import(design_bundle("boin", [(1, 0), (2, 3)], code="BOIN-B", signed=[("escalate", 2)]))
    state = escalation(client, investigator_of(second, staff), second)
    assert (state["decision"], state["recommended_dose_level"]) == ("de_escalate", 1)
    assert state["eliminated_dose_levels"] == [2, 3, 4]
    assert [c["dlts"] for c in state["cohorts"]] == [0, 3]

    third = bundle_import(
        design_bundle("boin", [(1, 0), (2, 3), (1, 0)], code="BOIN-C", signed=[("escalate", 2), ("de_escalate", 1)])
    )
    state = escalation(client, investigator_of(third, staff), third)
    assert (state["decision"], state["recommended_dose_level"], state["eliminated_dose_levels"]) == (
        "stay",
        1,
        [2, 3, 4],
    )
    assert any("Level 2 is eliminated: stay at level 1" in r for r in state["reasons"])
    assert state["estimates"][0] == {"dose_level": 1, "dlt_rate": pytest.approx(0.05 / 6.1, abs=1e-6)}


CASES = [
    ("boin", 0.3, 30, [(1, 0), (2, 1)]),
    ("boin", 0.3, 30, [(1, 0), (2, 0), (3, 2)]),
    ("boin", 0.25, 12, [(1, 0), (2, 1), (2, 0), (3, 2)]),  # the maximum sample size: the final MTD
    ("boin", 0.3, 30, [(1, 3)]),  # level 1 eliminated: stop, no MTD
    ("i3+3", 0.3, 30, [(1, 0), (2, 1)]),
    ("i3+3", 0.3, 30, [(1, 0), (2, 2)]),
    ("i3+3", 0.2, 9, [(1, 0), (2, 0), (3, 1)]),  # the maximum sample size: the final MTD
]


@pytest.mark.parametrize(("design", "target", "max_n", "cohorts"), CASES)
def test_the_escalation_api_equals_the_pure_design(client, staff, design, target, max_n, cohorts) -> None:  # type: ignore[no-untyped-def]
    pure = pure_design(design, target, max_n)
    # Every decision before the last signed, as an investigator would have.
    signed = []
    for k in range(1, len(cohorts)):
        r = pure.decide(*counts(cohorts[:k]))
        signed.append((str(r.decision), r.recommended_dose_level))
    bundle = design_bundle(design, cohorts, signed=signed, target_dlt_rate=target, max_sample_size=max_n)
    trial = bundle_import(bundle)
    state = escalation(client, investigator_of(trial, staff), trial)
    expected = pure.decide(*counts(cohorts))

    assert state["decision"] == str(expected.decision)
    assert state["recommended_dose_level"] == expected.recommended_dose_level
    assert state["eliminated_dose_levels"] == list(expected.eliminated_levels)
    assert state["warnings"] == []  # every cohort was opened by a signed decision
    wanted = expected.recommended_dose_level or 1
    assert state["awaiting_signoff"] == {"decision": str(expected.decision), "dose_level": wanted}
    if expected.mtd_dose_level is not None:
        assert state["decision"] == "mtd_declared"
    # Signing the decision puts it into effect: the MTD is declared, or the next cohort opens.
    api = client
    _, key = token_issue(user=staff, name="s")
    response = api.post(
        f"/api/v1/trials/{trial.pk}/escalation/sign/",
        {"decision": str(expected.decision), "dose_level": wanted, "rationale": "SRC", "password": PASSWORD},
        content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    analysis_services.computation_run(trial.pk, TrialComputation.Kind.ESCALATION)
    after = escalation(client, staff, trial)
    assert after["awaiting_signoff"] is None
    assert after["mtd_dose_level"] == expected.mtd_dose_level
    slots = [{"dose_level": lv, "slots": n} for lv, n in expected.open_slots] if not expected.finished else []
    assert after["open_slots"] == slots
    assert trial_selectors.escalation_open_slots(trial) == {row["dose_level"]: row["slots"] for row in slots}


def test_an_incomplete_cohort_keeps_its_places_open_and_unsigned_cohorts_are_warned(client, staff) -> None:  # type: ignore[no-untyped-def]
    bundle = design_bundle("boin", [(1, 0), (2, 0)], code="BOIN-P")
    bundle["patients"].pop()  # the second cohort has 2 of 3
    trial = bundle_import(bundle)
    state = escalation(client, investigator_of(trial, staff), trial)
    assert (state["decision"], state["recommended_dose_level"]) == ("enroll", 2)
    assert state["open_slots"] == []  # its opening (escalate to 2) was never signed
    assert "1 cohort(s) were enrolled without a signed decision" in state["warnings"][0]
    # The enrolments at level 2 were outside any open slot: recorded as deviations.
    assert "per the boin design" in trial.patients.filter(dose_level__level=2).first().enrolment_deviation


def test_design_settings_round_trip_exactly() -> None:
    params = {"target_dlt_rate": 0.25, "cohort_size": 2, "max_sample_size": 24, "crm_skeleton": [0.05, 0.12, 0.25, 0.4],
              "crm_model": "logistic", "crm_prior_sd": 1.1, "boin_p_saf": 0.15, "boin_p_tox": 0.35,
              "boin_n_earlystop": 12}  # fmt: skip
    for design in ("boin", "crm"):
        bundle = design_bundle(design, [], code=f"RT-{design.upper()}", **params)
        trial = bundle_import(copy.deepcopy(bundle))
        first = json.loads(json.dumps(bundle_export(trial)))
        for key, value in {"design": design, **params}.items():
            assert first["trial"][key] == value, key
        again = copy.deepcopy(first)
        again["trial"]["code"] = f"{first['trial']['code']}-2"
        second = json.loads(json.dumps(bundle_export(bundle_import(again))))
        second["trial"]["code"] = first["trial"]["code"]
        assert second == first


def table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"target_dlt_rate": 0.9}, "trial.target_dlt_rate: The target DLT rate must be a number from 0.05 to 0.6"),
        ({"boin_p_saf": 0.29}, "trial.boin_p_saf: BOIN p.saf (0.29) must be below the target (0.3)"),
        ({"design": "crm", "crm_skeleton": [0.1, 0.2]}, "trial.crm_skeleton: The skeleton has 2 probabilities"),
        ({"design": "crm"}, "trial.crm_skeleton: The CRM design needs a skeleton"),
        ({"crm_skeleton": [0.1, "x"]}, "trial.crm_skeleton: expected a list of numbers"),
        ({"cohort_size": 4, "max_sample_size": 3}, "trial.max_sample_size: The maximum sample size must be"),
        ({"design": "mtpi3"}, "trial.design: 'mtpi3' is not one of"),
    ],
)
def test_bad_design_settings_are_refused_by_path_and_nothing_is_written(change, problem) -> None:  # type: ignore[no-untyped-def]
    bundle = design_bundle("boin", [(1, 0), (2, 1)], code="BAD-1")
    bundle["trial"].update(change)
    before = table_counts()
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems
    assert table_counts() == before


@pytest.fixture
def levels(world):  # type: ignore[no-untyped-def]
    return [
        DoseLevelFactory(trial=world["trial"], level=n, dose_mg_m2=Decimal(dose))
        for n, dose in ((1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6"))
    ]


def test_a_design_change_after_the_first_enrolment_needs_a_protocol_version_and_a_reason(world, levels) -> None:  # type: ignore[no-untyped-def]
    trial, admin = world["trial"], world["admin"]
    services.trial_design_change(trial, user=admin, values={"design": "i3+3"}, protocol_version=None, reason="")
    trial.refresh_from_db()
    assert trial.design == "i3+3" and trial.history.first().history_change_reason == "design set before enrolment"
    ProtocolVersionFactory(trial=trial, version="2")
    PatientFactory(site=world["site_a"], trial=trial, dose_level=levels[0], enrolled_on=datetime.date(2024, 1, 1))

    with pytest.raises(ValidationError) as refused:
        services.trial_design_change(trial, user=admin, values={"design": "boin"}, protocol_version=None, reason=" ")
    assert set(refused.value.message_dict) == {"protocol_version", "reason"}
    with pytest.raises(ValidationError) as refused:
        services.trial_design_change(trial, user=admin, values={"target_dlt_rate": 0.7}, protocol_version="2",
                                     reason="amendment")  # fmt: skip
    assert list(refused.value.message_dict) == ["target_dlt_rate"]
    trial.refresh_from_db()
    assert (trial.design, trial.target_dlt_rate) == ("i3+3", 0.3)

    services.trial_design_change(
        trial, user=admin, values={"design": "boin", "target_dlt_rate": 0.25}, protocol_version="2",
        reason="amendment 2: BOIN",
    )  # fmt: skip
    trial.refresh_from_db()
    assert (trial.design, trial.target_dlt_rate) == ("boin", 0.25)
    latest = trial.history.first()
    assert latest.history_change_reason == "design change under protocol version 2: amendment 2: BOIN"
    assert latest.history_user == admin
    # The escalation state follows the new design.
    analysis_services.computation_run(trial.pk, TrialComputation.Kind.ESCALATION)
    assert TrialComputation.objects.get(trial=trial, kind="escalation").data["design"] == "boin"


def _treated(world, level, n, dlt=False):  # type: ignore[no-untyped-def]
    from tests.factories import DltAdjudicationFactory

    start = datetime.date(2024, 1, 1)
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], dose_level=level, enrolled_on=start)
    for number, offset in ((1, 0), (2, 28)):
        CycleFactory(patient=patient, number=number, dose_level=level, due_date=start,
                     day1=start + datetime.timedelta(days=offset + n))  # fmt: skip
    if dlt:
        DltAdjudicationFactory(patient=patient, is_dlt=True)
    return patient


def test_pathways_api(world, levels, client) -> None:  # type: ignore[no-untyped-def]
    trial = world["trial"]
    Trial.objects.filter(pk=trial.pk).update(design="boin", target_dlt_rate=0.3)
    trial.refresh_from_db()
    for i in range(3):
        _treated(world, levels[0], i)
    _, key = token_issue(user=world["investigator"], name="t")
    url = f"/api/v1/trials/{trial.pk}/escalation/pathways/"
    body = client.get(f"{url}?cohorts=2", HTTP_AUTHORIZATION=f"Token {key}").json()
    root = body["root"]
    assert (body["design"], body["cohorts"], body["current_dose_level"]) == ("boin", 2, 1)
    assert (root["decision"], root["recommended_dose_level"]) == ("escalate", 2)
    # The next cohort: 0..3 DLTs at level 2; each then has 4 children (the second cohort).
    assert [c["cohort_dlts"] for c in root["children"]] == [0, 1, 2, 3]
    assert [(c["decision"], c["recommended_dose_level"]) for c in root["children"]] == [
        ("escalate", 3), ("stay", 2), ("de_escalate", 1), ("de_escalate", 1),
    ]  # fmt: skip
    assert root["children"][3]["eliminated_dose_levels"] == [2, 3, 4]
    assert all(len(c["children"]) == 4 for c in root["children"])
    one = client.get(f"{url}?cohorts=1", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert all(c["children"] == [] for c in one["root"]["children"])
    for bad in ("3", "0", "x"):
        refused = client.get(f"{url}?cohorts={bad}", HTTP_AUTHORIZATION=f"Token {key}")
        assert refused.status_code == 400 and "cohorts" in refused.json()["errors"]
    # Scoped like the escalation endpoint: a user of another trial only gets a 404.
    _, other = token_issue(user=world["nobody"], name="t")
    assert client.get(f"{url}?cohorts=1", HTTP_AUTHORIZATION=f"Token {other}").status_code == 404
    # The escalation page shows the tree.
    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(f"/trials/{trial.pk}/escalation/").content.decode()
    assert "Dose-transition pathways" in page and "3 DLTs of 3 at level 2" in page


def test_a_three_plus_three_trial_reports_no_eliminated_level(world, levels, client) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        _treated(world, levels[0], i)
    state = escalation(client, world["investigator"], world["trial"])
    assert state["design"] == "3+3" and state["eliminated_dose_levels"] == [] and state["decision"] == "escalate"


def test_crm_and_mtpi2_trials_run_through_the_same_interface(client, staff) -> None:  # type: ignore[no-untyped-def]
    from analysis.designs.crm import Crm
    from analysis.designs.keyboard import Keyboard

    cohorts = [(1, 0), (2, 1)]
    skeleton = (0.05, 0.12, 0.25, 0.4)
    for design, pure, params in (
        ("crm", Crm(DOSES, skeleton, 0.25), {"crm_skeleton": list(skeleton), "target_dlt_rate": 0.25}),
        ("mtpi2", Keyboard(DOSES, IntervalSettings(0.3)), {"target_dlt_rate": 0.3}),
    ):
        trial = bundle_import(design_bundle(design, cohorts, code=f"LIVE-{design.upper()}", **params))
        state = escalation(client, investigator_of(trial, staff), trial)
        expected = pure.decide(*counts(cohorts))
        assert (state["design"], state["decision"], state["recommended_dose_level"]) == (
            design, str(expected.decision), expected.recommended_dose_level,
        )  # fmt: skip
        estimates = [e["dlt_rate"] for e in state["estimates"]]
        assert estimates == [None if e is None else pytest.approx(e, abs=1e-6) for e in expected.estimates]


def test_the_admin_refuses_a_design_change_after_enrolment_without_a_protocol_version(world, levels) -> None:  # type: ignore[no-untyped-def]
    from django.forms.models import model_to_dict, modelform_factory

    from trial.admin import TrialAdminForm as Base

    TrialAdminForm = modelform_factory(Trial, form=Base, fields="__all__")  # as the admin builds it

    trial = world["trial"]
    ProtocolVersionFactory(trial=trial, version="2")
    PatientFactory(site=world["site_a"], trial=trial, dose_level=levels[0], enrolled_on=datetime.date(2024, 1, 1))
    data = {k: v for k, v in model_to_dict(trial).items() if v is not None}
    data |= {"design": "boin", "crm_skeleton": "[]", "reason_for_change": "amendment 2"}
    form = TrialAdminForm(data, instance=trial)
    assert not form.is_valid()
    assert "needs the protocol version" in form.errors["design_protocol_version"][0]
    form = TrialAdminForm({**data, "design_protocol_version": "2"}, instance=trial)
    assert form.is_valid(), form.errors
    assert form.design_changed_after_enrolment
    bad = TrialAdminForm({**data, "design_protocol_version": "2", "target_dlt_rate": 0.95}, instance=trial)
    assert not bad.is_valid() and "0.05 to 0.6" in bad.errors["target_dlt_rate"][0]
