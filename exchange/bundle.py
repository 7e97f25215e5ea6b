"""The trial bundle (docs/api.md "The trial bundle"; every key in docs/bundle.md).

``bundle_export(trial)`` writes one JSON-ready dict carrying a whole trial;
``bundle_import(data)`` creates it again through the same services the screens use
(one rule, one place), inside one transaction: any problem, and the whole bundle is
refused with every problem listed by JSON path, and nothing is written.

Import runs in two passes. The first checks the document's shape: unknown keys, types,
enumerations, required keys and references between records (AE indices, protocol
versions, sites, dose levels). Only a well-formed bundle reaches the second pass, which
writes every record through its service (each in its own savepoint, so one refusal
does not hide the next) and rolls everything back if any service refused anything.

Signatures in a bundle are historic: kept as recorded (name, date), marked imported,
no live signature; the signer need not be a user here. Writes are made by a dedicated
service user (``IMPORT_USERNAME``) that holds coordinator and investigator grants in
the new trial only while the import runs.

Data cleaning (issue 12) rides along per patient: ``queries`` (with their threads) and
``source_verifications``, each naming its record by its path inside the patient as the
export lists it; re-created after all records and before the locks (docs/bundle.md).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from analysis import services as analysis_services
from analysis.escalation import Decision, DltStatus, EscalationDesign, PatientOutcome, SignedDecision, Variant
from analysis.escalation import escalation_state as escalation_rule
from cleaning import services as cleaning_services
from cleaning.models import DataQuery, QueryMessage, SourceVerification
from dosing import services as dosing_services
from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
from patients import services as patient_services
from patients import subject_ids
from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.dlt import EVIDENCE_FIELDS
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode
from trial import services as trial_services
from trial.access import forget_grants
from trial.configuration import DoseLevelSpec
from trial.models import DoseLevel, EscalationSignoff, ProtocolVersion, RoleGrant, Trial, TrialLock

FORMAT = "trial-bundle/1"
IMPORT_USERNAME = "trialdesk-bundle-import"
IMPORT_REASON = "trial bundle import"


class BundleInvalid(Exception):
    """The bundle was refused whole; ``problems`` are "json.path: message" strings."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"The trial bundle was refused ({len(problems)} problem(s)):\n" + "\n".join(problems))


# ------------------------------------------------------------------ the document's shape


@dataclass(frozen=True)
class F:
    """One key: its kind ("str", "int", "num", "bool", "date", "datetime", "list",
    "object", "enum"), whether it is required, and for lists/objects the nested keys."""

    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    fields: dict[str, F] | None = None
    nullable: bool = True


def _enum(choices: Any, required: bool = False) -> F:
    values = tuple(choices.values) if hasattr(choices, "values") else tuple(choices)
    return F("enum", required, values)


