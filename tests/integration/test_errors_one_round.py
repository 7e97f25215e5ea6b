"""Errors come in one round (issue 19 item 7): a registration or a screening with several
problems reports every one of them at once, through the service, the form (the error
summary lists them all), the API (one 400 with every field) and the bundle import (every
path); and eligibility outcomes read pass / fail / missing data distinctly, in words,
icons and colours, with human labels for the codes."""

import datetime
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.errors import Problems
from exchange.bundle import BundleInvalid, bundle_import
from exchange.generate import generate_trial
from patients import services
from patients.models import Patient, Screening
from tests.factories import ConsentFactory, PatientFactory, ScreeningFactory, TransplantFactory
from tests.page_walk import visible_text

pytestmark = pytest.mark.django_db

D = datetime.date
NEXT_YEAR = datetime.date.today().year + 1


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    p = PatientFactory(trial=world["trial"], site=world["site_a"], subject_id="SA-001", birth_year=1975)
    TransplantFactory(patient=p, date=D(2024, 1, 10))
    return p


def _summary(html: str) -> list[str]:
    """The items of the error summary at the top of the form."""
    match = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert match, "no error summary on the page"
    return [visible_text(item).strip() for item in re.findall(r"<li>(.*?)</li>", match.group(0), re.S)]


# --- the shared collector ----------------------------------------------------------


def test_problems_collects_every_refusal_and_raises_them_together():  # type: ignore[no-untyped-def]
    problems = Problems()
    problems.add("date", "first")
    with problems.collect():
        raise ValidationError({"date": ["second"], "lab_date": ["third"]})
    with problems.collect():
        raise ValidationError("whole entry")
    with pytest.raises(ValidationError) as refused:
        problems.raise_if_any()
    assert refused.value.message_dict == {
        "date": ["first", "second"],
        "lab_date": ["third"],
        "__all__": ["whole entry"],
    }


# --- services --------------------------------------------------------------------


def test_registration_reports_site_subject_id_and_birth_year_together(world):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        services.patient_register(
            user=world["coordinator_a"],
            trial=world["trial"],
            data={"site": world["site_b"], "subject_id": "not an id", "sex": "female", "birth_year": NEXT_YEAR},
        )
    errors = refused.value.message_dict
    assert set(errors) == {"site", "subject_id", "birth_year"}, errors
    assert "own site" in errors["site"][0] and "not a subject ID" in errors["subject_id"][0]
    assert "in the future" in errors["birth_year"][0]
    assert not Patient.objects.exists()


def test_registration_reports_a_taken_id_with_the_other_problems(world, patient):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        services.patient_register(
            user=world["coordinator_a"],
            trial=world["trial"],
            data={"site": world["site_a"], "subject_id": "sa-0001", "sex": "male", "birth_year": NEXT_YEAR},
        )
    errors = refused.value.message_dict
    assert set(errors) == {"subject_id", "birth_year"}, errors
    assert "looks like SA-001" in errors["subject_id"][0]


BAD_SCREENING = {
    "date": D(2024, 3, 1),
    "lab_date": D(2024, 3, 5),  # after the screening date
    "platelets_10e9_l": Decimal("50000"),  # typed in cells/uL
    "anc_10e9_l": Decimal("1200"),
    "agvhd_grade": 7,
}


def test_screening_reports_every_problem_at_once(world, patient):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        services.screening_record(
            user=world["coordinator_a"], patient=patient, data={**BAD_SCREENING, "colour": "blue"}
        )
    errors = refused.value.message_dict
    assert set(errors) == {"lab_date", "platelets_10e9_l", "anc_10e9_l", "agvhd_grade", "colour"}, errors
    assert not Screening.objects.exists()


def test_an_event_without_kind_or_date_names_both(world, patient):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        services.event_record(user=world["coordinator_a"], patient=patient, data={"kind": "", "date": None})
    assert set(refused.value.message_dict) == {"kind", "date"}


# --- forms -----------------------------------------------------------------------


