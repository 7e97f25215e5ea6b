"""Dosing screens and API: the one-form cycle screen (check shows the arithmetic and the
safety check; save records), the API's error format, the calendar and the worklist with
a constant number of queries."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from core.tokens import token_issue
from dosing.models import Cycle
from tests.factories import (
    AssessmentFactory,
    ConcomitantMedicationFactory,
    ConsentFactory,
    CycleFactory,
    DeviationFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ProtocolVersionFactory,
    TransplantFactory,
)

SEED_LEVELS = ((1, "0.3"), (2, "0.4"), (3, "0.5"), (4, "0.6"))


@pytest.fixture
def levels(world):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    ProtocolVersionFactory(trial=trial, version="1", max_cycles=4, effective=datetime.date(2017, 7, 1))
    return {n: DoseLevelFactory(trial=trial, level=n, dose_mg_m2=Decimal(dose)) for n, dose in SEED_LEVELS}


def enrolled(world, levels, hct, site="site_a"):  # type: ignore[no-untyped-def]
    p = PatientFactory(site=world[site], trial=world["trial"], dose_level=levels[3], enrolled_on=hct)
    TransplantFactory(patient=p, date=hct)
    ConsentFactory(patient=p, date=hct + datetime.timedelta(days=30))
    return p


def form_data(day1: datetime.date, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "number": 1, "day1": day1.isoformat(), "lab_date": (day1 - datetime.timedelta(days=2)).isoformat(),
        "platelets": "120", "anc": "2.0", "acute_gvhd_grade": "0", "liver_gvhd": "false", "sos": "false",
        "height_cm": "170", "weight_kg": "70", "given": "true",
    }  # fmt: skip
    data.update(overrides)
    return data


HCT = datetime.date(2024, 1, 10)
C1D1 = datetime.date(2024, 3, 1)


def test_check_shows_safety_check_and_dose_arithmetic_without_saving(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["coordinator_a"])
    url = f"/patients/{patient.pk}/cycles/new/"
    assert client.get(url).status_code == 200
    page = client.post(url, {**form_data(C1D1, reduced="on", reduction_reason="cytopenia"), "check": ""})
    body = page.content.decode()
    assert page.status_code == 200
    assert "0.5 mg/m² x 1.82 m² x 50% = 0.46 mg" in body
    assert "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m²" in body
    assert "The safety check passes." in body
    assert not Cycle.objects.exists()
    saved = client.post(url, {**form_data(C1D1), "save": ""})
    assert saved.status_code == 302 and saved["Location"] == f"/patients/{patient.pk}/dosing/"
    assert Cycle.objects.get().dose_mg == Decimal("0.91")
    listing = client.get(saved["Location"]).content.decode()
    assert "C1" in listing and "0.91" in listing


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"height_cm": "1.7"}, "did you mean 170 cm (1.7 metres)?"),
        ({"weight_kg": "700"}, "Weight 700 kg is outside the plausible range 25-250 kg"),
        ({"number": "2"}, "The next cycle is cycle 1, not 2"),
        ({"platelets": "30"}, "The pre-dose safety check did not pass"),
    ],
)
def test_screen_shows_errors_next_to_fields_and_saves_nothing(world, levels, login, overrides, text):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    page = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/cycles/new/", {**form_data(C1D1, **overrides), "save": ""}
    )
    assert page.status_code == 200
    assert text in page.content.decode()
    assert not Cycle.objects.exists()


def test_screen_refuses_dosing_after_death(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    PatientEventFactory(patient=patient, kind="death", date=C1D1 - datetime.timedelta(days=3), cause="infection")
    page = login(world["coordinator_a"]).post(f"/patients/{patient.pk}/cycles/new/", {**form_data(C1D1), "save": ""})
    assert "No dosing after death on 2024-02-27" in page.content.decode()
    assert not Cycle.objects.exists()


def test_investigator_reads_but_cannot_record_and_records_deviations(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["investigator"])
    assert client.get(f"/patients/{patient.pk}/dosing/").status_code == 200
    assert client.post(f"/patients/{patient.pk}/cycles/new/", form_data(C1D1)).status_code == 403
    response = client.post(
        f"/patients/{patient.pk}/deviations/new/",
        {"kind": "safety_check", "cycle_number": 1, "date": C1D1.isoformat(), "reason": "PI decision"},
    )
    assert response.status_code == 302
    deviations = client.get(f"/trials/{world['trial'].pk}/deviations/").content.decode()
    assert "PI decision" in deviations and patient.subject_id in deviations


# --- API -------------------------------------------------------------------------------


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    def as_user(user):  # type: ignore[no-untyped-def]
        _, key = token_issue(user=user, name="test")
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
        return client

    return as_user


def api_body(day1: datetime.date, **overrides):  # type: ignore[no-untyped-def]
    body: dict = {
        "day1": day1.isoformat(), "lab_date": (day1 - datetime.timedelta(days=1)).isoformat(), "platelets": 120,
        "anc": 2.0, "acute_gvhd_grade": 0, "liver_gvhd": False, "sos": False, "height_cm": 170, "weight_kg": 70,
    }  # fmt: skip
    body.update(overrides)
    return body


def test_api_create_and_list_cycles(world, levels, api):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = api(world["coordinator_a"])
    url = f"/api/v1/patients/{patient.pk}/cycles/"
    created = client.post(url, api_body(C1D1), content_type="application/json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert created["ETag"] == '"1"'
    assert (body["number"], body["due_date"], body["day1"], body["dose_level"]) == (1, "2024-02-19", "2024-03-01", 3)
    assert (body["bsa_m2"], body["dose_mg"], body["delay_days"], body["reduced"]) == (1.82, 0.91, 0, False)
    listed = client.get(url).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    panels = client.get(f"/api/v1/patients/{patient.pk}/lab-panels/").json()
    assert panels["count"] == 1


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"height_cm": 1.7}, "height_cm", "did you mean 170 cm"),
        ({"weight_kg": 700}, "weight_kg", "outside the plausible range"),
        ({"lab_date": "2024-02-30"}, "lab_date", "Date has wrong format"),
        ({"platelets": 10}, "non_field_errors", "safety check did not pass"),
    ],
)
def test_api_bad_input_is_400_naming_the_field(world, levels, api, overrides, field, text):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    response = api(world["coordinator_a"]).post(
        f"/api/v1/patients/{patient.pk}/cycles/", api_body(C1D1, **overrides), content_type="application/json"
    )
    assert response.status_code == 400
    assert text in " ".join(response.json()["errors"][field])
    assert not Cycle.objects.exists()


def test_api_other_site_is_404(world, levels, api):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT, site="site_b")
    client = api(world["coordinator_a"])
    assert client.get(f"/api/v1/patients/{patient.pk}/cycles/").status_code == 404
    response = client.post(f"/api/v1/patients/{patient.pk}/cycles/", api_body(C1D1), content_type="application/json")
    assert response.status_code == 404 and not Cycle.objects.exists()


@pytest.mark.parametrize("count", [3, 30])
def test_api_cycle_list_constant_queries(world, levels, api, django_assert_num_queries, count):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    for n in range(1, count + 1):
        CycleFactory(patient=patient, number=n, day1=C1D1 + datetime.timedelta(days=28 * n))
    client = api(world["coordinator_a"])
    client.get(f"/api/v1/patients/{patient.pk}/cycles/")  # warm the token/grant path
    with django_assert_num_queries(QUERIES_API_LIST):
        assert client.get(f"/api/v1/patients/{patient.pk}/cycles/").json()["count"] == count


# token with its user, the account's lockout state (axes: username, address), grants, patient, count, page
QUERIES_API_LIST = 7


# --- calendar and worklist -----------------------------------------------------------------


def test_worklist_shows_overdue_three_month_mrd(world, levels, login):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    hct = today - datetime.timedelta(days=130)  # 3-month MRD due day +91, window closed day +105
    patient = enrolled(world, levels, hct)
    CycleFactory(
        patient=patient, number=1, due_date=hct + datetime.timedelta(days=40), day1=hct + datetime.timedelta(days=50)
    )
    elsewhere = enrolled(world, levels, hct, site="site_b")
    page = login(world["coordinator_a"]).get(f"/trials/{world['trial'].pk}/worklist/").content.decode()
    assert patient.subject_id in page and elsewhere.subject_id not in page
    assert "MRD 3 months after HCT: <strong>overdue</strong>" in page
    calendar = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/calendar/").content.decode()
    assert "MRD 3 months after HCT" in calendar and "<strong>overdue</strong>" in calendar


def test_calendar_marks_done_and_not_applicable_after_death(world, levels, login):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    hct = today - datetime.timedelta(days=200)
    patient = enrolled(world, levels, hct)
    AssessmentFactory(patient=patient, kind="mrd", date=hct + datetime.timedelta(days=92))
    PatientEventFactory(patient=patient, kind="death", date=hct + datetime.timedelta(days=150), cause="gvhd")
    page = login(world["coordinator_a"]).get(f"/patients/{patient.pk}/calendar/").content.decode()
    assert "status-done" in page and "not applicable" in page
    worklist = login(world["coordinator_a"]).get(f"/trials/{world['trial'].pk}/worklist/").content.decode()
    assert patient.subject_id not in worklist


def test_worklist_leaves_out_patients_whose_follow_up_has_ended(world, levels, login):  # type: ignore[no-untyped-def]
    """PROTOCOL 7: follow-up ends 3 years after the last dose, or with death or withdrawal;
    their missed assessments stay overdue on the calendar (and are data-cleaning queries)."""
    today = timezone.localdate()
    days = datetime.timedelta

    def treated(hct, last_dose_ago):  # type: ignore[no-untyped-def]
        # C1D1 at day +50; the 3-month MRD (window closed at day +105) never done; EOT on the last dose.
        patient = enrolled(world, levels, hct)
        CycleFactory(patient=patient, number=1, due_date=hct + days(40), day1=hct + days(50))
        CycleFactory(patient=patient, number=2, due_date=today - days(last_dose_ago), day1=today - days(last_dose_ago))
        PatientEventFactory(
            patient=patient, kind="end_of_treatment", date=today - days(last_dose_ago), reason="completed"
        )
        return patient

    ended = treated(today - days(3 * 365 + 200), last_dose_ago=3 * 365 + 1)
    following = treated(today - days(3 * 365 + 200), last_dose_ago=3 * 365)  # its last day of follow-up
    dead = enrolled(world, levels, today - days(130))
    PatientEventFactory(patient=dead, kind="death", date=today - days(1), cause="gvhd")
    withdrawn = enrolled(world, levels, today - days(130))
    PatientEventFactory(patient=withdrawn, kind="withdrawal", date=today - days(1))
    client = login(world["coordinator_a"])
    page = client.get(f"/trials/{world['trial'].pk}/worklist/").content.decode()
    assert following.subject_id in page and "MRD 3 months after HCT: <strong>overdue</strong>" in page
    for patient in (ended, dead, withdrawn):
        assert patient.subject_id not in page
        calendar = client.get(f"/patients/{patient.pk}/calendar/").content.decode()
        assert "MRD 3 months after HCT" in calendar and "<strong>overdue</strong>" in calendar


def _patients_with_data(world, levels, n):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    for i in range(n):
        hct = today - datetime.timedelta(days=60 + 5 * i)
        p = enrolled(world, levels, hct)
        CycleFactory(
            patient=p, number=1, due_date=hct + datetime.timedelta(days=40), day1=hct + datetime.timedelta(days=45)
        )
        AssessmentFactory(patient=p, kind="mrd", date=hct + datetime.timedelta(days=44))


@pytest.mark.parametrize("count", [3, 30])
def test_worklist_constant_queries(world, levels, login, django_assert_num_queries, count):  # type: ignore[no-untyped-def]
    _patients_with_data(world, levels, count)
    client = login(world["coordinator_a"])
    url = f"/trials/{world['trial'].pk}/worklist/"
    client.get(url)
    with django_assert_num_queries(QUERIES_WORKLIST):
        assert client.get(url).status_code == 200


# Session, user, grants, trial; protocol versions, patients, sites; plain rows of events,
# cycles, assessments and consents (with their version); the session save (3).
QUERIES_WORKLIST = 14


@pytest.mark.parametrize("count", [3, 30])
def test_dosing_tab_constant_queries(world, levels, login, django_assert_num_queries, count):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    for n in range(1, count + 1):
        CycleFactory(
            patient=patient,
            number=n,
            day1=C1D1 + datetime.timedelta(days=28 * n),
            reduced=n % 2 == 0,
            reduction_reason="cytopenia" if n % 2 == 0 else "",
        )
        ConcomitantMedicationFactory(patient=patient)
        DeviationFactory(patient=patient, cycle_number=n)
    client = login(world["investigator"])
    url = f"/patients/{patient.pk}/dosing/"
    client.get(url)
    with django_assert_num_queries(QUERIES_DOSING_TAB):
        assert client.get(url).status_code == 200


# Issue 12 added one query for the open-query badges and one for the SDV marks; issue 19
# one per list of voided records shown under the lab panels and the medications.
QUERIES_DOSING_TAB = 20


# --- concomitant medications -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"agent": "other", "start": "2024-03-01"}, "other_agent", "Name the agent"),
        ({"agent": "dasatinib", "start": "2024-03-01", "stop": "2024-02-01"}, "stop", "on or after the start date"),
    ],
)
def test_medication_bad_input(world, levels, login, data, field, text):  # type: ignore[no-untyped-def]
    from dosing.models import ConcomitantMedication

    patient = enrolled(world, levels, HCT)
    page = login(world["coordinator_a"]).post(f"/patients/{patient.pk}/medications/new/", data)
    assert page.status_code == 200 and text in page.content.decode()
    assert not ConcomitantMedication.objects.exists()


def test_tki_refused_for_ph_negative_patient(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    patient.ph_positive = False
    patient._change_reason = "test"
    patient.save()
    page = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/medications/new/", {"agent": "imatinib", "start": "2024-03-01"}
    )
    assert "allowed for Ph+ ALL only" in page.content.decode()


def test_medication_stop_needs_reason(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    client = login(world["coordinator_a"])
    created = client.post(f"/patients/{patient.pk}/medications/new/", {"agent": "dasatinib", "start": "2024-03-01"})
    assert created.status_code == 302
    medication = patient.medications.get()
    url = f"/medications/{medication.pk}/edit/"
    base = {"agent": "dasatinib", "start": "2024-03-01", "stop": "2024-06-01", "version": 1}
    no_reason = client.post(url, base)
    assert "A reason for change is required" in no_reason.content.decode()
    assert client.post(url, {**base, "reason_for_change": "stopped for GI toxicity"}).status_code == 302
    medication.refresh_from_db()
    assert medication.stop == datetime.date(2024, 6, 1) and medication.version == 2
    assert medication.history.first().history_change_reason == "stopped for GI toxicity"


@pytest.mark.parametrize("count", [3, 30])
def test_trial_deviation_list_constant_queries(world, levels, login, django_assert_num_queries, count):  # type: ignore[no-untyped-def]
    for _ in range(count):
        DeviationFactory(patient=enrolled(world, levels, HCT), cycle_number=1)
    client = login(world["investigator"])
    url = f"/trials/{world['trial'].pk}/deviations/"
    client.get(url)
    with django_assert_num_queries(QUERIES_DEVIATIONS):
        assert client.get(url).content.decode().count("test deviation") == count


# Issue 16 item 4: one more for the enrolments recorded outside the open slot.
QUERIES_DEVIATIONS = 9


@pytest.mark.parametrize("count", [3, 30])
def test_api_lab_panel_list_constant_queries(world, levels, api, django_assert_num_queries, count):  # type: ignore[no-untyped-def]
    from tests.factories import LabPanelFactory

    patient = enrolled(world, levels, HCT)
    for n in range(count):
        LabPanelFactory(patient=patient, date=C1D1 + datetime.timedelta(days=n))
    client = api(world["coordinator_a"])
    url = f"/api/v1/patients/{patient.pk}/lab-panels/"
    client.get(url)
    with django_assert_num_queries(QUERIES_API_LIST):
        assert client.get(url).json()["count"] == count


def test_investigator_documents_return_to_full_dose_on_screen(world, levels, login):  # type: ignore[no-untyped-def]
    patient = enrolled(world, levels, HCT)
    cycle = CycleFactory(patient=patient, reduced=True, reduction_reason="cytopenia")
    client = login(world["investigator"])
    assert "Document return to full dose" in client.get(f"/patients/{patient.pk}/dosing/").content.decode()
    url = f"/cycles/{cycle.pk}/full-dose/"
    assert "A reason for change is required" in client.post(url, {"version": 1}).content.decode()
    saved = client.post(url, {"version": 1, "reason_for_change": "counts recovered"})
    assert saved.status_code == 302, saved.content.decode()[-1500:]
    cycle.refresh_from_db()
    assert cycle.full_dose_restored and cycle.version == 2
    assert login(world["coordinator_a"]).get(url).status_code == 403


# Issue 19 (19): one rule per date, shown with its reason.


def test_no_cycle_is_due_before_enrolment(world, levels, login):  # type: ignore[no-untyped-def]
    p = PatientFactory(site=world["site_a"], trial=world["trial"])
    TransplantFactory(patient=p, date=HCT)
    page = login(world["coordinator_a"]).get(f"/patients/{p.pk}/dosing/").content.decode()
    assert "No cycle is due before enrolment" in page
    assert "Cycle 1 due" not in page


def test_c1_is_due_from_enrolment_and_the_screen_says_why(world, levels, login):  # type: ignore[no-untyped-def]
    enrolled_on = HCT + datetime.timedelta(days=60)  # inside the day +40..+100 window
    p = PatientFactory(site=world["site_a"], trial=world["trial"], dose_level=levels[3], enrolled_on=enrolled_on)
    TransplantFactory(patient=p, date=HCT)
    ConsentFactory(patient=p, date=enrolled_on - datetime.timedelta(days=2))
    client = login(world["coordinator_a"])
    page = client.get(f"/patients/{p.pk}/dosing/").content.decode()
    assert (
        "Cycle 1 due 2024-03-10: C1D1 window day +40..+100 after HCT (2024-02-19 to 2024-04-19), "
        "from enrolment on 2024-03-10." in page
    )
    url = f"/patients/{p.pk}/cycles/new/"
    before = client.post(url, {**form_data(enrolled_on - datetime.timedelta(days=1)), "save": "1"})
    assert before.status_code == 200 and "too early" in before.content.decode()
    assert not Cycle.objects.exists()
    day1 = HCT + datetime.timedelta(days=64)
    assert client.post(url, {**form_data(day1), "save": "1"}).status_code == 302
    cycle = Cycle.objects.get()
    assert (cycle.due_date, cycle.delay_days) == (enrolled_on, 0)
    page = client.get(f"/patients/{p.pk}/dosing/").content.decode()
    assert "given: C1D1 on day +64 after HCT; the window is +60 to +100, so no delay" in page
    assert "Cycle 2 due 2024-04-11: C1D1 2024-03-14 + 28 days" in page


def test_calendar_says_why_each_assessment_is_due(world, levels, login):  # type: ignore[no-untyped-def]
    p = enrolled(world, levels, HCT)
    CycleFactory(patient=p, number=1, day1=C1D1, due_date=C1D1, dose_level=levels[3])
    page = login(world["coordinator_a"]).get(f"/patients/{p.pk}/calendar/").content.decode()
    assert "due 2024-04-10: 91 days after HCT 2024-01-10, window -14..+14 days" in page
    assert "missed: none recorded before the dose" in page
