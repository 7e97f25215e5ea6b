"""Open slots from the start and at the MTD, and the enrol page saying so before Save.

- issue 16 item 6: a trial made by any path (bundle import, admin, factory) has its 3+3
  result from the first read: level 1 is open before anyone is enrolled;
- issue 19 item 3: after the MTD declaration is signed, the trial's expansion places at
  the MTD are open slots, a coordinator enrols into them;
- issue 16 item 18 / 19 item 3: the enrol page says before Save whether a slot is open
  and at which level the patient will be assigned.
"""

import datetime

import pytest
from django.urls import reverse

from analysis.services import computation_run
from exchange.bundle import bundle_import
from exchange.generate import generate_trial
from patients import services as patient_services
from patients.models import Patient
from tests.integration.test_escalation_service import _api, _treated
from tests.integration.test_patients_services import D, consented, levels, registered, screened  # noqa: F401
from trial.models import EscalationSignoff, Trial, TrialComputation
from trial.selectors import escalation_open_slots
from trial.services import computation_request

ESC = TrialComputation.Kind.ESCALATION


def _not_enrolled_bundle() -> tuple[dict, dict]:  # type: ignore[type-arg]
    """A generated trial whose first two patients are registered, consented and screened
    but not yet enrolled (and everyone else left out)."""
    bundle = generate_trial(15, seed=3, code="NEW-TRIAL")
    keep = bundle["patients"][:2]
    enrolled_on = {}
    for p in keep:
        enrolled_on[p["subject_id"]] = p.pop("enrolled")
        p.pop("dose_level")
        for key in ("labs", "cycles", "adverse_events", "gvhd_episodes", "dlt_adjudications", "assessments",
                    "events", "concomitant_medications", "enrolment_deviation"):  # fmt: skip
            p.pop(key, None)
    bundle["patients"] = keep
    bundle["escalation_signoffs"] = []
    return bundle, enrolled_on


@pytest.mark.django_db
def test_an_imported_trial_without_enrolments_opens_level_1(client, world) -> None:  # type: ignore[no-untyped-def]
    bundle, enrolled_on = _not_enrolled_bundle()
    trial = bundle_import(bundle)
    # The import requested every result with the trial (no enrolment needed to have one).
    assert TrialComputation.objects.filter(trial=trial, kind=ESC).exists()
    assert escalation_open_slots(trial) == {1: 3}
    subject, on = next(iter(enrolled_on.items()))
    patient = Patient.objects.get(trial=trial, subject_id=subject)
    from exchange.bundle import IMPORT_USERNAME  # noqa: F401  (the importer's user wrote it)
    from tests.factories import grant
    from trial.models import RoleGrant

    grant(world["coordinator_a"], trial, RoleGrant.Role.COORDINATOR, patient.site)
    enrolled = patient_services.patient_enrol(
        user=world["coordinator_a"], patient=patient, on=datetime.date.fromisoformat(on)
    )
    assert enrolled.dose_level.level == 1 and enrolled.enrolment_deviation == ""