# A record voided as entered in error (issue 19): when, by whom (the name as recorded)
# and why; re-voided on import, kept out of every list, result and export as before.
VOIDED_KEYS: dict[str, F] = {
    "at": F("datetime", True, nullable=False),
    "by": F("str", True, nullable=False),
    "reason": F("str", True, nullable=False),
}
LAB_KEYS = {
    "date": F("date", True, nullable=False),
    "platelets": F("num"),
    "anc": F("num"),
    "hemoglobin": F("num"),
    "bilirubin": F("num"),
    "alt": F("num"),
    "ast": F("num"),
    "voided": F("object", fields=VOIDED_KEYS),
}
# A casebook's or the trial's lock state (issue 12); re-applied after the import.
LOCK_KEYS: dict[str, F] = {
    "state": _enum(("open", "frozen", "locked"), True),
    "at": F("datetime"),
    "by": F("str"),
    "reason": F("str"),
}
TRIAL_KEYS: dict[str, F] = {
    "code": F("str", True, nullable=False),
    "title": F("str", True, nullable=False),
    "sponsor": F("str", nullable=False),  # absent in older bundles: not recorded
    "design": _enum(Trial.Design),
    "escalation_variant": _enum(Trial.EscalationVariant),
    "cycle_length_days": F("int"),
    "dlt_window_cycles": F("int"),
    "expansion_cohort_size": F("int"),
    # The dose-finding design's parameters (issue 17; trial.configuration.design_problems).
    "target_dlt_rate": F("num"),
    "cohort_size": F("int"),
    "max_sample_size": F("int"),
    "boin_p_saf": F("num"),
    "boin_p_tox": F("num"),
    "boin_n_earlystop": F("int"),
    "crm_skeleton": F("numlist"),
    "crm_model": _enum(Trial.CrmModel),
    "crm_prior_sd": F("num"),
    # Backfill (issue 17; analysis.designs.backfill, trial.configuration.backfill_problems).
    "backfill_enabled": F("bool"),
    "backfill_max_per_level": F("int"),
    "backfill_levels": F("int"),
    "bsa_method": _enum(Trial.BsaMethod),
    "age_min": F("int"),
    "age_max": F("int"),
    "enrol_day_min": F("int"),
    "enrol_day_max": F("int"),
    "min_platelets": F("num"),
    "min_anc": F("num"),
    "screening_lab_days": F("int"),
    "max_delay_days": F("int"),
    "reduction_percent": F("int"),
    "dlt_min_grade": F("int"),
    "dlt_cytopenia_days": F("int"),
    "sae_report_hours": F("int"),
    "survival_origin": _enum(Trial.SurvivalOrigin),
    "landmark_days": F("num"),
    "time_zone": F("str"),
    "dose_levels": F(
        "list",
        True,
        fields={"level": F("int", True, nullable=False), "dose_mg_m2": F("num", True, nullable=False)},
    ),
    "protocol_versions": F(
        "list",
        True,
        fields={
            "version": F("str", True, nullable=False),
            "effective": F("date", True, nullable=False),
            "max_cycles": F("int", True, nullable=False),
        },
    ),
    "sites": F(
        "list",
        True,
        fields={
            "code": F("str", True, nullable=False),
            "name": F("str", True, nullable=False),
            "country": F("str", nullable=False),  # ISO 3166-1 alpha-3; absent in older bundles
        },
    ),
}
TRIAL_SETTINGS = [k for k, f in TRIAL_KEYS.items() if f.kind not in ("list",) and k not in ("code", "title")]
# Trial settings stored as floats (FloatField): a bundle's numbers arrive as Decimals.
FLOAT_SETTINGS = ("target_dlt_rate", "boin_p_saf", "boin_p_tox", "crm_prior_sd")
PATIENT_KEYS: dict[str, F] = {
    "subject_id": F("str", True, nullable=False),
    "site": F("str", True, nullable=False),
    "sex": _enum(Patient.Sex, True),
    "race": _enum(Patient.Race),
    "birth_year": F("int", True, nullable=False),
    "diagnosis": _enum(Patient.Diagnosis),
    "cd22_positive": F("bool"),
    "ph_positive": F("bool"),
    "cytogenetic_risk": _enum(Patient.CytogeneticRisk),
    "prior_lines": F("int"),
    "prior_asparaginase": F("bool"),
    "prior_blinatumomab": F("bool"),
    "prior_inotuzumab": F("bool"),
    "prior_car_t": F("bool"),
    "prior_hct": F("bool"),
    "hct_ci": F("int"),
    "consents": F(
        "list",
        fields={
            "protocol_version": F("str", True, nullable=False),
            "date": F("date", True, nullable=False),
            # Consent to a version other than the one in effect on that date: the
            # investigator's reason (patients.services.consent_record refuses it without).
            "version_override_reason": F("str"),
        },
    ),
    "transplant": F(
        "object",
        fields={
            "date": F("date", True, nullable=False),
            "disease_status": _enum(Transplant.DiseaseStatus, True),
            "conditioning": _enum(Transplant.Conditioning, True),
            "regimen": _enum(Transplant.Regimen),
            "atg": F("bool"),
            "donor_type": _enum(Transplant.DonorType),
            "graft_source": _enum(Transplant.GraftSource),
            "gvhd_prophylaxis": _enum(Transplant.GvhdProphylaxis),
            "mrd_before": F("bool"),
            "mrd_after": F("bool"),
            "cr_at_day30": F("bool"),
        },
    ),
    "screenings": F(
        "list",
        fields={
            "date": F("date", True, nullable=False),
            "lab_date": F("date"),
            "platelets_10e9_l": F("num"),
            "anc_10e9_l": F("num"),
            "agvhd_grade": F("int"),
            "liver_gvhd": F("bool"),
            "sos_history": F("bool"),
            "result": _enum(Screening.Result),
        },
    ),
    "enrolled": F("date"),
    "dose_level": F("int"),
    "enrolment_deviation": F("str"),
    "enrolled_as_backfill": F("bool"),
    "labs": F("list", fields=LAB_KEYS),
    "deviations": F(
        "list",
        fields={
            "kind": _enum(Deviation.Kind, True),
            "date": F("date", True, nullable=False),
            "reason": F("str", True, nullable=False),
            "cycle_number": F("int"),
        },
    ),
    "cycles": F(
        "list",
        fields={
            "number": F("int", True, nullable=False),
            "day1": F("date", True, nullable=False),
            "due_date": F("date"),
            "height_cm": F("num"),
            "weight_kg": F("num"),
            "bsa_m2": F("num"),
            "dose_mg_m2": F("num"),
            "dose_mg": F("num"),
            "reduced": F("bool"),
            "reduction_reason": _enum(Cycle.ReductionReason),
            "full_dose_restored": F("bool"),
            "full_dose_restored_reason": F("str"),
            "delay_days": F("int"),
            "reason": F("str"),
            "given": F("bool"),
            "not_given_reason": F("str"),
            "acute_gvhd_grade": F("int"),
            "liver_gvhd": F("bool"),
            "sos": F("bool"),
            "labs": F("object", fields=LAB_KEYS),
        },
    ),
    "adverse_events": F(
        "list",
        fields={
            "term": F("str", True, nullable=False),
            "meddra_code": F("str", True, nullable=False),
            "ctcae_version": F("str"),
            "specify": F("str"),
            "grade": F("int", True, nullable=False),
            "onset": F("date", True, nullable=False),
            "resolved": F("date"),
            "attribution": _enum(AdverseEvent.Attribution, True),
            "serious": F("bool"),
            **{name: F("bool") for name in safety_services.SAE_CRITERIA},
            "sae_reported_at": F("datetime"),
            "expected": F("bool"),
            "action": _enum(AdverseEvent.Action),
            "outcome": _enum(AdverseEvent.Outcome),
            "source": _enum(AdverseEvent.Source),
            "voided": F("object", fields=VOIDED_KEYS),
        },
    ),
    "gvhd_episodes": F(
        "list",
        fields={
            "kind": _enum(GvhdEpisode.Kind, True),
            "onset": F("date", True, nullable=False),
            "resolved": F("date"),
            "acute_grade": F("int"),
            "skin_stage": F("int"),
            "liver_stage": F("int"),
            "gi_stage": F("int"),
            "chronic_severity": _enum(GvhdEpisode.ChronicSeverity),
            "liver_involved": F("bool"),
            "voided": F("object", fields=VOIDED_KEYS),
        },
    ),
    "dlt_adjudications": F(
        "list",
        fields={
            "adverse_event": F("int"),
            "kind": _enum(DltAdjudication.Rule),
            "event_date": F("date"),
            "is_dlt": F("bool", True, nullable=False),
            "rationale": F("str", True, nullable=False),
            "by": F("str", True, nullable=False),
            "at": F("date", True, nullable=False),
            "supersedes": F("int"),
            # The AE's values the signed decision rests on (issue 16): kept as signed, so a
            # decision whose AE was edited afterwards stays invalidated after a move.
            "evidence": F(
                "object",
                fields={
                    "term": F("str", True, nullable=False),
                    "grade": F("int", True, nullable=False),
                    "onset": F("date", True, nullable=False),
                    "resolved": F("date", True),
                    "attribution": _enum(AdverseEvent.Attribution, True),
                },
            ),
        },
    ),
    "assessments": F(
        "list",
        fields={
            "kind": _enum(Assessment.Kind, True),
            "date": F("date", True, nullable=False),
            "method": _enum(Assessment.Method),
            "result": _enum(Assessment.Result),
            "level": F("num"),
            "blasts_pct": F("num"),
            "response": _enum(Assessment.Response),
            "extramedullary": F("bool"),
            "voided": F("object", fields=VOIDED_KEYS),
        },
    ),
    "events": F(
        "list",
        fields={
            "kind": _enum(PatientEvent.Kind, True),
            "date": F("date", True, nullable=False),
            "cause": _enum(PatientEvent.DeathCause),
            "reason": _enum(PatientEvent.EotReason),
            "blasts_pct": F("num"),
            "relapse_site": F("str"),
            "details": F("str"),
            "voided": F("object", fields=VOIDED_KEYS),
        },
    ),
    "concomitant_medications": F(
        "list",
        fields={
            "agent": _enum(ConcomitantMedication.Agent, True),
            "other_agent": F("str"),
            "start": F("date", True, nullable=False),
            "stop": F("date"),
            "voided": F("object", fields=VOIDED_KEYS),
        },
    ),
}
PATIENT_KEYS["lock"] = F("object", fields=LOCK_KEYS)
# Data cleaning (issue 12): queries with their threads, and source verification marks, on
# a record named by its path inside the patient ("adverse_events[2]", "cycles[0].labs").
QUERY_KEYS: dict[str, F] = {
    "record": F("str", True, nullable=False),
    "field": F("str"),
    "question": F("str", True, nullable=False),
    "state": _enum(DataQuery.State, True),
    "origin": _enum(DataQuery.Origin),
    "rule_code": F("str"),
    "raised_by": F("str"),
    "raised_at": F("datetime", True, nullable=False),
    "closed_at": F("datetime"),
    "messages": F(
        "list",
        True,
        nullable=False,
        fields={
            "kind": _enum(QueryMessage.Kind, True),
            "text": F("str"),
            "by": F("str"),
            "at": F("datetime", True, nullable=False),
            "field": F("str"),
            "old": F("str"),
            "new": F("str"),
        },
    ),
}
VERIFICATION_KEYS: dict[str, F] = {
    "record": F("str", True, nullable=False),
    "current": F("bool", True, nullable=False),
    "by": F("str", True, nullable=False),
    "at": F("datetime", True, nullable=False),
}
PATIENT_KEYS["queries"] = F("list", fields=QUERY_KEYS)
PATIENT_KEYS["source_verifications"] = F("list", fields=VERIFICATION_KEYS)
# Record lists a query or a mark can point into (patients[].<key>[i]); plus "patient",
# "transplant" and a cycle's visit lab panel "cycles[i].labs".
RECORD_LISTS = (
    "consents",
    "screenings",
    "labs",
    "deviations",
    "cycles",
    "adverse_events",
    "gvhd_episodes",
    "dlt_adjudications",
    "assessments",
    "events",
    "concomitant_medications",
)
_RECORD_PATH = re.compile(r"^(?:(patient|transplant)|([a-z_]+)\[(\d+)\](\.labs)?)$")
BUNDLE_KEYS: dict[str, F] = {
    "format": F("str", True, nullable=False),
    "trial": F("object", True, fields=TRIAL_KEYS, nullable=False),
    "trial_lock": F("object", fields=LOCK_KEYS),
    "patients": F("list", fields=PATIENT_KEYS),
    "escalation_signoffs": F(
        "list",
        fields={
            "dose_level": F("int", True, nullable=False),
            "decision": _enum((*Decision, "stay"), True),
            "by": F("str", True, nullable=False),
            "at": F("date", True, nullable=False),
            "rationale": F("str"),
        },
    ),
}


