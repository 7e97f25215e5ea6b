"""Patient screens: the coordinator's journey, errors next to the field, constant
query counts on the lists, and who may do what."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Patient, PatientEvent, Screening, Transplant
from tests.factories import (
    AssessmentFactory,
    DoseLevelFactory,
    PatientEventFactory,
    PatientFactory,
    ProtocolVersionFactory,
    ScreeningFactory,
    TransplantFactory,
)
from tests.integration.test_patients_services import open_slots

D = datetime.date


def _error_next_to(body: str, field: str, text: str) -> bool:
    """The message is rendered in the field's own error paragraph (core/field.html)."""
    marker = f'id="id_{field}-error"'
    start = body.find(marker)
    return start != -1 and text in body[start : start + 400]


def test_coordinator_journey_register_transplant_consent_screen_enrol(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    trial = world["trial"]
    ProtocolVersionFactory(trial=trial, version="1", effective=D(2017, 7, 1))
    DoseLevelFactory(trial=trial, level=1)
    open_slots(trial, {1: 3})

    response = client.post(
        f"/trials/{trial.pk}/patients/new/",
        {
            "site": world["site_a"].pk,
            "subject_id": "SA-001",
            "sex": "female",
            "race": "white",
            "birth_year": 1975,
            "diagnosis": "b_all",
            "cd22_positive": "true",
            "ph_positive": "false",
            "prior_lines": 2,
            "hct_ci": 1,
        },
    )
    patient = Patient.objects.get(subject_id="SA-001")
    assert response.status_code == 302 and patient.cd22_positive is True and patient.prior_lines == 2

    transplant = {
        "date": "2024-01-10",
        "disease_status": "cr2",
        "conditioning": "mac",
        "regimen": "tbi",
        "atg": "unknown",
        "donor_type": "matched_sibling",
        "graft_source": "peripheral_blood",
        "gvhd_prophylaxis": "cni_mtx",
        "mrd_before": "false",
        "mrd_after": "false",
        "cr_at_day30": "true",
    }
    assert client.post(f"/patients/{patient.pk}/transplant/", transplant).status_code == 302
    version = trial.protocol_versions.get()
    assert client.post(
        f"/patients/{patient.pk}/consents/new/", {"protocol_version": version.pk, "date": "2024-02-20"}
    ).status_code == 302  # fmt: skip
    response = client.post(
        f"/patients/{patient.pk}/screenings/new/",
        {
            "date": "2024-03-01",
            "lab_date": "2024-02-28",
            "platelets_10e9_l": "133",
            "anc_10e9_l": "2.1",
            "agvhd_grade": "0",
            "liver_gvhd": "false",
            "sos_history": "false",
        },
    )
    screening = Screening.objects.get(patient=patient)
    assert response.status_code == 302 and screening.result == "eligible"
    page = client.get(response["Location"]).content.decode()
    assert "(b) transplanted in CR2" in page and "Eligible" in page

    response = client.post(f"/patients/{patient.pk}/enrol/", {"enrolled_on": "2024-03-02", "version": 1})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.enrolled_on == D(2024, 3, 2) and patient.dose_level.level == 1
    page = client.get(f"/patients/{patient.pk}/eligibility/").content.decode()
    assert "2024-03-02" in page and "L1" in page and "Not enrolled" not in page


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    p = PatientFactory(site=world["site_a"], trial=world["trial"], diagnosis="b_all", cd22_positive=True)
    TransplantFactory(patient=p, date=D(2024, 1, 10))
    return p


@pytest.mark.parametrize(
    ("platelets", "text"),
    [("50000", "did you mean 50 x10^9/L?"), ("-1", "Platelets cannot be negative")],
)
def test_screening_form_shows_unit_slip_next_to_the_field(world, login, patient, platelets, text):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    response = client.post(
        f"/patients/{patient.pk}/screenings/new/",
        {"date": "2024-03-01", "lab_date": "2024-02-28", "platelets_10e9_l": platelets, "anc_10e9_l": "2"},
    )
    assert response.status_code == 200
    assert _error_next_to(response.content.decode(), "platelets_10e9_l", text)
    assert not Screening.objects.exists()


def test_second_death_shown_next_to_kind(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    PatientEventFactory(patient=patient, kind="death", date=D(2024, 6, 1), cause="gvhd")
    response = client.post(
        f"/patients/{patient.pk}/events/new/", {"kind": "death", "date": "2024-06-03", "cause": "infection"}
    )
    assert response.status_code == 200
    assert _error_next_to(response.content.decode(), "kind", "A death is already recorded (2024-06-01)")
    assert PatientEvent.objects.count() == 1


def test_relapse_after_death_shown_next_to_date(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    PatientEventFactory(patient=patient, kind="death", date=D(2024, 6, 1), cause="gvhd")
    response = client.post(
        f"/patients/{patient.pk}/events/new/", {"kind": "relapse", "date": "2024-07-01", "blasts_pct": "20"}
    )
    assert _error_next_to(response.content.decode(), "date", "Relapse 2024-07-01 is after death 2024-06-01")
    assert PatientEvent.objects.count() == 1


def test_transplant_edit_needs_a_reason(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    transplant = patient.transplant
    data = {
        "date": "2024-01-11",
        "disease_status": "cr1",
        "conditioning": "ric",
        "version": transplant.version,
        "reason_for_change": "",
    }
    response = client.post(f"/patients/{patient.pk}/transplant/", data)
    assert _error_next_to(response.content.decode(), "reason_for_change", "reason for change is required")
    response = client.post(f"/patients/{patient.pk}/transplant/", {**data, "reason_for_change": "source document"})
    assert response.status_code == 302
    transplant.refresh_from_db()
    assert transplant.date == D(2024, 1, 11) and transplant.version == 2


def test_enrol_refused_shows_why(world, login, patient):  # type: ignore[no-untyped-def]
    criteria = [
        {"key": "sos", "status": "fail", "reason": "history of SOS/VOD"},
        {"key": "cr_at_day30", "status": "missing", "reason": "remission status at day +30 not recorded"},
    ]
    ScreeningFactory(patient=patient, result="not_eligible", criteria=criteria)
    response = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/enrol/", {"enrolled_on": "2024-03-21", "version": 1}
    )
    assert _error_next_to(
        response.content.decode(),
        "enrolled_on",
        "not eligible (screen failure) (failed: history of SOS/VOD; missing: remission status at day +30 not recorded)",
    )
    patient.refresh_from_db()
    assert patient.enrolled_on is None


def test_investigator_reads_but_does_not_enter_data(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["investigator"])
    for url in ("eligibility/", "assessments/", "events/"):
        assert client.get(f"/patients/{patient.pk}/{url}").status_code == 200
    assert client.get(f"/patients/{patient.pk}/assessments/new/").status_code == 403
    assert client.post(f"/patients/{patient.pk}/events/new/", {"kind": "last_contact"}).status_code == 403
    # ...but may open the enrolment form, which offers the level choice (a deviation).
    page = client.get(f"/patients/{patient.pk}/enrol/").content.decode()
    assert "protocol deviation" in page


def test_other_site_coordinator_gets_404(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_b"])
    for url in ("eligibility/", "transplant/", "screenings/new/", "enrol/", "events/new/", "assessments/"):
        assert client.get(f"/patients/{patient.pk}/{url}").status_code == 404, url


def _populate(world, n):  # type: ignore[no-untyped-def]
    for _ in range(n):
        p = PatientFactory(site=world["site_a"], trial=world["trial"])
        TransplantFactory(patient=p)
        ScreeningFactory(patient=p)
        AssessmentFactory(patient=p)
        PatientEventFactory(patient=p)


@pytest.mark.parametrize("url", ["/trials/{trial}/patients/", "/patients/{first}/eligibility/"])
def test_pages_cost_a_fixed_number_of_queries(world, login, django_assert_num_queries, url):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    _populate(world, 3)
    first = Patient.objects.order_by("pk").first()
    for _ in range(2):  # the casebook page grows with more screenings of one patient too
        ScreeningFactory(patient=first, result="not_eligible")
    target = url.format(trial=world["trial"].pk, first=first.pk)
    with CaptureQueriesContext(connection) as few:
        assert client.get(target).status_code == 200
    _populate(world, 27)
    for _ in range(10):
        ScreeningFactory(patient=first)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(target)
    assert response.status_code == 200


def _subject_links(page: str) -> list[str]:
    return re.findall(r'<a href="/patients/\d+/">([^<]+)</a>', page)


def test_patient_list_shows_50_a_page_at_the_query_count_of_3(world, login):  # type: ignore[no-untyped-def]
    """120 patients: 50 rows a page by subject ID, the same SQL queries as 3 patients."""
    client = login(world["coordinator_a"])
    url = f"/trials/{world['trial'].pk}/patients/"
    _populate(world, 3)
    with CaptureQueriesContext(connection) as few:
        assert len(_subject_links(client.get(url).content.decode())) == 3
    _populate(world, 117)
    with CaptureQueriesContext(connection) as many:
        page = client.get(url).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    subjects = sorted(Patient.objects.filter(site=world["site_a"]).values_list("subject_id", flat=True))
    assert _subject_links(page) == subjects[:50] and "Page 1 of 3" in page and "120 patients" in page
    assert _subject_links(client.get(url, {"page": 3}).content.decode()) == subjects[100:]
    assert _subject_links(client.get(url, {"page": "x"}).content.decode()) == subjects[:50]  # a bad page: the first


def test_patient_list_search_by_subject_id_kept_in_page_links(world, login):  # type: ignore[no-untyped-def]
    for n in range(60):
        PatientFactory(site=world["site_a"], trial=world["trial"], subject_id=f"SA-{n:03d}")
    PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-X01")
    PatientFactory(site=world["site_b"], trial=world["trial"], subject_id="SB-001")  # another site: never shown
    client = login(world["coordinator_a"])
    url = f"/trials/{world['trial'].pk}/patients/"
    page = client.get(url, {"q": "x0"}).content.decode()
    assert _subject_links(page) == ["SA-X01"] and 'value="x0"' in page and "Page 1" not in page
    page = client.get(url, {"q": "sa-0"}).content.decode()
    assert len(_subject_links(page)) == 50 and '<a href="?q=sa-0&amp;page=2">' in page
    page = client.get(url, {"q": "sa-0", "page": 2}).content.decode()
    assert _subject_links(page) == [f"SA-{n:03d}" for n in range(50, 60)] and '<a href="?q=sa-0&amp;page=1">' in page
    assert _subject_links(client.get(url, {"q": "001"}).content.decode()) == ["SA-001"]
    assert "No patients match." in client.get(url, {"q": "nobody"}).content.decode()


def test_patient_list_shows_status(world, login, patient):  # type: ignore[no-untyped-def]
    ScreeningFactory(patient=patient, date=D(2024, 3, 1), result="not_eligible")
    ScreeningFactory(patient=patient, date=D(2024, 3, 5), result="eligible")
    page = login(world["coordinator_a"]).get(f"/trials/{world['trial'].pk}/patients/").content.decode()
    assert '2024-03-05: <span class="outcome outcome-pass" data-outcome="pass">' in page and "2024-01-10" in page
    assert "Eligible</span>" in page


def test_assessment_and_event_screens(world, login, patient):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    response = client.post(
        f"/patients/{patient.pk}/assessments/new/",
        {"kind": "bone_marrow", "date": "2024-04-10", "blasts_pct": "1.5", "response": "cr", "extramedullary": "false"},
    )
    assert response.status_code == 302
    assert "1.5" in client.get(f"/patients/{patient.pk}/assessments/").content.decode()
    response = client.post(f"/patients/{patient.pk}/assessments/new/", {"kind": "mrd", "date": "2024-04-10"})
    assert _error_next_to(response.content.decode(), "method", "needs its method")
    response = client.post(
        f"/patients/{patient.pk}/events/new/", {"kind": "end_of_treatment", "date": "2024-07-01", "reason": "completed"}
    )
    assert response.status_code == 302
    assert "reason: Completed" in client.get(f"/patients/{patient.pk}/events/").content.decode()
    assert Transplant.objects.count() == 1 and Decimal("1.5") == patient.assessments.get().blasts_pct


def test_every_form_error_is_listed_at_the_top_with_a_link_to_its_field(world, login):  # type: ignore[no-untyped-def]
    """Issue 19 item 7: one shared error summary (templates/core/error_summary.html)."""
    client = login(world["coordinator_a"])
    response = client.post(f"/trials/{world['trial'].pk}/patients/new/", {"subject_id": ""})
    assert response.status_code == 200, response.status_code
    body = response.content.decode()
    summary = body[body.index("data-error-summary") : body.index("</div>", body.index("data-error-summary"))]
    assert 'href="#id_subject_id"' in summary and 'href="#id_birth_year"' in summary
    assert summary.count("<li>") >= 3
