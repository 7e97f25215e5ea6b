"""Data queries (issue 12): raise, answer with a correction through the record's own
service, close and re-open; states and audit; badges and the worklist at a fixed number
of SQL queries; a frozen casebook takes answers but refuses corrections."""

import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError

from cleaning import services
from cleaning.models import DataQuery, QueryMessage
from core.audit import record_history
from patients import services as patient_services
from safety.models import AdverseEvent
from tests.factories import (
    PASSWORD,
    AdverseEventFactory,
    ConsentFactory,
    DeviationFactory,
    PatientFactory,
    TransplantFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-001")
    ConsentFactory(patient=patient, date=datetime.date(2024, 3, 1))
    return patient


@pytest.fixture
def ae(patient):  # type: ignore[no-untyped-def]
    return AdverseEventFactory(patient=patient, grade=3, onset=datetime.date(2024, 4, 20))


def _raise(world, ae, field="grade"):  # type: ignore[no-untyped-def]
    return services.query_raise(
        user=world["monitor"], target=ae, field_name=field, question="Source says grade 2: please check."
    )


def test_raise_answer_with_correction_close_links_the_audit_trail(world, ae):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    assert (query.state, query.origin, query.field_name, query.raised_by) == (
        "open",
        "manual",
        "grade",
        world["monitor"],
    )
    assert (query.trial_id, query.site_id, query.patient_id) == (world["trial"].pk, world["site_a"].pk, ae.patient_id)

    message = services.query_answer(
        user=world["coordinator_a"],
        query=query,
        text="Transcription error; corrected.",
        correction={"grade": "2"},
        reason="transcription error",
    )
    ae.refresh_from_db()
    assert ae.grade == 2 and ae.version == 2
    history = AdverseEvent.history.get(history_id=message.target_history_id)
    assert history.grade == 2 and history.history_user == world["coordinator_a"]
    assert history.history_change_reason == f"Query #{query.pk}: transcription error"
    assert (message.kind, message.target_version, message.old_value, message.new_value) == ("correction", 2, "3", "2")
    assert record_history(ae)[0].reason == f"Query #{query.pk}: transcription error"

    query = services.query_close(user=world["monitor"], query=DataQuery.objects.get(pk=query.pk), note="Thanks.")
    assert query.state == "closed" and query.closed_at is not None
    kinds = list(QueryMessage.objects.filter(query=query).values_list("kind", flat=True))
    assert kinds == ["question", "correction", "close"]
    # Every step of the query itself is audited, never deleted.
    reasons = [row.reason for row in record_history(query)]
    assert reasons == [f"Query #{query.pk} closed", f"Query #{query.pk} answered", "query raised"]
    with pytest.raises(ValidationError):
        query.delete()


def test_reopen_and_answer_again(world, ae):  # type: ignore[no-untyped-def]
    query = _raise(world, ae, field="")
    services.query_answer(user=world["coordinator_a"], query=query, text="The grade is right.")
    query.refresh_from_db()
    assert query.state == "answered"
    query = services.query_reopen(user=world["investigator"], query=query, text="The source document says 2.")
    assert query.state == "open" and query.closed_at is None
    services.query_close(user=world["monitor"], query=query)
    query.refresh_from_db()
    with pytest.raises(ValidationError, match="closed"):
        services.query_answer(user=world["coordinator_a"], query=query, text="late")
    query = services.query_reopen(user=world["monitor"], query=query, text="again")
    assert query.state == "open"
    with pytest.raises(ValidationError, match="already open"):
        services.query_reopen(user=world["monitor"], query=query, text="again")


@pytest.mark.parametrize(
    ("who", "action"),
    [
        ("coordinator_a", "raise"),  # coordinators answer, they do not raise
        ("sponsor", "raise"),
        ("monitor", "answer"),  # monitors raise, they do not correct data
        ("coordinator_b", "answer"),  # another site's coordinator
        ("coordinator_a", "close"),
        ("data_manager", "answer"),
    ],
)
def test_roles(world, ae, who, action):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    user = world[who]
    with pytest.raises(PermissionDenied):
        if action == "raise":
            services.query_raise(user=user, target=ae, field_name="", question="?")
        elif action == "answer":
            services.query_answer(user=user, query=query, text="x")
        else:
            services.query_close(user=user, query=query)


def test_investigator_and_data_manager_raise(world, ae):  # type: ignore[no-untyped-def]
    for who in ("investigator", "data_manager"):
        assert services.query_raise(user=world[who], target=ae, field_name="onset", question="Date?").pk


@pytest.mark.parametrize(
    ("field", "question", "error"),
    [
        ("no_such_field", "Why?", "field_name"),
        ("version", "Why?", "field_name"),
        ("grade", "   ", "question"),
    ],
)
def test_raise_refuses_bad_input_naming_the_field(world, ae, field, question, error):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        services.query_raise(user=world["monitor"], target=ae, field_name=field, question=question)
    assert error in exc.value.message_dict
    assert not DataQuery.objects.exists()


@pytest.mark.parametrize(
    ("correction", "reason", "error"),
    [
        ({"grade": "9"}, "typo", "new_value"),  # the model's own validator (1-5)
        ({"grade": "2"}, "", "reason"),
        ({"onset": "2024-04-01"}, "typo", "new_value"),  # not the queried field
        ({"grade": "3"}, "typo", "new_value"),  # no change
        ({"grade": "4", "onset": "2024-04-01"}, "typo", "new_value"),
    ],
)
def test_bad_corrections_write_nothing(world, ae, correction, reason, error):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    with pytest.raises(ValidationError) as exc:
        services.query_answer(
            user=world["coordinator_a"], query=query, text="fixed", correction=correction, reason=reason
        )
    assert error in exc.value.message_dict
    ae.refresh_from_db()
    query.refresh_from_db()
    assert ae.grade == 3 and ae.version == 1 and query.state == "open"
    assert QueryMessage.objects.filter(query=query).count() == 1


def test_correction_runs_the_records_own_rules(world, ae):  # type: ignore[no-untyped-def]
    query = _raise(world, ae, field="onset")
    # Before the first consent: the AE service's date rule refuses it, under the answer's field.
    with pytest.raises(ValidationError) as exc:
        services.query_answer(
            user=world["coordinator_a"], query=query, text="x", correction={"onset": "2024-01-01"}, reason="typo"
        )
    assert "consent" in " ".join(exc.value.message_dict["new_value"]).lower()


def test_record_without_a_correction_service_is_answered_and_says_where(world, patient):  # type: ignore[no-untyped-def]
    # Lab panels have their own correction service since issue 19 (test_lab_panel_correction);
    # a protocol deviation (an investigator's record) is still not corrected from a query.
    deviation = DeviationFactory(patient=patient)
    query = services.query_raise(user=world["monitor"], target=deviation, field_name="date", question="Date?")
    with pytest.raises(ValidationError, match="own page"):
        services.query_answer(
            user=world["coordinator_a"], query=query, text="x", correction={"date": "2024-01-01"}, reason="typo"
        )
    services.query_answer(user=world["coordinator_a"], query=query, text="The date is right per the source.")
    query.refresh_from_db()
    assert query.state == "answered"


def test_transplant_and_patient_corrections_use_their_services(world, patient):  # type: ignore[no-untyped-def]
    transplant = TransplantFactory(patient=patient)
    query = services.query_raise(user=world["monitor"], target=patient, field_name="birth_year", question="Year?")
    services.query_answer(
        user=world["coordinator_a"], query=query, text="ok", correction={"birth_year": "1961"}, reason="typo"
    )
    patient.refresh_from_db()
    assert patient.birth_year == 1961
    query = services.query_raise(user=world["monitor"], target=transplant, field_name="atg", question="ATG?")
    services.query_answer(user=world["coordinator_a"], query=query, text="ok", correction={"atg": True}, reason="x")
    transplant.refresh_from_db()
    assert transplant.atg is True


def test_automatic_queries_are_idempotent(world, ae):  # type: ignore[no-untyped-def]
    first = services.query_raise_automatic(target=ae, rule_code="ae_ongoing_eot", field_name="resolved", question="?")
    again = services.query_raise_automatic(target=ae, rule_code="ae_ongoing_eot", field_name="resolved", question="?")
    assert first.pk == again.pk and first.origin == "automatic" and first.raised_by is None
    services.query_close_automatic(query=first, text="resolved date entered")
    first.refresh_from_db()
    assert first.state == "closed"
    assert QueryMessage.objects.filter(query=first).last().kind == "auto_close"
    assert (
        services.query_raise_automatic(target=ae, rule_code="ae_ongoing_eot", field_name="resolved", question="?").pk
        != first.pk
    )


def _freeze(world, patient):  # type: ignore[no-untyped-def]
    patient_services.casebook_freeze(user=world["data_manager"], patient=patient, password=PASSWORD, reason="interim")


def test_frozen_casebook_answers_but_refuses_corrections(world, ae, patient):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    _freeze(world, patient)
    with pytest.raises(ValidationError, match="frozen"):
        services.query_answer(
            user=world["coordinator_a"], query=query, text="fix", correction={"grade": "2"}, reason="typo"
        )
    ae.refresh_from_db()
    assert ae.grade == 3
    services.query_answer(user=world["coordinator_a"], query=query, text="Will correct after unfreeze.")
    services.query_close(user=world["monitor"], query=query)
    assert DataQuery.objects.get(pk=query.pk).state == "closed"


def test_locked_casebook_refuses_every_query_step(world, ae, patient):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD, reason="final")
    for call in (
        lambda: services.query_answer(user=world["coordinator_a"], query=query, text="x"),
        lambda: services.query_close(user=world["monitor"], query=query),
        lambda: _raise(world, ae),
    ):
        with pytest.raises(ValidationError, match="locked"):
            call()


