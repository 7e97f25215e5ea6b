"""Issue 16 item 18, what coordinators used to REDCap/OpenClinica expect: "Save and
continue" through a new patient's forms and a visit's (patients.flows), an "Enrol" button
on an eligible screening, the coordinator's one site preselected, and the visit's GVHD/SOS
status carried forward for confirmation (dosing.carry_forward)."""

import datetime
from decimal import Decimal

import pytest

from dosing.models import Cycle
from patients.models import Patient, Screening
from safety.models import AdverseEvent
from tests.factories import CycleFactory, DoseLevelFactory, GvhdEpisodeFactory, ProtocolVersionFactory, grant
from tests.integration.test_dosing_screens import C1D1, HCT, SEED_LEVELS, enrolled, form_data
from tests.integration.test_patients_services import open_slots
from tests.integration.test_safety_views import form_body as ae_form
from trial.models import RoleGrant

TODAY = datetime.date.today()
CONTINUE = {"save_continue": ""}
BUTTON = ">Save and continue</button>"


def _days(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


REGISTER = {
    "subject_id": "SA-001", "sex": "female", "race": "white", "birth_year": 1975, "diagnosis": "b_all",
    "cd22_positive": "true", "ph_positive": "false", "prior_lines": 2, "hct_ci": 1,
}  # fmt: skip
TRANSPLANT = {
    "date": _days(-60), "disease_status": "cr2", "conditioning": "mac", "regimen": "tbi", "atg": "unknown",
    "donor_type": "matched_sibling", "graft_source": "peripheral_blood", "gvhd_prophylaxis": "cni_mtx",
    "mrd_before": "false", "mrd_after": "false", "cr_at_day30": "true",
}  # fmt: skip
SCREENING = {
    "date": _days(-1), "lab_date": _days(-2), "platelets_10e9_l": "133", "anc_10e9_l": "2.1", "agvhd_grade": "0",
    "liver_gvhd": "false", "sos_history": "false",
}  # fmt: skip


@pytest.fixture
def trial(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    ProtocolVersionFactory(trial=trial, version="1", effective=datetime.date(2017, 7, 1))
    DoseLevelFactory(trial=trial, level=1)
    open_slots(trial, {1: 3})
    return trial


@pytest.fixture
def levels(world):  # type: ignore[no-untyped-def]
    """The seed trial's four levels, as the dosing screens' tests have them."""
    ProtocolVersionFactory(trial=world["trial"], version="1", max_cycles=4, effective=datetime.date(2017, 7, 1))
    return {n: DoseLevelFactory(trial=world["trial"], level=n, dose_mg_m2=Decimal(d)) for n, d in SEED_LEVELS}


def _messages(client, response) -> str:  # type: ignore[no-untyped-def]
    return client.get(response["Location"]).content.decode()


# --- a. Save and continue ----------------------------------------------------------------


def test_a_new_patient_with_save_and_continue_from_registration_to_enrolment(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    register = f"/trials/{trial.pk}/patients/new/"
    assert BUTTON in client.get(register).content.decode()
    response = client.post(register, {**REGISTER, "site": world["site_a"].pk, **CONTINUE})
    patient = Patient.objects.get(subject_id="SA-001")
    assert response["Location"] == f"/patients/{patient.pk}/transplant/"
    page = _messages(client, response)
    assert "SA-001 registered. Next: the transplant." in page and BUTTON in page

    response = client.post(f"/patients/{patient.pk}/transplant/", {**TRANSPLANT, **CONTINUE})
    assert response["Location"] == f"/patients/{patient.pk}/consents/new/"
    assert "Transplant recorded. Next: the consent." in _messages(client, response)

    version = trial.protocol_versions.get()
    response = client.post(
        f"/patients/{patient.pk}/consents/new/", {"protocol_version": version.pk, "date": _days(-3), **CONTINUE}
    )
    assert response["Location"] == f"/patients/{patient.pk}/screenings/new/"
    assert "Consent to version 1 recorded. Next: the screening." in _messages(client, response)

    response = client.post(f"/patients/{patient.pk}/screenings/new/", {**SCREENING, **CONTINUE})
    assert response["Location"] == f"/patients/{patient.pk}/enrol/"
    page = _messages(client, response)
    assert "Screening stored: Eligible. Next: the enrolment." in page and "Open slots: level 1" in page
    assert BUTTON in page  # on to cycle 1

    response = client.post(f"/patients/{patient.pk}/enrol/", {"enrolled_on": _days(0), "version": 1, **CONTINUE})
    assert response["Location"] == f"/patients/{patient.pk}/cycles/new/"
    assert "SA-001 enrolled at L1" in _messages(client, response)
    patient.refresh_from_db()
    assert patient.enrolled_on == TODAY


@pytest.mark.parametrize(
    ("url", "body", "destination"),
    [
        ("/trials/{trial}/patients/new/", "register", "/patients/{patient}/"),
        ("/patients/{patient}/transplant/", "transplant", "/patients/{patient}/eligibility/"),
    ],
)
def test_plain_save_keeps_its_destination(world, login, trial, url, body, destination):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    if body == "register":
        response = client.post(url.format(trial=trial.pk), {**REGISTER, "site": world["site_a"].pk})
        patient = Patient.objects.get()
    else:
        client.post(f"/trials/{trial.pk}/patients/new/", {**REGISTER, "site": world["site_a"].pk})
        patient = Patient.objects.get()
        response = client.post(url.format(patient=patient.pk), TRANSPLANT)
    assert response.status_code == 302 and response["Location"] == destination.format(patient=patient.pk)
    assert "Next:" not in _messages(client, response)


def test_a_failed_screening_stops_the_flow_and_says_why(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    client.post(f"/trials/{trial.pk}/patients/new/", {**REGISTER, "site": world["site_a"].pk})
    patient = Patient.objects.get()
    client.post(f"/patients/{patient.pk}/transplant/", TRANSPLANT)
    response = client.post(f"/patients/{patient.pk}/screenings/new/", {**SCREENING, "sos_history": "true", **CONTINUE})
    screening = Screening.objects.get()
    assert screening.result != Screening.Result.ELIGIBLE
    assert response["Location"] == f"/screenings/{screening.pk}/"
    assert "Enrolment needs an eligible screening" in _messages(client, response)


def test_the_visit_flow_cycle_then_its_adverse_events_then_the_assessments(world, login, levels):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["coordinator_a"])
    assert BUTTON in client.get(f"/patients/{patient.pk}/cycles/new/").content.decode()
    response = client.post(f"/patients/{patient.pk}/cycles/new/", {**form_data(C1D1), **CONTINUE})
    assert response["Location"] == f"/patients/{patient.pk}/adverse-events/new/"
    page = _messages(client, response)
    assert "Cycle 1 recorded. Next: the adverse events of this visit." in page and BUTTON in page
    assert Cycle.objects.get().day1 == C1D1

    response = client.post(f"/patients/{patient.pk}/adverse-events/new/", {**ae_form(onset="2024-03-03"), **CONTINUE})
    # The visit calendar has MRDs overdue (none recorded): the form opens on that kind.
    assert response["Location"] == f"/patients/{patient.pk}/assessments/new/?kind=mrd"
    page = _messages(client, response)
    assert "Adverse event recorded: Nausea, grade 2. Next: the assessments due at this visit." in page
    assert _selected(page, "kind") == "mrd"
    assert BUTTON not in page  # the end of the visit's flow
    assert AdverseEvent.objects.get().grade == 2


def test_a_refused_save_and_continue_stays_on_the_form_with_nothing_written(world, login, levels):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["coordinator_a"])
    response = client.post(f"/patients/{patient.pk}/cycles/new/", {**form_data(C1D1, weight_kg="700"), **CONTINUE})
    page = response.content.decode()
    assert response.status_code == 200 and "outside the plausible range" in page
    assert BUTTON in page  # the form again, both buttons, to correct and send again
    assert not Cycle.objects.exists()


def test_no_continue_button_off_the_flows_or_for_an_investigator_enrolling(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    client.post(f"/trials/{trial.pk}/patients/new/", {**REGISTER, "site": world["site_a"].pk})
    patient = Patient.objects.get()
    assert BUTTON not in client.get(f"/patients/{patient.pk}/edit/").content.decode()
    assert BUTTON not in client.get(f"/patients/{patient.pk}/events/new/").content.decode()
    assert BUTTON in client.get(f"/patients/{patient.pk}/enrol/").content.decode()
    # The investigator enrols but does not enter cycle data: no button to the cycle form.
    page = login(world["investigator"]).get(f"/patients/{patient.pk}/enrol/").content.decode()
    assert ">Save</button>" in page and BUTTON not in page


# --- b. Enrol on an eligible screening ---------------------------------------------------


def _screened(client, world, trial, **screening):  # type: ignore[no-untyped-def]
    client.post(f"/trials/{trial.pk}/patients/new/", {**REGISTER, "site": world["site_a"].pk})
    patient = Patient.objects.get()
    client.post(f"/patients/{patient.pk}/transplant/", TRANSPLANT)
    version = trial.protocol_versions.get()
    client.post(f"/patients/{patient.pk}/consents/new/", {"protocol_version": version.pk, "date": _days(-3)})
    client.post(f"/patients/{patient.pk}/screenings/new/", {**SCREENING, **screening})
    return patient, Screening.objects.filter(patient=patient).last()


ENROL_LINK = 'href="/patients/{}/enrol/">Enrol SA-001</a>'


def test_an_eligible_screening_valid_today_offers_enrol(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    patient, screening = _screened(client, world, trial)
    link = ENROL_LINK.format(patient.pk)
    assert link in client.get(f"/screenings/{screening.pk}/").content.decode()
    assert link in client.get(f"/patients/{patient.pk}/").content.decode()
    # The investigator enrols too; the sponsor and the monitor do not.
    assert link in login(world["investigator"]).get(f"/screenings/{screening.pk}/").content.decode()
    for role in ("sponsor", "monitor"):
        assert link not in login(world[role]).get(f"/patients/{patient.pk}/").content.decode(), role
    # Once enrolled, no more button.
    client = login(world["coordinator_a"])
    client.post(f"/patients/{patient.pk}/enrol/", {"enrolled_on": _days(0), "version": 1})
    assert link not in client.get(f"/screenings/{screening.pk}/").content.decode()
    assert link not in client.get(f"/patients/{patient.pk}/").content.decode()


@pytest.mark.parametrize(
    "screening",
    [
        {"sos_history": "true"},  # not eligible
        {"date": _days(-20), "lab_date": _days(-20)},  # eligible then, its labs too old today (14 days)
    ],
    ids=["not-eligible", "expired"],
)
def test_no_enrol_button_unless_the_latest_screening_passed_and_is_still_valid(world, login, trial, screening):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    patient, latest = _screened(client, world, trial, **screening)
    link = ENROL_LINK.format(patient.pk)
    assert link not in client.get(f"/screenings/{latest.pk}/").content.decode()
    assert link not in client.get(f"/patients/{patient.pk}/").content.decode()
    # Screened again, eligible and recent: now it is offered.
    client.post(f"/patients/{patient.pk}/screenings/new/", SCREENING)
    assert link in client.get(f"/patients/{patient.pk}/").content.decode()


def test_an_older_eligible_screening_does_not_offer_enrol_after_a_failed_one(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    patient, first = _screened(client, world, trial, date=_days(-2))
    link = ENROL_LINK.format(patient.pk)
    assert first.result == Screening.Result.ELIGIBLE
    assert link in client.get(f"/screenings/{first.pk}/").content.decode()  # while it was the latest
    client.post(f"/patients/{patient.pk}/screenings/new/", {**SCREENING, "sos_history": "true"})
    assert link not in client.get(f"/screenings/{first.pk}/").content.decode()
    assert link not in client.get(f"/patients/{patient.pk}/").content.decode()


# --- c. the coordinator's one site preselected -------------------------------------------


def _selected_site(page: str) -> list[str]:
    start = page.index('name="site"')
    select = page[start : page.index("</select>", start)]
    return [chunk.split(">")[1].split("<")[0] for chunk in select.split("<option")[1:] if " selected" in chunk]


def test_a_coordinator_of_one_site_finds_it_preselected(world, login, trial):  # type: ignore[no-untyped-def]
    url = f"/trials/{trial.pk}/patients/new/"
    assert _selected_site(login(world["coordinator_a"]).get(url).content.decode()) == ["SA — Site A hospital"]
    # A coordinator of both sites chooses: none preselected.
    grant(world["coordinator_a"], trial, RoleGrant.Role.COORDINATOR, world["site_b"])
    assert _selected_site(login(world["coordinator_a"]).get(url).content.decode()) == ["---------"]


def test_the_preselected_site_is_what_a_plain_save_registers(world, login, trial):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    page = client.get(f"/trials/{trial.pk}/patients/new/").content.decode()
    site = page.split('name="site"')[1].split(" selected")[0].rsplit('value="', 1)[1].split('"')[0]
    assert client.post(f"/trials/{trial.pk}/patients/new/", {**REGISTER, "site": site}).status_code == 302
    assert Patient.objects.get().site == world["site_a"]


# --- d. the GVHD/SOS status carried forward ---------------------------------------------

C2D1 = C1D1 + datetime.timedelta(days=28)


def _second_visit(world, levels, grade=1, liver=False, sos=False):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    CycleFactory(
        patient=patient, number=1, day1=C1D1, due_date=C1D1, dose_level=levels[3],
        acute_gvhd_grade=grade, liver_gvhd=liver, sos=sos, dose_mg_m2=Decimal("0.5"),
    )  # fmt: skip
    return patient


def _selected(page: str, name: str) -> str:
    start = page.index(f'name="{name}"')
    select = page[start : page.index("</select>", start)]
    chosen = [c for c in select.split("<option")[1:] if " selected" in c]
    return chosen[0].split('value="')[1].split('"')[0] if chosen else ""


def test_the_cycle_screen_proposes_the_previous_visit_status_marked_to_confirm(world, login, levels):  # type: ignore[no-untyped-def]
    patient = _second_visit(world, levels)
    page = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/cycles/new/").content.decode()
    assert (_selected(page, "acute_gvhd_grade"), _selected(page, "liver_gvhd"), _selected(page, "sos")) == (
        "1", "false", "false",
    )  # fmt: skip
    assert "GVHD/SOS status carried forward" in page
    assert "Carried forward from the cycle 1 visit of 2024-03-01 (1), confirm" in page
    assert 'name="status_confirmed"' in page


def test_a_latest_gvhd_episode_is_proposed_over_the_older_visit(world, login, levels):  # type: ignore[no-untyped-def]
    patient = _second_visit(world, levels)
    GvhdEpisodeFactory(patient=patient, onset=C1D1 + datetime.timedelta(days=10), acute_grade=2, liver_stage=1)
    page = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/cycles/new/").content.decode()
    assert (_selected(page, "acute_gvhd_grade"), _selected(page, "liver_gvhd"), _selected(page, "sos")) == (
        "2", "true", "false",
    )  # fmt: skip
    assert "Carried forward from the acute grade 2 GVHD episode of 2024-03-11 (2)" in page


def test_a_carried_status_is_not_saved_without_confirmation(world, login, levels):  # type: ignore[no-untyped-def]
    patient = _second_visit(world, levels)
    client = login(world["coordinator_a"])
    url = f"/patients/{patient.pk}/cycles/new/"
    body = form_data(C2D1, number=2, acute_gvhd_grade="1", liver_gvhd="false", sos="false")
    # "Check" saves nothing, so it asks nothing yet
    checked = client.post(url, {**body, "check": ""}).content.decode()
    assert 'id="id_status_confirmed-error"' not in checked
    for button in ({"save": ""}, CONTINUE):
        response = client.post(url, {**body, **button})
        assert response.status_code == 200
        page = response.content.decode()
        assert 'id="id_status_confirmed-error"' in page
        assert "carried forward from the cycle 1 visit of 2024-03-01" in page
        assert "active acute GVHD grade, active liver GVHD, SOS/VOD" in page
        assert Cycle.objects.filter(number=2).count() == 0
    response = client.post(url, {**body, "status_confirmed": "on", "save": ""})
    assert response.status_code == 302
    cycle = Cycle.objects.get(number=2)
    assert (cycle.acute_gvhd_grade, cycle.liver_gvhd, cycle.sos) == (1, False, False)


def test_a_changed_status_is_the_coordinators_own_entry(world, login, levels):  # type: ignore[no-untyped-def]
    # Cycle 1 had liver GVHD and SOS; both have gone by cycle 2.
    patient = _second_visit(world, levels, grade=1, liver=True, sos=True)
    client = login(world["coordinator_a"])
    url = f"/patients/{patient.pk}/cycles/new/"
    # One field kept as carried (the grade): still to confirm.
    kept = form_data(C2D1, number=2, acute_gvhd_grade="1", liver_gvhd="false", sos="false")
    page = client.post(url, {**kept, "save": ""}).content.decode()
    assert 'id="id_status_confirmed-error"' in page and "(active acute GVHD grade)" in page
    assert not Cycle.objects.filter(number=2).exists()
    changed = form_data(C2D1, number=2, acute_gvhd_grade="0", liver_gvhd="false", sos="false")
    assert client.post(url, {**changed, "save": ""}).status_code == 302
    cycle = Cycle.objects.get(number=2)
    assert (cycle.acute_gvhd_grade, cycle.liver_gvhd, cycle.sos) == (0, False, False)


def test_the_first_cycle_has_nothing_to_carry_forward(world, login, levels):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["coordinator_a"])
    page = client.get(f"/patients/{patient.pk}/cycles/new/").content.decode()
    assert "carried forward" not in page.lower() and 'name="status_confirmed"' not in page
    assert _selected(page, "acute_gvhd_grade") == ""
    assert client.post(f"/patients/{patient.pk}/cycles/new/", {**form_data(C1D1), "save": ""}).status_code == 302
    # ...and cycle 2 then has cycle 1's status to confirm.
    page = client.get(f"/patients/{patient.pk}/cycles/new/").content.decode()
    assert "Carried forward from the cycle 1 visit of 2024-03-01 (None)" in page
