"""The ODM metadata of the casebook, generated from the Django models (issue 18).

Every audited record type of a casebook (``core.audit.casebook_models``) is a form with
one item group; every field a user entered is an item, typed from the model field
(``DataType``, ``Length``, ``SignificantDigits``) with a code list from its choices. Left
out: the keys the containers already carry (id, patient, trial, site, subject ID), the
bookkeeping (created/updated, version), the void's own fields (the void is the record's
``Remove`` transaction with its audit record), signature links (signatures are
``Signature`` elements) and every printed name of a person (``*_by_name``: no user is
named in an export, docs/exports.md). Data queries and SDV marks (the ``cleaning`` app)
are the sending EDC's workflow, not clinical data, and are not exported.

Only which visit a record type belongs to is a table here (``EVENT_OF``); a record type
added later lands in the events log until it is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import models

from core.audit import casebook_models
from exchange.odm.document import CodeListDef, EventDef, FormDef, ItemDef
from exchange.odm.transactions import oid_part

EXCLUDED_APPS = {"cleaning"}
_KEYS = {"id", "patient", "trial", "site", "subject_id"}
_BOOKKEEPING = {"created_at", "updated_at", "version", "voided_at", "voided_by", "void_reason", "signature"}

# (key, name, repeating, ODM type, description), in the protocol's order.
EVENTS: tuple[tuple[str, str, bool, str, str], ...] = (
    ("SCREENING", "Screening", False, "Scheduled", "Consents, eligibility screenings and the allogeneic HCT."),
    (
        "ENROLMENT",
        "Registration and enrolment",
        False,
        "Scheduled",
        "The subject's record: demographics, disease, prior therapy, assigned dose level and enrolment date.",
    ),
    (
        "CYCLE",
        "Treatment cycle",
        True,
        "Scheduled",
        "Cycle N (StudyEventRepeatKey = N): the dose, and the lab panel the pre-dose check used.",
    ),
    ("ASSESSMENT", "Disease assessment", True, "Unscheduled", "One per assessment (StudyEventRepeatKey = its id)."),
    (
        "EVENTS",
        "Events log",
        False,
        "Common",
        "Adverse events, GVHD episodes, concomitant medications, "
        "deviations, DLT decisions, outcome events and lab panels not used by a cycle.",
    ),
)
EVENT_OF = {
    "patients.consent": "SCREENING",
    "patients.screening": "SCREENING",
    "patients.transplant": "SCREENING",
    "patients.patient": "ENROLMENT",
    "dosing.cycle": "CYCLE",
    "dosing.labpanel": "CYCLE",  # and EVENTS when no cycle used it
    "patients.assessment": "ASSESSMENT",
}
# A related row outside the casebook is exported as its code, not its database id.
LOOKUP_VALUE = {"trial.doselevel": "level", "safety.ctcaeterm": "meddra_code", "trial.protocolversion": "version"}


@dataclass(frozen=True)
class Field:
    """How one item's value is read from a row: its column and what it refers to."""

    item: str  # item OID
    attname: str
    kind: str  # "value", "record" (id of a casebook record), "user" (pseudonym), "lookup"
    related: str = ""  # "app.model" of a lookup


@dataclass(frozen=True)
class FormSpec:
    model: Any
    label: str  # "app.model"
    patient_path: str  # "" for the patient itself, else "patient"
    event: str  # event key
    form: FormDef
    fields: tuple[Field, ...]
    history_table: str  # the SourceID of an audit record names the history row
    voidable: bool


def _data_type(field: models.Field) -> tuple[str, int | None, int | None]:  # type: ignore[type-arg]
    kind = field.get_internal_type()
    if kind in {"CharField", "SlugField", "EmailField"}:
        return "text", field.max_length, None
    if kind in {"TextField", "JSONField"}:
        return "text", None, None
    if kind.endswith("IntegerField") or kind == "AutoField":
        return "integer", None, None
    if kind == "DecimalField":
        return "float", field.max_digits, field.decimal_places  # type: ignore[attr-defined]
    if kind == "FloatField":
        return "float", None, None
    if kind == "BooleanField":
        return "boolean", None, None
    if kind == "DateTimeField":
        return "datetime", None, None
    if kind == "DateField":
        return "date", None, None
    if kind == "TimeField":
        return "time", None, None
    return "text", None, None


