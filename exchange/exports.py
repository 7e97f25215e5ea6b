"""Sponsor exports: de-identified SDTM/ADaM-like tables of one trial, streamed (issue 8).

Datasets (columns in docs/exports.md): ``dm`` demographics, ``ex`` exposure (one row per
administered dose), ``ae`` adverse events, ``ds`` disposition, ``rs`` disease response and
relapse, ``dv`` protocol deviations, ``adtte`` time to event (OS, PFS, NRM per patient, from analysis.endpoints).

Why raw SQL: the database produces the rows (every value already formatted: dates as ISO
text, flags as Y/N, codes as CDISC terms) and a server-side cursor hands them over in
batches, so memory stays flat whatever the size and the export runs near the speed of
``COPY ... TO STDOUT`` (bench/ae_export.py). DRF serializers or ``.values()`` build a
Python object per value and reach a few percent of it.

Scope: only users with the "export" capability for the trial (trial.access); the rows
are further limited to the sites :func:`trial.access.sites_for` grants for "export", so
the SQL can never reach further than the scoping mechanism does. No user names and no
identifiers beyond the subject ID and birth year leave through here.

Incremental pulls (``updated_since``): a row comes back when its own record, or a record
one of its derived columns is computed from (e.g. the first dose behind a study day),
changed after the cut-off; corrected records come back with their new values. Records
are never deleted in Trialdesk, so the deletions list is always empty.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from analysis import endpoints
from dosing.models import Cycle, Deviation
from dosing.selectors import first_dose_dates
from exchange.cdisc.terminology import AE_ACTION, AE_OUTCOME, EOT_REASON, RACE, SEX
from patients.models import Assessment, CasebookLock, Consent, Patient, PatientEvent, Screening, Transplant
from patients.selectors import outcome_rows
from safety.models import AdverseEvent, CtcaeTerm
from trial import access
from trial.models import DoseLevel, Site, Trial, TrialLock

BATCH_ROWS = 2000
# The study drug of the seed trial (PROTOCOL s1). Trial has no drug-name field yet; when
# it gets one, EXTRT reads it from there.
STUDY_DRUG = "INOTUZUMAB OZOGAMICIN"
DELETIONS_NOTE = "none: records are never deleted in Trialdesk; corrections come back as changed rows"

T = {
    "patient": Patient._meta.db_table,
    "trial": Trial._meta.db_table,
    "site": Site._meta.db_table,
    "level": DoseLevel._meta.db_table,
    "consent": Consent._meta.db_table,
    "screening": Screening._meta.db_table,
    "assessment": Assessment._meta.db_table,
    "event": PatientEvent._meta.db_table,
    "transplant": Transplant._meta.db_table,
    "cycle": Cycle._meta.db_table,
    "deviation": Deviation._meta.db_table,
    "ae": AdverseEvent._meta.db_table,
    "term": CtcaeTerm._meta.db_table,
    "casebook_lock": CasebookLock._meta.db_table,
    "trial_lock": TrialLock._meta.db_table,
}


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    columns: tuple[str, ...]
    numeric: frozenset[str] = frozenset()  # JSON writes these as numbers


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "dm",
            "Demographics (SDTM DM)",
            (
                "STUDYID",
                "DOMAIN",
                "USUBJID",
                "SUBJID",
                "SITEID",
                "BRTHDTC",
                "SEX",
                "RACE",
                "ARMCD",
                "ARM",
                "ACTARMCD",
                "ACTARM",
                "RFICDTC",
                "RFSTDTC",
                "RFENDTC",
                "DTHDTC",
                "DTHFL",
                "LOCKSTAT",
                "LOCKDTC",
            ),
        ),  # fmt: skip
        Dataset(
            "ex",
            "Exposure: one row per administered dose (SDTM EX)",
            (
                "STUDYID",
                "DOMAIN",
                "USUBJID",
                "EXSEQ",
                "EXTRT",
                "EXDOSE",
                "EXDOSU",
                "EXROUTE",
                "EXSTDTC",
                "EXENDTC",
                "EXSTDY",
                "VISITNUM",
                "VISIT",
                "EXDOSLVL",
                "EXDOSMGM",
                "EXBSA",
                "EXADJ",
                "EXDELAY",
            ),
            frozenset({"EXSEQ", "EXDOSE", "EXSTDY", "VISITNUM", "EXDOSLVL", "EXDOSMGM", "EXBSA", "EXDELAY"}),
        ),  # fmt: skip
        Dataset(
            "ae",
            "Adverse events, CTCAE v5.0 (SDTM AE)",
            (
                "STUDYID",
                "DOMAIN",
                "USUBJID",
                "AESEQ",
                "AETERM",
                "AEDECOD",
                "AELLTCD",
                "AEBODSYS",
                "AETOXGR",
                "AEREL",
                "AESER",
                "AESDTH",
                "AESLIFE",
                "AESHOSP",
                "AESDISAB",
                "AESCONG",
                "AESMIE",
                "AEACN",
                "AEOUT",
                "AESTDTC",
                "AEENDTC",
                "AEENRF",
                "AESTDY",
                "AEENDY",
            ),
            frozenset({"AESEQ", "AETOXGR", "AESTDY", "AEENDY"}),
        ),  # fmt: skip
        Dataset(
            "ds",
            "Disposition (SDTM DS)",
            ("STUDYID", "DOMAIN", "USUBJID", "DSSPID", "DSTERM", "DSDECOD", "DSCAT", "DSSCAT", "DSSTDTC", "DSSTDY"),
            frozenset({"DSSTDY"}),
        ),
        Dataset(
            "rs",
            "Disease response, MRD and relapse (SDTM RS)",
            (
                "STUDYID",
                "DOMAIN",
                "USUBJID",
                "RSSPID",
                "RSCAT",
                "RSTESTCD",
                "RSTEST",
                "RSORRES",
                "RSSTRESC",
                "RSSTRESN",
                "RSSTRESU",
                "RSMETHOD",
                "RSLOC",
                "RSDTC",
                "RSDY",
            ),
            frozenset({"RSSTRESN", "RSDY"}),
        ),  # fmt: skip
        Dataset(
            "dv",
            "Protocol deviations: recorded deviations and enrolments outside the open slot (SDTM DV)",
            ("STUDYID", "DOMAIN", "USUBJID", "DVSPID", "DVTERM", "DVDECOD", "DVCAT", "VISITNUM", "DVSTDTC", "DVSTDY"),
            frozenset({"VISITNUM", "DVSTDY"}),
        ),
        Dataset(
            "adtte",
            "Time to event: OS, PFS, NRM (ADaM ADTTE)",
            (
                "STUDYID",
                "USUBJID",
                "SUBJID",
                "SITEID",
                "TRTA",
                "TRTAN",
                "PARAMCD",
                "PARAM",
                "ORIGIN",
                "STARTDT",
                "ADT",
                "AVAL",
                "AVALU",
                "CNSR",
                "EVNTDESC",
            ),
            frozenset({"TRTAN", "AVAL", "CNSR"}),
        ),  # fmt: skip
    )
}

# CDISC controlled terms for Trialdesk's enumerations: one table, exchange/cdisc/terminology.py.
DEATH_CAUSE = {"relapse": "RELAPSE", "gvhd": "GVHD", "infection": "INFECTION", "organ_failure": "ORGAN FAILURE"}
ASSESSMENT_RESPONSE = {"cr": "CR", "cri": "CRI", "relapse": "RELAPSE"}
METHOD = {"flow": "FLOW CYTOMETRY", "pcr": "POLYMERASE CHAIN REACTION", "ngs": "NEXT GENERATION SEQUENCING"}
ENDPOINT_PARAM = {
    "os": ("OS", "Overall Survival (days)"),
    "pfs": ("PFS", "Progression-Free Survival (days)"),
    "nrm": ("NRM", "Non-Relapse Mortality (days)"),
}


# --- access and parameters -------------------------------------------------------------


def export_trial(user, trial_ref: str) -> Trial:  # type: ignore[no-untyped-def]
    """The trial named by id or code, if ``user`` may export it; otherwise 404 (no leak)."""
    if not trial_ref:
        raise ValidationError({"trial": ["Required: the trial's code or id, e.g. ?trial=INO-POST-HCT."]})
    if "\x00" in trial_ref or len(trial_ref) > Trial._meta.get_field("code").max_length:
        raise Http404("No trial you may export matches the given query.")  # not a code (PostgreSQL refuses NUL)
    trials = access.trials_for(user, "export")
    by_id = trial_ref.isascii() and trial_ref.isdigit()
    trial = trials.filter(pk=int(trial_ref)).first() if by_id else trials.filter(code=trial_ref).first()
    if trial is None:
        raise Http404("No trial you may export matches the given query.")
    return trial


def parse_updated_since(value: str) -> datetime.datetime | None:
    """``?updated_since=`` as an aware datetime: ISO date or date-time; naive means UTC."""
    if not value:
        return None
    value = value.strip().replace(" ", "+")  # a '+' in a query string arrives as a space
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.datetime.combine(day, datetime.time()) if day is not None else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError(
            {"updated_since": [f"'{value}' is not an ISO 8601 date or date-time, e.g. 2024-05-01T00:00:00Z."]}
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return moment


# --- SQL building blocks (vendor differences kept here) ---------------------------------


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _date(expr: str) -> str:
    return f"to_char({expr}, 'YYYY-MM-DD')" if _postgres() else f"CAST({expr} AS TEXT)"


def _datetime(expr: str) -> str:
    """A timestamp as ISO 8601 UTC text, e.g. 2026-11-26T14:02:00Z."""
    if _postgres():
        return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    return f"strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', {expr})"  # %% : the SQL has parameters


def _number(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE PRECISION)" if _postgres() else f"CAST({expr} AS REAL)"


def _days(later: str, earlier: str) -> str:
    return f"({later} - {earlier})" if _postgres() else f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _study_day(day: str, reference: str) -> str:
    """SDTM --DY: day 1 is the reference start (first dose); the day before is -1."""
    return f"(CASE WHEN {day} >= {reference} THEN {_days(day, reference)} + 1 ELSE {_days(day, reference)} END)"


def _yn(expr: str) -> str:
    return f"(CASE WHEN {expr} THEN 'Y' ELSE 'N' END)"


def _map(expr: str, mapping: dict[str, str], default: str = "''") -> str:
    # The literals come from the constant tables above, never from a request.
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {default} END)"


def _first_dose(patient: str) -> str:
    return (
        f"(SELECT MIN(fd.day1) FROM {T['cycle']} fd WHERE fd.patient_id = {patient} "  # noqa: S608
        "AND fd.given = TRUE AND fd.day1 IS NOT NULL)"
    )


@dataclass
class _Query:
    """SQL text and its parameters, built in order so placeholders and values match."""

    sql: str = ""
    params: list[Any] | None = None

    def add(self, text: str, *params: Any) -> _Query:
        self.sql += text
        self.params = [*(self.params or []), *params]
        return self


def _patient_scope(q: _Query, trial: Trial, site_ids: Sequence[int]) -> None:
    marks = ", ".join(["%s"] * len(site_ids)) or "NULL"
    q.add(f" WHERE p.trial_id = %s AND p.site_id IN ({marks})", trial.pk, *site_ids)


def _changed(q: _Query, since: datetime.datetime | None, own: str, derived: Iterable[str] = ()) -> None:
    """Keep rows whose own record (alias ``own``) or a record behind a derived column changed."""
    if since is None:
        return
    q.add(f" AND ({own}.updated_at > %s", since)
    for table_and_condition in derived:
        q.add(f" OR EXISTS (SELECT 1 FROM {table_and_condition} AND x.updated_at > %s)", since)  # noqa: S608
    q.add(")")


_FIRST_DOSE_CHANGED = f"{T['cycle']} x WHERE x.patient_id = p.id"
_STUDY = "t.code"
_USUBJID = "t.code || '-' || p.subject_id"
_PATIENT_JOINS = f" FROM {T['patient']} p JOIN {T['trial']} t ON t.id = p.trial_id"


# The casebook's effective lock (issue 12): a trial lock locks every casebook.
_LOCK_JOINS = (
    f" LEFT JOIN {T['casebook_lock']} cl ON cl.patient_id = p.id"
    f" LEFT JOIN {T['trial_lock']} tl ON tl.trial_id = p.trial_id"
)
_LOCK_STATE = (
    "(CASE WHEN tl.state = 'locked' THEN 'LOCKED' WHEN cl.state = 'locked' THEN 'LOCKED' "
    "WHEN cl.state = 'frozen' THEN 'FROZEN' ELSE 'OPEN' END)"
)
_LOCK_TIME_EXPR = (
    "(CASE WHEN tl.state = 'locked' THEN tl.changed_at WHEN cl.state IN ('locked', 'frozen') THEN cl.changed_at END)"
)


def _dm(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    arm_cd = "(CASE WHEN lv.level IS NULL THEN 'NOTASSGN' ELSE 'L' || CAST(lv.level AS TEXT) END)"
    arm = f"(CASE WHEN lv.level IS NULL THEN 'Not assigned' ELSE {_number('lv.dose_mg_m2')} || ' mg/m2' END)"
    if _postgres():
        arm = "(CASE WHEN lv.level IS NULL THEN 'Not assigned' ELSE trim_scale(lv.dose_mg_m2)::text || ' mg/m2' END)"
    first_dose = _first_dose("p.id")
    last_dose = first_dose.replace("MIN(fd.day1)", "MAX(fd.day1)")
    death = f"(SELECT MIN(d.date) FROM {T['event']} d WHERE d.patient_id = p.id AND d.kind = 'death')"  # noqa: S608
    q = _Query().add(
        f"SELECT {_STUDY}, 'DM', {_USUBJID}, p.subject_id, s.code, CAST(p.birth_year AS TEXT), "  # noqa: S608
        f"{_map('p.sex', SEX)}, {_map('p.race', RACE)}, {arm_cd}, {arm}, "
        f"(CASE WHEN ({first_dose}) IS NULL THEN 'NOTTRT' ELSE {arm_cd} END), "
        f"(CASE WHEN ({first_dose}) IS NULL THEN 'Not treated' ELSE {arm} END), "
        f"(SELECT {_date('MIN(c.date)')} FROM {T['consent']} c WHERE c.patient_id = p.id), "
        f"{_date(first_dose)}, {_date(last_dose)}, {_date(death)}, "
        f"(CASE WHEN {death} IS NULL THEN '' ELSE 'Y' END), {_LOCK_STATE}, {_datetime(_LOCK_TIME_EXPR)}"
        f"{_PATIENT_JOINS} JOIN {T['site']} s ON s.id = p.site_id LEFT JOIN {T['level']} lv ON lv.id = p.dose_level_id"
        f"{_LOCK_JOINS}"
    )
    _patient_scope(q, trial, site_ids)
    _changed(
        q,
        since,
        "p",
        [
            _FIRST_DOSE_CHANGED,
            f"{T['consent']} x WHERE x.patient_id = p.id",
            f"{T['event']} x WHERE x.patient_id = p.id AND x.kind = 'death'",
            f"{T['casebook_lock']} x WHERE x.patient_id = p.id",
            f"{T['trial_lock']} x WHERE x.trial_id = p.trial_id",
        ],
    )
    return q.add(" ORDER BY p.subject_id")


def _ex(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    first_dose = _first_dose("p.id")
    adj = (
        "(CASE WHEN e.reduced = TRUE THEN 'DOSE REDUCED: ' || UPPER(REPLACE(e.reduction_reason, '_', ' ')) "
        "WHEN e.delay_days > 0 THEN 'DOSE DELAYED' ELSE '' END)"
    )
    q = _Query().add(
        f"SELECT {_STUDY}, 'EX', {_USUBJID}, e.number, '{STUDY_DRUG}', {_number('e.dose_mg')}, 'mg', 'INTRAVENOUS', "  # noqa: S608
        f"{_date('e.day1')}, {_date('e.day1')}, {_study_day('e.day1', first_dose)}, e.number, "
        f"'CYCLE ' || CAST(e.number AS TEXT) || ' DAY 1', lv.level, {_number('e.dose_mg_m2')}, "
        f"{_number('e.bsa_m2')}, {adj}, e.delay_days"
        f" FROM {T['cycle']} e JOIN {T['patient']} p ON p.id = e.patient_id JOIN {T['trial']} t ON t.id = p.trial_id"
        f" JOIN {T['level']} lv ON lv.id = e.dose_level_id"
    )
    _patient_scope(q, trial, site_ids)
    q.add(" AND e.given = TRUE AND e.day1 IS NOT NULL")
    _changed(q, since, "e", [_FIRST_DOSE_CHANGED])
    return q.add(" ORDER BY p.subject_id, e.number")


def _ae_select(first_dose: str) -> str:
    return (
        f"SELECT {_STUDY}, 'AE', {_USUBJID}, a.id, "  # noqa: S608
        "(CASE WHEN a.specify <> '' THEN tm.term || ' - ' || a.specify ELSE tm.term END), tm.term, tm.meddra_code, "
        f"tm.soc, a.grade, UPPER(a.attribution), {_yn('a.serious')}, {_yn('a.sae_death')}, "
        f"{_yn('a.sae_life_threatening')}, {_yn('a.sae_hospitalisation')}, {_yn('a.sae_disability')}, "
        f"{_yn('a.sae_congenital')}, {_yn('a.sae_important')}, {_map('a.action', AE_ACTION)}, "
        f"{_map('a.outcome', AE_OUTCOME)}, {_date('a.onset')}, {_date('a.resolved')}, "
        "(CASE WHEN a.resolved IS NULL THEN 'ONGOING' ELSE '' END), "
        f"{_study_day('a.onset', first_dose)}, {_study_day('a.resolved', first_dose)}"
        f" FROM {T['ae']} a JOIN {T['patient']} p ON p.id = a.patient_id JOIN {T['trial']} t ON t.id = p.trial_id"
        f" JOIN {T['term']} tm ON tm.id = a.term_id"
    )


def _ae(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    # The first dose of each patient once, joined, rather than a subquery per AE row.
    if _postgres():
        select = _ae_select("fd.rfstdt").replace(
            " JOIN ",
            f" LEFT JOIN (SELECT patient_id, MIN(day1) AS rfstdt FROM {T['cycle']} WHERE given = TRUE "  # noqa: S608
            "AND day1 IS NOT NULL GROUP BY patient_id) fd ON fd.patient_id = a.patient_id JOIN ",
            1,
        )
        q = _Query().add(select)
    else:
        q = _Query().add(_ae_select(_first_dose("p.id")))
    _patient_scope(q, trial, site_ids)
    q.add(" AND a.voided_at IS NULL")  # voided as entered in error (issue 19, docs/exports.md)
    _changed(q, since, "a", [_FIRST_DOSE_CHANGED])
    return q.add(" ORDER BY a.patient_id, a.id")


OTHER, NOT_RECORDED = "'OTHER'", "'NOT RECORDED'"


def _ds(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    first_dose = _first_dose("p.id")
    head = f"SELECT {_STUDY}, 'DS', {_USUBJID}, "
    joins = f" JOIN {T['patient']} p ON p.id = r.patient_id JOIN {T['trial']} t ON t.id = p.trial_id"
    q = _Query()
    parts: list[tuple[str, str, str, list[Any]]] = [
        (
            "'CONSENT-' || CAST(r.id AS TEXT), 'INFORMED CONSENT OBTAINED, PROTOCOL VERSION ' || pv.version, "
            "'INFORMED CONSENT OBTAINED', 'PROTOCOL MILESTONE', '', r.date",
            f" FROM {T['consent']} r{joins} JOIN trial_protocolversion pv ON pv.id = r.protocol_version_id",
            "",
            [],
        ),
        (
            "'SCREENING-' || CAST(r.id AS TEXT), 'SCREEN FAILURE', 'SCREEN FAILURE', 'DISPOSITION EVENT', "
            "'SCREENING', r.date",
            f" FROM {T['screening']} r{joins}",
            " AND r.result = 'not_eligible'",
            [],
        ),
        (
            "'ENROLMENT-' || CAST(p.id AS TEXT), 'ENROLLED', 'ENROLLED', 'PROTOCOL MILESTONE', '', r.enrolled_on",
            f" FROM {T['patient']} r JOIN {T['patient']} p ON p.id = r.id JOIN {T['trial']} t ON t.id = p.trial_id",
            " AND r.enrolled_on IS NOT NULL",
            [],
        ),
        (
            "'EVENT-' || CAST(r.id AS TEXT), "
            f"(CASE r.kind WHEN 'death' THEN 'DEATH' || (CASE WHEN r.cause <> '' THEN ': ' || "
            f"{_map('r.cause', DEATH_CAUSE, OTHER)} ELSE '' END) "
            "WHEN 'withdrawal' THEN 'WITHDRAWAL OF CONSENT' "
            f"ELSE 'END OF TREATMENT: ' || {_map('r.reason', EOT_REASON, NOT_RECORDED)} END), "
            f"(CASE r.kind WHEN 'death' THEN 'DEATH' WHEN 'withdrawal' THEN 'WITHDRAWAL BY SUBJECT' "
            f"ELSE {_map('r.reason', EOT_REASON, OTHER)} END), 'DISPOSITION EVENT', "
            "(CASE r.kind WHEN 'end_of_treatment' THEN 'END OF TREATMENT' ELSE 'STUDY' END), r.date",
            f" FROM {T['event']} r{joins}",
            " AND r.kind IN ('death', 'withdrawal', 'end_of_treatment') AND r.voided_at IS NULL",
            [],
        ),
    ]
    for index, (columns, source, condition, params) in enumerate(parts):
        if index:
            q.add(" UNION ALL ")
        # The last selected column is the date; format it and add the study day.
        values, _, day = columns.rpartition(", ")
        q.add(f"{head}{values}, {_date(day)}, {_study_day(day, first_dose)}{source}", *params)
        _patient_scope(q, trial, site_ids)
        q.add(condition)
        _changed(q, since, "r", [_FIRST_DOSE_CHANGED])
    return q.add(" ORDER BY 3, 9, 4")


def _rs(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    first_dose = _first_dose("p.id")
    joins = f" JOIN {T['patient']} p ON p.id = r.patient_id JOIN {T['trial']} t ON t.id = p.trial_id"
    mrd = "r.kind = 'mrd'"
    result = (
        f"(CASE WHEN {mrd} OR r.response = '' THEN UPPER(r.result) ELSE {_map('r.response', ASSESSMENT_RESPONSE)} END)"
    )
    q = _Query().add(
        f"SELECT {_STUDY}, 'RS', {_USUBJID}, 'ASSESSMENT-' || CAST(r.id AS TEXT), "  # noqa: S608
        f"(CASE WHEN {mrd} THEN 'MRD' ELSE 'BONE MARROW' END), "
        f"(CASE WHEN {mrd} THEN 'MRD' ELSE 'OVRLRESP' END), "
        f"(CASE WHEN {mrd} THEN 'Minimal Residual Disease' ELSE 'Overall Response' END), {result}, {result}, "
        f"(CASE WHEN {mrd} THEN {_number('r.level')} ELSE {_number('r.blasts_pct')} END), "
        f"(CASE WHEN {mrd} AND r.level IS NOT NULL THEN 'FRACTION' WHEN r.blasts_pct IS NOT NULL "
        f"AND NOT {mrd} THEN '%%' ELSE '' END), {_map('r.method', METHOD)}, "
        f"(CASE WHEN r.extramedullary = TRUE THEN 'EXTRAMEDULLARY' ELSE '' END), "
        f"{_date('r.date')}, {_study_day('r.date', first_dose)} FROM {T['assessment']} r{joins}"
    )
    _patient_scope(q, trial, site_ids)
    q.add(" AND r.voided_at IS NULL")
    _changed(q, since, "r", [_FIRST_DOSE_CHANGED])
    q.add(
        f" UNION ALL SELECT {_STUDY}, 'RS', {_USUBJID}, 'EVENT-' || CAST(r.id AS TEXT), 'RELAPSE', 'OVRLRESP', "  # noqa: S608
        f"'Overall Response', 'RELAPSE', 'RELAPSE', {_number('r.blasts_pct')}, "
        "(CASE WHEN r.blasts_pct IS NULL THEN '' ELSE '%%' END), '', UPPER(r.relapse_site), "
        f"{_date('r.date')}, {_study_day('r.date', first_dose)} FROM {T['event']} r{joins}"
    )
    _patient_scope(q, trial, site_ids)
    q.add(" AND r.kind = 'relapse' AND r.voided_at IS NULL")
    _changed(q, since, "r", [_FIRST_DOSE_CHANGED])
    return q.add(" ORDER BY 3, 14, 4")


DEVIATION_KIND = {
    "delay": "DOSE DELAYED BEYOND THE ALLOWANCE",
    "safety_check": "DOSED WITH A FAILED PRE-DOSE SAFETY CHECK",
    "enrolment": "ENROLMENT OUTSIDE THE OPEN SLOT",
    "other": "OTHER",
}


def _dv(trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    """Every protocol deviation (issue 16 item 4), as dosing.selectors.deviation_list
    lists them: Deviation rows and the enrolments recorded outside the open slot."""
    first_dose = _first_dose("p.id")
    joins = f" JOIN {T['patient']} p ON p.id = r.patient_id JOIN {T['trial']} t ON t.id = p.trial_id"
    q = _Query().add(
        f"SELECT {_STUDY}, 'DV', {_USUBJID}, 'DEVIATION-' || CAST(r.id AS TEXT), r.reason, "  # noqa: S608
        f"{_map('r.kind', DEVIATION_KIND, OTHER)}, 'PROTOCOL DEVIATION', r.cycle_number, {_date('r.date')}, "
        f"{_study_day('r.date', first_dose)} FROM {T['deviation']} r{joins}"
    )
    _patient_scope(q, trial, site_ids)
    _changed(q, since, "r", [_FIRST_DOSE_CHANGED])
    q.add(
        f" UNION ALL SELECT {_STUDY}, 'DV', {_USUBJID}, 'ENROLMENT-' || CAST(p.id AS TEXT), "  # noqa: S608
        f"p.enrolment_deviation, '{DEVIATION_KIND['enrolment']}', 'PROTOCOL DEVIATION', NULL, "
        f"{_date('p.enrolled_on')}, {_study_day('p.enrolled_on', first_dose)}{_PATIENT_JOINS}"
    )
    _patient_scope(q, trial, site_ids)
    q.add(" AND p.enrolled_on IS NOT NULL AND p.enrolment_deviation <> ''")
    _changed(q, since, "p", [_FIRST_DOSE_CHANGED])
    return q.add(" ORDER BY 3, 9, 4")


SQL_DATASETS = {"dm": _dm, "ex": _ex, "ae": _ae, "ds": _ds, "rs": _rs, "dv": _dv}


def dataset_sql(name: str, trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None) -> _Query:
    """The SELECT that produces dataset ``name`` (also used by bench/ae_export.py for COPY)."""
    return SQL_DATASETS[name](trial, site_ids, since)


# --- rows ------------------------------------------------------------------------------


def _sql_batches(query: _Query) -> Iterator[Sequence[Sequence[Any]]]:
    """Rows from a server-side cursor, BATCH_ROWS at a time (constant memory).

    On PostgreSQL a named cursor needs a transaction; the atomic block lives as long as
    the stream and only reads. ``cursor_tuple_fraction = 1`` tells the planner the whole
    result will be read: its default (0.1) favours fast-start plans (nested loops over
    indexes) that are several times slower for a full export.
    """
    with transaction.atomic():
        if _postgres():
            with connection.cursor() as setup:
                setup.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        with connection.chunked_cursor() as cursor:
            cursor.execute(query.sql, query.params or [])
            while batch := cursor.fetchmany(BATCH_ROWS):
                yield batch


def _adtte_batches(
    trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None
) -> Iterator[Sequence[Sequence[Any]]]:
    """One row per patient per endpoint from analysis.endpoints (PROTOCOL s8). Bounded by the
    number of enrolled patients, so computed in memory."""
    rows = [r for r in outcome_rows(trial) if r["hct_date"] is not None]
    allowed_sites = set(Site.objects.filter(pk__in=site_ids).values_list("code", flat=True))
    rows = [r for r in rows if r["site_code"] in allowed_sites]
    if since is not None:
        changed = _patients_changed(trial, since)
        rows = [r for r in rows if r["patient_id"] in changed]
    first_doses = first_dose_dates(trial)
    levels = dict(trial.dose_levels.values_list("level", "dose_mg_m2"))
    for r in rows:
        outcome = endpoints.PatientOutcome(
            subject_id=r["subject_id"],
            hct_date=r["hct_date"],
            first_dose_date=first_doses.get(r["patient_id"]),
            relapse_date=r["relapse_date"],
            death_date=r["death_date"],
            last_known_alive=r["last_contact_date"],
        )
        level = r["dose_level"]
        trta = f"{levels[level].normalize()} mg/m2" if level in levels else ""
        head = [trial.code, f"{trial.code}-{r['subject_id']}", r["subject_id"], r["site_code"], trta, level]
        yield [head + _tte(endpoint, outcome, trial.survival_origin) for endpoint in ("os", "pfs", "nrm")]


def _tte(endpoint: str, outcome: endpoints.PatientOutcome, origin: str) -> list[Any]:
    paramcd, param = ENDPOINT_PARAM[endpoint]
    origin = "first_dose" if endpoint == "nrm" else origin
    start = outcome.hct_date if origin == "hct" else outcome.first_dose_date
    try:
        if endpoint == "os":
            result = endpoints.os_time(outcome, origin)  # type: ignore[arg-type]
        elif endpoint == "pfs":
            result = endpoints.pfs_time(outcome, origin)  # type: ignore[arg-type]
        else:
            result = endpoints.nrm_time(outcome)
    except ValueError as exc:
        # Inconsistent dates: a data error to fix at entry; the row says so, AVAL stays empty.
        return [paramcd, param, origin.upper(), _iso(start), None, None, "DAYS", None, f"DATE ERROR: {exc}"]
    if result is None or start is None:
        return [paramcd, param, origin.upper(), None, None, None, "DAYS", None, "NOT EVALUABLE: NO FIRST DOSE"]
    if result.status == endpoints.EVENT:
        cnsr, description = (
            0,
            {"os": "DEATH", "pfs": "RELAPSE OR DEATH", "nrm": "DEATH WITHOUT PRIOR RELAPSE"}[endpoint],
        )
    elif result.status == endpoints.COMPETING:
        cnsr, description = 2, "RELAPSE (COMPETING EVENT)"
    else:
        cnsr, description = 1, "CENSORED AT LAST KNOWN ALIVE"
    end = start + datetime.timedelta(days=result.time_days)
    return [paramcd, param, origin.upper(), _iso(start), _iso(end), result.time_days, "DAYS", cnsr, description]


def _iso(day: datetime.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _patients_changed(trial: Trial, since: datetime.datetime) -> set[int]:
    """Patients whose outcome inputs (patient, transplant, events, cycles) changed."""
    ids = set(Patient.objects.filter(trial=trial, updated_at__gt=since).values_list("pk", flat=True))
    for model in (Transplant, PatientEvent, Cycle):
        ids |= set(
            model.objects.filter(patient__trial=trial, updated_at__gt=since).values_list("patient_id", flat=True)
        )
    return ids


def export_batches(
    name: str, trial: Trial, site_ids: Sequence[int], since: datetime.datetime | None
) -> Iterator[Sequence[Sequence[Any]]]:
    """The dataset's rows (tuples in column order), in batches."""
    if name == "adtte":
        return _adtte_batches(trial, site_ids, since)
    return _sql_batches(dataset_sql(name, trial, site_ids, since))