# --- screens --------------------------------------------------------------------------------


def test_query_journey_through_the_screens(world, ae, login):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    url = f"/patients/{ae.patient_id}/queries/new/?record=safety.adverseevent:{ae.pk}&field=grade"
    page = client.get(url)
    assert page.status_code == 200 and 'value="grade" selected' in page.content.decode()
    response = client.post(url, {"field_name": "grade", "question": "Source says 2."})
    query = DataQuery.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/queries/{query.pk}/"

    client = login(world["coordinator_a"])
    safety = client.get(f"/patients/{ae.patient_id}/safety/").content.decode()
    assert f'href="/queries/{query.pk}/"' in safety and 'data-field="grade"' in safety
    assert "Raise query" not in safety  # coordinators answer, they do not raise
    detail = client.get(f"/queries/{query.pk}/").content.decode()
    assert "New value of grade" in detail
    response = client.post(
        f"/queries/{query.pk}/", {"action": "answer", "text": "Typo.", "new_value": "9", "reason": "typo"}
    )
    assert response.status_code == 200 and "Grade" in response.content.decode()  # named error, nothing saved
    response = client.post(
        f"/queries/{query.pk}/", {"action": "answer", "text": "Typo.", "new_value": "2", "reason": "typo"}
    )
    assert response.status_code == 302
    ae.refresh_from_db()
    assert ae.grade == 2
    detail = client.get(f"/queries/{query.pk}/").content.decode()
    history_id = QueryMessage.objects.get(kind="correction").target_history_id
    assert f'data-history-id="{history_id}"' in detail and f"Query #{query.pk}: typo" in detail

    client = login(world["monitor"])
    assert client.post(f"/queries/{query.pk}/", {"action": "close", "note": "ok"}).status_code == 302
    assert DataQuery.objects.get().state == "closed"
    assert 'data-query="' not in client.get(f"/patients/{ae.patient_id}/safety/").content.decode()


