"""A signed DLT decision rests on its AE (issue 16 item 2): an edit of the AE's term, grade,
dates or attribution invalidates the decision's signature, puts it back on the DLT review,
marks the escalation as needing review (no escalation decision signed meanwhile) and shows
on the patient page, the dashboard, the escalation page and the API."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from analysis.services import computation_run, escalation_sign
from core.signatures import signatures_for
from safety import selectors, services
from tests.factories import PASSWORD
from tests.integration.test_escalation_service import _api
from tests.integration.test_safety_services import AS_OF, adjudicate, ae_data, make_patient
from trial.models import TrialComputation
from trial.services import computation_request

ESC = TrialComputation.Kind.ESCALATION


def _confirmed_then_downgraded(world):  # type: ignore[no-untyped-def]
    """Grade 3 nausea confirmed as a DLT, then downgraded to grade 2 by follow-up."""
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adj = adjudicate(world, patient, adverse_event=ae)
    [(_, before)] = signatures_for(adj)
    assert before.valid
    services.ae_update(user=world["coordinator_a"], ae=ae, changes={"grade": 2}, reason="source: grade 2 in the notes")
    adj.refresh_from_db()
    return patient, ae, adj


def _escalation(world):  # type: ignore[no-untyped-def]
    computation_request(world["trial"].pk, ESC)
    return computation_run(world["trial"].pk, ESC).data


def test_editing_the_ae_invalidates_the_signature_and_reopens_the_review(world):  # type: ignore[no-untyped-def]
    patient, ae, adj = _confirmed_then_downgraded(world)
    [(_, check)] = signatures_for(adj)
    assert check.status == "invalidated" and "grade 3 -> 2" in check.message
    assert adj.needs_readjudication and adj.evidence_changes == ("grade 3 -> 2",)
    [review] = selectors.trial_dlt_review(world["investigator"], world["trial"], AS_OF)
    assert review.readjudication == [adj]
    # Grade 2 is no longer a candidate, yet the decision stays on the page to supersede.
    assert not review.candidates and review.unflagged == [adj]
    assert selectors.adjudications_to_redo(ae) == [adj]


def test_a_dated_edit_invalidates_too_but_an_unrelated_one_does_not(world):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adj = adjudicate(world, patient, adverse_event=ae)
    services.ae_update(user=world["coordinator_a"], ae=ae, changes={"outcome": "recovering"}, reason="follow-up")
    assert not adj.needs_readjudication and signatures_for(adj)[0][1].valid
    ae.refresh_from_db()
    services.ae_update(
        user=world["coordinator_a"], ae=ae, changes={"resolved": datetime.date(2024, 4, 20)}, reason="resolved"
    )
    adj.refresh_from_db()
    assert adj.evidence_changes == ("resolved ongoing -> 2024-04-20",)
    assert signatures_for(adj)[0][1].status == "invalidated"


def test_the_decision_still_counts_but_escalation_needs_review_and_cannot_be_signed(world):  # type: ignore[no-untyped-def]
    patient, _, adj = _confirmed_then_downgraded(world)
    [row] = selectors.patient_dlt_outcomes(world["trial"], AS_OF)
    assert row["status"] == "dlt"  # only an investigator's signature unmakes a DLT (PROTOCOL s5)
    assert row["readjudication"] == [{"adjudication_id": adj.pk, "changes": ["grade 3 -> 2"]}]
    state = _escalation(world)
    assert state["needs_review"]["count"] == 1
    assert state["needs_review"]["patients"][0]["adjudication_id"] == adj.pk
    assert state["warnings"][0].startswith("needs review: 1 signed DLT adjudication")
    with pytest.raises(ValidationError) as exc:
        escalation_sign(
            trial=world["trial"],
            user=world["investigator"],
            password=PASSWORD,
            rationale="meeting",
            expected={"decision": state["decision"], "dose_level": state["recommended_dose_level"]},
        )
    assert "re-adjudicates them first" in exc.value.message_dict["decision"][0]

    # The investigator re-adjudicates (supersedes): nothing needs review any more.
    adjudicate(
        world, patient, adverse_event=adj.adverse_event, is_dlt=False, rationale="grade 2: not a DLT", supersedes=adj
    )
    state = _escalation(world)
    assert state["needs_review"]["count"] == 0
    [row] = selectors.patient_dlt_outcomes(world["trial"], AS_OF)
    assert row["status"] != "dlt" and row["readjudication"] == []


def test_pages_and_api_show_the_invalidated_decision(world, login, client):  # type: ignore[no-untyped-def]
    patient, _, adj = _confirmed_then_downgraded(world)
    _escalation(world)
    computation_run(world["trial"].pk, TrialComputation.Kind.DASHBOARD)
    browser = login(world["investigator"])
    safety = browser.get(reverse("patient_safety", args=[patient.pk])).content.decode()
    assert 'id="readjudication"' in safety and "signature invalidated: AE edited (grade 3 -&gt; 2)" in safety
    assert f"supersedes={adj.pk}" in safety
    review = browser.get(reverse("trial_dlt", args=[world["trial"].pk])).content.decode()
    assert "signed decision to re-adjudicate" in review and f"#{adj.pk}" in review
    dashboard = browser.get(reverse("trial_dashboard", args=[world["trial"].pk])).content.decode()
    assert 'id="escalation-needs-review"' in dashboard and "Signed decisions to re-adjudicate (1)" in dashboard
    escalation = browser.get(reverse("escalation", args=[world["trial"].pk])).content.decode()
    assert 'id="needs-review"' in escalation and "grade 3 -&gt; 2" in escalation
    detail = browser.get(reverse("adjudication_detail", args=[adj.pk])).content.decode()
    assert "needs re-adjudication" in detail and "Re-adjudicate" in detail
    # A coordinator sees that the escalation needs review, not other patients' IDs.
    coordinator = login(world["coordinator_b"])
    page = coordinator.get(reverse("escalation", args=[world["trial"].pk])).content.decode()
    assert 'id="needs-review"' in page and patient.subject_id not in page
    api = _api(client, world["investigator"])
    body = api.get(f"/api/v1/dlt-adjudications/{adj.pk}/").json()
    assert body["needs_readjudication"] is True and body["evidence_changes"] == ["grade 3 -> 2"]
    assert body["evidence"]["grade"] == 3
    esc = api.get(f"/api/v1/trials/{world['trial'].pk}/escalation/").json()
    assert esc["needs_review"]["count"] == 1


def test_the_follow_up_tells_the_coordinator(world, login):  # type: ignore[no-untyped-def]
    patient = make_patient(world)
    ae = services.ae_record(user=world["coordinator_a"], patient=patient, data=ae_data(grade=3))
    adj = adjudicate(world, patient, adverse_event=ae)
    browser = login(world["coordinator_a"])
    form = {k: v for k, v in ae_data(grade=3).items() if k != "term"}
    page = browser.get(reverse("ae_edit", args=[ae.pk]))
    assert page.status_code == 200
    data = {
        "term": ae.term_id,
        **{k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in form.items() if v is not None},
        "grade": 2,
        "action": "none",
        "version": ae.version,
        "reason_for_change": "source says grade 2",
    }
    response = browser.post(reverse("ae_edit", args=[ae.pk]), data, follow=True)
    text = response.content.decode()
    assert f"Signed DLT adjudication #{adj.pk} rests on this AE" in text, text[:3000]