def test_register_form_shows_form_and_rule_errors_in_one_round(world, login, patient):  # type: ignore[no-untyped-def]
    response = login(world["coordinator_a"]).post(
        f"/trials/{world['trial'].pk}/patients/new/",
        {"site": world["site_a"].pk, "subject_id": "SA-0001", "sex": "", "birth_year": NEXT_YEAR},
    )
    assert response.status_code == 200
    items = _summary(response.content.decode())
    # "sex" is the form's own check; the look-alike ID and the future birth year are the service's.
    assert any(i.startswith("Sex:") for i in items), items
    assert any(i.startswith("Subject ID:") and "looks like SA-001" in i for i in items), items
    assert any(i.startswith("Birth year:") and "in the future" in i for i in items), items
    assert f"Please correct {len(items)} problems" in response.content.decode()
    assert Patient.objects.count() == 1


def test_screening_form_shows_form_and_rule_errors_in_one_round(world, login, patient):  # type: ignore[no-untyped-def]
    response = login(world["coordinator_a"]).post(
        f"/patients/{patient.pk}/screenings/new/",
        {
            "date": "2024-03-01",
            "lab_date": "2024-03-05",
            "platelets_10e9_l": "fifty",  # the form's own check: not a number
            "anc_10e9_l": "1200",
            "agvhd_grade": "0",
        },
    )
    assert response.status_code == 200
    items = _summary(response.content.decode())
    assert any(i.startswith("Platelets") and "number" in i for i in items), items
    assert any(i.startswith("Labs drawn on:") and "after the screening date" in i for i in items), items
    assert any(i.startswith("ANC") and "1.2" in i for i in items), items
    assert not Screening.objects.exists()


# --- API ---------------------------------------------------------------------------


def test_api_registration_answers_every_field_in_one_400(world, patient, client):  # type: ignore[no-untyped-def]
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        "/api/v1/patients/",
        {"trial": "TRIAL-T", "site": "SA", "subject_id": "SA-0001", "sex": "robot", "birth_year": NEXT_YEAR},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert {"sex", "subject_id", "birth_year"} <= set(errors), errors
    assert "looks like SA-001" in errors["subject_id"][0]


def test_api_screening_answers_every_field_in_one_400(world, patient, client):  # type: ignore[no-untyped-def]
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        f"/api/v1/patients/{patient.pk}/screenings/",
        {
            "date": "2024-03-01",
            "lab_date": "yesterday",
            "platelets_10e9_l": 50000,
            "anc_10e9_l": 1200,
            "agvhd_grade": 7,
        },
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert set(errors) == {"lab_date", "platelets_10e9_l", "anc_10e9_l", "agvhd_grade"}, errors
    assert not Screening.objects.exists()


# --- bundle import -----------------------------------------------------------------


def test_bundle_import_lists_every_path_of_a_registration_a_screening_and_a_cycle() -> None:
    bundle = generate_trial(16, seed=1)
    # (A look-alike subject ID is refused by the bundle's own cross-check, before any write.)
    bundle["patients"][4]["birth_year"] = NEXT_YEAR
    s = bundle["patients"][5]["screenings"][0]
    s["lab_date"] = "2030-01-01"  # after the screening date (and in the future)
    s["platelets_10e9_l"] = 50000
    s["anc_10e9_l"] = 1200
    cycle = bundle["patients"][3]["cycles"][0]
    hct = datetime.date.fromisoformat(bundle["patients"][3]["transplant"]["date"])
    cycle["day1"] = (hct - datetime.timedelta(days=5)).isoformat()  # before the HCT...
    cycle["labs"] = {**cycle["labs"], "date": (hct - datetime.timedelta(days=6)).isoformat(), "platelets": 50000}
    with pytest.raises(BundleInvalid) as refused:
        bundle_import(bundle)
    problems = refused.value.problems
    # ...and a unit slip in its labs: both, not the day 1 first and the labs on the next import.
    assert any(p.startswith("patients[3].cycles[0].day1: ") for p in problems), problems
    assert any(p.startswith("patients[3].cycles[0].labs.platelets: ") for p in problems), problems
    for start in (
        "patients[4].birth_year: ",
        "patients[5].screenings[0].lab_date: ",
        "patients[5].screenings[0].platelets_10e9_l: ",
        "patients[5].screenings[0].anc_10e9_l: ",
    ):
        assert any(p.startswith(start) for p in problems), (start, problems)


