"""Reads one trial's casebooks, with every version of every record, into the inputs of
:mod:`exchange.odm.document` (issue 18), one subject at a time.

Streamed: the patients and, per record type, the history table (every version, oldest
first) are read through server-side cursors ordered by patient, all open at once inside
one read-only transaction, and merged patient by patient; memory holds one casebook.
Records that have no history row (rows written by SQL, e.g. bench data) come from the
record table through an anti-join, so they are exported too (as an ``Insert`` without an
audit record). Scoped by the caller: ``site_ids`` are the sites the user may export
(``trial.access.sites_for(user, trial, "export")``), or every site for the operator's
``manage.py export_odm``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from core.models import Signature
from exchange.exports import DELETIONS_NOTE, export_trial, lock_summary
from exchange.odm import metadata
from exchange.odm.document import (
    Audit,
    EventEntry,
    FormEntry,
    GroupEntry,
    LocationDef,
    SignatureDef,
    SignatureEntry,
    Study,
    SubjectEntry,
    UserDef,
    odm_chunks,
)
from exchange.odm.transactions import Version, odm_text, oid_part, user_oid, version_changes
from patients.models import Patient
from trial import access
from trial.models import RoleGrant, Site, Trial

CHUNK_ROWS = 2000
# (content type id, record id) -> [(signer id, meaning, signed at, record version)]
_Signed = dict[tuple[int, int], list[tuple[int | None, str, Any, int]]]
USER_TYPE = {
    RoleGrant.Role.INVESTIGATOR: "Investigator",
    RoleGrant.Role.COORDINATOR: "Investigator",  # site staff: the investigator's side in ODM terms
    RoleGrant.Role.SPONSOR: "Sponsor",
    RoleGrant.Role.MONITOR: "Sponsor",
}
LEGAL_REASON = (
    "Electronic signature (21 CFR 11.50/11.70): the signer re-entered their password; the sending system "
    "keeps the printed name, the signed version's SHA-256 hash and an HMAC seal."
)


def _pseudonym(user_id: int | None) -> str:
    return user_oid(settings.SECRET_KEY, user_id)


def _site_oid(code: str) -> str:
    return f"LOC.{oid_part(code)}"


def _patients(trial: Trial, site_ids: Sequence[int]) -> QuerySet[Patient]:
    return Patient.objects.filter(trial=trial, site_id__in=list(site_ids))


def _own_patients(spec: metadata.FormSpec, patients: QuerySet[Patient]) -> dict[str, Any]:
    if spec.patient_path == "":
        return {"id__in": patients.values("id")}
    return {f"{spec.patient_path}_id__in": patients.values("id")}


def _patient_column(spec: metadata.FormSpec) -> str:
    return "id" if spec.patient_path == "" else f"{spec.patient_path}_id"


def _users(trial: Trial, patients: QuerySet[Patient], signer_ids: set[int]) -> tuple[UserDef, ...]:
    """Everyone who wrote a version of an exported record or signed one, and every role
    holder of the trial: a pseudonymous OID and the roles (never a name). One query per
    record type plus one."""
    ids: set[int | None] = set(signer_ids)
    for spec in metadata.form_specs():
        ids |= set(
            spec.model.history.filter(**_own_patients(spec, patients))
            .order_by()
            .values_list("history_user_id", flat=True)
            .distinct()
        )
    roles: dict[int, set[str]] = {}
    for user_id, role in RoleGrant.objects.filter(trial=trial).values_list("user_id", "role"):
        roles.setdefault(user_id, set()).add(role)
        ids.add(user_id)
    out = []
    for user_id in sorted(ids, key=lambda i: (i is not None, i or 0)):
        if user_id is None:
            out.append(UserDef(_pseudonym(None), "Other", "system (no user: a migration or an import)"))
            continue
        held = roles.get(user_id, set())
        types = {USER_TYPE.get(RoleGrant.Role(r), "Other") for r in held}
        user_type = "Investigator" if "Investigator" in types else "Sponsor" if "Sponsor" in types else "Other"
        shown = ", ".join(sorted(str(RoleGrant.Role(r).label) for r in held)) or "no role in this trial"
        out.append(UserDef(_pseudonym(user_id), user_type, shown))
    return tuple(sorted(out, key=lambda u: u.oid))


def _signatures(patients: QuerySet[Patient]) -> _Signed:
    """(content type, record id) -> [(signer, meaning, signed_at, record_version)] of the
    exported records. One query per record type that can be signed."""
    from django.contrib.contenttypes.models import ContentType

    found: _Signed = {}
    for spec in metadata.form_specs():
        ct = ContentType.objects.get_for_model(spec.model)
        records = spec.model._base_manager.filter(**_own_patients(spec, patients)).values("pk")
        rows = Signature.objects.filter(content_type=ct, object_id__in=records).order_by("signed_at", "id")
        for ct_id, object_id, signer, meaning, at, version in rows.values_list(
            "content_type_id", "object_id", "signer_id", "meaning", "signed_at", "record_version"
        ):
            found.setdefault((ct_id, object_id), []).append((signer, meaning, at, version))
    return found


def odm_study(trial: Trial, site_ids: Sequence[int], signer_ids: set[int]) -> Study:
    patients = _patients(trial, site_ids)
    sites = Site.objects.filter(trial=trial, pk__in=list(site_ids)).order_by("code")
    code = oid_part(trial.code)
    return Study(
        oid=f"ST.{code}",
        name=trial.code,
        description=trial.title,
        protocol_name=trial.code,
        mdv_oid=f"MDV.{code}",
        mdv_name=f"{trial.code} casebook (Trialdesk)",
        events=metadata.event_defs(),
        forms=tuple(s.form for s in metadata.form_specs()),
        codelists=metadata.codelists(),
        users=_users(trial, patients, signer_ids),
        locations=tuple(LocationDef(_site_oid(s.code), s.name) for s in sites),
        signature_defs=tuple(
            SignatureDef(f"SD.{oid_part(value)}", str(label), LEGAL_REASON)
            for value, label in Signature.Meaning.choices
        ),
        effective_date=trial.created_at.date(),
    )


class _Rows:
    """A cursor's rows, ordered by patient, taken one patient at a time."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._next: tuple[Any, ...] | None = next(rows, None)

    def take(self, patient_id: int) -> list[tuple[Any, ...]]:
        out = []
        while self._next is not None and self._next[0] <= patient_id:
            if self._next[0] == patient_id:
                out.append(self._next)
            self._next = next(self._rows, None)
        return out


