"""Casebook rows in, SDTM and ADaM records out (issue 18). Pure: no Django.

The selector (:mod:`exchange.cdisc.selectors`) reads the casebook into the frozen
dataclasses below; each ``map_*`` function returns the dataset's records as dicts keyed
by the variables of :mod:`exchange.cdisc.metadata`, in its order, missing values as
``None``. ADaM dates (``*DT``) are :class:`datetime.date`; the writers turn them into
SAS dates (XPT) or ISO 8601 text (Dataset-JSON).

Conventions (docs/exports.md, "CDISC datasets"):

* ``--DTC`` ISO 8601; a partial date keeps only what is known (``1975``, ``1975-03``).
* ``--DY`` from ``RFSTDTC`` (first dose) with no day 0: on or after it ``date - RFSTDTC + 1``,
  before it ``date - RFSTDTC``; empty when either date is partial or missing.
* ``--SEQ`` 1, 2, ... per subject in date order; the source record stays in ``--SPID``.
* ``EPOCH`` from the date: before the first dose (or never dosed) ``SCREENING``; from the
  first dose to the end-of-treatment date ``TREATMENT``; after it ``FOLLOW-UP``.
* ADTTE uses :mod:`analysis.endpoints`, the rules of the survival API, on the same dates:
  ``CNSR`` 0 event, 1 censored at the last date known alive, 2 (NRM) relapse, the
  competing event. A subject whose outcome dates contradict each other is left out of
  every endpoint by the survival API; here the three rows say ``DATE ERROR`` with no
  ``AVAL``, so a Kaplan-Meier on ADTTE alone reproduces the survival API.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from analysis import endpoints
from dosing import schedule
from exchange.cdisc import metadata
from exchange.cdisc.terminology import (
    AE_ACTION,
    AE_OUTCOME,
    AE_RELATION,
    CM_AGENT,
    CT_VERSION,
    DEATH_CAUSE,
    DIAGNOSIS,
    EOT_REASON,
    RACE,
    RS_METHOD,
    RS_RESPONSE,
    RS_RESULT,
    SEX,
    TS_PARAMETERS,
    TS_VALUE_CODES,
)
from patients import eligibility
from safety import lab_grading

Value = str | int | float | datetime.date | None
Record = dict[str, Value]
Origin = Literal["hct", "first_dose"]


@dataclass(frozen=True)
class TrialDesign:
    """The trial configuration the trial design domains (TS, TA, TE, TV, TI) describe;
    defaults are the seed trial's protocol (docs/protocol.md)."""

    title: str = ""
    dose_levels: tuple[tuple[int, Decimal], ...] = ()  # (level, mg/m2), by level
    design: str = "3+3"
    planned_subjects: int | None = None
    countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-3 of the trial's sites
    sponsor: str = ""  # empty: Trialdesk records no sponsor (TS SPONSOR is then null-flavoured)
    lock_date: datetime.date | None = None  # the trial lock (data cut-off), if locked
    schedule: schedule.ScheduleParams = schedule.SEED_SCHEDULE
    eligibility: eligibility.EligibilityParams = eligibility.SEED_ELIGIBILITY
    protocol_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Study:
    code: str
    drug: str  # EXTRT
    survival_origin: Origin = "hct"
    dose_form: str = "INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION"
    # Reference limits in SI units by limit name ("platelets_lln", "alt_uln"...): LabPanel
    # stores none, so the selector passes the ones the lab grading proposals use.
    lab_limits: tuple[tuple[str, Decimal], ...] = ()
    design: TrialDesign = TrialDesign()


@dataclass(frozen=True)
class LabDraw:
    """One lab panel (SI units, docs/api.md); ``cycle`` the cycle whose visit it was entered with."""

    record_id: int
    date: datetime.date
    cycle: int | None = None
    platelets: Decimal | None = None
    anc: Decimal | None = None
    hemoglobin: Decimal | None = None
    bilirubin: Decimal | None = None
    alt: Decimal | None = None
    ast: Decimal | None = None


@dataclass(frozen=True)
class Dose:
    """One administered dose (a given cycle with its day-1 date)."""

    cycle: int
    day1: datetime.date
    level: int
    dose_mg: Decimal | None
    dose_mg_m2: Decimal | None
    bsa_m2: Decimal | None
    reduced: bool = False
    reduction_reason: str = ""
    delay_days: int = 0


@dataclass(frozen=True)
class AdverseEvent:
    record_id: int
    term: str
    meddra_code: str
    soc: str
    grade: int
    onset: datetime.date
    resolved: datetime.date | None
    attribution: str
    specify: str = ""
    serious: bool = False
    sae_death: bool = False
    sae_life_threatening: bool = False
    sae_hospitalisation: bool = False
    sae_disability: bool = False
    sae_congenital: bool = False
    sae_important: bool = False
    action: str = "none"
    outcome: str = ""
    # The AE's current DLT decision (latest signed, not superseded): None = not adjudicated.
    dlt: bool | None = None
    dlt_rule: str = ""


@dataclass(frozen=True)
class Medication:
    """A concomitant medication (a TKI, PROTOCOL s3)."""

    record_id: int
    agent: str  # Trialdesk's value: imatinib, dasatinib, nilotinib, ponatinib, other
    start: datetime.date
    stop: datetime.date | None = None
    other_agent: str = ""


@dataclass(frozen=True)
class ResponseAssessment:
    """An MRD or bone-marrow assessment (PROTOCOL s7), Trialdesk's values (docs/api.md)."""

    record_id: int
    kind: str  # mrd | bone_marrow
    date: datetime.date
    method: str = ""  # flow | pcr | ngs
    result: str = ""  # positive | negative | indeterminate
    level: Decimal | None = None  # MRD level (fraction)
    blasts_pct: Decimal | None = None
    response: str = ""  # cr | cri | relapse
    extramedullary: bool | None = None


DispositionSource = Literal["consent", "screening_failure", "enrolment", "end_of_treatment", "withdrawal", "death"]


@dataclass(frozen=True)
class Disposition:
    source: DispositionSource
    record_id: int
    date: datetime.date
    protocol_version: str = ""  # consent
    reason: str = ""  # end of treatment (Trialdesk's EotReason value)
    cause: str = ""  # death (DeathCause value)


