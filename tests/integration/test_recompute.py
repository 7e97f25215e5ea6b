"""Trial-level recomputation: requested with the data, computed once, relayed if lost."""

from analysis.services import computation_run
from patients.services import patient_register
from tests.factories import PatientFactory
from trial.models import TrialComputation
from trial.services import computation_relay_stale, computation_request


def _register(world, n):  # type: ignore[no-untyped-def]
    return patient_register(
        user=world["coordinator_a"],
        trial=world["trial"],
        data={"site": world["site_a"], "subject_id": f"SA-{n:03d}", "sex": "male", "race": "white", "birth_year": 1970},
    )


def test_request_commits_with_the_data_and_runs_after_commit(world, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _register(world, 1)
    computation = TrialComputation.objects.get(trial=world["trial"], kind="enrolment")
    assert computation.stale and computation.runs == 0 and len(callbacks) == 1
    callbacks[0]()  # the task runs (eagerly here) only after commit
    computation.refresh_from_db()
    assert not computation.stale and computation.runs == 1 and computation.data["registered"] == 1


def test_run_is_idempotent(world):  # type: ignore[no-untyped-def]
    computation_request(world["trial"].pk, "enrolment")
    computation_run(world["trial"].pk, "enrolment")
    again = computation_run(world["trial"].pk, "enrolment")
    assert again.runs == 1


def test_burst_of_requests_is_answered_by_one_run(world):  # type: ignore[no-untyped-def]
    for _ in range(50):
        computation_request(world["trial"].pk, "enrolment")  # on_commit never fires in this test
    first = computation_run(world["trial"].pk, "enrolment")
    for _ in range(49):
        computation_run(world["trial"].pk, "enrolment")
    assert first.runs == 1 and TrialComputation.objects.get().runs == 1


def test_lost_message_is_relayed(world, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        _register(world, 2)  # the message is "lost": the callback never runs
    PatientFactory(site=world["site_b"], trial=world["trial"])
    assert computation_relay_stale() == 1
    computation = TrialComputation.objects.get()
    assert not computation.stale and computation.data["registered"] == 2
    assert computation_relay_stale() == 0