# --- pass / fail / missing: words, icons, colours, labels ---------------------------

CRITERIA = [
    {"number": 1, "key": "age", "status": "pass", "reason": "age 49 at consent (2024 - 1975); range is 16 to 75"},
    {"number": 3, "key": "cr_at_day30", "status": "missing", "reason": "remission status at day +30 not recorded"},
    {"number": 4, "key": "high_risk", "status": "fail", "reason": "(b) transplanted in cr1; (c) mac conditioning"},
    {"number": 2, "key": "diagnosis", "status": "missing", "reason": "diagnosis b_all; CD22 status not recorded"},
]


def _badges(html: str) -> list[tuple[str, str]]:
    """(colour class, visible words) of every outcome badge."""
    return [
        (css, " ".join(visible_text(inner).split()))
        for css, inner in re.findall(r'<span class="outcome outcome-(\w+)"[^>]*>(.*?</span>.*?)</span>', html, re.S)
    ]


def test_screening_page_tells_pass_fail_and_missing_apart(world, login, patient):  # type: ignore[no-untyped-def]
    screening = ScreeningFactory(patient=patient, date=D(2024, 3, 1), result="not_eligible", criteria=CRITERIA)
    html = login(world["coordinator_a"]).get(f"/screenings/{screening.pk}/").content.decode()
    badges = _badges(html)
    assert ("pass", "✓ Pass") in badges and ("fail", "✗ Fail") in badges and ("missing", "? Missing data") in badges
    assert ("fail", "✗ Not eligible (screen failure): 1 criterion failed, 2 missing") in badges, badges
    text = visible_text(html)
    assert "CR at day +30 after HCT" in text and "cr_at_day30" not in text
    assert "Myeloablative (MAC) conditioning" in text and " mac " not in text and "transplanted in CR1" in text
    assert "CD22+ B-cell ALL" in text and "b_all" not in text


def test_missing_data_alone_reads_incomplete_never_failed(world, login, patient):  # type: ignore[no-untyped-def]
    criteria = [c for c in CRITERIA if c["status"] != "fail"]
    screening = ScreeningFactory(patient=patient, date=D(2024, 3, 1), result="incomplete", criteria=criteria)
    client = login(world["coordinator_a"])
    for url in (f"/screenings/{screening.pk}/", f"/patients/{patient.pk}/eligibility/"):
        html = client.get(url).content.decode()
        badges = _badges(html)
        assert ("missing", "? Incomplete: 2 criteria missing") in badges, (url, badges)
        assert not any(css == "fail" for css, _ in badges), (url, badges)
        assert "screen failure" not in visible_text(html).lower() and "failed" not in visible_text(html).lower()
    eligibility = client.get(f"/patients/{patient.pk}/eligibility/").content.decode()
    assert "CR at day +30 after HCT" in visible_text(eligibility) and "cr_at_day30" not in visible_text(eligibility)
    listing = client.get(f"/trials/{world['trial'].pk}/patients/").content.decode()
    assert ("missing", "? Incomplete (missing data)") in _badges(listing)


def test_a_real_screening_with_missing_facts_is_incomplete_on_its_page(world, login, patient):  # type: ignore[no-untyped-def]
    ConsentFactory(patient=patient, date=D(2024, 2, 20))
    screening = services.screening_record(user=world["coordinator_a"], patient=patient, data={"date": D(2024, 3, 1)})
    assert screening.result == "incomplete"
    missing = sum(1 for c in screening.criteria if c["status"] == "missing")
    html = login(world["coordinator_a"]).get(f"/screenings/{screening.pk}/").content.decode()
    word = "criterion" if missing == 1 else "criteria"
    assert ("missing", f"? Incomplete: {missing} {word} missing") in _badges(html)
