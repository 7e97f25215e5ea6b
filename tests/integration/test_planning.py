"""Planning simulations (issue 17): the service's rules, who may plan and see, the run in
process (claim, progress, cancel, idempotence), the API and the page. The real worker and
the browser: test_planning_worker.py and tests/browser/test_planning_journey.py."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from analysis import services
from analysis.models import SimulationRun
from analysis.selectors import simulation_runs
from core.tokens import token_issue
from tests.factories import DoseLevelFactory, SimulationRunFactory
from trial.models import Trial

pytestmark = pytest.mark.django_db

PROBS = [0.05, 0.12, 0.25, 0.40]
BOIN = {"design": "boin", "target_dlt_rate": 0.3, "cohort_size": 3, "max_sample_size": 12}


def _data(**changes):  # type: ignore[no-untyped-def]
    data = {
        "true_dlt_probabilities": PROBS,
        "designs": [{"design": "3+3"}, dict(BOIN)],
        "n_trials": 200,
        "seed": 7,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"true_dlt_probabilities": [0.1]}, "true_dlt_probabilities"),
        ({"true_dlt_probabilities": [0.1] * 11}, "true_dlt_probabilities"),
        ({"true_dlt_probabilities": [0.1, -0.2]}, "true_dlt_probabilities"),
        ({"true_dlt_probabilities": [0.1, True]}, "true_dlt_probabilities"),
        ({"n_trials": 99}, "n_trials"),
        ({"n_trials": 50_001}, "n_trials"),
        ({"seed": -3}, "seed"),
        ({"designs": []}, "designs"),
        ({"designs": [{"design": "3+3", "variant": "storer_b"}]}, "designs[0].variant"),
        ({"designs": [{"design": "crm"}]}, "designs[0].crm_skeleton"),
        ({"designs": [{"design": "crm", "crm_skeleton": [0.1, 0.2]}]}, "designs[0].crm_skeleton"),
        ({"designs": [{"design": "boin", "boin_p_tox": 0.31}]}, "designs[0].boin_p_tox"),
        ({"designs": [{"design": "boin", "cohort_size": 3, "max_sample_size": 2}]}, "designs[0].max_sample_size"),
        ({"designs": [{"design": "i3+3", "target_dlt_rate": 0.02}]}, "designs[0].target_dlt_rate"),
        ({"designs": [{"design": "boin", "colour": "red"}]}, "designs[0]"),
        ({"overdose_threshold": 1.5}, "overdose_threshold"),
    ],
)
def test_service_refuses_bad_input_naming_the_field(world, changes, field):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        services.simulation_run_request(user=world["investigator"], data=_data(**changes))
    assert field in refused.value.message_dict, refused.value.message_dict
    assert not SimulationRun.objects.exists()  # nothing half-written


def test_who_may_plan_and_who_sees_the_runs(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    tied = services.simulation_run_request(user=world["investigator"], data=_data(trial=trial))
    mine = services.simulation_run_request(user=world["admin"], data=_data())
    assert tied.status == "queued" and tied.trial == trial and mine.trial is None
    assert tied.designs[1] == {**BOIN, "boin_p_saf": None, "boin_p_tox": None, "boin_n_earlystop": 100}
    assert tied.overdose_threshold == 0.3  # the BOIN target
    for role in ("sponsor", "coordinator_a", "data_manager", "monitor", "nobody"):
        with pytest.raises(PermissionDenied):
            services.simulation_run_request(user=world[role], data=_data(trial=trial))
    # Tied to the trial: its planners and sponsor; free-standing: its requester only.
    assert set(simulation_runs(world["investigator"])) == {tied}
    assert set(simulation_runs(world["admin"])) == {tied, mine}
    assert set(simulation_runs(world["sponsor"])) == {tied}
    for role in ("coordinator_a", "data_manager", "monitor", "nobody"):
        assert not simulation_runs(world[role]).exists(), role
    with pytest.raises(PermissionDenied):
        services.simulation_run_cancel(user=world["sponsor"], run=tied)


def test_a_run_computes_its_columns_and_a_second_delivery_does_nothing(world):  # type: ignore[no-untyped-def]
    run = services.simulation_run_request(
        user=world["investigator"], data=_data(trial=world["trial"], n_trials=400, seed=3)
    )
    assert services.simulation_run_execute(run.pk) == "done"
    run.refresh_from_db()
    assert run.status == "done" and run.progress == 1.0 and run.started_at and run.finished_at
    columns = run.result["columns"]
    assert [c["parameters"]["design"] for c in columns] == ["3+3", "boin"]
    assert columns[0]["exact"]["all_agree"] and columns[1]["exact"] is None
    assert len(columns[1]["prob_select"]) == 4 and columns[1]["se_overdose_fraction"] > 0
    finished_at = run.finished_at
    assert services.simulation_run_execute(run.pk) == "done"  # redelivered: nothing to claim
    run.refresh_from_db()
    assert run.finished_at == finished_at
    with pytest.raises(ValidationError) as refused:
        services.simulation_run_cancel(user=world["investigator"], run=run)
    assert "already ended" in str(refused.value)


def test_a_cancelled_run_is_never_computed(world):  # type: ignore[no-untyped-def]
    run = services.simulation_run_request(user=world["investigator"], data=_data())
    services.simulation_run_cancel(user=world["investigator"], run=run)
    services.simulation_run_cancel(user=world["investigator"], run=run)  # again: no change, no error
    assert services.simulation_run_execute(run.pk) == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.result == {} and run.cancelled_by == world["investigator"]


def test_a_cancel_between_rounds_stops_the_run(world, monkeypatch):  # type: ignore[no-untyped-def]
    """The progress write matches only a running row: once cancelled, the next report stops it."""
    monkeypatch.setattr(services, "PROGRESS_WRITE_SECONDS", 0.0)
    run = services.simulation_run_request(user=world["investigator"], data=_data(designs=[dict(BOIN)]))
    reports = []
    original = services.comparison_run

    def comparison_cancelled_midway(*args, **kwargs):  # type: ignore[no-untyped-def]
        report = args[5]

        def wrapped(done):  # type: ignore[no-untyped-def]
            reports.append(done)
            if len(reports) == 2:
                SimulationRun.objects.filter(pk=run.pk).update(status="cancelled")
            report(done)

        return original(*args[:5], wrapped)

    monkeypatch.setattr(services, "comparison_run", comparison_cancelled_midway)
    assert services.simulation_run_execute(run.pk) == "cancelled"
    assert len(reports) == 2  # stopped at the first report after the cancel
    run.refresh_from_db()
    assert run.status == "cancelled" and run.result == {} and 0 < run.progress < 1


def test_a_run_whose_worker_died_is_claimed_again(world):  # type: ignore[no-untyped-def]
    run = SimulationRunFactory(trial=world["trial"], requested_by=world["investigator"], n_trials=100)
    fresh = timezone.now()
    SimulationRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=fresh)
    assert services.simulation_run_execute(run.pk) == "running"  # another worker is on it
    SimulationRun.objects.filter(pk=run.pk).update(
        heartbeat_at=fresh - timedelta(seconds=services.RUNNING_STALE_SECONDS + 1)
    )
    assert services.simulation_run_execute(run.pk) == "done"


def test_a_design_that_fails_marks_the_run_failed(world):  # type: ignore[no-untyped-def]
    # Stored inputs the service would refuse (a skeleton too short): the worker says why.
    run = SimulationRunFactory(
        trial=world["trial"],
        requested_by=world["investigator"],
        designs=[{"design": "crm", "crm_skeleton": [0.1, 0.2], "target_dlt_rate": 0.3}],
    )
    assert services.simulation_run_execute(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "skeleton" in run.error


# --- the API ---------------------------------------------------------------------------------


def _api(client, user):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=user, name="planning")
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def test_api_start_read_list_and_cancel(client, world, django_assert_num_queries):  # type: ignore[no-untyped-def]
    headers = _api(client, world["investigator"])
    body = {**_data(), "trial": world["trial"].code}
    created = client.post("/api/v1/planning/simulations/", body, content_type="application/json", **headers)
    assert created.status_code == 201, created.content
    run = created.json()
    assert run["status"] == "queued" and run["trial"] == world["trial"].code and run["requested_by"] == "you"
    assert run["designs"][0] == {"design": "3+3", "variant": "storer_a"} and run["result"] == {}
    url = f"/api/v1/planning/simulations/{run['id']}/"
    services.simulation_run_execute(run["id"])
    done = client.get(url, **headers).json()
    assert done["status"] == "done" and done["progress"] == 1.0
    assert done["result"]["columns"][0]["exact"]["within_se"] == 4.0
    SimulationRunFactory.create_batch(3, trial=world["trial"], requested_by=world["admin"])
    with django_assert_num_queries(6):  # token, 2 lockout checks (axes), grants, count, page: not per row
        listed = client.get("/api/v1/planning/simulations/", **headers).json()
    assert listed["count"] == 4 and "result" not in listed["results"][0]
    assert {r["requested_by"] for r in listed["results"]} == {"you", world["admin"].get_full_name()}
    sponsor = client.get("/api/v1/planning/simulations/", **_api(client, world["sponsor"])).json()
    assert sponsor["count"] == 4 and {r["requested_by"] for r in sponsor["results"]} == {"a planner"}
    queued = listed["results"][0]["id"]
    cancelled = client.post(f"/api/v1/planning/simulations/{queued}/cancel/", **headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    ended = client.post(f"{url}cancel/", **headers)
    assert ended.status_code == 400 and "already ended" in ended.json()["errors"]["status"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"true_dlt_probabilities": [0.1, 0.2], "designs": [{"design": "3+3"}], "n_trials": 10}, "n_trials"),
        ({"true_dlt_probabilities": [0.1, 2], "designs": [{"design": "3+3"}]}, "true_dlt_probabilities"),
        ({"true_dlt_probabilities": [0.1, 0.2], "designs": [{"design": "abc"}]}, "designs"),
        ({"true_dlt_probabilities": [0.1, 0.2], "designs": [{"design": "crm"}]}, "designs[0].crm_skeleton"),
        ({"true_dlt_probabilities": [0.1, 0.2], "designs": [{"design": "3+3"}], "trial": "OTHER-U"}, "trial"),
        ({"true_dlt_probabilities": [0.1, 0.2], "designs": [{"design": "3+3"}], "colour": 1}, "colour"),
        ({"true_dlt_probabilities": "0.1", "designs": "3+3"}, "designs"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(client, world, body, field):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/planning/simulations/", body, content_type="application/json", **_api(client, world["investigator"])
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not SimulationRun.objects.exists()


def test_api_sponsor_and_coordinator_start_nothing(client, world):  # type: ignore[no-untyped-def]
    for role in ("sponsor", "coordinator_a"):
        response = client.post(
            "/api/v1/planning/simulations/", _data(), content_type="application/json", **_api(client, world[role])
        )
        assert response.status_code == 403, (role, response.content)
    assert not SimulationRun.objects.exists()


# --- the page --------------------------------------------------------------------------------


def test_page_prefills_from_the_trial_and_starts_a_run(world, login):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    for level in (1, 2, 3):
        DoseLevelFactory(trial=trial, level=level, dose_mg_m2=str(level))
    client = login(world["investigator"])
    page = client.get(reverse("planning") + f"?trial={trial.pk}").content.decode()
    assert "The trial has 3 dose levels" in page and f'value="{trial.pk}" selected' in page
    assert 'value="10000"' in page  # 10,000 trials by default
    bad = client.post(
        reverse("planning"),
        {"true_dlt_probabilities": "0.1, x", "designs": ["crm"], "variant": "storer_a", "target_dlt_rate": "0.3",
         "cohort_size": "3", "max_sample_size": "2", "boin_n_earlystop": "100", "crm_model": "empiric",
         "crm_prior_sd": "1.16", "n_trials": "10", "seed": "1"},
    )  # fmt: skip
    text = bad.content.decode()
    assert bad.status_code == 200 and not SimulationRun.objects.exists()
    for expected in ("give numbers separated by commas", "from 100 to 50,000", "The maximum sample size must be"):
        assert expected in text, expected
    good = client.post(
        reverse("planning"),
        {"trial": trial.pk, "true_dlt_probabilities": "0.05, 0.2, 0.4", "designs": ["3+3", "boin", "crm"],
         "variant": "storer_a", "target_dlt_rate": "0.25", "cohort_size": "3", "max_sample_size": "9",
         "boin_n_earlystop": "100", "crm_skeleton": "0.1, 0.25, 0.4", "crm_model": "empiric",
         "crm_prior_sd": "1.16", "n_trials": "100", "seed": "5"},
    )  # fmt: skip
    run = SimulationRun.objects.get()
    assert good.status_code == 302 and good["Location"] == reverse("simulation_run_detail", args=[run.pk])
    assert [d["design"] for d in run.designs] == ["3+3", "boin", "crm"] and run.trial == trial
    assert run.overdose_threshold == 0.25 and run.designs[2]["crm_skeleton"] == [0.1, 0.25, 0.4]


def test_detail_page_progress_then_results_side_by_side(world, login):  # type: ignore[no-untyped-def]
    run = services.simulation_run_request(user=world["investigator"], data=_data(trial=world["trial"]))
    client = login(world["investigator"])
    url = reverse("simulation_run_detail", args=[run.pk])
    waiting = client.get(url).content.decode()
    assert '<progress id="simulation-bar" max="1" value="0.0">' in waiting
    assert '<noscript><meta http-equiv="refresh"' in waiting and "Cancel the simulation" in waiting
    assert "js/planning.js" in waiting and "<script>" not in waiting  # CSP: no inline script
    status = client.get(reverse("simulation_run_status", args=[run.pk])).json()
    assert status == {"status": "queued", "progress": 0.0, "finished": False, "error": ""}
    services.simulation_run_execute(run.pk)
    page = client.get(url).content.decode()
    assert "<progress" not in page and "noscript" not in page
    assert "3+3 (Storer A)</th>" in page and "BOIN (target 0.3, cohorts of 3, N 12)</th>" in page
    for row in ("P(selected as MTD)", "No MTD", "Patients per level", "DLTs per level", "Mean sample size",
                "Overdose fraction", "agrees: every value within 4 SE"):  # fmt: skip
        assert row in page, row
    assert client.get(reverse("simulation_run_status", args=[run.pk])).json()["finished"] is True
    sponsor_view = login(world["sponsor"]).get(url).content.decode()
    assert "Operating characteristics" in sponsor_view and "Cancel the simulation" not in sponsor_view


def test_cancel_from_the_page(world, login):  # type: ignore[no-untyped-def]
    run = services.simulation_run_request(user=world["admin"], data=_data(trial=world["trial"]))
    response = login(world["admin"]).post(reverse("simulation_run_cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancelled_by == world["admin"]
    assert login(world["sponsor"]).post(reverse("simulation_run_cancel", args=[run.pk])).status_code == 403
    assert login(world["coordinator_a"]).get(reverse("simulation_run_detail", args=[run.pk])).status_code == 404


def test_the_old_3plus3_page_still_works_and_links_here(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    page = client.get(reverse("operating_characteristics") + "?p=0.1,0.2,0.3&variant=storer_a").content.decode()
    assert "Expected patients" in page and reverse("planning") in page
    assert client.get(reverse("planning")).status_code == 403  # a coordinator does not plan
    trial_page = login(world["investigator"]).get(reverse("trial_detail", args=[world["trial"].pk])).content.decode()
    assert f"{reverse('planning')}?trial={world['trial'].pk}" in trial_page


def test_a_design_naming_the_trials_own_takes_the_trials_parameters(world):  # type: ignore[no-untyped-def]
    """Planning "my trial": the trial's configured values fill what the design object leaves
    out; another design (CRM here) keeps the R packages' defaults; given values win."""
    Trial.objects.filter(pk=world["trial"].pk).update(
        design="boin", target_dlt_rate=0.25, cohort_size=3, max_sample_size=18, boin_n_earlystop=9
    )
    trial = Trial.objects.get(pk=world["trial"].pk)
    data = _data(
        trial=trial,
        designs=[{}, {"design": "boin", "max_sample_size": 24}, {"design": "crm", "crm_skeleton": PROBS}],
    )
    run = services.simulation_run_request(user=world["investigator"], data=data)
    own, given, crm = run.designs
    assert own["design"] == "boin" and own["target_dlt_rate"] == 0.25 and own["max_sample_size"] == 18
    assert own["boin_n_earlystop"] == 9
    assert given["target_dlt_rate"] == 0.25 and given["max_sample_size"] == 24
    assert crm["target_dlt_rate"] == 0.3  # dfcrm's default, not the trial's BOIN target
    # Without a trial nothing is filled: a bare design is 3+3 with the R defaults.
    free = services.simulation_run_request(user=world["investigator"], data=_data(designs=[{}]))
    assert free.designs[0]["design"] == "3+3"
    # A trial value the request makes inconsistent is named on the request's design.
    with pytest.raises(ValidationError) as refused:
        services.simulation_run_request(
            user=world["investigator"], data=_data(trial=trial, designs=[{"max_sample_size": 2}])
        )
    assert "designs[0].max_sample_size" in refused.value.message_dict