def _parse_value(spec: F, value: Any, path: str, problems: list[str]) -> Any:
    if value is None:
        if not spec.nullable or spec.required and spec.kind in ("list", "object"):
            problems.append(f"{path}: a value is required (not null).")
        return None
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            problems.append(f"{path}: expected text, got {type(value).__name__}.")
            return None
        return value
    if kind == "enum":
        if value == "" and not spec.required:
            return None  # an empty choice is "not recorded", as null
        if value not in spec.choices:
            problems.append(f"{path}: {value!r} is not one of {', '.join(spec.choices)}.")
            return None
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true or false, got {value!r}.")
            return None
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected a whole number, got {value!r}.")
            return None
        return value
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            problems.append(f"{path}: expected a number, got {value!r}.")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            problems.append(f"{path}: expected a number, got {value!r}.")
            return None
        if not number.is_finite():
            problems.append(f"{path}: expected a finite number, got {value!r}.")
            return None
        return number
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            problems.append(f"{path}: expected an ISO 8601 date (YYYY-MM-DD), got {value!r}.")
            return None
        try:
            if kind == "date":
                return datetime.date.fromisoformat(value)
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            problems.append(
                f"{path}: {value!r} is not an ISO 8601 {'date (YYYY-MM-DD)' if kind == 'date' else 'date and time'}."
            )
            return None
        if timezone.is_naive(parsed):
            problems.append(f"{path}: {value!r} has no time zone (e.g. 2017-08-20T10:00:00+00:00).")
            return None
        return parsed
    if kind == "numlist":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            problems.append(f"{path}: expected a list of numbers (e.g. [0.05, 0.1, 0.2]), got {value!r}.")
            return None
        return [float(v) for v in value]
    if kind == "object":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object.")
            return None
        return _parse_object(spec.fields or {}, value, path, problems)
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list.")
            return None
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                problems.append(f"{path}[{i}]: expected an object.")
                out.append(None)
                continue
            out.append(_parse_object(spec.fields or {}, item, f"{path}[{i}]", problems))
        return out
    raise AssertionError(kind)  # pragma: no cover


def _parse_object(fields: dict[str, F], data: dict[str, Any], path: str, problems: list[str]) -> dict[str, Any]:
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in fields:
            problems.append(f"{prefix}{key}: unknown key (not in trial-bundle/1; a misspelt key would lose data).")
    out: dict[str, Any] = {}
    for key, spec in fields.items():
        if key not in data:
            if spec.required:
                problems.append(f"{prefix}{key}: required key is missing.")
            continue
        out[key] = _parse_value(spec, data[key], f"{prefix}{key}", problems)
    return out


def _check_references(doc: dict[str, Any], problems: list[str]) -> None:
    """Cross-references a service cannot see: sites, levels, versions, AE indices."""
    trial = doc.get("trial") or {}
    sites = {s["code"] for s in trial.get("sites") or [] if s and s.get("code")}
    levels = {d["level"] for d in trial.get("dose_levels") or [] if d and d.get("level") is not None}
    versions = {v["version"] for v in trial.get("protocol_versions") or [] if v and v.get("version")}
    seen: dict[tuple[str, int], int] = {}
    for i, p in enumerate(doc.get("patients") or []):
        if not p:
            continue
        path = f"patients[{i}]"
        subject = p.get("subject_id")
        key = subject_ids.look_alike_key(subject) if subject else None
        if subject and subject_ids.normalise(subject) != subject:
            # Stored as written and referred to by it (queries, locks): refuse, don't guess.
            problems.append(
                f"{path}.subject_id: {subject!r} is not in its normal form; write {subject_ids.normalise(subject)!r}."
            )
        elif subject and key is None:
            problems.append(f"{path}.subject_id: {subject_ids.shape_problems(subject)[0]}")
        elif key in seen:
            other = seen[key]
            same = doc["patients"][other]["subject_id"] == subject
            problems.append(
                f"{path}.subject_id: {subject} is also patients[{other}]."
                if same
                else f"{path}.subject_id: {subject} looks like patients[{other}].subject_id "
                f"({doc['patients'][other]['subject_id']}): same site and number once leading zeros are ignored."
            )
        elif key is not None:
            seen[key] = i
        if p.get("site") and p["site"] not in sites:
            problems.append(f"{path}.site: {p['site']!r} is not a site of the trial ({', '.join(sorted(sites))}).")
        if p.get("dose_level") is not None and p["dose_level"] not in levels:
            problems.append(f"{path}.dose_level: the trial has no dose level {p['dose_level']}.")
        if (p.get("dose_level") is None) != (p.get("enrolled") is None):
            problems.append(f"{path}.enrolled: an enrolment needs both its date (enrolled) and its dose_level.")
        for j, c in enumerate(p.get("consents") or []):
            if c and c.get("protocol_version") and c["protocol_version"] not in versions:
                problems.append(
                    f"{path}.consents[{j}].protocol_version: "
                    f"the trial has no protocol version {c['protocol_version']!r}."
                )
        n_aes = len(p.get("adverse_events") or [])
        adjudications = p.get("dlt_adjudications") or []
        for j, a in enumerate(adjudications):
            if not a:
                continue
            ae = a.get("adverse_event")
            if ae is not None and not 0 <= ae < n_aes:
                problems.append(
                    f"{path}.dlt_adjudications[{j}].adverse_event: {ae} is not an index of this patient's "
                    f"adverse_events (0 to {n_aes - 1})."
                    if n_aes
                    else f"{path}.dlt_adjudications[{j}].adverse_event: this patient has no adverse_events."
                )
            if ae is None and a.get("evidence") is not None:
                problems.append(
                    f"{path}.dlt_adjudications[{j}].evidence: only a decision on an AE rests on its values."
                )
            if ae is None and a.get("kind") is None:
                problems.append(f"{path}.dlt_adjudications[{j}].kind: a decision not on an AE needs its kind.")
            sup = a.get("supersedes")
            if sup is not None and not 0 <= sup < j:
                problems.append(
                    f"{path}.dlt_adjudications[{j}].supersedes: must be the index of an earlier adjudication."
                )
        for key in ("queries", "source_verifications"):
            for j, item in enumerate(p.get(key) or []):
                if item and item.get("record") is not None:
                    problem = _record_path_problem(p, item["record"])
                    if problem:
                        problems.append(f"{path}.{key}[{j}].record: {problem}")
    for j, s in enumerate(doc.get("escalation_signoffs") or []):
        if s and s.get("dose_level") is not None and s["dose_level"] not in levels:
            problems.append(f"escalation_signoffs[{j}].dose_level: the trial has no dose level {s['dose_level']}.")


def _record_path_problem(p: dict[str, Any], record: str) -> str | None:
    """Why ``record`` names no record of this patient in the document (None: it does)."""
    match = _RECORD_PATH.match(record)
    if match is None:
        return f"{record!r} is not a record path (patient, transplant, or e.g. adverse_events[0], cycles[1].labs)."
    single, key, index, labs = match.groups()
    if single == "transplant" and not p.get("transplant"):
        return "no transplant in this patient."
    if single:
        return None
    if key not in RECORD_LISTS:
        return f"{key!r} is not a record list of a patient ({', '.join(RECORD_LISTS)})."
    items = p.get(key) or []
    if int(index) >= len(items):
        return f"no {key}[{index}] in this patient."
    if labs and (key != "cycles" or not (items[int(index)] or {}).get("labs")):
        return f"no {key}[{index}].labs in this patient."
    return None


# ------------------------------------------------------------------ export


