"""CDISC ODM 1.3.2 export of the casebooks with their audit trail (issue 18; docs/exports.md,
"ODM"): schema-valid, values equal to the database, edits and voids in ODM's audit style,
users pseudonymous, scoped like every export, streamed one subject at a time."""

import datetime
import importlib.util
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from lxml import etree
from rest_framework.test import APIClient

from cleaning.services import casebook_record_void
from core.audit import record_update
from core.models import Signature
from core.signatures import signature_apply
from dosing.models import Cycle
from exchange.bundle import bundle_import
from exchange.odm import metadata
from exchange.odm.selectors import odm_document, odm_write
from exchange.odm.transactions import odm_text, user_oid
from patients.models import Patient
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication
from safety.services import ctcae_dictionary_load
from tests.factories import PASSWORD, AdverseEventFactory, PatientFactory, UserFactory, grant
from trial.models import RoleGrant

BUNDLE = Path(__file__).resolve().parents[2] / "exchange" / "data" / "ino_post_hct_seed.json"
SCHEMA = Path(importlib.util.find_spec("odmlib").origin).parent / "schemas/odm/1.3.2/ODM1-3-2.xsd"
NS = {"o": "http://www.cdisc.org/ns/odm/v1.3"}


@pytest.fixture(scope="module")
def xsd():  # type: ignore[no-untyped-def]
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


@pytest.fixture(scope="module")
def seed(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The seed trial imported once and exported once; rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        if not CtcaeTerm.objects.exists():  # emptied by an earlier transactional test (conftest)
            ctcae_dictionary_load()
        trial = bundle_import(json.loads(BUNDLE.read_text(encoding="utf-8")))
        out = io.BytesIO()
        odm_write(trial, list(trial.sites.values_list("pk", flat=True)), out)
        yield {"trial": trial, "xml": out.getvalue()}
        transaction.set_rollback(True)


@pytest.fixture
def seed_doc(seed, db):  # type: ignore[no-untyped-def]
    return seed, etree.fromstring(seed["xml"])


def _form(doc, oid: str, record_id: int):  # type: ignore[no-untyped-def]
    found = doc.findall(f".//o:FormData[@FormOID='{oid}'][@FormRepeatKey='{record_id}']", NS)
    assert len(found) == 1, (oid, record_id)
    return found[0]


def _replayed(form) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """The record's values after applying its item groups in order (ODM's audit style)."""
    values: dict[str, str | None] = {}
    for group in form.findall("o:ItemGroupData", NS):
        for item in group.findall("o:ItemData", NS):
            values[item.get("ItemOID")] = item.get("Value")  # Remove: no Value
    return values


def _expected(record) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    spec = next(s for s in metadata.form_specs() if s.model is type(record))
    out = {}
    for field in spec.fields:
        value = getattr(record, field.attname)
        if field.kind == "lookup" and value is not None:
            related = getattr(record, field.attname.removesuffix("_id"))
            value = getattr(related, metadata.LOOKUP_VALUE[field.related])
        out[field.item] = odm_text(value)
    return {k: v for k, v in out.items() if v is not None}


def test_seed_trial_document_is_valid_odm_1_3_2(seed_doc, xsd):  # type: ignore[no-untyped-def]
    seed, doc = seed_doc
    assert xsd.validate(doc), "\n".join(str(e) for e in list(xsd.error_log)[:20])
    assert doc.get("ODMVersion") == "1.3.2" and doc.get("FileType") == "Transactional"
    subjects = [s.get("SubjectKey") for s in doc.findall(".//o:SubjectData", NS)]
    assert subjects == list(
        Patient.objects.filter(trial=seed["trial"]).order_by("id").values_list("subject_id", flat=True)
    )
    # Metadata generated from the models: every exported record type is a form with its items.
    forms = {f.get("OID") for f in doc.findall(".//o:FormDef", NS)}
    assert forms == {s.form.oid for s in metadata.form_specs()}
    grade = doc.find(".//o:ItemDef[@OID='I.ADVERSEEVENT.GRADE']", NS)
    assert grade.get("DataType") == "integer"
    attribution = doc.find(".//o:ItemDef[@OID='I.ADVERSEEVENT.ATTRIBUTION']", NS)
    assert attribution.find("o:CodeListRef", NS).get("CodeListOID") == "CL.ADVERSEEVENT.ATTRIBUTION"
    anc = doc.find(".//o:ItemDef[@OID='I.LABPANEL.ANC']", NS)
    assert (anc.get("DataType"), anc.get("Length"), anc.get("SignificantDigits")) == ("float", "6", "2")
    names = {i.get("Name") for i in doc.findall(".//o:ItemDef", NS)}
    assert not {n for n in names if n.endswith("_by_name") or n in {"voided_by", "void_reason", "subject_id"}}
    sexes = doc.findall(".//o:CodeList[@OID='CL.PATIENT.SEX']/o:CodeListItem", NS)
    assert [c.get("CodedValue") for c in sexes] == [c for c, _ in Patient.Sex.choices]


def test_every_record_replays_to_its_database_values(seed_doc):  # type: ignore[no-untyped-def]
    seed, doc = seed_doc
    trial = seed["trial"]
    patients = list(Patient.objects.filter(trial=trial).order_by("id")[:3])
    aes = list(AdverseEvent.all_objects.filter(patient__trial=trial).select_related("term").order_by("id")[:5])
    cycles = list(Cycle.objects.filter(patient__trial=trial).select_related("dose_level").order_by("id")[:5])
    assert patients and aes and cycles
    for record in [*patients, *aes, *cycles]:
        oid = next(s.form.oid for s in metadata.form_specs() if s.model is type(record))
        assert {k: v for k, v in _replayed(_form(doc, oid, record.pk)).items() if v is not None} == _expected(record)
    cycle = cycles[0]
    event = _form(doc, "F.CYCLE", cycle.pk).getparent()
    assert (event.get("StudyEventOID"), event.get("StudyEventRepeatKey")) == ("SE.CYCLE", str(cycle.number))


def test_no_person_is_named(seed_doc):  # type: ignore[no-untyped-def]
    """Printed names carried in by the bundle (historic signers, voiders) stay out; users
    are pseudonymous OIDs with their role as the display name."""
    seed, doc = seed_doc
    text = seed["xml"].decode()
    names = set(DltAdjudication.objects.exclude(signed_by_name="").values_list("signed_by_name", flat=True))
    names |= set(AdverseEvent.all_objects.exclude(voided_by_name="").values_list("voided_by_name", flat=True))
    assert names
    assert not [name for name in names if name in text]
    users = {u.get("OID") for u in doc.findall(".//o:AdminData/o:User", NS)}
    assert {r.get("UserOID") for r in doc.findall(".//o:UserRef", NS)} <= users
    for user in doc.findall(".//o:AdminData/o:User", NS):
        assert [c.tag.split("}")[1] for c in user] == ["DisplayName"]


@pytest.fixture
def edited(world):  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], subject_id="SA-001")
    ae = AdverseEventFactory(patient=patient, grade=2, onset=datetime.date(2024, 4, 20))
    record_update(ae, {"grade": 3}, user=world["coordinator_a"], reason="Source says grade 3")
    voided = AdverseEventFactory(patient=patient, onset=datetime.date(2024, 4, 21))
    casebook_record_void(user=world["coordinator_a"], target=voided, reason="Entered on the wrong patient")
    PatientFactory(site=world["site_b"], subject_id="SB-001")
    PatientFactory(site=world["site_c"], subject_id="SC-001")  # another trial
    signature = signature_apply(
        patient, user=world["investigator"], password=PASSWORD, meaning=Signature.Meaning.REVIEWED
    )
    return {"patient": patient, "ae": ae, "voided": voided, "signature": signature}