@pytest.mark.django_db
def test_a_trial_made_in_the_admin_has_its_escalation_from_the_first_read(admin_client, admin_user, world) -> None:  # type: ignore[no-untyped-def]
    data = {
        "code": "ADMIN-NEW", "title": "Made in the admin", "design": "3+3", "escalation_variant": "storer_a",
        "expansion_cohort_size": 2, "cycle_length_days": 28, "dlt_window_cycles": 2, "bsa_method": "mosteller",
        "age_min": 16, "age_max": 75, "enrol_day_min": 40, "enrol_day_max": 100, "min_platelets": 50,
        "min_anc": "1.0", "screening_lab_days": 14, "max_delay_days": 7, "reduction_percent": 50,
        "dlt_min_grade": 3, "dlt_cytopenia_days": 28, "sae_report_hours": 24, "survival_origin": "hct",
        "landmark_days": "365.25", "reason_for_change": "new trial",
        "sites-TOTAL_FORMS": 1, "sites-INITIAL_FORMS": 0, "sites-0-code": "S1", "sites-0-name": "Site one",
        "protocol_versions-TOTAL_FORMS": 0, "protocol_versions-INITIAL_FORMS": 0,
        "dose_levels-TOTAL_FORMS": 2, "dose_levels-INITIAL_FORMS": 0,
        "dose_levels-0-level": 1, "dose_levels-0-dose_mg_m2": "0.3",
        "dose_levels-1-level": 2, "dose_levels-1-dose_mg_m2": "0.4",
    }  # fmt: skip
    response = admin_client.post("/admin/trial/trial/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    trial = Trial.objects.get(code="ADMIN-NEW")
    assert not TrialComputation.objects.filter(trial=trial, kind=ESC).exists()
    from tests.factories import grant
    from trial.models import RoleGrant

    grant(world["investigator"], trial, RoleGrant.Role.INVESTIGATOR)
    body = _api(client_for(admin_client), world["investigator"]).get(f"/api/v1/trials/{trial.pk}/escalation/").json()
    assert body["computed_at"] is not None and body["open_slots"] == [{"dose_level": 1, "slots": 3}]
    assert escalation_open_slots(trial) == {1: 3}


def client_for(admin_client):  # type: ignore[no-untyped-def]
    admin_client.logout()
    return admin_client


def _mtd_signed_at_level_4(world, levels) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Three patients at each of L1-L4 without DLT, each decision signed, MTD = L4."""
    for level in levels:
        for i in range(3):
            _treated(world, level, i, start=datetime.date(2023, 6, 1))
    for decision, level in (("escalate", 2), ("escalate", 3), ("escalate", 4), ("mtd_declared", 4)):
        EscalationSignoff.objects.create(
            trial=world["trial"], decision=decision, dose_level=level, signed_by_name="Dr Inv", imported=True
        )
    computation_request(world["trial"].pk, ESC)
    computation_run(world["trial"].pk, ESC)


def test_expansion_at_the_signed_mtd_is_an_open_slot_for_the_coordinator(world, levels, screened) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _mtd_signed_at_level_4(world, levels)
    state = TrialComputation.objects.get(trial=world["trial"], kind=ESC).data
    assert state["decision"] == "mtd_declared" and state["mtd_dose_level"] == 4
    assert state["open_slots"] == [{"dose_level": 4, "slots": 2}]  # Trial.expansion_cohort_size default
    patient = patient_services.patient_enrol(user=world["coordinator_a"], patient=screened, on=D(2024, 3, 2))
    assert patient.dose_level.level == 4 and patient.enrolment_deviation == ""
    computation_run(world["trial"].pk, ESC)
    assert escalation_open_slots(world["trial"]) == {4: 1}


def test_no_expansion_when_the_trial_sets_none(world, levels) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    Trial.objects.filter(pk=world["trial"].pk).update(expansion_cohort_size=0)
    world["trial"].refresh_from_db()
    _mtd_signed_at_level_4(world, levels)
    assert escalation_open_slots(world["trial"]) == {}


def test_the_enrol_page_says_where_the_patient_goes_before_save(world, levels, screened, login) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _mtd_signed_at_level_4(world, levels)
    page = login(world["coordinator_a"]).get(reverse("patient_enrol", args=[screened.pk])).content.decode()
    assert 'id="enrolment-slots"' in page
    assert "Open slots: level 4 (0.6 mg/m²): 2." in page
    assert "Saving enrols the patient at <strong>level 4 (0.6 mg/m²)</strong>, an expansion place" in page


def test_the_enrol_page_says_when_no_slot_is_open(world, levels, screened, login) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    for i in range(3):
        _treated(world, levels[0], i)  # three at L1 without DLT: escalation awaits its signature
    computation_request(world["trial"].pk, ESC)
    computation_run(world["trial"].pk, ESC)
    page = login(world["coordinator_a"]).get(reverse("patient_enrol", args=[screened.pk])).content.decode()
    assert "<strong>No open slot</strong>" in page and "only an investigator may enrol now" in page
    assert "(current decision: escalate)" in page