def _exported(field: models.Field) -> bool:  # type: ignore[type-arg]
    return field.name not in _KEYS | _BOOKKEEPING and not field.name.endswith("_by_name")


def _item(model: Any, field: models.Field, casebook: set[str]) -> tuple[ItemDef, Field, CodeListDef | None]:  # type: ignore[type-arg]
    prefix = oid_part(model._meta.model_name)
    oid = f"I.{prefix}.{oid_part(field.name)}"
    label = str(field.verbose_name)
    description = str(field.help_text or "")
    codelist = None
    if field.is_relation:
        related = field.related_model._meta  # type: ignore[union-attr]
        target = related.label_lower
        if target == settings.AUTH_USER_MODEL.lower():
            item = ItemDef(
                oid, field.name, label, "text", 20, description=description or "A user, as a pseudonymous OID."
            )
            return item, Field(oid, field.attname, "user"), None
        if target in casebook:
            note = f"The id of the {related.verbose_name} record (its FormRepeatKey)."
            return (
                ItemDef(oid, field.name, label, "integer", description=note),
                Field(oid, field.attname, "record"),
                None,
            )
        column = LOOKUP_VALUE.get(target)
        what = f"the {related.verbose_name}'s {column}" if column else f"the {related.verbose_name}"
        item = ItemDef(oid, field.name, label, "text", description=f"{what.capitalize()}.")
        return item, Field(oid, field.attname, "lookup", target), None
    data_type, length, digits = _data_type(field)
    if field.choices:
        codes = tuple((str(code), str(text)) for code, text in field.flatchoices)
        cl_type = "integer" if data_type == "integer" else "text"
        codelist = CodeListDef(
            f"CL.{prefix}.{oid_part(field.name)}", f"{model._meta.verbose_name}: {label}", cl_type, codes
        )
        if length is None and data_type == "text":
            length = max(len(code) for code, _ in codes)
    item = ItemDef(oid, field.name, label, data_type, length, digits, codelist.oid if codelist else None, description)
    return item, Field(oid, field.attname, "value"), codelist


@cache
def form_specs() -> tuple[FormSpec, ...]:
    """Every exported record type, in the events' order then the models' order."""
    found = [(m, path) for m, path in casebook_models() if m._meta.app_label not in EXCLUDED_APPS]
    casebook = {m._meta.label_lower for m, _ in found}
    order = {key: n for n, (key, *_rest) in enumerate(EVENTS)}
    specs = []
    for model, path in found:
        label = model._meta.label_lower
        prefix = oid_part(model._meta.model_name)
        items, fields = [], []
        for field in model._meta.concrete_fields:
            if not _exported(field):
                continue
            item, how, _ = _item(model, field, casebook)
            items.append(item)
            fields.append(how)
        name = str(model._meta.verbose_name).capitalize()
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        form = FormDef(
            f"F.{prefix}", name, f"IG.{prefix}", tuple(items), doc if not doc.startswith(model.__name__ + "(") else ""
        )
        history_table = model.history.model._meta.db_table
        voidable = any(f.name == "voided_at" for f in model._meta.concrete_fields)
        event = EVENT_OF.get(label, "EVENTS")
        specs.append(FormSpec(model, label, path, event, form, tuple(fields), history_table, voidable))
    specs.sort(key=lambda s: order[s.event])
    return tuple(specs)


def codelists() -> tuple[CodeListDef, ...]:
    out = []
    casebook = {s.label for s in form_specs()}
    for spec in form_specs():
        for field in spec.model._meta.concrete_fields:
            if _exported(field) and field.choices and not field.is_relation:
                _, _, codelist = _item(spec.model, field, casebook)
                if codelist is not None:
                    out.append(codelist)
    return tuple(out)


def event_defs() -> tuple[EventDef, ...]:
    specs = form_specs()
    events = []
    for key, name, repeating, kind, description in EVENTS:
        forms = tuple(s.form.oid for s in specs if s.event == key)
        if key == "EVENTS":
            forms += tuple(s.form.oid for s in specs if s.label == "dosing.labpanel")
        events.append(EventDef(f"SE.{key}", name, repeating, kind, forms, description))
    return tuple(events)