def _export(user, trial_ref: str):  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client.get("/api/v1/exports/odm/", {"trial": trial_ref})


def test_an_edit_carries_its_audit_record_and_the_earlier_value(world, edited, xsd):  # type: ignore[no-untyped-def]
    response = _export(world["sponsor"], "TRIAL-T")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/xml")
    assert response["X-Export-Dataset"] == "odm" and response["X-Export-Trial-Lock"] == "open"
    assert response["Content-Disposition"] == 'attachment; filename="TRIAL-T_odm.xml"'
    doc = etree.fromstring(b"".join(response.streaming_content))
    assert xsd.validate(doc), xsd.error_log
    groups = _form(doc, "F.ADVERSEEVENT", edited["ae"].pk).findall("o:ItemGroupData", NS)
    assert [g.get("TransactionType") for g in groups] == ["Insert", "Update"]
    old = groups[0].find("o:ItemData[@ItemOID='I.ADVERSEEVENT.GRADE']", NS)
    assert (old.get("TransactionType"), old.get("Value")) == ("Insert", "2")
    update = groups[1]
    assert [(i.get("ItemOID"), i.get("TransactionType"), i.get("Value")) for i in update.findall("o:ItemData", NS)] == [
        ("I.ADVERSEEVENT.GRADE", "Update", "3")
    ]
    audit = update.find("o:AuditRecord", NS)
    history = edited["ae"].history.order_by("history_date").last()
    assert audit.find("o:UserRef", NS).get("UserOID") == user_oid(settings.SECRET_KEY, world["coordinator_a"].pk)
    assert audit.find("o:LocationRef", NS).get("LocationOID") == "LOC.SA"
    assert audit.findtext("o:ReasonForChange", namespaces=NS) == "Source says grade 3"
    assert audit.findtext("o:DateTimeStamp", namespaces=NS) == odm_text(history.history_date)
    assert audit.findtext("o:SourceID", namespaces=NS).endswith(f":{history.history_id}")
    text = etree.tostring(doc).decode()
    for user in ("coordinator_a", "sponsor", "investigator"):  # pseudonymous OIDs only
        assert f'"{world[user].username}"' not in text and f">{world[user].username}<" not in text
        assert world[user].get_full_name() not in text
    me = doc.find(f".//o:User[@OID='{user_oid(settings.SECRET_KEY, world['coordinator_a'].pk)}']", NS)
    assert (me.get("UserType"), me.findtext("o:DisplayName", namespaces=NS)) == ("Investigator", "Site coordinator")


