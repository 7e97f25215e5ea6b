"""Automatic queries: the periodic sweep raises each rule's finding once, a second run adds
nothing, fixing the data and sweeping again closes the query with an auto_close message."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from cleaning.models import DataQuery, QueryMessage
from cleaning.services import SweepResult, query_close, query_sweep
from cleaning.tasks import cleaning_query_sweep
from core.audit import record_update
from patients.services import assessment_record
from safety.services import ae_update
from tests.factories import (
    AdverseEventFactory,
    CycleFactory,
    LabPanelFactory,
    PatientEventFactory,
    PatientFactory,
    TransplantFactory,
)

pytestmark = pytest.mark.django_db

HCT = datetime.date(2024, 1, 10)
C1D1 = HCT + datetime.timedelta(days=60)


def _automatic(target):  # type: ignore[no-untyped-def]
    content_type = ContentType.objects.get_for_model(type(target))
    return DataQuery.objects.filter(content_type=content_type, object_id=target.pk, origin="automatic")


def _last_message(query: DataQuery) -> QueryMessage:
    return QueryMessage.objects.filter(query=query).order_by("-created_at", "-id").first()  # type: ignore[return-value]


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    """An enrolled patient whose calendar has nothing overdue on TODAY (the MRD before C1D1 is
    done, the 3-month entries are not due yet)."""
    return PatientFactory(site=world["site_a"], trial=world["trial"], enrolled_on=HCT + datetime.timedelta(days=50))


TODAY = HCT + datetime.timedelta(days=80)


def test_implausible_lab_value_is_queried_once_and_closes_itself_when_fixed(world, patient):  # type: ignore[no-untyped-def]
    panel = LabPanelFactory(patient=patient, platelets=Decimal("150000"), anc=Decimal("1.2"))
    fine = LabPanelFactory(patient=patient, platelets=Decimal("150"))

    first = query_sweep(today=TODAY)
    assert first.raised == 1
    (query,) = _automatic(panel)
    assert (query.state, query.rule_code, query.field_name) == ("open", "lab_plausibility:platelets", "platelets")
    assert (query.trial_id, query.site_id, query.patient_id, query.raised_by_id) == (
        world["trial"].pk,
        world["site_a"].pk,
        patient.pk,
        None,
    )
    assert "150000 x10^9/L is outside the plausible range 0-2000 x10^9/L" in query.question
    assert not _automatic(fine).exists()

    second = query_sweep(today=TODAY)
    assert (second.raised, second.closed) == (0, 0)
    assert _automatic(panel).count() == 1
    assert QueryMessage.objects.filter(query=query).count() == 1  # the question only

    record_update(panel, {"platelets": Decimal("150")}, user=world["coordinator_a"], reason="typo: count per uL")
    third = query_sweep(today=TODAY)
    assert third.closed == 1
    query.refresh_from_db()
    assert query.state == "closed" and query.closed_at is not None
    message = _last_message(query)
    assert message.kind == "auto_close" and message.author is None
    assert "within the plausible range" in message.text
    assert query_sweep(today=TODAY) == SweepResult(0, 0, 0)


def test_each_implausible_analyte_is_its_own_query(world, patient):  # type: ignore[no-untyped-def]
    panel = LabPanelFactory(patient=patient, platelets=Decimal("-5"), alt=Decimal("50000"))
    query_sweep(today=TODAY)
    assert set(_automatic(panel).values_list("rule_code", flat=True)) == {
        "lab_plausibility:platelets",
        "lab_plausibility:alt",
    }


def test_overdue_assessment_is_queried_on_the_casebook_and_closes_when_entered(world, patient):  # type: ignore[no-untyped-def]
    TransplantFactory(patient=patient, date=HCT)
    CycleFactory(patient=patient, number=1, day1=C1D1)
    # MRD before C1D1 is done; MRD 3 months after HCT (day 91, window to day 105) is not.
    from tests.factories import AssessmentFactory

    AssessmentFactory(patient=patient, kind="mrd", date=C1D1 - datetime.timedelta(days=3))
    on_last_day = HCT + datetime.timedelta(days=105)
    assert query_sweep(today=on_last_day).raised == 0  # not yet overdue: the window is still open
    later = on_last_day + datetime.timedelta(days=1)
    assert query_sweep(today=later).raised == 1
    (query,) = _automatic(patient)
    assert query.rule_code == "assessment_overdue:mrd_hct_3m" and query.field_name == ""
    assert "MRD 3 months after HCT was due on 2024-04-10" in query.question
    assert query_sweep(today=later).raised == 0

    assessment_record(
        user=world["coordinator_a"],
        patient=patient,
        data={"kind": "mrd", "date": HCT + datetime.timedelta(days=95), "method": "flow", "result": "negative"},
    )
    assert query_sweep(today=later).closed == 1
    query.refresh_from_db()
    assert query.state == "closed"
    assert _last_message(query).kind == "auto_close"


def test_screen_failures_have_no_calendar_queries(world):  # type: ignore[no-untyped-def]
    screened = PatientFactory(site=world["site_a"], trial=world["trial"])  # never enrolled
    TransplantFactory(patient=screened, date=HCT)
    assert query_sweep(today=HCT + datetime.timedelta(days=400)).raised == 0


def test_ae_ongoing_at_end_of_treatment_is_queried_and_closes_with_the_resolution_date(world, patient):  # type: ignore[no-untyped-def]
    ae = AdverseEventFactory(patient=patient, grade=2, onset=datetime.date(2024, 4, 20))
    resolved = AdverseEventFactory(
        patient=patient, grade=2, onset=datetime.date(2024, 4, 1), resolved=datetime.date(2024, 4, 5)
    )
    assert query_sweep(today=TODAY).raised == 0  # still on treatment
    PatientEventFactory(patient=patient, kind="end_of_treatment", date=datetime.date(2024, 6, 1), reason="completed")
    assert query_sweep(today=TODAY).raised == 1
    (query,) = _automatic(ae)
    assert (query.rule_code, query.field_name) == ("ae_ongoing_at_eot", "resolved")
    assert "treatment ended on 2024-06-01" in query.question
    assert not _automatic(resolved).exists()
    assert query_sweep(today=TODAY).raised == 0

    ae_update(
        user=world["coordinator_a"],
        ae=ae,
        changes={"resolved": datetime.date(2024, 5, 10), "outcome": "recovered"},
        reason="resolution date from the clinic letter",
    )
    assert query_sweep(today=TODAY).closed == 1
    query.refresh_from_db()
    assert query.state == "closed"
    assert "resolution date" in _last_message(query).text


def test_a_value_confirmed_at_source_is_not_asked_again_until_edited(world, patient):  # type: ignore[no-untyped-def]
    panel = LabPanelFactory(patient=patient, alt=Decimal("12000"))
    query_sweep(today=TODAY)
    (query,) = _automatic(panel)
    query_close(user=world["monitor"], query=query, note="12000 U/L confirmed in the lab report")
    assert query_sweep(today=TODAY).raised == 0
    assert _automatic(panel).count() == 1

    # An edit after the confirmation that leaves the value implausible is asked again.
    record_update(panel, {"alt": Decimal("13000")}, user=world["coordinator_a"], reason="repeat draw")
    assert query_sweep(today=TODAY).raised == 1
    assert _automatic(panel).filter(state="open").count() == 1


def test_an_answered_automatic_query_also_closes_when_the_data_are_fixed(world, patient):  # type: ignore[no-untyped-def]
    from cleaning.services import query_answer

    panel = LabPanelFactory(patient=patient, anc=Decimal("1500"))
    query_sweep(today=TODAY)
    (query,) = _automatic(panel)
    query_answer(user=world["coordinator_a"], query=query, text="will correct")
    record_update(panel, {"anc": Decimal("1.5")}, user=world["coordinator_a"], reason="per uL typed")
    assert query_sweep(today=TODAY).closed == 1
    query.refresh_from_db()
    assert query.state == "closed"


def test_periodic_task_runs_the_sweep(world, patient):  # type: ignore[no-untyped-def]
    LabPanelFactory(patient=patient, hemoglobin=Decimal("9.5"))  # g/dL typed as g/L
    assert cleaning_query_sweep.delay().get() == {"raised": 1, "closed": 0, "refused": 0}
    assert cleaning_query_sweep.delay().get() == {"raised": 0, "closed": 0, "refused": 0}


def test_beat_schedules_the_sweep(settings):  # type: ignore[no-untyped-def]
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "cleaning.tasks.cleaning_query_sweep" in tasks


def test_sweep_reads_cost_a_fixed_number_of_sql_queries(world, patient, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    TransplantFactory(patient=patient, date=HCT)
    for _ in range(3):
        LabPanelFactory(patient=patient)
    query_sweep(today=TODAY)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        query_sweep(today=TODAY)
    for i in range(30):
        other = PatientFactory(site=world["site_b"], trial=world["trial"], enrolled_on=HCT)
        TransplantFactory(patient=other, date=HCT)
        LabPanelFactory(patient=other)
        AdverseEventFactory(patient=other, onset=HCT + datetime.timedelta(days=70 + i))
    with django_assert_max_num_queries(len(few.captured_queries)):
        query_sweep(today=TODAY)


def test_a_locked_casebook_is_skipped_until_unlocked(world, patient):  # type: ignore[no-untyped-def]
    from patients.services import casebook_lock, casebook_unlock
    from tests.factories import PASSWORD

    panel = LabPanelFactory(patient=patient, anc=Decimal("-1"))
    casebook_lock(user=world["data_manager"], patient=patient, password=PASSWORD)
    assert query_sweep(today=TODAY) == SweepResult(raised=0, closed=0, refused=1)  # nothing written
    assert not _automatic(panel).exists()
    casebook_unlock(user=world["data_manager"], patient=patient, password=PASSWORD, reason="late lab query")
    assert query_sweep(today=TODAY).raised == 1