def test_frozen_query_page_offers_no_correction(world, ae, patient, login):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    _freeze(world, patient)
    page = login(world["coordinator_a"]).get(f"/queries/{query.pk}/").content.decode()
    assert "is frozen" in page and "New value of" not in page and 'value="answer"' in page


def test_other_sites_coordinator_cannot_see_or_answer(world, ae, login):  # type: ignore[no-untyped-def]
    query = _raise(world, ae)
    client = login(world["coordinator_b"])
    assert client.get(f"/queries/{query.pk}/").status_code == 404
    assert client.post(f"/queries/{query.pk}/", {"action": "answer", "text": "x"}).status_code == 404
    page = client.get(f"/trials/{world['trial'].pk}/queries/").content.decode()
    assert f"#{query.pk}<" not in page


def _many_queries(world, n):  # type: ignore[no-untyped-def]
    """n open queries on AEs of a few patients at both sites (bulk: the list's cost, not the setup's)."""
    ct = ContentType.objects.get_for_model(AdverseEvent)
    patients = [
        PatientFactory(site=world["site_a" if i % 2 else "site_b"], trial=world["trial"], subject_id=f"S{i}-00{i}")
        for i in range(4)
    ]
    aes = [AdverseEventFactory(patient=p) for p in patients]
    DataQuery.objects.bulk_create(
        DataQuery(
            trial=world["trial"],
            site_id=aes[i % 4].patient.site_id,
            patient_id=aes[i % 4].patient_id,
            content_type=ct,
            object_id=aes[i % 4].pk,
            field_name="grade" if i % 3 else "",
            question=f"Question {i}",
            raised_by=world["monitor"],
        )
        for i in range(n)
    )
    return aes