def test_a_voided_record_is_a_remove_with_who_when_why(world, edited):  # type: ignore[no-untyped-def]
    doc = etree.fromstring(b"".join(_export(world["investigator"], "TRIAL-T").streaming_content))
    groups = _form(doc, "F.ADVERSEEVENT", edited["voided"].pk).findall("o:ItemGroupData", NS)
    assert [g.get("TransactionType") for g in groups] == ["Insert", "Remove"]
    audit = groups[1].find("o:AuditRecord", NS)
    assert audit.findtext("o:ReasonForChange", namespaces=NS) == "voided: Entered on the wrong patient"
    assert audit.find("o:UserRef", NS).get("UserOID") == user_oid(settings.SECRET_KEY, world["coordinator_a"].pk)
    assert groups[1].findall("o:ItemData", NS) == []


def test_a_signature_is_a_signature_element_after_the_version_it_signed(world, edited):  # type: ignore[no-untyped-def]
    doc = etree.fromstring(b"".join(_export(world["sponsor"], "TRIAL-T").streaming_content))
    groups = _form(doc, "F.PATIENT", edited["patient"].pk).findall("o:ItemGroupData", NS)
    assert [g.get("TransactionType") for g in groups] == ["Insert", "Context"]
    signature = groups[1].find("o:Signature", NS)
    assert signature.find("o:UserRef", NS).get("UserOID") == user_oid(settings.SECRET_KEY, world["investigator"].pk)
    assert signature.find("o:SignatureRef", NS).get("SignatureOID") == "SD.REVIEWED"
    assert signature.findtext("o:DateTimeStamp", namespaces=NS) == odm_text(edited["signature"].signed_at)
    meaning = doc.find(".//o:SignatureDef[@OID='SD.REVIEWED']", NS)
    assert meaning.findtext("o:Meaning", namespaces=NS) == "Reviewed and approved"
    assert edited["signature"].printed_name not in etree.tostring(doc).decode()


def test_exporters_get_every_site_of_their_trial_only(world, edited):  # type: ignore[no-untyped-def]
    doc = etree.fromstring(b"".join(_export(world["sponsor"], str(world["trial"].pk)).streaming_content))
    assert [s.get("SubjectKey") for s in doc.findall(".//o:SubjectData", NS)] == ["SA-001", "SB-001"]
    assert {loc.get("OID") for loc in doc.findall(".//o:Location", NS)} == {"LOC.SA", "LOC.SB"}


@pytest.mark.parametrize("role", ["coordinator_a", "data_manager", "monitor", "nobody", "other_sponsor"])
def test_others_get_404(world, edited, role):  # type: ignore[no-untyped-def]
    if role == "other_sponsor":
        user = UserFactory(username="other_sponsor")
        grant(user, world["other"], RoleGrant.Role.SPONSOR)
    else:
        user = world[role]
    response = _export(user, "TRIAL-T")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_missing_trial_is_a_400_naming_it(world):  # type: ignore[no-untyped-def]
    response = _export(world["sponsor"], "")
    assert response.status_code == 400
    assert "trial" in response.json()["errors"]


def test_streamed_one_subject_at_a_time_in_a_fixed_number_of_queries(world, edited):  # type: ignore[no-untyped-def]
    trial = world["trial"]
    sites = [world["site_a"].pk, world["site_b"].pk]
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    b"".join(odm_document(trial, sites, created_at=now))  # warm per-process caches
    with CaptureQueriesContext(connection) as before:
        chunks = list(odm_document(trial, sites, created_at=now))
    assert len(chunks) == 2 + 2  # header and metadata, one per subject, the closing tags
    for n in range(3):
        patient = PatientFactory(site=world["site_b"], subject_id=f"SB-10{n}")
        AdverseEventFactory(patient=patient, grade=Decimal(1))
    with CaptureQueriesContext(connection) as after:
        chunks = list(odm_document(trial, sites, created_at=now))
    assert len(chunks) == 2 + 5
    assert len(after) == len(before)


def test_command_writes_the_file(world, edited, tmp_path, xsd):  # type: ignore[no-untyped-def]
    out = tmp_path / "t.xml"
    call_command("export_odm", "TRIAL-T", str(out), stdout=io.StringIO())
    doc = etree.parse(str(out))
    assert xsd.validate(doc)
    assert [s.get("SubjectKey") for s in doc.findall(".//o:SubjectData", NS)] == ["SA-001", "SB-001"]
    with pytest.raises(CommandError, match="No trial"):
        call_command("export_odm", "NOPE", str(out))
    with pytest.raises(CommandError, match="file"):
        call_command("export_odm", "TRIAL-T", str(tmp_path / "missing" / "t.xml"))