# --- streaming writers -----------------------------------------------------------------


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection,
# OWASP): free text gets a leading single quote. Numbers in numeric columns stay numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def csv_cell(value: Any, numeric: bool = False) -> Any:
    """One CSV cell, neutralised: text starting with ``= + - @`` TAB or CR gets a leading ``'``."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if numeric and _is_number(value):
        return value  # a genuine negative number, e.g. a study day before the first dose
    return "'" + value


def csv_chunks(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], numeric: frozenset[str] = frozenset()
) -> Iterator[bytes]:
    """CSV with a header line, one encoded chunk per batch (csv's C writer does the rows);
    every text cell goes through ``csv_cell``."""
    buffer = io.StringIO()
    # Text always quoted, as PostgreSQL's writer does: a CR inside a value stays inside
    # its cell (QUOTE_MINIMAL quotes only the line terminator "\n").
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([csv_cell(c) for c in columns])
    is_numeric = [c in numeric for c in columns]
    for batch in batches:
        writer.writerows([csv_cell(v, n) for v, n in zip(row, is_numeric, strict=True)] for row in batch)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def _json_value(value: Any, numeric: bool) -> Any:
    if value is None or not numeric or isinstance(value, int | float):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else number


def json_chunks(
    dataset: Dataset, header: dict[str, Any], batches: Iterable[Sequence[Sequence[Any]]]
) -> Iterator[bytes]:
    """``{...header, "columns": [...], "deletions": [], "rows": [{COL: value}, ...]}``, streamed."""
    head = {**header, "columns": list(dataset.columns), "deletions": []}
    yield (json.dumps(head)[:-1] + ', "rows": [').encode()
    numeric = [c in dataset.numeric for c in dataset.columns]
    columns = dataset.columns
    first = True
    for batch in batches:
        parts = []
        for row in batch:
            record = {c: _json_value(v, n) for c, v, n in zip(columns, row, numeric, strict=True)}
            parts.append(("" if first else ",") + json.dumps(record))
            first = False
        yield "".join(parts).encode()
    yield b"]}"


def lock_summary(trial: Trial, site_ids: Sequence[int]) -> dict[str, Any]:
    """The lock state an export was taken in (issue 12): the trial lock and its time, and
    how many of the exported casebooks are locked, frozen and open (effective states; the
    time of each casebook's lock is in ``dm.LOCKDTC``). Two queries."""
    trial_lock = TrialLock.objects.filter(trial=trial).first()
    locked_trial = trial_lock is not None and trial_lock.state == TrialLock.State.LOCKED
    patients = Patient.objects.filter(trial=trial, site_id__in=list(site_ids))
    counts = {"locked": 0, "frozen": 0, "open": 0}
    if locked_trial:
        counts["locked"] = patients.count()
    else:
        for state, n in (
            patients.values_list("casebook_lock__state")
            .annotate(n=Count("pk"))
            .order_by()
            .values_list("casebook_lock__state", "n")
        ):
            counts[state or "open"] += n
    return {
        "trial": "locked" if locked_trial else "open",
        "trial_locked_at": trial_lock.changed_at.isoformat() if locked_trial and trial_lock.changed_at else None,
        "casebooks": counts,
    }


def export_stream(
    user, dataset_name: str, trial_ref: str, fmt: str, updated_since: str
) -> tuple[Trial, Any, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Check access and parameters (errors raised before the first byte), then return
    the trial, the byte iterator and the response headers."""
    dataset = DATASETS.get(dataset_name)
    if dataset is None:
        raise Http404(f"No dataset {dataset_name!r}; choose one of {', '.join(DATASETS)}.")
    if fmt not in {"csv", "json"}:
        raise ValidationError({"format": [f"'{fmt}' is not a format: use csv or json."]})
    since = parse_updated_since(updated_since)
    trial = export_trial(user, trial_ref)
    site_ids = list(access.sites_for(user, trial, "export").values_list("pk", flat=True))
    generated_at = timezone.now()
    lock = lock_summary(trial, site_ids)
    headers = {
        "X-Export-Dataset": dataset.name,
        "X-Export-Generated-At": generated_at.isoformat(),
        "X-Export-Updated-Since": since.isoformat() if since is not None else "",
        "X-Export-Deletions": DELETIONS_NOTE,
        "X-Export-Trial-Lock": lock["trial"]
        + (f"; since {lock['trial_locked_at']}" if lock["trial_locked_at"] else ""),
        "X-Export-Casebook-Locks": "; ".join(f"{state}={n}" for state, n in lock["casebooks"].items()),
        "Content-Disposition": f'attachment; filename="{trial.code}_{dataset.name}.{fmt}"',
    }
    header = {
        "dataset": dataset.name,
        "label": dataset.label,
        "study": trial.code,
        "generated_at": generated_at.isoformat(),
        "updated_since": since.isoformat() if since is not None else None,
        "deletions_note": DELETIONS_NOTE,
        "lock": lock,
    }
    if dataset.name in SQL_DATASETS and _postgres():
        # PostgreSQL writes each CSV line / JSON object itself: Python only joins strings.
        lines = _pg_line_batches(dataset, dataset_sql(dataset.name, trial, site_ids, since), fmt)
        if fmt == "csv":
            return trial, _csv_from_lines(dataset.columns, lines), headers
        return trial, _json_from_objects(dataset, header, lines), headers
    batches = export_batches(dataset_name, trial, site_ids, since)
    if fmt == "csv":
        return trial, csv_chunks(dataset.columns, batches, dataset.numeric), headers
    return trial, json_chunks(dataset, header, batches), headers


# --- PostgreSQL: the database formats the lines ---------------------------------------


def _sql_text(column: str) -> str:
    return f'CAST("{column}" AS TEXT)'


def _sql_csv_text(value: str) -> str:
    """``csv_cell`` in SQL: text starting with a formula character gets a leading quote."""
    starts = ", ".join(f"CHR({ord(c)})" for c in FORMULA_STARTS)
    return f"(CASE WHEN LEFT({value}, 1) IN ({starts}) THEN CHR(39) || {value} ELSE {value} END)"


def _pg_line_batches(dataset: Dataset, query: _Query, fmt: str) -> Iterator[list[str]]:
    """Batches of finished CSV lines or JSON objects, one text value per row.

    Text is always quoted in CSV (a quote doubled), so commas, quotes and line breaks in
    a value are safe; numbers and empty values are bare. JSON objects come from
    ``row_to_json``: numbers stay numbers, NULL is null.
    """
    names = ", ".join(f'"{c}"' for c in dataset.columns)
    if fmt == "csv":
        fields = [
            f"COALESCE(CAST(\"{c}\" AS TEXT), '')"
            if c in dataset.numeric
            else f"COALESCE('\"' || REPLACE({_sql_csv_text(_sql_text(c))}, '\"', '\"\"') || '\"', '')"
            for c in dataset.columns
        ]
        line = " || ',' || ".join(fields)
    else:
        line = "CAST(row_to_json(s) AS TEXT)"
    wrapped = _Query(f"SELECT {line} FROM ({query.sql}) AS s ({names})", query.params)  # noqa: S608
    for batch in _sql_batches(wrapped):
        yield [row[0] for row in batch]


def _csv_from_lines(columns: Sequence[str], batches: Iterable[list[str]]) -> Iterator[bytes]:
    yield (",".join(columns) + "\n").encode()
    for lines in batches:
        lines.append("")
        yield "\n".join(lines).encode()


def _json_from_objects(dataset: Dataset, header: dict[str, Any], batches: Iterable[list[str]]) -> Iterator[bytes]:
    head = {**header, "columns": list(dataset.columns), "deletions": []}
    yield (json.dumps(head)[:-1] + ', "rows": [').encode()
    separator = ""
    for objects in batches:
        yield (separator + ",".join(objects)).encode()
        separator = ","
    yield b"]}"
