"""A lab panel correction re-grades the AEs confirmed from that panel (issue 19 item 2).

dosing.services.lab_panel_update (form, API PATCH and query correction all call it)
re-runs the entry path's grading on the corrected values: an AE confirmed from the panel
whose grade no longer matches is not edited but gets one automatic query on its grade
(cleaning.services.lab_panel_regrade), closed automatically when the AE is corrected or
the panel agrees again; a dismissal applies to the grade it dismissed only.
"""

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from cleaning import services as cleaning_services
from cleaning.models import DataQuery, QueryMessage
from core.tokens import token_issue
from dosing import services
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.models import AdverseEvent, LabProposalDismissal
from tests.integration.test_cycle_correction import patient  # noqa: F401 - the fixture
from tests.integration.test_lab_panel_correction import unscheduled

PLATELETS = "10035528"
NEUTROPHILS = "10029366"


def regrade_queries(ae):  # type: ignore[no-untyped-def]
    return DataQuery.objects.filter(
        content_type=ContentType.objects.get_for_model(AdverseEvent), object_id=ae.pk, rule_code="ae_lab_regrade"
    ).order_by("id")


def correct(world, panel, reason="lab report", **values):  # type: ignore[no-untyped-def]
    return services.lab_panel_update(user=world["coordinator_a"], panel=panel, changes=values, reason=reason)