def _lookups(spec: metadata.FormSpec) -> dict[str, dict[Any, str]]:
    """The code of every related row outside the casebook (dose levels, CTCAE terms,
    protocol versions: small tables), read once."""
    from django.apps import apps

    out = {}
    for field in spec.fields:
        if field.kind == "lookup":
            model = apps.get_model(field.related)
            column = metadata.LOOKUP_VALUE.get(field.related)
            if column:
                out[field.item] = {pk: odm_text(v) or "" for pk, v in model._base_manager.values_list("pk", column)}
            else:
                out[field.item] = {obj.pk: str(obj) for obj in model._base_manager.all()}
    return out


def _converter(spec: metadata.FormSpec) -> Callable[[Sequence[Any]], tuple[tuple[str, str | None], ...]]:
    lookups = _lookups(spec)

    def values(row: Sequence[Any]) -> tuple[tuple[str, str | None], ...]:
        out = []
        for field, value in zip(spec.fields, row, strict=True):
            if value is None:
                out.append((field.item, None))
            elif field.kind == "user":
                out.append((field.item, _pseudonym(value)))
            elif field.kind == "lookup":
                out.append((field.item, lookups[field.item].get(value, str(value))))
            else:
                out.append((field.item, odm_text(value)))
        return tuple(out)

    return values


def _history_rows(spec: metadata.FormSpec, patients: QuerySet[Patient]) -> Iterator[tuple[Any, ...]]:
    """(patient, record id, history id, date, type, reason, user, voided, version, *items)."""
    columns = [f.attname for f in spec.fields]
    voided = "voided_at" if spec.voidable else "history_id"
    qs = (
        spec.model.history.filter(**_own_patients(spec, patients))
        .order_by(_patient_column(spec), "id", "history_date", "history_id")
        .values_list(
            _patient_column(spec),
            "id",
            "history_id",
            "history_date",
            "history_type",
            "history_change_reason",
            "history_user_id",
            voided,
            "version",
            *columns,
        )
    )
    return qs.iterator(chunk_size=CHUNK_ROWS)