@dataclass(frozen=True)
class Subject:
    subject_id: str
    site_code: str
    birth_year: int | None
    sex: str
    race: str
    level: int | None = None  # assigned dose level
    level_dose_mg_m2: Decimal | None = None
    enrolled_on: datetime.date | None = None
    hct_date: datetime.date | None = None
    relapse_date: datetime.date | None = None  # first relapse
    death_date: datetime.date | None = None
    death_cause: str = ""
    last_contact_date: datetime.date | None = None  # latest last-contact record
    dlt_evaluable: bool | None = None  # None: not enrolled at a dose level
    backfill: bool = False  # enrolled into a backfill place below the current level (issue 17)
    doses: tuple[Dose, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    dispositions: tuple[Disposition, ...] = ()
    labs: tuple[LabDraw, ...] = ()
    medications: tuple[Medication, ...] = ()
    diagnosis: str = ""  # Trialdesk's value (b_all, cml_lymphoid_blast), empty when not recorded
    country: str = ""  # the site's ISO 3166-1 alpha-3 code, empty when not recorded
    assessments: tuple[ResponseAssessment, ...] = ()

    @property
    def first_dose(self) -> datetime.date | None:
        return min((d.day1 for d in self.doses), default=None)

    @property
    def last_dose(self) -> datetime.date | None:
        return max((d.day1 for d in self.doses), default=None)

    @property
    def end_of_treatment(self) -> datetime.date | None:
        return min((d.date for d in self.dispositions if d.source == "end_of_treatment"), default=None)


# --- dates -------------------------------------------------------------------------------


def iso8601(year: int | None, month: int | None = None, day: int | None = None) -> str | None:
    """ISO 8601 date, complete or partial: right-truncated, never with a gap
    (a day without a month is refused)."""
    if year is None:
        if month is not None or day is not None:
            raise ValueError("a month or day without a year is not an ISO 8601 date")
        return None
    if day is not None and month is None:
        raise ValueError("a day without a month is not an ISO 8601 date")
    if month is None:
        return f"{year:04d}"
    if day is None:
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} is not 1-12")
        return f"{year:04d}-{month:02d}"
    return datetime.date(year, month, day).isoformat()  # raises on an impossible date