@pytest.fixture
def confirmed(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    """A panel with platelets 40 (grade 3) and the coordinator's grade 3 AE confirmed from it."""
    panel = unscheduled(world, patient, platelets=Decimal("40"))
    ae = safety_services.lab_proposal_confirm(
        user=world["coordinator_a"], panel=panel, meddra_code=PLATELETS, attribution="possible"
    )
    assert ae.grade == 3 and not regrade_queries(ae).exists()
    return panel, ae


def test_correction_flags_the_confirmed_ae_once_and_closes_when_the_panel_agrees_again(world, confirmed):  # type: ignore[no-untyped-def]
    panel, ae = confirmed
    correct(world, panel, anc=Decimal("1.6"))  # another value: the AE still matches
    assert not regrade_queries(ae).exists()
    correct(world, panel, platelets=Decimal("60"))
    (query,) = regrade_queries(ae)
    assert (query.state, query.origin, query.field_name) == ("open", "automatic", "grade")
    text = query.question
    assert f"lab panel of {panel.date.isoformat()} (#{panel.pk})" in text
    assert "Platelets corrected from 40.0 to 60.0 x10^9/L" in text, text
    assert "now meets grade 2 for Platelet count decreased" in text and "this AE is grade 3" in text
    ae.refresh_from_db()
    assert (ae.grade, ae.version) == (3, 1), "the AE itself is never edited by the correction"
    # Raised once: a further mismatching correction keeps the one live query, whose thread
    # says what the value meets now.
    correct(world, panel, platelets=Decimal("20"))
    assert regrade_queries(ae).count() == 1
    latest = query.messages.order_by("-id").first()
    assert latest.kind == QueryMessage.Kind.QUESTION and "from 60.0 to 20.0" in latest.text
    assert "now meets grade 4" in latest.text
    # The panel agrees with the AE again: the query closes itself.
    correct(world, panel, platelets=Decimal("45"))
    query.refresh_from_db()
    assert query.state == "closed"
    assert query.messages.order_by("-id").first().kind == QueryMessage.Kind.AUTO_CLOSE


def test_correction_to_a_normal_value_says_no_ae_and_the_ae_correction_closes_it(world, confirmed):  # type: ignore[no-untyped-def]
    panel, ae = confirmed
    correct(world, panel, platelets=Decimal("200"))
    (query,) = regrade_queries(ae)
    assert "now meets no grade (no AE)" in query.question
    # A value matching grade 2 again, then the coordinator corrects the AE to grade 2: closed.
    correct(world, panel, platelets=Decimal("60"))
    assert regrade_queries(ae).get().state == "open"
    safety_services.ae_update(user=world["coordinator_a"], ae=ae, changes={"grade": 2}, reason="panel corrected")
    assert regrade_queries(ae).get().state == "closed"
    # No AE any more: voiding it (entered in error) answers its grade query too.
    correct(world, panel, platelets=Decimal("200"))
    assert regrade_queries(ae).last().state == "open"
    cleaning_services.casebook_record_void(user=world["coordinator_a"], target=ae, reason="no AE: lab corrected")
    assert [q.state for q in regrade_queries(ae)] == ["closed", "closed"]


def test_api_patch_regrades(world, patient, confirmed, client):  # type: ignore[no-untyped-def]  # noqa: F811
    panel, ae = confirmed
    _, key = token_issue(user=world["coordinator_a"], name="test")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    url = f"/api/v1/patients/{patient.pk}/lab-panels/{panel.pk}/"
    ok = client.patch(
        url,
        {"platelets": "20", "reason_for_change": "lab report"},
        content_type="application/json",
        HTTP_IF_MATCH='"1"',
    )
    assert ok.status_code == 200, ok.json()
    assert "now meets grade 4" in regrade_queries(ae).get().question


def test_query_correction_of_the_panel_regrades(world, confirmed):  # type: ignore[no-untyped-def]
    panel, ae = confirmed
    query = cleaning_services.query_raise(user=world["monitor"], target=panel, field_name="platelets", question="60?")
    cleaning_services.query_answer(
        user=world["coordinator_a"], query=query, text="Corrected.", correction={"platelets": "60"}, reason="source"
    )
    assert "from 40.0 to 60.0" in regrade_queries(ae).get().question


def test_lab_page_lists_graded_aes_to_review(world, patient, confirmed, login):  # type: ignore[no-untyped-def]  # noqa: F811
    panel, ae = confirmed
    client = login(world["coordinator_a"])
    url = reverse("lab_panel_detail", args=[panel.pk])
    assert "Graded AEs to review" not in client.get(url).content.decode()
    correct(world, panel, platelets=Decimal("60"))
    query = regrade_queries(ae).get()
    page = client.get(url).content.decode()
    assert "Graded AEs to review" in page and reverse("query_detail", args=[query.pk]) in page
    safety_page = client.get(reverse("patient_safety", args=[patient.pk])).content.decode()
    assert f'data-query="{query.pk}" data-field="grade"' in safety_page


def test_dismissal_applies_to_its_grade_only(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    user = world["coordinator_a"]
    panel = unscheduled(world, patient, platelets=Decimal("200"), anc=Decimal("0.8"))
    safety_services.lab_proposal_dismiss(user=user, panel=panel, meddra_code=NEUTROPHILS, reason="lab error")
    assert safety_selectors.lab_proposals(user, patient) == []
    # The same grade after a correction: still dismissed.
    correct(world, panel, anc=Decimal("0.9"))
    assert safety_selectors.lab_proposals(user, patient) == []
    # A new grade: proposed again, and dismissing it again updates the dismissal (audited).
    correct(world, panel, anc=Decimal("0.4"))
    panel.refresh_from_db()
    assert [(p.meddra_code, p.grade) for p in safety_selectors.lab_proposals(user, patient)] == [(NEUTROPHILS, 4)]
    safety_services.lab_proposal_dismiss(user=user, panel=panel, meddra_code=NEUTROPHILS, reason="still lab error")
    dismissal = LabProposalDismissal.objects.get()
    assert (dismissal.proposed_grade, dismissal.reason, dismissal.version) == (4, "still lab error", 2)
    assert safety_selectors.lab_proposals(user, patient) == []
    with pytest.raises(Exception, match="already dismissed"):
        safety_services.lab_proposal_dismiss(user=user, panel=panel, meddra_code=NEUTROPHILS, reason="again")
    # A newly met grade of another test shows as a proposal, as on entry.
    correct(world, panel, platelets=Decimal("30"))
    assert [(p.meddra_code, p.grade) for p in safety_selectors.lab_proposals(user, patient)] == [(PLATELETS, 3)]