def _unaudited_rows(spec: metadata.FormSpec, patients: QuerySet[Patient]) -> Iterator[tuple[Any, ...]]:
    """(patient, record id, voided, *items) of records without any history row."""
    history = spec.model.history.filter(id=OuterRef("pk"))
    voided = "voided_at" if spec.voidable else "version"
    qs = (
        spec.model._base_manager.filter(**_own_patients(spec, patients))
        .filter(~Exists(history))
        .order_by(_patient_column(spec), "id")
        .values_list(_patient_column(spec), "id", voided, *[f.attname for f in spec.fields])
    )
    return qs.iterator(chunk_size=CHUNK_ROWS)


def _form_entries(
    spec: metadata.FormSpec,
    history: list[tuple[Any, ...]],
    unaudited: list[tuple[Any, ...]],
    site: str,
    signatures: _Signed,
    ct_id: int,
    convert: Callable[[Sequence[Any]], tuple[tuple[str, str | None], ...]],
) -> list[tuple[int, FormEntry, dict[str, str | None]]]:
    """(record id, its FormData, its current values) for one patient's records of one type."""
    by_record: dict[int, list[tuple[Any, ...]]] = {}
    for row in history:
        by_record.setdefault(row[1], []).append(row)
    out = []
    history_table = spec.history_table
    for record_id, rows in by_record.items():
        versions = [
            Version(convert(r[9:]), voided=spec.voidable and r[7] is not None, deleted=r[4] == "-") for r in rows
        ]
        signed = {}
        for signer, meaning, at, version in signatures.get((ct_id, record_id), []):
            signed.setdefault(version, []).append(
                GroupEntry("Context", signature=SignatureEntry(_pseudonym(signer), site, f"SD.{oid_part(meaning)}", at))
            )
        entries: list[GroupEntry] = []
        for row, change in zip(rows, version_changes(versions), strict=True):
            audit = Audit(_pseudonym(row[6]), site, row[3], row[5] or "", f"{history_table}:{row[2]}")
            entries.append(GroupEntry(change.transaction, change.items, audit))
            entries.extend(signed.pop(row[8], []))
        for rest in signed.values():  # a signature on a version not in the history (imported)
            entries.extend(rest)
        current = dict(versions[-1].values)
        out.append((record_id, FormEntry(spec.form.oid, spec.form.group_oid, str(record_id), tuple(entries)), current))
    for row in unaudited:
        version = Version(convert(row[3:]), voided=spec.voidable and row[2] is not None)
        entries = [GroupEntry(c.transaction, c.items) for c in version_changes([version])]
        if version.voided:
            entries.append(GroupEntry("Remove"))
        entry = FormEntry(spec.form.oid, spec.form.group_oid, str(row[1]), tuple(entries))
        out.append((row[1], entry, dict(version.values)))
    out.sort(key=lambda t: t[0])
    return out