def test_the_relay_sends_lost_runs_again_once_a_period(world, monkeypatch):  # type: ignore[no-untyped-def]
    """Which runs the periodic relay sends (the worker test sees one through a real worker)."""
    sent = []
    monkeypatch.setattr(services, "_simulation_enqueue", sent.append)
    now = timezone.now()
    long_ago = now - timedelta(seconds=services.QUEUED_RELAY_SECONDS + 5)
    lost = SimulationRunFactory(trial=world["trial"], requested_at=long_ago)
    just_asked = SimulationRunFactory(trial=world["trial"], requested_at=now)
    dead = SimulationRunFactory(trial=world["trial"], requested_at=long_ago, status="running")
    alive = SimulationRunFactory(trial=world["trial"], requested_at=long_ago, status="running")
    SimulationRun.objects.filter(pk=dead.pk).update(
        heartbeat_at=now - timedelta(seconds=services.RUNNING_STALE_SECONDS + 5)
    )
    SimulationRun.objects.filter(pk=alive.pk).update(heartbeat_at=now)
    for status in ("done", "cancelled", "failed"):
        SimulationRunFactory(trial=world["trial"], requested_at=long_ago, status=status)
    assert services.simulation_relay_stuck(now) == 2
    assert sorted(sent) == sorted([lost.pk, dead.pk]) and just_asked.pk not in sent and alive.pk not in sent
    # The next period: the lost run was just sent, so not again yet; the dead one still has
    # no heartbeat (nobody claimed it), so it is sent again.
    sent.clear()
    assert services.simulation_relay_stuck(now + timedelta(seconds=60)) == 1 and sent == [dead.pk]
    sent.clear()
    later = now + timedelta(seconds=services.QUEUED_RELAY_SECONDS + 1)
    services.simulation_relay_stuck(later)  # a period after its last send: the lost run again
    assert lost.pk in sent


def test_api_simulates_the_planned_trial_from_an_empty_design(client, world):  # type: ignore[no-untyped-def]
    Trial.objects.filter(pk=world["trial"].pk).update(design="i3+3", target_dlt_rate=0.25, max_sample_size=21)
    headers = _api(client, world["investigator"])
    body = {**_data(designs=[{}]), "trial": world["trial"].code}
    created = client.post("/api/v1/planning/simulations/", body, content_type="application/json", **headers)
    assert created.status_code == 201, created.content
    design = created.json()["designs"][0]
    assert (design["design"], design["target_dlt_rate"], design["max_sample_size"]) == ("i3+3", 0.25, 21)
