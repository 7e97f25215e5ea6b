"""The CDISC ODM 1.3.2 document of one trial, written incrementally (issue 18). No Django.

The study's metadata (events, forms, item groups, items, code lists), the admin data
(pseudonymous users, sites, signature meanings) and then one ``SubjectData`` at a time:
:func:`odm_chunks` takes the subjects as an iterator and yields the bytes written after
each one, so memory holds one casebook whatever the trial's size (lxml's ``xmlfile``
incremental writer). ``exchange.odm.selectors`` builds the inputs from the database.

Structure of a record (docs/exports.md, "ODM"): ``SubjectData`` (subject ID, ``SiteRef``)
> ``StudyEventData`` (screening, enrolment, cycle N, assessment, events log) >
``FormData`` (one per record, ``FormRepeatKey`` = the record's id) > one
``ItemGroupData`` per version of the record (``exchange.odm.transactions``) with its
``AuditRecord``, then a ``Context`` ``ItemGroupData`` per electronic signature of the
record, after the version it signed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from exchange.odm.transactions import ItemChange, TransactionType

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_O = f"{{{ODM_NS}}}"
_NSMAP: Any = {None: ODM_NS}  # lxml's default namespace key (lxml-stubs types the keys as str)


# --- metadata --------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeListDef:
    oid: str
    name: str
    data_type: str  # "text" or "integer"
    items: tuple[tuple[str, str], ...]  # (coded value, decode)


@dataclass(frozen=True)
class ItemDef:
    oid: str
    name: str  # the field's name in Trialdesk, e.g. "grade"
    label: str  # its label, the ItemDef's Question
    data_type: str
    length: int | None = None
    significant_digits: int | None = None
    codelist: str | None = None
    description: str = ""


@dataclass(frozen=True)
class FormDef:
    oid: str
    name: str
    group_oid: str
    items: tuple[ItemDef, ...]
    description: str = ""


@dataclass(frozen=True)
class EventDef:
    oid: str
    name: str
    repeating: bool
    type: str  # "Scheduled", "Unscheduled" or "Common"
    forms: tuple[str, ...]  # form OIDs
    description: str = ""


@dataclass(frozen=True)
class UserDef:
    oid: str
    user_type: str  # "Sponsor", "Investigator", "Lab" or "Other"
    display_name: str  # the user's role(s) in the trial, never a name


@dataclass(frozen=True)
class LocationDef:
    oid: str
    name: str


@dataclass(frozen=True)
class SignatureDef:
    oid: str
    meaning: str
    legal_reason: str


@dataclass(frozen=True)
class Study:
    oid: str
    name: str
    description: str
    protocol_name: str
    mdv_oid: str
    mdv_name: str
    events: tuple[EventDef, ...]
    forms: tuple[FormDef, ...]
    codelists: tuple[CodeListDef, ...]
    users: tuple[UserDef, ...]
    locations: tuple[LocationDef, ...]
    signature_defs: tuple[SignatureDef, ...]
    effective_date: datetime.date


# --- clinical data ---------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    user: str  # user OID
    location: str  # site OID
    at: datetime.datetime
    reason: str
    source_id: str


@dataclass(frozen=True)
class SignatureEntry:
    user: str
    location: str
    signature_def: str
    at: datetime.datetime


@dataclass(frozen=True)
class GroupEntry:
    """One ``ItemGroupData``: a version of the record, or a signature (``Context``)."""

    transaction: TransactionType
    items: tuple[ItemChange, ...] = ()
    audit: Audit | None = None
    signature: SignatureEntry | None = None


@dataclass(frozen=True)
class FormEntry:
    form: str
    group: str
    repeat_key: str
    entries: tuple[GroupEntry, ...]


@dataclass(frozen=True)
class EventEntry:
    event: str
    repeat_key: str | None
    forms: tuple[FormEntry, ...]


@dataclass(frozen=True)
class SubjectEntry:
    key: str  # the subject ID, nothing else identifies the patient
    location: str
    events: tuple[EventEntry, ...]


# --- writing ---------------------------------------------------------------------------


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(parent: Any, tag: str, text: str) -> Any:
    el = etree.SubElement(parent, _O + tag)
    el.text = text
    return el


def _translated(parent: Any, tag: str, text: str) -> Any:
    el = etree.SubElement(parent, _O + tag)
    tt = etree.SubElement(el, _O + "TranslatedText", {XML_LANG: "en"})
    tt.text = text
    return el


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def study_element(study: Study) -> Any:
    """``Study`` with its global variables and the one ``MetaDataVersion``."""
    root = etree.Element(_O + "Study", OID=study.oid, nsmap=_NSMAP)
    gv = etree.SubElement(root, _O + "GlobalVariables")
    _text(gv, "StudyName", study.name)
    _text(gv, "StudyDescription", study.description)
    _text(gv, "ProtocolName", study.protocol_name)
    mdv = etree.SubElement(root, _O + "MetaDataVersion", OID=study.mdv_oid, Name=study.mdv_name)
    protocol = etree.SubElement(mdv, _O + "Protocol")
    for n, event in enumerate(study.events, start=1):
        etree.SubElement(protocol, _O + "StudyEventRef", StudyEventOID=event.oid, OrderNumber=str(n), Mandatory="No")
    for event in study.events:
        attrs = {"OID": event.oid, "Name": event.name, "Repeating": _yes(event.repeating), "Type": event.type}
        el = etree.SubElement(mdv, _O + "StudyEventDef", attrs)
        if event.description:
            _translated(el, "Description", event.description)
        for n, form_oid in enumerate(event.forms, start=1):
            etree.SubElement(el, _O + "FormRef", FormOID=form_oid, OrderNumber=str(n), Mandatory="No")
    for form in study.forms:
        el = etree.SubElement(mdv, _O + "FormDef", OID=form.oid, Name=form.name, Repeating="Yes")
        if form.description:
            _translated(el, "Description", form.description)
        etree.SubElement(el, _O + "ItemGroupRef", ItemGroupOID=form.group_oid, Mandatory="Yes")
    for form in study.forms:
        el = etree.SubElement(mdv, _O + "ItemGroupDef", OID=form.group_oid, Name=form.name, Repeating="No")
        for n, item in enumerate(form.items, start=1):
            etree.SubElement(el, _O + "ItemRef", ItemOID=item.oid, OrderNumber=str(n), Mandatory="No")
    for form in study.forms:
        for item in form.items:
            attrs = {"OID": item.oid, "Name": item.name, "DataType": item.data_type}
            if item.length is not None:
                attrs["Length"] = str(item.length)
            if item.significant_digits is not None:
                attrs["SignificantDigits"] = str(item.significant_digits)
            el = etree.SubElement(mdv, _O + "ItemDef", attrs)
            if item.description:
                _translated(el, "Description", item.description)
            _translated(el, "Question", item.label)
            if item.codelist is not None:
                etree.SubElement(el, _O + "CodeListRef", CodeListOID=item.codelist)
    for codelist in study.codelists:
        el = etree.SubElement(mdv, _O + "CodeList", OID=codelist.oid, Name=codelist.name, DataType=codelist.data_type)
        for code, decode in codelist.items:
            item_el = etree.SubElement(el, _O + "CodeListItem", CodedValue=code)
            _translated(item_el, "Decode", decode)
    return root


def admin_element(study: Study) -> Any:
    """``AdminData``: users as pseudonymous OIDs with their role, sites, signature meanings."""
    root = etree.Element(_O + "AdminData", StudyOID=study.oid, nsmap=_NSMAP)
    for user in study.users:
        el = etree.SubElement(root, _O + "User", OID=user.oid, UserType=user.user_type)
        _text(el, "DisplayName", user.display_name)
    for location in study.locations:
        el = etree.SubElement(root, _O + "Location", OID=location.oid, Name=location.name, LocationType="Site")
        etree.SubElement(
            el,
            _O + "MetaDataVersionRef",
            StudyOID=study.oid,
            MetaDataVersionOID=study.mdv_oid,
            EffectiveDate=study.effective_date.isoformat(),
        )
    for sd in study.signature_defs:
        el = etree.SubElement(root, _O + "SignatureDef", OID=sd.oid, Methodology="Electronic")
        _text(el, "Meaning", sd.meaning)
        _text(el, "LegalReason", sd.legal_reason)
    return root


def _audit(parent: Any, audit: Audit) -> None:
    el = etree.SubElement(parent, _O + "AuditRecord")
    etree.SubElement(el, _O + "UserRef", UserOID=audit.user)
    etree.SubElement(el, _O + "LocationRef", LocationOID=audit.location)
    _text(el, "DateTimeStamp", _utc(audit.at))
    if audit.reason:
        _text(el, "ReasonForChange", audit.reason)
    _text(el, "SourceID", audit.source_id)


def _signature(parent: Any, sig: SignatureEntry) -> None:
    el = etree.SubElement(parent, _O + "Signature")
    etree.SubElement(el, _O + "UserRef", UserOID=sig.user)
    etree.SubElement(el, _O + "LocationRef", LocationOID=sig.location)
    etree.SubElement(el, _O + "SignatureRef", SignatureOID=sig.signature_def)
    _text(el, "DateTimeStamp", _utc(sig.at))


def subject_element(subject: SubjectEntry) -> Any:
    """One ``SubjectData`` with every record of the casebook and its history.

    Containers are ``Upsert`` (the receiving EDC creates the subject, visit or form if
    it has not got it); the item groups carry the history (module docstring)."""
    root = etree.Element(_O + "SubjectData", SubjectKey=subject.key, TransactionType="Upsert", nsmap=_NSMAP)
    etree.SubElement(root, _O + "SiteRef", LocationOID=subject.location)
    for event in subject.events:
        ev = etree.SubElement(root, _O + "StudyEventData", StudyEventOID=event.event)
        if event.repeat_key is not None:
            ev.set("StudyEventRepeatKey", event.repeat_key)
        ev.set("TransactionType", "Upsert")
        for form in event.forms:
            fd = etree.SubElement(
                ev, _O + "FormData", FormOID=form.form, FormRepeatKey=form.repeat_key, TransactionType="Upsert"
            )
            for entry in form.entries:
                ig = etree.SubElement(fd, _O + "ItemGroupData", ItemGroupOID=form.group)
                ig.set("TransactionType", entry.transaction)
                if entry.audit is not None:
                    _audit(ig, entry.audit)
                if entry.signature is not None:
                    _signature(ig, entry.signature)
                for change in entry.items:
                    attrs = {"ItemOID": change.item, "TransactionType": change.transaction}
                    if change.value is not None:
                        attrs["Value"] = change.value
                    etree.SubElement(ig, _O + "ItemData", attrs)
    return root


class _Sink:
    """A file object for ``xmlfile`` whose bytes are taken out after each subject."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def odm_chunks(
    study: Study,
    subjects: Iterable[SubjectEntry],
    *,
    file_oid: str,
    created_at: datetime.datetime,
    source_version: str = "",
) -> Iterator[bytes]:
    """The whole document as byte chunks: the header and metadata first, then one chunk
    per subject, then the closing tags."""
    sink = _Sink()
    attrs = {
        "FileOID": file_oid,
        "FileType": "Transactional",
        "Granularity": "All",
        "CreationDateTime": _utc(created_at),
        "ODMVersion": "1.3.2",
        "Originator": "Trialdesk",
        "SourceSystem": "Trialdesk",
    }
    if source_version:
        attrs["SourceSystemVersion"] = source_version
    with etree.xmlfile(sink, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(_O + "ODM", attrs, nsmap=_NSMAP):
            xf.write(study_element(study))
            xf.write(admin_element(study))
            with xf.element(_O + "ClinicalData", StudyOID=study.oid, MetaDataVersionOID=study.mdv_oid):
                xf.flush()
                yield sink.take()
                for subject in subjects:
                    xf.write(subject_element(subject))
                    xf.flush()
                    yield sink.take()
    yield sink.take()