def odm_subjects(trial: Trial, site_ids: Sequence[int], signatures: _Signed | None = None) -> Iterator[SubjectEntry]:
    """One :class:`SubjectEntry` per patient of the sites, in subject order of their ids.

    Runs inside one read-only transaction (named cursors need one) for as long as the
    stream; ``cursor_tuple_fraction = 1``: the whole result is read (exchange.exports)."""
    from django.contrib.contenttypes.models import ContentType

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as setup:
                setup.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        patients = _patients(trial, site_ids)
        if signatures is None:
            signatures = _signatures(patients)
        specs = metadata.form_specs()
        sites = dict(Site.objects.filter(trial=trial).values_list("pk", "code"))
        cts = {s.label: ContentType.objects.get_for_model(s.model).pk for s in specs}
        converters = {s.label: _converter(s) for s in specs}
        streams = [(s, _Rows(_history_rows(s, patients)), _Rows(_unaudited_rows(s, patients))) for s in specs]
        order = {e.oid: n for n, e in enumerate(metadata.event_defs())}
        people = patients.order_by("id").values_list("id", "subject_id", "site_id").iterator(chunk_size=CHUNK_ROWS)
        for patient_id, subject_id, site_id in people:
            site = _site_oid(sites[site_id])
            by_event: dict[tuple[str, str | None], list[FormEntry]] = {}
            cycle_labs: dict[int, str] = {}  # lab panel id -> cycle number that used it
            forms: list[tuple[metadata.FormSpec, int, FormEntry, dict[str, str | None]]] = []
            for spec, history, unaudited in streams:
                for record_id, form, current in _form_entries(
                    spec,
                    history.take(patient_id),
                    unaudited.take(patient_id),
                    site,
                    signatures,
                    cts[spec.label],
                    converters[spec.label],
                ):
                    forms.append((spec, record_id, form, current))
                    if spec.label == "dosing.cycle":
                        lab = current.get("I.CYCLE.LAB_PANEL")
                        if lab is not None:
                            cycle_labs[int(lab)] = current.get("I.CYCLE.NUMBER") or str(record_id)
            for spec, record_id, form, current in forms:
                if spec.event == "CYCLE":
                    if spec.label == "dosing.cycle":
                        key: tuple[str, str | None] = ("SE.CYCLE", current.get("I.CYCLE.NUMBER") or str(record_id))
                    elif record_id in cycle_labs:
                        key = ("SE.CYCLE", cycle_labs[record_id])
                    else:
                        key = ("SE.EVENTS", None)
                elif spec.event == "ASSESSMENT":
                    key = ("SE.ASSESSMENT", str(record_id))
                else:
                    key = (f"SE.{spec.event}", None)
                by_event.setdefault(key, []).append(form)
            events = tuple(
                EventEntry(event, repeat, tuple(entries))
                for (event, repeat), entries in sorted(
                    by_event.items(), key=lambda kv: (order[kv[0][0]], _repeat_order(kv[0][1]))
                )
            )
            yield SubjectEntry(subject_id, site, events)


def _repeat_order(key: str | None) -> tuple[int, str]:
    if key is None:
        return (0, "")
    return (int(key), key) if key.isdigit() else (0, key)


def odm_document(trial: Trial, site_ids: Sequence[int], *, created_at: datetime.datetime) -> Iterator[bytes]:
    """The trial's ODM document as byte chunks (metadata first, then each subject)."""
    signatures = _signatures(_patients(trial, site_ids))
    signers = {signer for signed in signatures.values() for signer, *_ in signed if signer is not None}
    study = odm_study(trial, site_ids, signers)
    file_oid = f"ODM.{oid_part(trial.code)}.{created_at.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}"
    subjects = odm_subjects(trial, site_ids, signatures)
    return odm_chunks(study, subjects, file_oid=file_oid, created_at=created_at)


def odm_write(trial: Trial, site_ids: Sequence[int], out: Any) -> int:
    """Write the document to a binary file object; the number of bytes written."""
    size = 0
    for chunk in odm_document(trial, site_ids, created_at=timezone.now()):
        out.write(chunk)
        size += len(chunk)
    return size


def odm_stream(user: Any, trial_ref: str) -> tuple[Trial, Iterable[bytes], dict[str, str]]:
    """Check access (404 outside the user's export grants, before the first byte), then
    the trial, the byte iterator and the response headers (as the other exports)."""
    trial = export_trial(user, trial_ref)
    site_ids = list(access.sites_for(user, trial, "export").values_list("pk", flat=True))
    generated_at = timezone.now()
    lock = lock_summary(trial, site_ids)
    headers = {
        "X-Export-Dataset": "odm",
        "X-Export-Generated-At": generated_at.isoformat(),
        "X-Export-Updated-Since": "",
        "X-Export-Deletions": DELETIONS_NOTE,
        "X-Export-Trial-Lock": lock["trial"]
        + (f"; since {lock['trial_locked_at']}" if lock["trial_locked_at"] else ""),
        "X-Export-Casebook-Locks": "; ".join(f"{state}={n}" for state, n in lock["casebooks"].items()),
        "Content-Disposition": f'attachment; filename="{trial.code}_odm.xml"',
    }
    return trial, odm_document(trial, site_ids, created_at=generated_at), headers