def _num(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    value = value.normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def _iso(value: datetime.date | datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _lab(panel: LabPanel) -> dict[str, Any]:
    return _voided(
        panel, {"date": _iso(panel.date), **{f: _num(getattr(panel, f)) for f in dosing_services.LAB_FIELDS}}
    )


def _voided(record: Any, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the record's void (when, who, why) if it was voided as entered in error."""
    if record.voided_at is not None:
        row["voided"] = {
            "at": _iso(record.voided_at),
            "by": _username(record.voided_by, record.voided_by_name),
            "reason": record.void_reason,
        }
    return row


def _export_queryset(trial: Trial) -> Any:
    # Voidable records through ``all_objects``: a voided record is carried with its void.
    return (
        Patient.objects.filter(trial=trial)
        .select_related("site", "dose_level", "transplant", "casebook_lock")
        .prefetch_related(
            Prefetch("consents", queryset=Consent.objects.select_related("protocol_version").order_by("date", "id")),
            Prefetch("screenings", queryset=Screening.objects.order_by("id")),
            Prefetch("lab_panels", queryset=LabPanel.all_objects.order_by("id")),
            Prefetch("deviations", queryset=Deviation.objects.order_by("id")),
            Prefetch("cycles", queryset=Cycle.objects.select_related("lab_panel", "dose_level").order_by("number")),
            Prefetch("adverse_events", queryset=AdverseEvent.all_objects.select_related("term").order_by("id")),
            Prefetch("gvhd_episodes", queryset=GvhdEpisode.all_objects.order_by("id")),
            Prefetch(
                "dlt_adjudications",
                queryset=DltAdjudication.objects.select_related("signature").order_by("id"),
            ),
            Prefetch("assessments", queryset=Assessment.all_objects.order_by("id")),
            Prefetch("events", queryset=PatientEvent.all_objects.order_by("date", "id")),
            Prefetch("medications", queryset=ConcomitantMedication.all_objects.order_by("id")),
            Prefetch(
                "data_queries",
                queryset=DataQuery.objects.select_related("raised_by")
                .prefetch_related(
                    Prefetch(
                        "messages", queryset=QueryMessage.objects.select_related("author").order_by("created_at", "id")
                    )
                )
                .order_by("created_at", "id"),
            ),
            Prefetch(
                "source_verifications",
                queryset=SourceVerification.objects.select_related("verified_by").order_by("verified_at", "id"),
            ),
        )
        .order_by("subject_id")
    )


def _record_paths(p: Patient) -> dict[tuple[int, int], tuple[str, Any]]:
    """(content type id, pk) -> (path inside the patient, record) for every casebook record
    the bundle carries, indexed as the export lists them (the prefetched relations)."""
    cycles = list(p.cycles.all())
    visit_panels = {c.lab_panel_id for c in cycles if c.lab_panel_id}
    lists: dict[str, list[Any]] = {
        "consents": list(p.consents.all()),
        "screenings": list(p.screenings.all()),
        "labs": [panel for panel in p.lab_panels.all() if panel.pk not in visit_panels],
        "deviations": list(p.deviations.all()),
        "cycles": cycles,
        "adverse_events": list(p.adverse_events.all()),
        "gvhd_episodes": list(p.gvhd_episodes.all()),
        "dlt_adjudications": list(p.dlt_adjudications.all()),
        "assessments": list(p.assessments.all()),
        "events": list(p.events.all()),
        "concomitant_medications": list(p.medications.all()),
    }
    paths: dict[tuple[int, int], tuple[str, Any]] = {}

    def add(path: str, record: Any) -> None:
        paths[(ContentType.objects.get_for_model(type(record)).pk, record.pk)] = (path, record)

    add("patient", p)
    transplant = getattr(p, "transplant", None) if hasattr(p, "transplant") else None
    if transplant is not None:
        add("transplant", transplant)
    for key, records in lists.items():
        for i, record in enumerate(records):
            add(f"{key}[{i}]", record)
    for i, c in enumerate(cycles):
        if c.lab_panel is not None:
            add(f"cycles[{i}].labs", c.lab_panel)
    return paths


def _username(user: Any, recorded: str) -> str | None:
    """Who, as a bundle names people: the historic name an import kept, else the username."""
    if recorded:
        return recorded
    return user.get_username() if user is not None else None


def _export_cleaning(p: Patient, out: dict[str, Any]) -> None:
    """The patient's queries (with threads) and SDV marks; those on records the bundle
    does not carry (a casebook lock row, a lab-proposal dismissal) are left out."""
    paths = _record_paths(p)
    out["queries"] = []
    for q in p.data_queries.all():
        found = paths.get((q.content_type_id, q.object_id))
        if found is None:
            continue
        out["queries"].append(
            {
                "record": found[0],
                "field": q.field_name or None,
                "question": q.question,
                "state": q.state,
                "origin": q.origin,
                "rule_code": q.rule_code or None,
                "raised_by": _username(q.raised_by, q.raised_by_name),
                "raised_at": _iso(q.created_at),
                "closed_at": _iso(q.closed_at),
                "messages": [
                    {"kind": m.kind, "text": m.text, "by": _username(m.author, m.author_name), "at": _iso(m.created_at)}
                    | (
                        {"field": m.corrected_field, "old": m.old_value, "new": m.new_value}
                        if m.kind == QueryMessage.Kind.CORRECTION
                        else {}
                    )
                    for m in q.messages.all()
                ],
            }
        )
    out["source_verifications"] = []
    for v in p.source_verifications.all():
        found = paths.get((v.content_type_id, v.object_id))
        if found is None:
            continue
        out["source_verifications"].append(
            {
                "record": found[0],
                "current": v.record_version == found[1].version,
                "by": _username(v.verified_by, v.verified_by_name),
                "at": _iso(v.verified_at),
            }
        )


def _export_patient(p: Patient) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subject_id": p.subject_id,
        "site": p.site.code,
        "sex": p.sex,
        "race": p.race,
        "birth_year": p.birth_year,
    }
    for name in patient_services.DISEASE_FIELDS:
        value = getattr(p, name)
        if value not in (None, ""):
            out[name] = value
    out["consents"] = [
        {
            "protocol_version": c.protocol_version.version,
            "date": _iso(c.date),
            **({"version_override_reason": c.version_override_reason} if c.version_override_reason else {}),
        }
        for c in p.consents.all()
    ]
    transplant = getattr(p, "transplant", None) if hasattr(p, "transplant") else None
    if transplant is not None:
        out["transplant"] = {
            name: (_iso(transplant.date) if name == "date" else getattr(transplant, name))
            for name in patient_services.TRANSPLANT_FIELDS
            if getattr(transplant, name) not in (None, "")
        }
    out["screenings"] = [
        {
            "date": _iso(s.date),
            "lab_date": _iso(s.lab_date),
            "platelets_10e9_l": _num(s.platelets_10e9_l),
            "anc_10e9_l": _num(s.anc_10e9_l),
            "agvhd_grade": s.agvhd_grade,
            "liver_gvhd": s.liver_gvhd,
            "sos_history": s.sos_history,
            "result": s.result,
        }
        for s in p.screenings.all()
    ]
    out["enrolled"] = _iso(p.enrolled_on)
    out["dose_level"] = p.dose_level.level if p.dose_level_id else None
    out["enrolment_deviation"] = p.enrolment_deviation
    out["enrolled_as_backfill"] = p.enrolled_as_backfill
    cycles = list(p.cycles.all())
    visit_panels = {c.lab_panel_id for c in cycles if c.lab_panel_id}
    out["labs"] = [_lab(panel) for panel in p.lab_panels.all() if panel.pk not in visit_panels]
    out["deviations"] = [
        {"kind": d.kind, "date": _iso(d.date), "reason": d.reason, "cycle_number": d.cycle_number}
        for d in p.deviations.all()
    ]
    out["cycles"] = [_export_cycle(c) for c in cycles]
    aes = list(p.adverse_events.all())
    out["adverse_events"] = [_export_ae(ae) for ae in aes]
    out["gvhd_episodes"] = [
        _voided(
            g,
            {"kind": g.kind, "onset": _iso(g.onset), "resolved": _iso(g.resolved)}
            | {
                name: getattr(g, name) if getattr(g, name) != "" else None
                for name in safety_services.GVHD_GRADING_FIELDS
            },
        )
        for g in p.gvhd_episodes.all()
    ]
    ae_index = {ae.pk: i for i, ae in enumerate(aes)}
    adjudications = list(p.dlt_adjudications.all())
    adj_index = {a.pk: i for i, a in enumerate(adjudications)}
    out["dlt_adjudications"] = []
    for a in adjudications:
        if a.signature_id is not None:
            by, at = a.signature.printed_name, a.signature.signed_at.date()  # type: ignore[union-attr]
        else:
            by, at = a.signed_by_name, a.signed_on
        row: dict[str, Any] = {
            "adverse_event": ae_index.get(a.adverse_event_id) if a.adverse_event_id else None,
            "kind": a.rule,
            "event_date": _iso(a.event_date),
            "is_dlt": a.is_dlt,
            "rationale": a.rationale,
            "by": by,
            "at": _iso(at),
        }
        if a.adverse_event_id and a.evidence:
            row["evidence"] = {name: a.evidence.get(name) for name in EVIDENCE_FIELDS}
        superseded = [adj_index[o.pk] for o in adjudications if o.superseded_by_id == a.pk]
        if superseded:
            row["supersedes"] = superseded[0]
        out["dlt_adjudications"].append(row)
    out["assessments"] = [
        _voided(
            a,
            {"kind": a.kind, "date": _iso(a.date)}
            | {
                name: (_num(getattr(a, name)) if name in ("level", "blasts_pct") else getattr(a, name))
                for name in ("method", "result", "level", "blasts_pct", "response", "extramedullary")
                if getattr(a, name) not in (None, "")
            },
        )
        for a in p.assessments.all()
    ]
    out["events"] = [
        _voided(
            e,
            {"kind": e.kind, "date": _iso(e.date)}
            | {
                name: (_num(getattr(e, name)) if name == "blasts_pct" else getattr(e, name))
                for name in ("cause", "reason", "blasts_pct", "relapse_site", "details")
                if getattr(e, name) not in (None, "")
            },
        )
        for e in p.events.all()
    ]
    out["concomitant_medications"] = [
        _voided(m, {"agent": m.agent, "other_agent": m.other_agent, "start": _iso(m.start), "stop": _iso(m.stop)})
        for m in p.medications.all()
    ]
    _export_cleaning(p, out)
    lock = getattr(p, "casebook_lock", None)
    if lock is not None:
        out["lock"] = _export_lock(lock)
    return out


def _export_lock(lock: Any) -> dict[str, Any]:
    """A lock row's state as recorded: who (printed name), when, why. Its signature is not
    carried (docs/bundle.md); the import re-applies the state."""
    return {"state": lock.state, "at": _iso(lock.changed_at), "by": lock.changed_by_name, "reason": lock.reason}


def _export_cycle(c: Cycle) -> dict[str, Any]:
    row: dict[str, Any] = {
        "number": c.number,
        "day1": _iso(c.day1),
        "due_date": _iso(c.due_date),
        "height_cm": _num(c.height_cm),
        "weight_kg": _num(c.weight_kg),
        "bsa_m2": _num(c.bsa_m2),
        "dose_mg_m2": _num(c.dose_mg_m2),
        "dose_mg": _num(c.dose_mg),
        "reduced": c.reduced,
        "reduction_reason": c.reduction_reason or None,
        "full_dose_restored": c.full_dose_restored,
        "delay_days": c.delay_days,
        "reason": c.delay_reason or None,
        "given": c.given,
        "not_given_reason": c.not_given_reason or None,
        "acute_gvhd_grade": c.acute_gvhd_grade,
        "liver_gvhd": c.liver_gvhd,
        "sos": c.sos,
    }
    if c.full_dose_restored:
        last = c.history.filter(full_dose_restored=True).order_by("history_date").first()  # type: ignore[attr-defined]
        row["full_dose_restored_reason"] = (last.history_change_reason if last else "") or None
    if c.lab_panel is not None:
        row["labs"] = _lab(c.lab_panel)
    return row


def _export_ae(ae: AdverseEvent) -> dict[str, Any]:
    row: dict[str, Any] = {
        "term": ae.term.term,
        "meddra_code": ae.term.meddra_code,
        "ctcae_version": ae.ctcae_version,
        "grade": ae.grade,
        "onset": _iso(ae.onset),
        "resolved": _iso(ae.resolved),
        "attribution": ae.attribution,
        "serious": ae.serious,
    }
    for name in safety_services.SAE_CRITERIA:
        if getattr(ae, name):
            row[name] = True
    row |= {
        "sae_reported_at": _iso(ae.sae_reported_at),
        "expected": ae.expected,
        "action": ae.action,
        "outcome": ae.outcome or None,
        "source": ae.source,
    }
    if ae.specify:
        row["specify"] = ae.specify
    return _voided(ae, row)


def bundle_export(trial: Trial) -> dict[str, Any]:
    """The whole trial as a trial-bundle/1 document (docs/bundle.md)."""
    trial_lock = TrialLock.objects.filter(trial=trial).first()
    settings = {}
    for name in TRIAL_SETTINGS:
        value = getattr(trial, name)
        settings[name] = _num(value) if isinstance(value, Decimal) else value
    return {
        "format": FORMAT,
        "trial": {
            "code": trial.code,
            "title": trial.title,
            **settings,
            "dose_levels": [
                {"level": d.level, "dose_mg_m2": _num(d.dose_mg_m2)} for d in trial.dose_levels.order_by("level")
            ],
            "protocol_versions": [
                {"version": v.version, "effective": _iso(v.effective), "max_cycles": v.max_cycles}
                for v in trial.protocol_versions.order_by("id")
            ],
            "sites": [{"code": s.code, "name": s.name, "country": s.country} for s in trial.sites.order_by("id")],
        },
        "escalation_signoffs": [
            {
                "dose_level": s.dose_level,
                "decision": s.decision,
                "by": s.signed_by_name,
                "at": _iso(s.signed_at.date()),
                "rationale": s.rationale,
            }
            for s in EscalationSignoff.objects.filter(trial=trial).order_by("signed_at", "id")
        ],
        "patients": [_export_patient(p) for p in _export_queryset(trial)],
        **({"trial_lock": _export_lock(trial_lock)} if trial_lock is not None else {}),
    }


# ------------------------------------------------------------------ import


# Service field names -> bundle keys, where they differ.
_RENAMES = {
    "enrolled_on": "enrolled",
    "delay_reason": "reason",
    "rule": "kind",
    "__all__": "",
    "non_field_errors": "",
}


class _Importer:
    def __init__(self, doc: dict[str, Any], user: Any) -> None:
        self.doc = doc
        self.user = user
        self.problems: list[str] = []
        self.trial: Trial | None = None
        self.terms: dict[str, CtcaeTerm] = {}

    # -- problems

    def refused(self, path: str, exc: Exception, renames: dict[str, str] | None = None) -> None:
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            for field, messages in exc.message_dict.items():
                key = (renames or {}).get(field, _RENAMES.get(field, field))
                where = f"{path}.{key}" if key else path
                for message in messages:
                    self.problems.append(f"{where}: {message}")
        elif isinstance(exc, ValidationError):
            for message in exc.messages:
                self.problems.append(f"{path}: {message}")
        else:
            self.problems.append(f"{path}: {exc}")

    def attempt(self, path: str, write: Callable[[], Any], renames: dict[str, str] | None = None) -> Any:
        """Run one service write; a refusal is a problem, not an abort. Every service
        writes inside its own ``transaction.atomic()`` (a savepoint here), so a refused
        write leaves nothing behind; no second savepoint is needed (PostgreSQL slows down
        with very many subtransactions in one transaction)."""
        try:
            return write()
        except (ValidationError, PermissionDenied) as exc:
            self.refused(path, exc, renames)
            return None

    def void(self, path: str, record: Any, spec: dict[str, Any] | None) -> None:
        """Re-void a record the bundle carries as voided (issue 19), right after it is
        written, as recorded (time, name, reason): the patient's later records are then
        checked without it, as a duplicate entered in error was replaced."""
        if record is None or not spec:
            return
        self.attempt(
            f"{path}.voided",
            lambda: cleaning_services.casebook_record_void_import(
                user=self.user, target=record, voided_at=spec["at"], voided_by_name=spec["by"], reason=spec["reason"]
            ),
        )

    # -- trial

    def create_trial(self) -> Trial | None:
        t = self.doc["trial"]
        values = {k: t[k] for k in ("code", "title", *TRIAL_SETTINGS) if k in t and t[k] is not None}
        values |= {k: float(values[k]) for k in FLOAT_SETTINGS if k in values}
        specs = [DoseLevelSpec(d["level"], d["dose_mg_m2"]) for d in t["dose_levels"]]
        try:
            with transaction.atomic():
                return trial_services.trial_create(
                    user=self.user,
                    values=values,
                    sites=[{k: v for k, v in s.items() if v is not None} for s in t["sites"]],
                    dose_levels=specs,
                    protocol_versions=[dict(v) for v in t["protocol_versions"]],
                    reason=IMPORT_REASON,
                )
        except (ValidationError, PermissionDenied) as exc:
            self.refused("trial", exc)
            return None

    def grant_roles(self, trial: Trial) -> list[RoleGrant]:
        grants = [
            trial_services.role_grant(
                user=self.user, trial=trial, role=RoleGrant.Role.INVESTIGATOR, by=self.user, reason=IMPORT_REASON
            )
        ]
        for site in trial.sites.all():
            grants.append(
                trial_services.role_grant(
                    user=self.user,
                    trial=trial,
                    role=RoleGrant.Role.COORDINATOR,
                    site=site,
                    by=self.user,
                    reason=IMPORT_REASON,
                )
            )
        return grants

    # -- the whole bundle

    def run(self) -> Trial | None:
        trial = self.create_trial()
        if trial is None:
            return None
        self.trial = trial
        grants = self.grant_roles(trial)
        self.levels = {d.level: d for d in DoseLevel.objects.filter(trial=trial)}
        self.versions = {v.version: v for v in ProtocolVersion.objects.filter(trial=trial)}
        self.sites = {s.code: s for s in trial.sites.all()}
        # The dictionary ships with the app (a migration loads it); a database emptied by
        # a transactional test or restored without it gets it back before the AEs are read.
        safety_services.ctcae_dictionary_load()
        self.terms = {t.meddra_code: t for t in CtcaeTerm.objects.filter(version="5.0")}
        signoffs = self.doc.get("escalation_signoffs") or []
        self.signoffs: list[tuple[datetime.date, str, int]] = []
        # The first enrolment at each level (a sign-off is not dated before the cohort it
        # decides on), from the bundle: its patients are imported after the sign-offs.
        first_enrolled: dict[int, datetime.date] = {}
        for p in self.doc.get("patients") or []:
            if p.get("enrolled") is not None and p.get("dose_level") is not None:
                level = p["dose_level"]
                first_enrolled[level] = min(p["enrolled"], first_enrolled.get(level, p["enrolled"]))
        for i, s in enumerate(signoffs):
            signoff = self.attempt(
                f"escalation_signoffs[{i}]",
                lambda s=s: analysis_services.escalation_signoff_import(
                    user=self.user,
                    trial=trial,
                    decision=s["decision"],
                    dose_level=s["dose_level"],
                    signed_by_name=s["by"],
                    signed_on=s["at"],
                    rationale=s.get("rationale") or "",
                    first_enrolled=first_enrolled,
                ),
            )
            if signoff is not None:
                self.signoffs.append((s["at"], signoff.decision, signoff.dose_level))
        patients = list(enumerate(self.doc.get("patients") or []))
        # Enrolled patients in enrolment order, so the 3+3 state each enrolment met is
        # the one the earlier patients' data give (the deviation check); then the others.
        patients.sort(key=lambda ip: (ip[1].get("enrolled") is None, ip[1].get("enrolled") or datetime.date.min, ip[0]))
        for i, p in patients:
            self.import_patient(f"patients[{i}]", p)
        self.import_cleaning(trial, patients)
        self.import_locks(trial, patients)
        for grant in grants:
            trial_services.role_revoke(grant, by=self.user, reason=f"{IMPORT_REASON} finished")
        return trial

    def import_cleaning(self, trial: Trial, patients: list[tuple[int, dict[str, Any]]]) -> None:
        """Queries and SDV marks, after every record of every patient is in (they point at
        records by path, resolved as the export lists them) and before the locks."""
        wanted = [(i, p) for i, p in patients if p.get("queries") or p.get("source_verifications")]
        if not wanted:
            return
        imported = {
            x.subject_id: x for x in _export_queryset(trial).filter(subject_id__in=[p["subject_id"] for _, p in wanted])
        }
        for i, p in sorted(wanted):
            patient = imported.get(p["subject_id"])
            if patient is None:
                continue  # its registration was refused, and says why
            by_path = dict(_record_paths(patient).values())
            for key in ("queries", "source_verifications"):
                for j, item in enumerate(p.get(key) or []):
                    ipath = f"patients[{i}].{key}[{j}]"
                    target = by_path.get(item["record"])
                    if target is None:
                        if not self.problems:  # else the record's own refusal is the problem
                            self.problems.append(f"{ipath}.record: {item['record']} was not imported.")
                        continue
                    if key == "queries":
                        self.import_query(ipath, target, item)
                    else:
                        self.attempt(
                            ipath,
                            lambda target=target, item=item: cleaning_services.verification_import(
                                user=self.user,
                                target=target,
                                current=item["current"],
                                verified_by_name=item["by"],
                                verified_at=item["at"],
                            ),
                        )

    def import_query(self, path: str, target: Any, q: dict[str, Any]) -> None:
        spec = {
            "field_name": q.get("field") or "",
            "question": q["question"],
            "state": q["state"],
            "origin": q.get("origin") or DataQuery.Origin.MANUAL,
            "rule_code": q.get("rule_code") or "",
            "raised_by_name": q.get("raised_by") or "",
            "raised_at": q["raised_at"],
            "closed_at": q.get("closed_at"),
            "messages": [
                {
                    "kind": m["kind"],
                    "text": m.get("text") or "",
                    "author_name": m.get("by") or "",
                    "at": m["at"],
                    "corrected_field": m.get("field") or "",
                    "old_value": m.get("old") or "",
                    "new_value": m.get("new") or "",
                }
                for m in q["messages"]
            ],
        }
        self.attempt(
            path,
            lambda: cleaning_services.query_import(user=self.user, target=target, spec=spec),
            renames={"field_name": "field"},
        )

    def import_locks(self, trial: Trial, patients: list[tuple[int, dict[str, Any]]]) -> None:
        """Re-apply the casebook locks and the trial lock last, once every record is in
        (a lock applied earlier would refuse the patient's own later records)."""
        locked = [(i, p) for i, p in patients if p.get("lock")]
        by_subject = {
            x.subject_id: x
            for x in Patient.objects.filter(trial=trial, subject_id__in=[p["subject_id"] for _, p in locked])
        }
        for i, p in locked:
            patient = by_subject.get(p["subject_id"])
            if patient is not None:
                self.attempt(
                    f"patients[{i}].lock",
                    lambda patient=patient, p=p: patient_services.casebook_lock_import(
                        user=self.user, patient=patient, spec=p["lock"]
                    ),
                )
        if self.doc.get("trial_lock"):
            self.attempt(
                "trial_lock",
                lambda: patient_services.trial_lock_import(user=self.user, trial=trial, spec=self.doc["trial_lock"]),
            )

    # -- one patient

    def import_patient(self, path: str, p: dict[str, Any]) -> None:
        assert self.trial is not None  # noqa: S101
        trial, user = self.trial, self.user
        data = {
            k: p[k] for k in ("subject_id", "sex", "race", "birth_year", *patient_services.DISEASE_FIELDS) if k in p
        }
        data = {k: v for k, v in data.items() if v is not None or k in ("cd22_positive", "ph_positive")}
        for name in ("race", "diagnosis", "cytogenetic_risk"):
            if name in data and data[name] is None:
                data.pop(name)
        patient = self.attempt(
            path,
            lambda: patient_services.patient_register(
                user=user, trial=trial, data={**data, "site": self.sites[p["site"]]}
            ),
        )
        if patient is None:
            return
        if p.get("transplant"):
            self.attempt(
                f"{path}.transplant",
                lambda: patient_services.transplant_record(
                    user=user, patient=patient, data={k: v for k, v in p["transplant"].items() if v is not None}
                ),
            )
        for j, c in sorted(enumerate(p.get("consents") or []), key=lambda jc: (jc[1]["date"], jc[0])):
            self.attempt(
                f"{path}.consents[{j}]",
                lambda c=c: patient_services.consent_record(
                    user=user,
                    patient=patient,
                    protocol_version=self.versions[c["protocol_version"]],
                    on=c["date"],
                    version_override_reason=c.get("version_override_reason") or "",
                ),
            )
        for j, s in enumerate(p.get("screenings") or []):
            values = {k: v for k, v in s.items() if k != "result"}
            screening = self.attempt(
                f"{path}.screenings[{j}]",
                lambda values=values: patient_services.screening_record(user=user, patient=patient, data=values),
            )
            if screening is not None and s.get("result") and s["result"] != screening.result:
                self.problems.append(
                    f"{path}.screenings[{j}].result: the bundle says {s['result']}, the eligibility rules give "
                    f"{screening.result} ("
                    + "; ".join(f"{c['key']}: {c['reason']}" for c in screening.criteria if c["status"] != "pass")
                    + ")."
                )
        if p.get("enrolled") is not None and p.get("dose_level") is not None:
            level = self.levels[p["dose_level"]]
            deviation = p["enrolment_deviation"] if "enrolment_deviation" in p else self.deviation_for(p)
            patient.refresh_from_db()
            enrolled = self.attempt(
                path,
                lambda: patient_services.patient_enrol_import(
                    user=user,
                    patient=patient,
                    on=p["enrolled"],
                    dose_level=level,
                    deviation=deviation or "",
                    backfill=bool(p.get("enrolled_as_backfill")),
                ),
            )
            if enrolled is None:
                return  # nothing later can be dosed or adjudicated: its problems would only repeat this one
        self.import_dosing(path, patient, p)
        self.import_outcomes(path, patient, p)

    def deviation_for(self, p: dict[str, Any]) -> str:
        """Whether the 3+3 rules had opened the patient's level on the enrolment date
        (PROTOCOL s6): the engine over the earlier enrolments and the sign-offs made by then."""
        assert self.trial is not None  # noqa: S101
        on, level = p["enrolled"], p["dose_level"]
        rows = sorted(safety_selectors.patient_dlt_outcomes(self.trial, as_of=on), key=lambda r: r["enrolment_order"])
        levels = tuple(float(self.levels[n].dose_mg_m2) for n in sorted(self.levels))
        backfill = bool(p.get("enrolled_as_backfill"))
        if self.trial.design != Trial.Design.THREE_PLUS_THREE:
            state = analysis_services.design_state(
                self.trial, levels, rows, [(d, lv) for at, d, lv in self.signoffs if at <= on]
            )
            key = "backfill_slots" if backfill else "open_slots"
            open_slots = {r["dose_level"]: r["slots"] for r in state[key] if r["slots"] > 0}
            if backfill and not open_slots.get(level):
                return self._backfill_deviation(on, level, open_slots)
            if open_slots.get(level):
                return ""
            opened = ", ".join(f"L{lv} ({n})" for lv, n in sorted(open_slots.items())) or "none"
            return (
                f"Enrolled at L{level}; open slots on {on.isoformat()} per the {self.trial.design} design: {opened} "
                "(trial bundle import)."
            )
        design = EscalationDesign(
            tuple(float(self.levels[n].dose_mg_m2) for n in sorted(self.levels)),
            Variant(self.trial.escalation_variant),
            self.trial.expansion_cohort_size,
        )
        state = escalation_rule(
            design,
            [
                PatientOutcome(str(r["patient_id"]), r["dose_level"], k, DltStatus(r["status"]))
                for k, r in enumerate(rows)
            ],
            [SignedDecision(Decision(d), lv) for at, d, lv in self.signoffs if at <= on],
        )
        open_slots = {lv: n for lv, n in state.open_slots if n > 0}
        if backfill:
            places = trial_services.three_plus_three_backfill(self.trial, state, rows)
            open_slots = {r["dose_level"]: r["slots"] for r in places if r["slots"] > 0}
            if not open_slots.get(level):
                return self._backfill_deviation(on, level, open_slots)
        if open_slots.get(level):
            return ""
        opened = ", ".join(f"L{lv} ({n})" for lv, n in sorted(open_slots.items())) or "none"
        return (
            f"Enrolled at L{level}; open slots on {on.isoformat()} per the 3+3 rules: {opened} (trial bundle import)."
        )

    def _backfill_deviation(self, on: Any, level: int, places: dict[int, int]) -> str:
        opened = ", ".join(f"L{lv} ({n})" for lv, n in sorted(places.items())) or "none"
        return (
            f"Enrolled as backfill at L{level}; open backfill places on {on.isoformat()}: {opened} "
            "(trial bundle import)."
        )

    def import_dosing(self, path: str, patient: Patient, p: dict[str, Any]) -> None:
        user = self.user
        for j, lab in enumerate(p.get("labs") or []):
            values = {k: v for k, v in lab.items() if k != "voided"}
            panel = self.attempt(
                f"{path}.labs[{j}]",
                lambda values=values: dosing_services.lab_panel_record(user=user, patient=patient, data=values),
            )
            self.void(f"{path}.labs[{j}]", panel, lab.get("voided"))
        for j, d in enumerate(p.get("deviations") or []):
            self.attempt(
                f"{path}.deviations[{j}]",
                lambda d=d: dosing_services.deviation_record(user=user, patient=patient, data=dict(d)),
            )
        for j, c in sorted(enumerate(p.get("cycles") or []), key=lambda jc: (jc[1]["number"], jc[0])):
            cpath = f"{path}.cycles[{j}]"
            values: dict[str, Any] = {
                "number": c["number"],
                "day1": c["day1"],
                "given": c.get("given", True) if c.get("given") is not None else True,
                "not_given_reason": c.get("not_given_reason") or "",
                "height_cm": c.get("height_cm"),
                "weight_kg": c.get("weight_kg"),
                "reduced": bool(c.get("reduced")),
                "reduction_reason": c.get("reduction_reason") or "",
                "delay_reason": c.get("reason") or "",
                "dose_mg": c.get("dose_mg"),
                "acute_gvhd_grade": c.get("acute_gvhd_grade"),
                "liver_gvhd": c.get("liver_gvhd"),
                "sos": c.get("sos"),
            }
            if c.get("labs"):
                values["lab_date"] = c["labs"]["date"]
                values |= {f: c["labs"].get(f) for f in dosing_services.LAB_FIELDS}
            cycle = self.attempt(
                cpath,
                lambda values=values: dosing_services.cycle_record(
                    user=user, patient=Patient.objects.get(pk=patient.pk), data=values
                ),
                renames={"lab_date": "labs.date", **{f: f"labs.{f}" for f in dosing_services.LAB_FIELDS}},
            )
            if cycle is None:
                break  # later cycles would only report "the next cycle is ..."
            self.compare_computed(cpath, c, cycle)
            if c.get("labs") and cycle.lab_panel_id is not None:
                self.void(f"{cpath}.labs", cycle.lab_panel, c["labs"].get("voided"))
            if c.get("full_dose_restored"):
                self.attempt(
                    f"{cpath}.full_dose_restored",
                    lambda cycle=cycle, c=c: dosing_services.cycle_full_dose_restore(
                        user=user, cycle=cycle, reason=c.get("full_dose_restored_reason") or IMPORT_REASON
                    ),
                )

    def compare_computed(self, path: str, given: dict[str, Any], cycle: Cycle) -> None:
        """Values the services compute (due date, BSA, dose, delay, reduction) must agree
        with what the bundle recorded: a disagreement is a wrong record, not a rounding."""
        for key, computed in (
            ("due_date", cycle.due_date),
            ("bsa_m2", cycle.bsa_m2),
            ("dose_mg_m2", cycle.dose_mg_m2),
            ("delay_days", cycle.delay_days),
            ("reduced", cycle.reduced),
        ):
            recorded = given.get(key)
            if recorded is None or computed is None:
                continue
            if isinstance(computed, Decimal) and Decimal(recorded) == computed:
                continue
            if recorded != computed:
                self.problems.append(f"{path}.{key}: the bundle says {recorded}, the dosing rules give {computed}.")

    def import_outcomes(self, path: str, patient: Patient, p: dict[str, Any]) -> None:
        user = self.user
        for j, a in enumerate(p.get("assessments") or []):
            assessment = self.attempt(
                f"{path}.assessments[{j}]",
                lambda a=a: patient_services.assessment_record(
                    user=user,
                    patient=patient,
                    data={k: v for k, v in a.items() if (v is not None or k == "extramedullary") and k != "voided"}
                    | {k: "" for k in ("method", "result", "response") if a.get(k) is None},
                ),
            )
            self.void(f"{path}.assessments[{j}]", assessment, a.get("voided"))
        for j, e in sorted(enumerate(p.get("events") or []), key=lambda je: (je[1]["date"], je[0])):
            event = self.attempt(
                f"{path}.events[{j}]",
                lambda e=e: patient_services.event_record(
                    user=user,
                    patient=patient,
                    data={k: ("" if v is None and k in ("cause", "reason", "relapse_site", "details") else v)
                          for k, v in e.items() if k != "voided"},
                ),
            )  # fmt: skip
            self.void(f"{path}.events[{j}]", event, e.get("voided"))
        aes: dict[int, AdverseEvent] = {}
        for j, ae in enumerate(p.get("adverse_events") or []):
            apath = f"{path}.adverse_events[{j}]"
            term = self.terms.get(ae["meddra_code"])
            if term is None:
                self.problems.append(f"{apath}.meddra_code: {ae['meddra_code']} is not a CTCAE v5.0 MedDRA code.")
                continue
            if term.term.casefold() != ae["term"].casefold():
                self.problems.append(
                    f"{apath}.term: {ae['term']!r} does not match MedDRA code {term.meddra_code} ({term.term!r})."
                )
                continue
            values = {k: v for k, v in ae.items() if k in safety_services.AE_FIELDS and k != "term" and v is not None}
            values["term"] = term
            if ae.get("source"):
                values["source"] = ae["source"]
            created = self.attempt(
                apath,
                lambda values=values: safety_services.ae_record(
                    user=user, patient=Patient.objects.get(pk=patient.pk), data=values
                ),
            )
            if created is not None:
                aes[j] = created
        for j, g in enumerate(p.get("gvhd_episodes") or []):
            episode = self.attempt(
                f"{path}.gvhd_episodes[{j}]",
                lambda g=g: safety_services.gvhd_record(
                    user=user,
                    patient=patient,
                    data={k: v for k, v in g.items() if v is not None and k != "voided"}
                    | {"chronic_severity": g.get("chronic_severity") or ""},
                ),
            )
            self.void(f"{path}.gvhd_episodes[{j}]", episode, g.get("voided"))
        self.import_adjudications(path, patient, p, aes)
        # An AE voided as entered in error is voided after the decisions on it are in (a
        # signed decision on a voided AE stays flagged for re-adjudication, as recorded).
        for j, ae in enumerate(p.get("adverse_events") or []):
            self.void(f"{path}.adverse_events[{j}]", aes.get(j), ae.get("voided"))
        for j, m in enumerate(p.get("concomitant_medications") or []):
            medication = self.attempt(
                f"{path}.concomitant_medications[{j}]",
                lambda m=m: dosing_services.medication_record(
                    user=user,
                    patient=Patient.objects.get(pk=patient.pk),
                    data={k: v for k, v in m.items() if v is not None and k != "voided"}
                    | {"other_agent": m.get("other_agent") or ""},
                ),
            )
            self.void(f"{path}.concomitant_medications[{j}]", medication, m.get("voided"))

    def import_adjudications(
        self, path: str, patient: Patient, p: dict[str, Any], aes: dict[int, AdverseEvent]
    ) -> None:
        adjudications = p.get("dlt_adjudications") or []
        created: dict[int, DltAdjudication] = {}
        death = next((e["date"] for e in p.get("events") or [] if e["kind"] == PatientEvent.Kind.DEATH), None)
        for j, a in enumerate(adjudications):
            apath = f"{path}.dlt_adjudications[{j}]"
            ae = aes.get(a["adverse_event"]) if a.get("adverse_event") is not None else None
            if a.get("adverse_event") is not None and ae is None:
                continue  # the AE itself was refused, and says why
            rule, event_date = a.get("kind"), a.get("event_date")
            if rule is None or event_date is None:
                candidate = self.candidate_for(patient, ae)
                rule = rule or (candidate.rule.value if candidate else DltAdjudication.Rule.INVESTIGATOR)
                if event_date is None:
                    if candidate is not None:
                        event_date = candidate.event_date
                    elif ae is not None:
                        event_date = ae.onset
                    elif rule == DltAdjudication.Rule.DEATH:
                        event_date = death
            supersedes = created.get(a["supersedes"]) if a.get("supersedes") is not None else None
            if supersedes is not None:
                supersedes.refresh_from_db()
            data = {
                "adverse_event": ae,
                "rule": rule,
                "event_date": event_date,
                "is_dlt": a["is_dlt"],
                "rationale": a["rationale"],
            }
            if a.get("evidence") is not None:
                # As signed (JSON values, like AdverseEvent.dlt_evidence), not re-taken from the AE.
                data["evidence"] = {
                    name: value.isoformat() if isinstance(value, datetime.date) else value
                    for name, value in a["evidence"].items()
                }
            adjudication = self.attempt(
                apath,
                lambda data=data, a=a, supersedes=supersedes: safety_services.adjudication_import(
                    user=self.user,
                    patient=patient,
                    data=data,
                    signed_by_name=a["by"],
                    signed_on=a["at"],
                    supersedes=supersedes,
                ),
            )
            if adjudication is not None:
                created[j] = adjudication

    def candidate_for(self, patient: Patient, ae: AdverseEvent | None) -> Any:
        """The DLT candidate the rules flag for this AE (PROTOCOL s5), if any."""
        if ae is None:
            return None
        review = safety_selectors.patient_dlt_review(Patient.objects.get(pk=patient.pk), timezone.localdate())
        return next((c.candidate for c in review.candidates if c.candidate.ae_id == ae.pk), None)


def _path_order(problem: str) -> tuple[tuple[str, int], ...]:
    """Problems in document order: ``patients[2]`` before ``patients[10]``."""
    path = problem.split(": ", 1)[0]
    return tuple((name, int(index or -1)) for name, index in re.findall(r"([A-Za-z_0-9]*)(?:\[(\d+)\])?\.?", path))


def import_user() -> Any:
    """The service user the import writes as: cannot sign in (no usable password); holds
    grants in the imported trial only while the import runs."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=IMPORT_USERNAME, defaults={"first_name": "Trial bundle", "last_name": "import", "is_staff": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def bundle_validate(data: Any) -> dict[str, Any]:
    """First pass: the document's shape. Returns the parsed document (dates, Decimals)
    or raises BundleInvalid listing every problem by path."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise BundleInvalid(["$: a trial bundle is a JSON object."])
    if data.get("format") != FORMAT:
        problems.append(f"format: expected {FORMAT!r}, got {data.get('format')!r}.")
    doc = _parse_object(BUNDLE_KEYS, data, "", problems)
    if not problems:
        _check_references(doc, problems)
    if problems:
        raise BundleInvalid(problems)
    return doc


def bundle_import(data: dict[str, Any], *, user: Any = None) -> Trial:
    """Create the trial the bundle carries, through the services, or refuse it whole.

    ``user`` is who asked (an admin through the API); the records are written by the
    import service user and their history names the request. Raises BundleInvalid.
    """
    if (
        user is not None
        and not (user.is_staff or user.is_superuser)
        and not RoleGrant.objects.filter(user=user, role=RoleGrant.Role.ADMIN, revoked_at__isnull=True).exists()
    ):
        raise PermissionDenied("Only an administrator imports trial bundles.")
    doc = bundle_validate(data)
    with transaction.atomic(), trial_services.computation_requests_deferred():
        writer = import_user()  # inside the transaction: a refused bundle leaves no trace at all
        importer = _Importer(doc, writer)
        try:
            trial = importer.run()
        finally:
            forget_grants(writer)
        if importer.problems or trial is None:
            raise BundleInvalid(sorted(importer.problems, key=_path_order))
    return trial