@pytest.mark.parametrize("n", [3, 10_000])
def test_query_list_costs_a_fixed_number_of_sql_queries(world, login, django_assert_num_queries, n):  # type: ignore[no-untyped-def]
    _many_queries(world, n)
    client = login(world["monitor"])
    url = f"/trials/{world['trial'].pk}/queries/"
    client.get(url)  # warm the per-process caches (content types)
    # session (read; refreshed: savepoint, update, release), user, grants, trial, count, page, sites,
    # counts per site (sites, one aggregate)
    with django_assert_num_queries(12):
        page = client.get(url)
    assert page.status_code == 200
    assert f"{n} quer" in page.content.decode()
    with django_assert_num_queries(12):
        client.get(url + "?page=2&state=open&origin=manual")


def test_badges_cost_one_sql_query_per_page(world, patient, login):  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(world["monitor"])
    url = f"/patients/{patient.pk}/safety/"
    counts = []
    for n in (1, 40):
        while AdverseEvent.objects.filter(patient=patient).count() < n:
            ae = AdverseEventFactory(patient=patient)
            services.query_raise(user=world["monitor"], target=ae, field_name="grade", question="?")
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(url).content.decode()
        assert page.count('data-field="grade"') == n
        assert sum("cleaning_dataquery" in q["sql"] for q in ctx.captured_queries) == 1
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_raise_screen_on_frozen_and_locked_casebooks(world, ae, patient, login):  # type: ignore[no-untyped-def]
    client = login(world["monitor"])
    url = f"/patients/{patient.pk}/queries/new/?record=safety.adverseevent:{ae.pk}"
    _freeze(world, patient)
    assert client.post(url, {"field_name": "grade", "question": "Grade?"}).status_code == 302  # frozen: allowed
    patient_services.casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD, reason="final")
    response = client.post(url, {"field_name": "grade", "question": "Again?"})
    assert response.status_code == 423 and "is locked" in response.content.decode()
    assert DataQuery.objects.count() == 1


def test_raise_screen_refuses_records_of_another_casebook(world, ae, login):  # type: ignore[no-untyped-def]
    other = PatientFactory(site=world["site_a"], trial=world["trial"], subject_id="SA-002")
    client = login(world["monitor"])
    assert client.get(f"/patients/{other.pk}/queries/new/?record=safety.adverseevent:{ae.pk}").status_code == 404
    assert client.get(f"/patients/{other.pk}/queries/new/?record=trial.trial:{world['trial'].pk}").status_code == 404
    assert client.get(f"/patients/{other.pk}/queries/new/?record=nonsense").status_code == 404
