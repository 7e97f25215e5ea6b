"""Safety screens: forms with errors next to fields, signing, scope, query counts."""

import datetime
from decimal import Decimal

import pytest

from safety import services
from safety.models import AdverseEvent, DltAdjudication, LabProposalDismissal
from tests.factories import PASSWORD, LabPanelFactory
from tests.integration.test_safety_services import NAUSEA, PLATELETS, adjudicate, ae_data, make_patient, term


def form_body(**overrides):  # type: ignore[no-untyped-def]
    body = {
        "term": term(NAUSEA).pk,
        "grade": "2",
        "onset": "2024-04-10",
        "attribution": "possible",
        "action": "none",
        "expected": "unknown",
    }
    body.update(overrides)
    return body


def test_record_an_ae_through_the_form(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    page = client.get(f"/patients/{patient.pk}/adverse-events/new/").content.decode()
    assert 'data-ctcae-search="/ctcae/search/"' in page and "safety_ae.js" in page
    response = client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body())
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/safety/"
    assert AdverseEvent.objects.get().term.meddra_code == NAUSEA


def test_bad_grade_is_shown_next_to_the_field(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    response = client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body(term=term(PLATELETS).pk, grade="5"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_grade-error"' in page and "Grade 5 is not defined for" in page
    assert not AdverseEvent.objects.exists()


def test_follow_up_form_needs_a_reason(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data())
    client = login(world["coordinator_a"])
    url = f"/adverse-events/{ae.pk}/edit/"
    assert client.post(url, form_body(resolved="2024-04-20", version="1")).status_code == 200
    response = client.post(url, form_body(resolved="2024-04-20", version="1", reason_for_change="resolved"))
    assert response.status_code == 302
    ae.refresh_from_db()
    assert ae.version == 2 and ae.resolved == datetime.date(2024, 4, 20)
    assert "resolved" in client.get(f"/adverse-events/{ae.pk}/history/").content.decode()


def test_term_search_json(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    results = client.get("/ctcae/search/?q=platelet").json()["results"]
    assert results[0]["meddra_code"] == PLATELETS and results[0]["grades"] == [1, 2, 3, 4]
    assert client.get("/ctcae/search/?q=").json()["results"] == []


def test_term_search_json_finds_synonyms_and_points_gvhd_to_its_form(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    vod = client.get("/ctcae/search/?q=VOD").json()
    assert vod["results"][0]["term"] == "Sinusoidal obstruction syndrome" and vod["results"][0]["grades"] == [
        2,
        3,
        4,
        5,
    ]
    thrombo = [r["term"] for r in client.get("/ctcae/search/?q=thrombo").json()["results"]]
    assert {"Platelet count decreased", "Thromboembolic event"} <= set(thrombo)
    assert "GVHD episode" in client.get("/ctcae/search/?q=gvhd").json()["hint"]


def test_ae_form_preselects_nothing_and_offers_the_terms_grades(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    page = client.get(f"/patients/{patient.pk}/adverse-events/new/").content.decode()
    assert '<option value="" selected>— choose a term —</option>' in page
    assert '<option value="" selected>— choose a grade —</option>' in page
    assert 'data-grades="1 2 3 4">Platelet count decreased' in page
    # Without JS, a posted term narrows the grades offered to that term's (SOS: 2-5).
    sos = term("10063675")
    page = client.post(f"/patients/{patient.pk}/adverse-events/new/", form_body(term=sos.pk, grade="")).content.decode()
    grade_select = page[page.index('name="grade"') : page.index("</select>", page.index('name="grade"'))]
    assert '<option value="1"' not in grade_select and '<option value="5"' in grade_select
    assert 'id="id_grade-error"' in page and not AdverseEvent.objects.exists()


def test_lab_proposal_confirm_and_dismiss_screens(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    panel = LabPanelFactory(
        patient=patient, date=datetime.date(2024, 4, 15), platelets=Decimal("40"), anc=Decimal("0.8"), hemoglobin=None
    )
    client = login(world["coordinator_a"])
    page = client.get(f"/patients/{patient.pk}/safety/").content.decode()
    assert "Platelet count decreased grade 3" in page
    client.post(f"/lab-panels/{panel.pk}/proposals/", {"meddra_code": PLATELETS, "attribution": "possible"})
    client.post(f"/lab-panels/{panel.pk}/proposals/", {"meddra_code": "10029366", "reason": "haemolysed sample"})
    assert AdverseEvent.objects.get().source == "lab"
    assert LabProposalDismissal.objects.get().reason == "haemolysed sample"
    assert "AEs proposed from lab values" not in client.get(f"/patients/{patient.pk}/safety/").content.decode()


def test_investigator_adjudicates_with_signature_from_the_dlt_page(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3, attribution="probable"))
    client = login(world["investigator"])
    page = client.get(f"/trials/{world['trial'].pk}/dlt/").content.decode()
    assert "Non-haematological grade &gt;= 3, related" in page and "awaiting adjudication" in page
    url = f"/patients/{patient.pk}/dlt/adjudicate/?rule=non_hematologic_grade3_related&event_date=2024-04-10&adverse_event={ae.pk}"
    form = client.get(url).content.decode()
    assert "DLT adjudication: I confirm this decision" in form
    body = {
        "rule": "non_hematologic_grade3_related",
        "adverse_event": ae.pk,
        "event_date": "2024-04-10",
        "is_dlt": "true",
        "rationale": "related, grade 3",
        "password": "wrong",
    }
    response = client.post(url, body)
    assert response.status_code == 200 and "password is not correct" in response.content.decode()
    assert not DltAdjudication.objects.exists()
    assert client.post(url, {**body, "password": PASSWORD}).status_code == 302
    adj = DltAdjudication.objects.get()
    detail = client.get(f"/dlt-adjudications/{adj.pk}/").content.decode()
    assert world["investigator"].get_full_name() in detail and "DLT adjudication: I confirm this decision" in detail
    after = client.get(f"/trials/{world['trial'].pk}/dlt/").content.decode()
    assert "<strong>DLT</strong>" in after and "confirmed DLT on 2024-04-10" in after


def test_coordinator_cannot_open_the_adjudication_form(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    assert client.get(f"/patients/{patient.pk}/dlt/adjudicate/").status_code == 403
    assert client.post(f"/patients/{patient.pk}/dlt/adjudicate/", {"password": PASSWORD}).status_code == 403


def test_site_b_objects_are_404_for_coordinator_a(world, login):  # type: ignore[no-untyped-def]
    """The walker misses paths with a hyphen; these are checked here explicitly."""
    patient_b = make_patient(world, "site_b")
    ae = services.ae_record(user=world["coordinator_b"], patient=patient_b, data=ae_data())
    panel = LabPanelFactory(patient=patient_b)
    adj = adjudicate(world, patient_b)
    client = login(world["coordinator_a"])
    for url in (
        f"/patients/{patient_b.pk}/safety/",
        f"/patients/{patient_b.pk}/adverse-events/new/",
        f"/patients/{patient_b.pk}/gvhd/new/",
        f"/patients/{patient_b.pk}/dlt/adjudicate/",
        f"/adverse-events/{ae.pk}/edit/",
        f"/adverse-events/{ae.pk}/history/",
        f"/lab-panels/{panel.pk}/proposals/",
        f"/dlt-adjudications/{adj.pk}/",
        f"/trials/{world['other'].pk}/dlt/",
        f"/trials/{world['other'].pk}/ae-summary/",
    ):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 404, (method, url, response.status_code)
            assert patient_b.subject_id not in response.content.decode()
    page = client.get(f"/trials/{world['trial'].pk}/dlt/").content.decode()
    assert patient_b.subject_id not in page


@pytest.mark.parametrize("path", ["patient", "dlt", "summary"])
def test_pages_cost_a_fixed_number_of_queries(world, login, django_assert_max_num_queries, path):  # type: ignore[no-untyped-def]
    client = login(world["investigator"])
    first = make_patient(world)

    def add(n):  # type: ignore[no-untyped-def]
        for _ in range(n):
            p = make_patient(world) if path != "patient" else first
            ae = services.ae_record(
                user=world["coordinator_a"], patient=p, data=ae_data(grade=3, serious=True, sae_important=True)
            )
            LabPanelFactory(patient=p, date=datetime.date(2024, 4, 15), platelets=Decimal("40"))
            adjudicate(world, p, adverse_event=ae, is_dlt=False)

    url = {
        "patient": f"/patients/{first.pk}/safety/",
        "dlt": f"/trials/{world['trial'].pk}/dlt/",
        "summary": f"/trials/{world['trial'].pk}/ae-summary/",
    }[path]
    add(1)
    with django_assert_max_num_queries(100) as small:
        assert client.get(url).status_code == 200
    add(6)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_gvhd_form(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    client = login(world["coordinator_a"])
    bad = client.post(f"/patients/{patient.pk}/gvhd/new/", {"kind": "acute", "onset": "2024-05-01"})
    assert bad.status_code == 200 and "MAGIC grade" in bad.content.decode()
    ok = client.post(
        f"/patients/{patient.pk}/gvhd/new/", {"kind": "chronic", "onset": "2024-05-01", "chronic_severity": "mild"}
    )
    assert ok.status_code == 302
    assert "Mild" in client.get(f"/patients/{patient.pk}/safety/").content.decode()
