"""Lab panels have their own page and audited correction (issue 19 item 2).

dosing.services.lab_panel_update corrects a visit or unscheduled panel with a reason,
re-checks it with the first-entry checks, keeps a visit panel pre-dose, re-computes the
visit cycle's stored safety check and asks for the escalation recomputation. The page,
the API PATCH and a query's correction all go through it; the SDV worksheet links to it.
"""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from cleaning import services as cleaning_services
from cleaning.models import QueryMessage
from core.errors import EditConflict, ReasonRequired, RecordLocked
from core.tokens import token_issue
from dosing import services
from dosing.models import Cycle, LabPanel
from patients import services as patient_services
from tests.factories import PASSWORD
from tests.integration.test_cycle_correction import give, patient  # noqa: F401 - the fixture
from tests.integration.test_dosing_services import C1D1, visit
from trial.models import TrialComputation


def unscheduled(world, patient, **values):  # type: ignore[no-untyped-def]  # noqa: F811
    data = {"date": datetime.date(2024, 4, 10), "platelets": Decimal("80"), "anc": Decimal("1.5")} | values
    return services.lab_panel_record(user=world["coordinator_a"], patient=patient, data=data)


def test_update_is_audited_with_reason_and_requests_escalation(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    panel = unscheduled(world, patient)
    seq = TrialComputation.objects.get(trial=world["trial"], kind="escalation").request_seq
    updated = services.lab_panel_update(
        user=world["coordinator_a"],
        panel=panel,
        changes={"platelets": Decimal("18")},
        reason="Lab report: 18, transcription error",
        expected_version=1,
    )
    assert (updated.platelets, updated.version) == (Decimal("18"), 2)
    latest = panel.history.order_by("-history_id").first()
    assert latest.history_change_reason == "Lab report: 18, transcription error"
    assert TrialComputation.objects.get(trial=world["trial"], kind="escalation").request_seq > seq


def test_update_refuses_no_reason_stale_version_unknown_field_negative_and_foreign_users(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    panel = unscheduled(world, patient)
    user = world["coordinator_a"]
    with pytest.raises(ReasonRequired):
        services.lab_panel_update(user=user, panel=panel, changes={"anc": Decimal("1")}, reason=" ")
    with pytest.raises(EditConflict):
        services.lab_panel_update(user=user, panel=panel, changes={"anc": Decimal("1")}, reason="r", expected_version=7)
    with pytest.raises(ValidationError) as exc:
        services.lab_panel_update(user=user, panel=panel, changes={"patient": None}, reason="r")
    assert "patient" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.lab_panel_update(user=user, panel=panel, changes={"anc": Decimal("-1")}, reason="r")
    assert "cannot be negative" in " ".join(exc.value.message_dict["anc"])
    with pytest.raises(ValidationError, match="Nothing to correct"):
        services.lab_panel_update(user=user, panel=panel, changes={"anc": Decimal("1.5")}, reason="r")
    for other in ("coordinator_b", "monitor", "sponsor"):
        with pytest.raises(PermissionDenied):
            services.lab_panel_update(user=world[other], panel=panel, changes={"anc": Decimal("1")}, reason="r")
    patient_services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD)
    with pytest.raises(RecordLocked):
        services.lab_panel_update(user=user, panel=panel, changes={"anc": Decimal("1")}, reason="r")
    assert LabPanel.objects.get(pk=panel.pk).version == 1


def test_visit_panel_stays_pre_dose_and_its_cycle_safety_check_follows(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    (c1,) = give(world, patient, visit(C1D1))
    panel = LabPanel.objects.get(pk=c1.lab_panel_id)
    with pytest.raises(ValidationError) as exc:
        services.lab_panel_update(
            user=world["coordinator_a"], panel=panel, changes={"date": C1D1 + datetime.timedelta(days=2)}, reason="r"
        )
    assert "cannot clear the dose" in " ".join(exc.value.message_dict["date"])
    before = {row["key"]: row["status"] for row in Cycle.objects.get(pk=c1.pk).safety_check}
    services.lab_panel_update(
        user=world["coordinator_a"], panel=panel, changes={"platelets": Decimal("20")}, reason="lab report: 20"
    )
    cycle = Cycle.objects.get(pk=c1.pk)
    after = {row["key"]: row["status"] for row in cycle.safety_check}
    assert before != after, "the stored pre-dose check must show what the corrected labs say"
    assert (
        "re-computed after the correction of its labs"
        in cycle.history.order_by("-history_id").first().history_change_reason
    )


def test_query_on_a_lab_value_is_corrected_through_the_lab_service(world, patient):  # type: ignore[no-untyped-def]  # noqa: F811
    panel = unscheduled(world, patient)
    query = cleaning_services.query_raise(user=world["monitor"], target=panel, field_name="anc", question="ANC 0.5?")
    message = cleaning_services.query_answer(
        user=world["coordinator_a"], query=query, text="Corrected.", correction={"anc": "0.5"}, reason="lab report"
    )
    panel.refresh_from_db()
    assert (panel.anc, panel.version) == (Decimal("0.50"), 2)
    assert message.kind == QueryMessage.Kind.CORRECTION
    assert panel.history.order_by("-history_id").first().history_change_reason == f"Query #{query.pk}: lab report"


def test_lab_page_shows_values_history_and_correct_form(world, patient, login):  # type: ignore[no-untyped-def]  # noqa: F811
    panel = unscheduled(world, patient)
    client = login(world["coordinator_a"])
    tab = client.get(reverse("patient_dosing", args=[patient.pk])).content.decode()
    assert reverse("lab_panel_detail", args=[panel.pk]) in tab
    url = reverse("lab_panel_correct", args=[panel.pk])
    form = {"date": "2024-04-10", "platelets": "8", "anc": "1.5", "version": "1"}
    assert "A reason for change is required" in client.post(url, form).content.decode()
    saved = client.post(url, {**form, "reason_for_change": "lab report says 8"})
    assert saved.status_code == 302
    page = client.get(reverse("lab_panel_detail", args=[panel.pk])).content.decode()
    assert "lab report says 8" in page and "80.0 &rarr; 8.0" in page
    stale = client.post(url, {**form, "platelets": "9", "reason_for_change": "again"}).content.decode()
    assert "changed since you read it" in stale
    # The monitor's SDV worksheet opens the panel's page.
    sdv = login(world["monitor"]).get(reverse("patient_sdv", args=[patient.pk])).content.decode()
    assert reverse("lab_panel_detail", args=[panel.pk]) in sdv
    # The query on a lab panel sends the coordinator to the correction page.
    query = cleaning_services.query_raise(user=world["monitor"], target=panel, field_name="", question="Check?")
    detail = login(world["coordinator_a"]).get(reverse("query_detail", args=[query.pk])).content.decode()
    assert url in detail, detail[detail.find("<main") :]


def test_api_patch_needs_reason_and_version_409_on_stale_and_refuses_unknown(world, patient, client):  # type: ignore[no-untyped-def]  # noqa: F811
    panel = unscheduled(world, patient)
    _, key = token_issue(user=world["coordinator_a"], name="test")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    url = f"/api/v1/patients/{patient.pk}/lab-panels/{panel.pk}/"
    no_reason = client.patch(url, {"anc": "1.1", "version": 1}, content_type="application/json")
    assert no_reason.status_code == 400 and "reason_for_change" in no_reason.json()["errors"]
    no_version = client.patch(url, {"anc": "1.1", "reason_for_change": "s"}, content_type="application/json")
    assert no_version.status_code == 400 and "version" in no_version.json()["errors"]
    unknown = client.patch(url, {"patient": 3, "reason_for_change": "s", "version": 1}, content_type="application/json")
    assert unknown.status_code == 400 and "patient" in unknown.json()["errors"]
    ok = client.patch(
        url, {"anc": "1.1", "reason_for_change": "s"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["anc"] == "1.10" and ok["ETag"] == '"2"'
    stale = client.patch(
        url, {"anc": "1.2", "reason_for_change": "s"}, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 409