def dtc(value: datetime.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _complete(value: str | None) -> datetime.date | None:
    if value is None or len(value) < 10:
        return None
    return datetime.date.fromisoformat(value[:10])


def study_day(value: str | None, reference: str | None) -> int | None:
    """SDTM --DY of the ISO 8601 date ``value`` against ``reference`` (RFSTDTC): no day 0.
    ``None`` when either is missing or partial."""
    day, start = _complete(value), _complete(reference)
    if day is None or start is None:
        return None
    n = (day - start).days
    return n + 1 if n >= 0 else n


def epoch(day: datetime.date | None, subject: Subject) -> str | None:
    if day is None:
        return None
    first, end = subject.first_dose, subject.end_of_treatment
    if first is None or day < first:
        return "SCREENING"
    if end is None or day <= end:
        return "TREATMENT"
    return "FOLLOW-UP"


def _num(value: Decimal | int | None) -> float | None:
    return float(value) if value is not None else None


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _usubjid(study: Study, subject: Subject) -> str:
    return f"{study.code}-{subject.subject_id}"


def _arm(level: int | None, dose_mg_m2: Decimal | None) -> tuple[str | None, str | None]:
    if level is None:
        return None, None
    dose = f"{dose_mg_m2.normalize():f} mg/m2" if dose_mg_m2 is not None else "dose not recorded"
    return f"L{level}", f"Dose level {level}: {dose}"


def _ordered(spec: metadata.DatasetSpec, values: Record) -> Record:
    """The record in the dataset's variable order; a variable not set is None."""
    unknown = set(values) - set(spec.names)
    if unknown:
        raise KeyError(f"{spec.name} has no variable(s) {sorted(unknown)}")
    return {name: values.get(name) for name in spec.names}


# --- SDTM --------------------------------------------------------------------------------


def _actual_level(subject: Subject) -> tuple[int | None, Decimal | None]:
    """The dose level of the first dose and its mg/m2 (the level's, not a reduced dose)."""
    if not subject.doses:
        return None, None
    first = min(subject.doses, key=lambda d: (d.day1, d.cycle))
    if first.level == subject.level:
        return first.level, subject.level_dose_mg_m2
    return first.level, None


def map_dm(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    out = []
    for s in subjects:
        consents = [d.date for d in s.dispositions if d.source == "consent"]
        rfic = min(consents, default=None)
        armcd, arm = _arm(s.level, s.level_dose_mg_m2)
        act_level, act_dose = _actual_level(s)
        actarmcd, actarm = _arm(act_level, act_dose if act_dose is not None else s.level_dose_mg_m2)
        if act_level is not None and act_level != s.level:
            actarm = f"Dose level {act_level}"
        armnrs = None
        if armcd is None:
            failed = any(d.source == "screening_failure" for d in s.dispositions)
            armnrs = "SCREEN FAILURE" if failed else "NOT ASSIGNED"
        elif actarmcd is None:
            armnrs = "ASSIGNED, NOT TREATED"
        participation = [
            d
            for d in (
                s.death_date,
                s.last_contact_date,
                s.relapse_date,
                s.last_dose,
                *(d.date for d in s.dispositions),
                *(a.resolved or a.onset for a in s.adverse_events),
            )
            if d is not None
        ]
        age = rfic.year - s.birth_year if rfic is not None and s.birth_year is not None else None
        out.append(
            _ordered(
                metadata.DM,
                {
                    "STUDYID": study.code,
                    "DOMAIN": "DM",
                    "USUBJID": _usubjid(study, s),
                    "SUBJID": s.subject_id,
                    "RFSTDTC": dtc(s.first_dose),
                    "RFENDTC": dtc(s.last_dose),
                    "RFXSTDTC": dtc(s.first_dose),
                    "RFXENDTC": dtc(s.last_dose),
                    "RFICDTC": dtc(rfic),
                    "RFPENDTC": dtc(max(participation, default=None)),
                    "DTHDTC": dtc(s.death_date),
                    "DTHFL": "Y" if s.death_date is not None else None,
                    "SITEID": s.site_code,
                    "BRTHDTC": iso8601(s.birth_year),
                    "AGE": age,
                    "AGEU": "YEARS" if age is not None else None,
                    "SEX": SEX.get(s.sex, "U"),
                    "RACE": RACE.get(s.race, "NOT REPORTED"),
                    "ARMCD": armcd,
                    "ARM": arm,
                    "ACTARMCD": actarmcd,
                    "ACTARM": actarm,
                    "ARMNRS": armnrs,
                    "COUNTRY": s.country or None,
                },
            )
        )
    return out


def _meddra(code: str) -> int | None:
    return int(code) if code.isdigit() else None


def map_ae(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        for seq, a in enumerate(sorted(s.adverse_events, key=lambda a: (a.onset, a.record_id)), start=1):
            start, end = dtc(a.onset), dtc(a.resolved)
            out.append(
                _ordered(
                    metadata.AE,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "AE",
                        "USUBJID": _usubjid(study, s),
                        "AESEQ": seq,
                        "AESPID": f"AE-{a.record_id}",
                        "AETERM": f"{a.term} - {a.specify}" if a.specify else a.term,
                        "AELLT": a.term,
                        "AELLTCD": _meddra(a.meddra_code),
                        "AEDECOD": a.term,
                        "AEBODSYS": a.soc,
                        "AESOC": a.soc,
                        "AESER": _yn(a.serious),
                        "AEACN": AE_ACTION.get(a.action),
                        "AEREL": AE_RELATION.get(a.attribution),
                        "AEOUT": AE_OUTCOME.get(a.outcome),
                        "AESCONG": _yn(a.sae_congenital),
                        "AESDISAB": _yn(a.sae_disability),
                        "AESDTH": _yn(a.sae_death),
                        "AESHOSP": _yn(a.sae_hospitalisation),
                        "AESLIFE": _yn(a.sae_life_threatening),
                        "AESMIE": _yn(a.sae_important),
                        "AETOXGR": str(a.grade),
                        "EPOCH": epoch(a.onset, s),
                        "AESTDTC": start,
                        "AEENDTC": end,
                        "AESTDY": study_day(start, rfst),
                        "AEENDY": study_day(end, rfst),
                        "AEENRF": "ONGOING" if a.resolved is None else None,
                    },
                )
            )
    return out


def _supp(
    spec: metadata.DatasetSpec, study: Study, s: Subject, idvar: str, idval: int, qnam: str, qlabel: str, qval: str,
    qorig: str, qeval: str | None = None,
) -> Record:  # fmt: skip
    return _ordered(
        spec,
        {
            "STUDYID": study.code,
            "RDOMAIN": spec.name[4:],
            "USUBJID": _usubjid(study, s),
            "IDVAR": idvar,
            "IDVARVAL": str(idval),
            "QNAM": qnam,
            "QLABEL": qlabel,
            "QVAL": qval,
            "QORIG": qorig,
            "QEVAL": qeval,
        },
    )


def map_suppae(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """The DLT decision of each adjudicated AE (latest signed, not superseded)."""
    out = []
    for s in subjects:
        for seq, a in enumerate(sorted(s.adverse_events, key=lambda a: (a.onset, a.record_id)), start=1):
            if a.dlt is None:
                continue
            out.append(
                _supp(
                    metadata.SUPPAE,
                    study,
                    s,
                    "AESEQ",
                    seq,
                    "AEDLT",
                    "Dose-Limiting Toxicity",
                    _yn(a.dlt),
                    "ASSIGNED",
                    "INVESTIGATOR",
                )  # fmt: skip
            )
            if a.dlt_rule:
                out.append(
                    _supp(
                        metadata.SUPPAE,
                        study,
                        s,
                        "AESEQ",
                        seq,
                        "AEDLTRUL",
                        "DLT Adjudication Rule",
                        a.dlt_rule.upper(),
                        "ASSIGNED",
                        "INVESTIGATOR",
                    )  # fmt: skip
                )
    return out


def _doses(s: Subject) -> list[Dose]:
    return sorted(s.doses, key=lambda d: (d.day1, d.cycle))


def map_ex(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per administered dose (a single infusion on day 1 of the cycle).
    EXDOSE is the dose given in mg; the BSA and mg/m2 behind it are in SUPPEX."""
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        for seq, d in enumerate(_doses(s), start=1):
            day = dtc(d.day1)
            adj = None
            if d.reduced:
                adj = "DOSE REDUCED: " + d.reduction_reason.replace("_", " ").upper()
            elif d.delay_days > 0:
                adj = f"DOSE DELAYED {d.delay_days} DAYS"
            out.append(
                _ordered(
                    metadata.EX,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "EX",
                        "USUBJID": _usubjid(study, s),
                        "EXSEQ": seq,
                        "EXTRT": study.drug,
                        "EXDOSE": _num(d.dose_mg),
                        "EXDOSU": "mg",
                        "EXDOSFRM": study.dose_form,
                        "EXDOSFRQ": "ONCE",
                        "EXROUTE": "INTRAVENOUS",
                        "EXADJ": adj,
                        "VISITNUM": d.cycle,
                        "VISIT": f"CYCLE {d.cycle} DAY 1",
                        "EPOCH": "TREATMENT",
                        "EXSTDTC": day,
                        "EXENDTC": day,
                        "EXSTDY": study_day(day, rfst),
                        "EXENDY": study_day(day, rfst),
                    },
                )
            )
    return out


def map_suppex(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    out = []
    for s in subjects:
        for seq, d in enumerate(_doses(s), start=1):
            qualifiers = [
                ("DOSLVL", "Assigned Dose Level", str(d.level), "ASSIGNED"),
                ("DOSMGM2", "Dose per Body Surface Area (mg/m2)", _decimal_text(d.dose_mg_m2), "DERIVED"),
                ("BSA", "Body Surface Area (m2)", _decimal_text(d.bsa_m2), "DERIVED"),
            ]
            for qnam, qlabel, qval, qorig in qualifiers:
                if qval:
                    out.append(_supp(metadata.SUPPEX, study, s, "EXSEQ", seq, qnam, qlabel, qval, qorig))
    return out


def _decimal_text(value: Decimal | None) -> str:
    return f"{value.normalize():f}" if value is not None else ""


_DS_ORDER: dict[str, int] = {
    "consent": 0,
    "screening_failure": 1,
    "enrolment": 2,
    "end_of_treatment": 3,
    "withdrawal": 4,
    "death": 5,
}


def _disposition(d: Disposition) -> tuple[str, str, str, str | None]:
    """DSTERM, DSDECOD, DSCAT, DSSCAT of one disposition record."""
    if d.source == "consent":
        term = "INFORMED CONSENT OBTAINED" + (f", PROTOCOL VERSION {d.protocol_version}" if d.protocol_version else "")
        return term, "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", None
    if d.source == "screening_failure":
        return "SCREEN FAILURE", "SCREEN FAILURE", "DISPOSITION EVENT", "SCREENING"
    if d.source == "enrolment":
        # PROTMLST's term for "met the eligibility criteria and is enrolled" (C161417).
        return "ENROLLED", "ENTERED INTO TRIAL", "PROTOCOL MILESTONE", None
    if d.source == "end_of_treatment":
        reason = EOT_REASON.get(d.reason)
        return (
            f"END OF TREATMENT: {reason or 'NOT RECORDED'}",
            reason or "OTHER",
            "DISPOSITION EVENT",
            "END OF TREATMENT",
        )
    if d.source == "withdrawal":
        return "WITHDRAWAL OF CONSENT", "WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT", "STUDY"
    cause = DEATH_CAUSE.get(d.cause)
    return "DEATH" + (f": {cause}" if cause else ""), "DEATH", "DISPOSITION EVENT", "STUDY"


def map_ds(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        ordered = sorted(s.dispositions, key=lambda d: (d.date, _DS_ORDER[d.source], d.record_id))
        for seq, d in enumerate(ordered, start=1):
            term, decod, cat, scat = _disposition(d)
            day = dtc(d.date)
            out.append(
                _ordered(
                    metadata.DS,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "DS",
                        "USUBJID": _usubjid(study, s),
                        "DSSEQ": seq,
                        "DSSPID": f"{d.source.upper().replace('_', '-')}-{d.record_id}",
                        "DSTERM": term,
                        "DSDECOD": decod,
                        "DSCAT": cat,
                        "DSSCAT": scat,
                        "EPOCH": epoch(d.date, s),
                        "DSSTDTC": day,
                        "DSSTDY": study_day(day, rfst),
                    },
                )
            )
    return out


# --- ADaM --------------------------------------------------------------------------------


def map_adsl(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per subject of DM. Populations: enrolled (ENRLFL), safety (SAFFL: at
    least one dose), DLT-evaluable (DLTEVLFL: evaluable with or without a DLT,
    PROTOCOL s5, as the escalation engine decides it)."""
    out = []
    for s in subjects:
        consents = [d.date for d in s.dispositions if d.source == "consent"]
        rfic = min(consents, default=None)
        age = rfic.year - s.birth_year if rfic is not None and s.birth_year is not None else None
        _, arm = _arm(s.level, s.level_dose_mg_m2)
        act_level, act_dose = _actual_level(s)
        _, actarm = _arm(act_level, act_dose if act_dose is not None else s.level_dose_mg_m2)
        trt_p = f"{s.level_dose_mg_m2.normalize():f} mg/m2" if s.level_dose_mg_m2 is not None else None
        trt_a = trt_p if act_level is not None and act_level == s.level else None
        if act_level is not None and act_level != s.level:
            trt_a = f"Dose level {act_level}"
        out.append(
            _ordered(
                metadata.ADSL,
                {
                    "STUDYID": study.code,
                    "USUBJID": _usubjid(study, s),
                    "SUBJID": s.subject_id,
                    "SITEID": s.site_code,
                    "AGE": age,
                    "AGEU": "YEARS" if age is not None else None,
                    "SEX": SEX.get(s.sex, "U"),
                    "RACE": RACE.get(s.race, "NOT REPORTED"),
                    "ARM": arm or "Not assigned",
                    "ACTARM": actarm or "Not treated",
                    "TRT01P": trt_p,
                    "TRT01PN": s.level,
                    "TRT01A": trt_a,
                    "TRT01AN": act_level,
                    "TRTSDT": s.first_dose,
                    "TRTEDT": s.last_dose,
                    "HCTDT": s.hct_date,
                    "ENRLFL": _yn(s.enrolled_on is not None),
                    "SAFFL": _yn(bool(s.doses)),
                    "DLTEVLFL": _yn(s.dlt_evaluable is True),
                    "BFILLFL": _yn(s.backfill) if s.enrolled_on is not None else None,
                    "DTHFL": "Y" if s.death_date is not None else None,
                    "DTHDT": s.death_date,
                    "DTHCAUS": DEATH_CAUSE.get(s.death_cause),
                },
            )
        )
    return out


ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("os", "OS", "Overall Survival (days)"),
    ("pfs", "PFS", "Progression-Free Survival (days)"),
    ("nrm", "NRM", "Non-Relapse Mortality (days)"),
)
_EVENT = {"os": "DEATH", "pfs": "RELAPSE OR DEATH", "nrm": "DEATH WITHOUT PRIOR RELAPSE"}


def outcome(s: Subject) -> endpoints.PatientOutcome | None:
    """The subject's dates as analysis.endpoints takes them (None without a transplant date)."""
    if s.hct_date is None:
        return None
    return endpoints.PatientOutcome(
        subject_id=s.subject_id,
        hct_date=s.hct_date,
        first_dose_date=s.first_dose,
        relapse_date=s.relapse_date,
        death_date=s.death_date,
        last_known_alive=s.last_contact_date,
    )


def _endpoint_time(name: str, o: endpoints.PatientOutcome, origin: Origin) -> endpoints.EndpointTime | None:
    if name == "os":
        return endpoints.os_time(o, origin)
    if name == "pfs":
        return endpoints.pfs_time(o, origin)
    return endpoints.nrm_time(o)


def map_adtte(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per enrolled subject with a transplant date per endpoint (OS, PFS,
    NRM), the population and rules of the survival API (analysis.survival_summary)."""
    out = []
    for s in subjects:
        o = outcome(s)
        if o is None or s.enrolled_on is None:
            continue
        problem = None
        try:
            times = {name: _endpoint_time(name, o, study.survival_origin) for name, _, _ in ENDPOINTS}
        except ValueError as exc:
            problem, times = str(exc), {}
        for name, paramcd, param in ENDPOINTS:
            origin: Origin = "first_dose" if name == "nrm" else study.survival_origin
            start = s.hct_date if origin == "hct" else s.first_dose
            row: Record = {
                "STUDYID": study.code,
                "USUBJID": _usubjid(study, s),
                "SUBJID": s.subject_id,
                "SITEID": s.site_code,
                "TRTP": f"{s.level_dose_mg_m2.normalize():f} mg/m2" if s.level_dose_mg_m2 is not None else None,
                "TRTPN": s.level,
                "SAFFL": _yn(bool(s.doses)),
                "PARAMCD": paramcd,
                "PARAM": param,
                "STARTDT": start,
                "STARTSRC": "HCT" if origin == "hct" else "FIRST DOSE",
            }
            result = times.get(name)
            if problem is not None:
                row["EVNTDESC"] = f"DATE ERROR: {problem}"[:200]
            elif result is None or start is None:
                row["EVNTDESC"] = "NOT EVALUABLE: NO FIRST DOSE"
            else:
                row["AVAL"] = result.time_days
                row["ADT"] = start + datetime.timedelta(days=result.time_days)
                if result.status == endpoints.EVENT:
                    row["CNSR"], row["EVNTDESC"] = 0, _EVENT[name]
                elif result.status == endpoints.COMPETING:
                    row["CNSR"], row["EVNTDESC"] = 2, "RELAPSE (COMPETING EVENT)"
                else:
                    row["CNSR"], row["EVNTDESC"] = 1, "CENSORED"
                    row["CNSDTDSC"] = "LAST DATE KNOWN ALIVE"
            out.append(_ordered(metadata.ADTTE, row))
    return out


# LabDraw field -> (LBTESTCD, LBTEST, LBCAT, unit (SI, original = standard), lab grading test, limit side)
LAB_TESTS: tuple[tuple[str, str, str, str, str, lab_grading.LabTest, Literal["lln", "uln"]], ...] = (
    ("platelets", "PLAT", "Platelets", "HEMATOLOGY", "10^9/L", lab_grading.LabTest.PLATELETS, "lln"),
    ("anc", "NEUT", "Neutrophils", "HEMATOLOGY", "10^9/L", lab_grading.LabTest.ANC, "lln"),
    ("hemoglobin", "HGB", "Hemoglobin", "HEMATOLOGY", "g/L", lab_grading.LabTest.HEMOGLOBIN, "lln"),
    ("bilirubin", "BILI", "Bilirubin", "CHEMISTRY", "umol/L", lab_grading.LabTest.BILIRUBIN, "uln"),
    ("alt", "ALT", "Alanine Aminotransferase", "CHEMISTRY", "U/L", lab_grading.LabTest.ALT, "uln"),
    ("ast", "AST", "Aspartate Aminotransferase", "CHEMISTRY", "U/L", lab_grading.LabTest.AST, "uln"),
)


def map_lb(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per lab value of each panel (by date, then test). Baseline (LBBLFL Y):
    the subject's last value of the test on or before the first dose. LBNRIND only against
    the one limit known (LLN for counts, ULN for chemistry): LOW/HIGH outside it, empty
    within it. LBTOXGR: the CTCAE v5.0 grade of :mod:`safety.lab_grading` (increases
    after the first dose against the baseline value), empty for grade 0. VISIT: the cycle the panel was entered
    with, else empty (unscheduled)."""
    limits = dict(study.lab_limits)
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        draws = sorted(s.labs, key=lambda d: (d.date, d.record_id))
        baseline: dict[str, tuple[int, Decimal]] = {}
        first = s.first_dose
        for d in draws:
            for field, *_ in LAB_TESTS:
                before: Decimal | None = getattr(d, field)
                if before is not None and first is not None and d.date <= first:
                    baseline[field] = (d.record_id, before)
        seq = 0
        for d in draws:
            day = dtc(d.date)
            for field, code, name, category, unit, test, side in LAB_TESTS:
                value: Decimal | None = getattr(d, field)
                if value is None:
                    continue
                seq += 1
                limit = limits.get(f"{field}_{side}")
                indicator = None
                if limit is not None:
                    if side == "lln" and value < limit:
                        indicator = "LOW"
                    elif side == "uln" and value > limit:
                        indicator = "HIGH"
                is_base = baseline.get(field, (None,))[0] == d.record_id
                grade = None
                if limit is not None:
                    # Against the baseline only after it (the baseline itself is graded against the ULN).
                    base = baseline.get(field) if first is not None and d.date > first else None
                    graded = lab_grading.grade_lab(
                        lab_grading.LabResult(
                            test,
                            value,
                            lln=limit if side == "lln" else None,
                            uln=limit if side == "uln" else None,
                            baseline=base[1] if side == "uln" and base is not None else None,
                        )
                    )
                    grade = str(graded.grade) if graded.grade >= 1 else None
                text = _decimal_text(value)
                out.append(
                    _ordered(
                        metadata.LB,
                        {
                            "STUDYID": study.code,
                            "DOMAIN": "LB",
                            "USUBJID": _usubjid(study, s),
                            "LBSEQ": seq,
                            "LBSPID": f"LAB-{d.record_id}",
                            "LBTESTCD": code,
                            "LBTEST": name,
                            "LBCAT": category,
                            "LBORRES": text,
                            "LBORRESU": unit,
                            "LBORNRLO": _decimal_text(limit) if side == "lln" and limit is not None else None,
                            "LBORNRHI": _decimal_text(limit) if side == "uln" and limit is not None else None,
                            "LBSTRESC": text,
                            "LBSTRESN": float(value),
                            "LBSTRESU": unit,
                            "LBSTNRLO": _num(limit) if side == "lln" else None,
                            "LBSTNRHI": _num(limit) if side == "uln" else None,
                            "LBNRIND": indicator,
                            "LBTOXGR": grade,
                            "LBBLFL": "Y" if is_base else None,
                            "VISITNUM": d.cycle,
                            "VISIT": f"CYCLE {d.cycle} DAY 1" if d.cycle is not None else None,
                            "EPOCH": epoch(d.date, s),
                            "LBDTC": day,
                            "LBDY": study_day(day, rfst),
                        },
                    )
                )
    return out


def map_cm(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per medication (TKI) in start order. CMTRT the agent (the typed name for
    "other"), CMDECOD the agent's name (empty for "other"), CMENRF ONGOING without a stop date."""
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        for seq, m in enumerate(sorted(s.medications, key=lambda m: (m.start, m.record_id)), start=1):
            decod = CM_AGENT.get(m.agent)
            reported = decod if decod is not None else (m.other_agent.strip().upper() or "OTHER TKI")
            start, stop = dtc(m.start), dtc(m.stop)
            out.append(
                _ordered(
                    metadata.CM,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "CM",
                        "USUBJID": _usubjid(study, s),
                        "CMSEQ": seq,
                        "CMSPID": f"CM-{m.record_id}",
                        "CMTRT": reported,
                        "CMDECOD": decod,
                        "CMCAT": "TYROSINE KINASE INHIBITOR",
                        "EPOCH": epoch(m.start, s),
                        "CMSTDTC": start,
                        "CMENDTC": stop,
                        "CMSTDY": study_day(start, rfst),
                        "CMENDY": study_day(stop, rfst),
                        "CMENRF": "ONGOING" if m.stop is None else None,
                    },
                )
            )
    return out


def map_mh(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """The primary diagnosis (no date recorded) and the allogeneic HCT (its date), when known."""
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        events: list[tuple[str, str, str | None]] = []
        if s.diagnosis in DIAGNOSIS:
            events.append((DIAGNOSIS[s.diagnosis], "PRIMARY DIAGNOSIS", None))
        if s.hct_date is not None:
            events.append(("ALLOGENEIC HEMATOPOIETIC CELL TRANSPLANTATION", "TRANSPLANT", dtc(s.hct_date)))
        for seq, (term, category, start) in enumerate(events, start=1):
            out.append(
                _ordered(
                    metadata.MH,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "MH",
                        "USUBJID": _usubjid(study, s),
                        "MHSEQ": seq,
                        "MHTERM": term,
                        "MHCAT": category,
                        "MHSTDTC": start,
                        "MHSTDY": study_day(start, rfst),
                    },
                )
            )
    return out


# --- trial design (SDTMIG 3.4 section 7) --------------------------------------------------

_TS_PARM = dict(TS_PARAMETERS)
_ANCHOR_TEXT = {"hct": "HCT", "c1d1": "C1D1", "eot": "end of treatment", "last_dose": "the last dose"}
_STATUS_TEXT = {"cr1": "CR1", "cr2": "CR2", "cr3_plus": "CR3 or later"}
_CONDITIONING_TEXT = {"mac": "myeloablative", "ric": "reduced-intensity", "nma": "non-myeloablative"}
# CDISC FREQ terms (QW, Q2W... are their synonyms, not submission values).
_FREQUENCY = {7: "EVERY WEEK", 14: "EVERY 2 WEEKS", 21: "EVERY 3 WEEKS", 28: "EVERY 4 WEEKS"}
_DIAGNOSIS_TEXT = {
    "b_all": "B-cell acute lymphoblastic leukemia",
    "cml_lymphoid_blast": "chronic myeloid leukemia in lymphoid blast crisis",
}
# The treatment Element of each dose level, and the arm's Elements in order (SDTMIG 3.4 TA, TE).
_SCREENING, _FOLLOW_UP = "SCRN", "FU"


def _mg_m2(dose: Decimal) -> str:
    return f"{dose.normalize():f}"


def _treatment_element(level: int) -> str:
    return f"TL{level}"


def _max_cycles(design: TrialDesign) -> int:
    return max((n for _, n in design.schedule.max_cycles_by_version), default=1)


def _design_name(design: TrialDesign) -> str:
    return {"3+3": "3+3", "boin": "BOIN", "i3+3": "i3+3", "mtpi2": "mTPI-2", "crm": "CRM"}.get(
        design.design, design.design.upper()
    )


@dataclass
class TrialSummary:
    """What TS needs from the subjects (ACTSUB, SSTDTC), gathered batch by batch so the
    package never holds every subject at once (:func:`datasets_in_batches`)."""

    actual_subjects: int = 0  # enrolled
    first_consent: datetime.date | None = None

    def add(self, subjects: Iterable[Subject]) -> None:
        for s in subjects:
            self.actual_subjects += s.enrolled_on is not None
            for d in s.dispositions:
                if d.source == "consent" and (self.first_consent is None or d.date < self.first_consent):
                    self.first_consent = d.date


def map_ts(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Trial Summary: one record per parameter value, in :data:`TS_PARAMETERS` order; TSSEQ
    counts the values of one parameter (DOSE: one per dose level, TSGRPID the arm code).
    TSVALCD / TSVCDREF where CDISC CT (or ISO 8601, ISO 3166) applies; SPONSOR without a
    recorded sponsor is null-flavoured (TSVALNF ``UNK``), DCUTDTC/DCUTDESC only once locked."""
    summary = TrialSummary()
    summary.add(subjects)
    return trial_summary(study, summary)


def trial_summary(study: Study, summary: TrialSummary) -> list[Record]:
    """TS from the subjects' :class:`TrialSummary` (see :func:`map_ts`)."""
    design = study.design
    ct, iso8601, iso3166 = "CDISC CT", "ISO 8601", "ISO 3166"
    # (TSPARMCD, TSVAL, TSGRPID, TSVCDREF, TSVALNF)
    values: list[tuple[str, str | None, str | None, str | None, str | None]] = []

    def add(code: str, value: str | None, ref: str | None = None, group: str | None = None) -> None:
        values.append((code, value, group, ref, None))

    add("TITLE", design.title or study.code)
    add("TPHASE", "PHASE I TRIAL", ct)
    add("STYPE", "INTERVENTIONAL", ct)
    add("TTYPE", "SAFETY", ct)
    diagnoses = [DIAGNOSIS[d] for d in sorted(design.eligibility.diagnoses) if d in DIAGNOSIS]
    for name in diagnoses:
        add("INDIC", name)
    if diagnoses:
        add("TDIGRP", "ALLOGENEIC HCT RECIPIENTS WITH " + " OR ".join(diagnoses))
    add("TRT", study.drug)
    for level, dose in design.dose_levels:
        add("DOSE", _mg_m2(dose), group=f"L{level}")
    if design.dose_levels:
        add("DOSU", "mg/m2", ct)
    cycle = design.schedule.cycle_length_days
    add("DOSFRQ", _FREQUENCY.get(cycle, f"EVERY {cycle} DAYS"), ct if cycle in _FREQUENCY else None)
    add("ROUTE", "INTRAVENOUS", ct)
    add("ADDON", "N", ct)
    add("AGEMIN", f"P{design.eligibility.min_age}Y", iso8601)
    add("AGEMAX", f"P{design.eligibility.max_age}Y", iso8601)
    add("SEXPOP", "BOTH", ct)
    if design.planned_subjects is not None:
        add("PLANSUB", str(design.planned_subjects))
    add("ACTSUB", str(summary.actual_subjects))
    add("NARMS", str(len(design.dose_levels)))
    add("RANDOM", "N", ct)
    add("TBLIND", "OPEN LABEL", ct)
    add("TCNTRL", "NONE", ct)
    for country in sorted(set(design.countries)):
        add("FCNTRY", country, iso3166)
    if summary.first_consent is not None:
        add("SSTDTC", dtc(summary.first_consent), iso8601)
    if design.sponsor:
        add("SPONSOR", design.sponsor.upper())
    else:
        values.append(("SPONSOR", None, None, None, "UNK"))
    if design.lock_date is not None:
        add("DCUTDTC", dtc(design.lock_date), iso8601)
        add("DCUTDESC", "DATABASE LOCK")

    out = []
    seq: dict[str, int] = {}
    for code, value, group, ref, null_flavor in values:
        seq[code] = seq.get(code, 0) + 1
        coded = TS_VALUE_CODES.get(value) if ref == ct and value is not None else None
        out.append(
            _ordered(
                metadata.TS,
                {
                    "STUDYID": study.code,
                    "DOMAIN": "TS",
                    "TSSEQ": seq[code],
                    "TSGRPID": group,
                    "TSPARMCD": code,
                    "TSPARM": _TS_PARM[code],
                    "TSVAL": value[:200] if value is not None else None,
                    "TSVAL1": value[200:400] or None if value is not None else None,
                    "TSVALNF": null_flavor,
                    "TSVALCD": coded,
                    "TSVCDREF": ref,
                    "TSVCDVER": CT_VERSION if ref == ct else None,
                },
            )
        )
    return out


def map_ta(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Trial Arms: one arm per dose level (ARMCD ``L<n>``, the code DM.ARMCD uses), each
    screening -> treatment cycles of that level (repeated) -> follow-up."""
    design = study.design
    cycle = design.schedule.cycle_length_days
    out = []
    for level, dose in design.dose_levels:
        armcd, arm = _arm(level, dose)
        elements = (
            (_SCREENING, "Screening", "SCREENING",
             f"Assigned to dose level {level} at enrolment ({_design_name(design)})", None),
            (_treatment_element(level), f"Dose level {level} cycle", "TREATMENT", None,
             f"Repeat the cycle every {cycle} days up to the protocol version's maximum ({_max_cycles(design)} cycles) "
             "unless treatment ends; then go to follow-up"),
            (_FOLLOW_UP, "Follow-up", "FOLLOW-UP", None, None),
        )  # fmt: skip
        for order, (etcd, element, epoch_, branch, transition) in enumerate(elements, start=1):
            out.append(
                _ordered(
                    metadata.TA,
                    {
                        "STUDYID": study.code,
                        "DOMAIN": "TA",
                        "ARMCD": armcd,
                        "ARM": arm,
                        "TAETORD": order,
                        "ETCD": etcd,
                        "ELEMENT": element,
                        "TABRANCH": branch,
                        "TATRANS": transition,
                        "EPOCH": epoch_,
                    },
                )
            )
    return out


def map_te(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Trial Elements: screening, one treatment cycle per dose level, follow-up."""
    design = study.design
    sched, elig = design.schedule, design.eligibility
    cycle = sched.cycle_length_days
    rows: list[tuple[str, str, str, str | None, str | None]] = [
        (
            _SCREENING,
            "Screening",
            "Informed consent",
            f"Enrolment at a dose level (day +{elig.enrolment_day_min} to +{elig.enrolment_day_max} after HCT)",
            None,
        )
    ]
    for level, dose in design.dose_levels:
        rows.append(
            (
                _treatment_element(level),
                f"Dose level {level} cycle",
                f"Day 1 of a cycle: {study.drug} {_mg_m2(dose)} mg/m2 intravenously",
                f"{cycle} days after the start of the Element, or end of treatment",
                f"P{cycle}D",
            )
        )
    rows.append(
        (
            _FOLLOW_UP,
            "Follow-up",
            "End of treatment",
            f"{sched.follow_up_days} days after the last dose, death or withdrawal of consent",
            None,
        )
    )
    return [
        _ordered(
            metadata.TE,
            {
                "STUDYID": study.code,
                "DOMAIN": "TE",
                "ETCD": etcd,
                "ELEMENT": element,
                "TESTRL": start,
                "TEENRL": end,
                "TEDUR": duration,
            },
        )  # fmt: skip
        for etcd, element, start, end, duration in rows
    ]


ASSESSMENT_VISIT_BASE = 100  # TV: assessment visit k of the calendar is VISITNUM 100 + k


def _assessment_visits(design: TrialDesign) -> list[tuple[int, schedule.ExpectedAssessment]]:
    return [(ASSESSMENT_VISIT_BASE + k, e) for k, e in enumerate(design.schedule.assessments, start=1)]


def map_tv(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Trial Visits from dosing/schedule.py: day 1 of each cycle (VISITNUM = the cycle, as
    in EX and LB), then each expected assessment of the visit calendar (PROTOCOL s7,
    VISITNUM 101, 102, ...). VISITDY only where the day is fixed from the first dose."""
    design = study.design
    sched = design.schedule
    cycle = sched.cycle_length_days
    out = []

    def add(number: int, name: str, day: int | None, start: str, end: str | None) -> None:
        out.append(
            _ordered(
                metadata.TV,
                {
                    "STUDYID": study.code,
                    "DOMAIN": "TV",
                    "VISITNUM": number,
                    "VISIT": name[:40],
                    "VISITDY": day,
                    "ARMCD": None,
                    "TVSTRL": start,
                    "TVENRL": end,
                },
            )  # fmt: skip
        )

    for n in range(1, _max_cycles(design) + 1):
        if n == 1:
            start = f"Day +{sched.c1d1_day_min} to +{sched.c1d1_day_max} after HCT, on or after enrolment"
        else:
            start = (
                f"{cycle} days after day 1 of cycle {n - 1}; a delay of up to {sched.delay_allowance_days} days "
                "is allowed"
            )
        add(n, f"CYCLE {n} DAY 1", (n - 1) * cycle + 1, start, None)
    for number, e in _assessment_visits(design):
        anchor = _ANCHOR_TEXT[e.anchor]
        due = f"{e.offset_days} days after {anchor}" if e.offset_days else f"at {anchor}"
        start = f"{e.label}: due {due}, window {e.window.before_days} days before to {e.window.after_days} days after"
        day = e.offset_days + 1 if e.anchor == "c1d1" else None
        add(number, e.label.upper(), day, start, None)
    return out


def map_ti(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Trial Inclusion/Exclusion Criteria: the eight criteria of PROTOCOL s2 as
    patients/eligibility.py applies them, with the trial's own thresholds."""
    p = study.design.eligibility
    diagnoses = " or ".join(
        ("CD22-positive " if d in p.cd22_required_for else "") + _DIAGNOSIS_TEXT.get(d, d) for d in sorted(p.diagnoses)
    )
    statuses = " or ".join(_STATUS_TEXT.get(x, x.upper()) for x in sorted(p.high_risk_disease_statuses))
    conditioning = " or ".join(_CONDITIONING_TEXT.get(x, x) for x in sorted(p.high_risk_conditioning))
    criteria = (
        ("INCL01", "INCLUSION", f"Age {p.min_age} to {p.max_age} years at informed consent"),
        ("INCL02", "INCLUSION", f"Diagnosis of {diagnoses}"),
        ("INCL03", "INCLUSION", "In complete remission at day +30 after allogeneic HCT"),
        ("INCL04", "INCLUSION", f"High risk of relapse: MRD positive before or after HCT, or transplanted in "
                                f"{statuses}, or {conditioning} conditioning"),
        ("INCL05", "INCLUSION", f"Enrolment between day +{p.enrolment_day_min} and day +{p.enrolment_day_max} "
                                "after HCT"),
        ("INCL06", "INCLUSION", f"Graft function: platelets > {p.platelets_above:g} x10^9/L and ANC > "
                                f"{p.anc_above:g} x10^9/L on labs drawn within {p.lab_max_age_days} days before "
                                "enrolment"),
        ("EXCL01", "EXCLUSION", f"Active acute GVHD grade {p.agvhd_excluding_grade} or higher, or active liver GVHD "
                                "of any grade"),
        ("EXCL02", "EXCLUSION", "History of sinusoidal obstruction syndrome (SOS/VOD)"),
    )  # fmt: skip
    return [
        _ordered(
            metadata.TI,
            {
                "STUDYID": study.code,
                "DOMAIN": "TI",
                "IETESTCD": code,
                "IETEST": text,
                "IECAT": category,
                "IESCAT": None,
                "TIRL": None,
                "TIVERS": None,
            },
        )  # fmt: skip
        for code, category, text in criteria
    ]


# --- disease response --------------------------------------------------------------------


def _visit_of(a: ResponseAssessment, s: Subject, design: TrialDesign) -> tuple[int | None, str | None]:
    """The planned assessment visit (TV) whose window holds the assessment's date, the
    nearest due date first; (None, None) when none does (unscheduled)."""
    if s.hct_date is None:
        return None, None
    facts = schedule.FollowUpFacts(
        hct_date=s.hct_date,
        cycles=tuple(schedule.PastCycle(d.cycle, d.day1) for d in s.doses),
        end_of_treatment=s.end_of_treatment,
        death=None,
        withdrawal=None,
        assessments=(),
    )
    numbers = {e.key: (n, e.label.upper()[:40]) for n, e in _assessment_visits(design)}
    planned = [
        p
        for p in schedule.visit_calendar(facts, a.date, design.schedule)
        if p.kind == a.kind and p.window_start <= a.date <= p.window_end and p.key in numbers
    ]
    if not planned:
        return None, None
    best = min(planned, key=lambda p: (abs((a.date - p.due).days), p.due))
    return numbers[best.key]


def map_rs(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """Disease response from the MRD and bone-marrow assessments (PROTOCOL s7, s8), one
    record per test an assessment reports: ``MRD`` (status), ``MRDLVL`` (level, a
    fraction), ``OVRLRESP`` (marrow response CR / CRi / relapse, investigator),
    ``BLASTS`` (marrow blasts %), ``EXTRAMED`` (extramedullary disease present / absent).
    VISITNUM/VISIT the planned assessment visit whose window holds the date (TV)."""
    out = []
    for s in subjects:
        rfst = dtc(s.first_dose)
        seq = 0
        for a in sorted(s.assessments, key=lambda a: (a.date, a.record_id)):
            visitnum, visit = _visit_of(a, s, study.design)
            category = "MINIMAL RESIDUAL DISEASE" if a.kind == "mrd" else "BONE MARROW RESPONSE"
            method = RS_METHOD.get(a.method)
            # (RSTESTCD, RSTEST, RSORRES, RSSTRESC, RSSTRESN, RSSTRESU, RSMETHOD, RSEVAL)
            tests: list[tuple[str, str, str, str, float | None, str | None, str | None, str | None]] = []
            if a.result in RS_RESULT:
                tests.append(("MRD", "Minimal Residual Disease", RS_RESULT[a.result], RS_RESULT[a.result], None,
                              None, method, None))  # fmt: skip
            if a.level is not None:
                text = _decimal_text(a.level)
                tests.append(("MRDLVL", "Minimal Residual Disease Level", text, text, float(a.level), None, method,
                              None))  # fmt: skip
            if a.response in RS_RESPONSE:
                original, standard = RS_RESPONSE[a.response]
                tests.append(("OVRLRESP", "Overall Response", original, standard, None, None, None, "INVESTIGATOR"))
            if a.blasts_pct is not None:
                text = _decimal_text(a.blasts_pct)
                tests.append(("BLASTS", "Bone Marrow Blasts", text, text, float(a.blasts_pct), "%", None, None))
            if a.extramedullary is not None:
                found = "PRESENT" if a.extramedullary else "ABSENT"
                tests.append(("EXTRAMED", "Extramedullary Disease", found, found, None, None, None, None))
            day = dtc(a.date)
            for code, name, original, standard, number, unit, method_, evaluator in tests:
                seq += 1
                out.append(
                    _ordered(
                        metadata.RS,
                        {
                            "STUDYID": study.code,
                            "DOMAIN": "RS",
                            "USUBJID": _usubjid(study, s),
                            "RSSEQ": seq,
                            "RSSPID": f"ASSESSMENT-{a.record_id}",
                            "RSTESTCD": code,
                            "RSTEST": name,
                            "RSCAT": category,
                            "RSORRES": original,
                            "RSSTRESC": standard,
                            "RSSTRESN": number,
                            "RSSTRESU": unit,
                            "RSMETHOD": method_,
                            "RSEVAL": evaluator,
                            "VISITNUM": visitnum,
                            "VISIT": visit,
                            "EPOCH": epoch(a.date, s),
                            "RSDTC": day,
                            "RSDY": study_day(day, rfst),
                        },
                    )
                )
    return out


# --- ADAE --------------------------------------------------------------------------------


def _dose_at(s: Subject, day: datetime.date) -> Dose | None:
    """The latest dose given on or before ``day`` (None before the first dose)."""
    given = [d for d in _doses(s) if d.day1 <= day]
    return given[-1] if given else None


def map_adae(study: Study, subjects: Iterable[Subject]) -> list[Record]:
    """One record per AE of AE (same AESEQ). Subject variables from ADSL (SAFFL, TRT01A,
    TRTSDT...). TRTA/TRTAN the dose level of the latest dose on or before onset (the
    level's mg/m2, as TRT01A); empty before the first dose. ASTDT/AENDT the AE dates,
    ASTDY/AENDY from TRTSDT (no day 0). TRTEMFL Y when ASTDT is on or after TRTSDT (the
    protocol sets no end to the AE reporting period). ATOXGR/ATOXGRN the CTCAE v5.0 grade.
    DLTFL the DLT decision that counts (SUPPAE.AEDLT), DLTRULE its rule."""
    doses_by_level = dict(study.design.dose_levels)
    out = []
    for s in subjects:
        [adsl] = map_adsl(study, [s])
        first = s.first_dose
        for seq, a in enumerate(sorted(s.adverse_events, key=lambda a: (a.onset, a.record_id)), start=1):
            dose = _dose_at(s, a.onset)
            trta = None
            if dose is not None:
                level_dose = doses_by_level.get(dose.level)
                trta = f"{_mg_m2(level_dose)} mg/m2" if level_dose is not None else f"Dose level {dose.level}"
            start, end = dtc(a.onset), dtc(a.resolved)
            out.append(
                _ordered(
                    metadata.ADAE,
                    {
                        "STUDYID": study.code,
                        "USUBJID": _usubjid(study, s),
                        "SUBJID": s.subject_id,
                        "SITEID": s.site_code,
                        "AESEQ": seq,
                        "AGE": adsl["AGE"],
                        "SEX": adsl["SEX"],
                        "RACE": adsl["RACE"],
                        "SAFFL": adsl["SAFFL"],
                        "TRT01A": adsl["TRT01A"],
                        "TRTA": trta,
                        "TRTAN": dose.level if dose is not None else None,
                        "TRTSDT": adsl["TRTSDT"],
                        "TRTEDT": adsl["TRTEDT"],
                        "AETERM": f"{a.term} - {a.specify}" if a.specify else a.term,
                        "AEDECOD": a.term,
                        "AEBODSYS": a.soc,
                        "AESOC": a.soc,
                        "AESER": _yn(a.serious),
                        "AEREL": AE_RELATION.get(a.attribution),
                        "AEACN": AE_ACTION.get(a.action),
                        "AEOUT": AE_OUTCOME.get(a.outcome),
                        "AETOXGR": str(a.grade),
                        "ATOXGR": str(a.grade),
                        "ATOXGRN": a.grade,
                        "AESTDTC": start,
                        "AEENDTC": end,
                        "ASTDT": a.onset,
                        "AENDT": a.resolved,
                        "ASTDY": study_day(start, dtc(first)),
                        "AENDY": study_day(end, dtc(first)),
                        "TRTEMFL": "Y" if first is not None and a.onset >= first else None,
                        "DLTFL": _yn(a.dlt) if a.dlt is not None else None,
                        "DLTRULE": a.dlt_rule.upper() or None,
                    },
                )
            )
    return out


MAPPERS = {
    "TS": map_ts,
    "TA": map_ta,
    "TE": map_te,
    "TV": map_tv,
    "TI": map_ti,
    "DM": map_dm,
    "AE": map_ae,
    "SUPPAE": map_suppae,
    "EX": map_ex,
    "SUPPEX": map_suppex,
    "DS": map_ds,
    "LB": map_lb,
    "CM": map_cm,
    "MH": map_mh,
    "RS": map_rs,
    "ADSL": map_adsl,
    "ADAE": map_adae,
    "ADTTE": map_adtte,
}


# Trial design domains that do not look at the subjects (TS does: ACTSUB, SSTDTC).
DESIGN_ONLY = ("TA", "TE", "TV", "TI")


def datasets(study: Study, subjects: Sequence[Subject]) -> dict[str, list[Record]]:
    """Every dataset of :data:`MAPPERS`, by name."""
    return {name: mapper(study, subjects) for name, mapper in MAPPERS.items()}


def datasets_in_batches(study: Study, batches: Iterable[Sequence[Subject]]) -> Iterator[tuple[str, list[Record]]]:
    """The records of :func:`datasets` over the subjects of every batch, one dataset of one
    batch at a time: (name, records) pairs whose records, joined per name in the order
    given, are :func:`datasets` of all the subjects (tests/rules/test_cdisc_mapping.py).
    It holds because every subject mapper works subject by subject (--SEQ counts within a
    subject, sorting is within a subject): the batches must come in the subjects' order.
    The design-only domains come first, TS last (it needs every batch's
    :class:`TrialSummary`); every dataset is named at least once, if with no records."""
    for name in DESIGN_ONLY:
        yield name, MAPPERS[name](study, ())
    summary = TrialSummary()
    per_subject = [(name, mapper) for name, mapper in MAPPERS.items() if name not in DESIGN_ONLY and name != "TS"]
    first = True
    for batch in batches:
        summary.add(batch)
        for name, mapper in per_subject:
            yield name, mapper(study, batch)
        first = False
    if first:  # no subjects at all: still every dataset, empty
        for name, _ in per_subject:
            yield name, []
    yield "TS", trial_summary(study, summary)
