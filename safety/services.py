"""Writes for safety: adverse events, lab proposals, GVHD episodes, DLT adjudications.

Each write checks access, validates with the pure rules (ctcae, adverse_events, dlt),
writes through record_create/record_update inside one transaction, and marks the
escalation result stale in the same transaction (AEs change DLT candidates; PROTOCOL s5-6).
"""

from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import record_create, record_update
from core.errors import Problems, SignatureRefused
from core.models import Signature
from core.signatures import password_reentry_check, signature_apply, signature_link
from dosing.models import LabPanel
from patients.clinical_dates import not_before
from patients.models import Patient, Transplant
from patients.services import clinical_date_problems
from safety import adverse_events, ctcae, dlt, selectors
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode, LabProposalDismissal
from trial import access
from trial.models import TrialComputation
from trial.services import computation_request

AE_FIELDS = (
    "term",
    "specify",
    "grade",
    "onset",
    "resolved",
    "attribution",
    "serious",
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital",
    "sae_important",
    "sae_reported_at",
    "expected",
    "action",
    "outcome",
)
SAE_CRITERIA = (
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital",
    "sae_important",
)


def _require_data_entry(user: Any, patient: Patient) -> None:
    if not access.can(user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")


def _clinical_dates(errors: dict[str, list[str]], patient: Patient, dates: tuple[tuple[str, str, Any], ...]) -> None:
    """The one clinical-date rule (not in the future, not before the birth year) per field."""
    for name, label, value in dates:
        for message in clinical_date_problems(patient, label, value):
            errors.setdefault(name, []).append(message)


def _ae_validate(ae: AdverseEvent) -> None:
    """Every AE rule, one place (PROTOCOL s4); raises ValidationError naming the fields."""
    errors: dict[str, list[str]] = {}
    if ae.term_id is None:
        errors["term"] = ["Choose a CTCAE term."]
    else:
        pure = selectors.ctcae_term_pure(ae.term)
        grade_error = ctcae.check_grade(pure, ae.grade)
        if grade_error:
            errors["grade"] = [grade_error[0].upper() + grade_error[1:] + "."]
        specify_error = ctcae.check_specify(pure, ae.specify)
        if specify_error:
            errors["specify"] = [specify_error + "."]
    if ae.onset is not None:
        dates = adverse_events.check_dates(
            adverse_events.AeDates(ae.onset, ae.resolved, selectors.first_consent(ae.patient))
        )
        for name, message in dates.items():
            errors.setdefault(name, []).append(message)
    _clinical_dates(errors, ae.patient, (("onset", "AE onset", ae.onset), ("resolved", "resolution date", ae.resolved)))
    trial = ae.patient.trial
    for message in adverse_events.sae_report_problems(
        ae.sae_reported_at,
        onset=ae.onset,
        now=timezone.now(),
        zone=ZoneInfo(trial.zone_name),
        zone_name=trial.zone_name,
    ):
        errors.setdefault("sae_reported_at", []).append(message)
    ticked = [name for name in SAE_CRITERIA if getattr(ae, name)]
    if ae.serious and not ticked:
        errors.setdefault("serious", []).append("A serious AE needs at least one SAE criterion ticked.")
    if ticked and not ae.serious:
        errors.setdefault("serious", []).append("SAE criteria are ticked: mark the AE as serious.")
    if ae.grade == 5 and "grade" not in errors:
        # Grade 5 means death and requires (and links) the death record (PROTOCOL s4).
        death = selectors.death_record(ae.patient)
        if death is None:
            errors.setdefault("grade", []).append(
                "Grade 5 means death: record the patient's death (outcome event) first."
            )
        else:
            ae.death = death
    else:
        ae.death = None
    if ae.lab_panel_id is not None and ae.lab_panel.patient_id != ae.patient_id:
        errors.setdefault("lab_panel", []).append("This lab panel belongs to another patient.")
    if errors:
        raise ValidationError(errors)


def ae_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> AdverseEvent:
    """First entry of an AE. ``patient`` comes from a scoped selector (404 outside scope)."""
    _require_data_entry(user, patient)
    ae = AdverseEvent(patient=patient, **{k: v for k, v in data.items() if k in {*AE_FIELDS, "source", "lab_panel"}})
    _ae_validate(ae)
    with transaction.atomic():
        record_create(ae, user=user)
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return ae


def ae_update(
    *,
    user: Any,
    ae: AdverseEvent,
    changes: dict[str, Any],
    reason: str | None,
    expected_version: int | None = None,
) -> AdverseEvent:
    """A follow-up or correction: needs a reason; a stale version is refused (409)."""
    _require_data_entry(user, ae.patient)
    problems = Problems()  # every problem at once (issue 19), not one per submit
    unknown = set(changes) - set(AE_FIELDS)
    for name in sorted(unknown):
        problems.add(name, "This field cannot be changed here.")
    if not (reason or "").strip():
        problems.add("reason_for_change", "A reason for change is required when editing a record after first entry.")
    candidate = AdverseEvent.objects.select_related("patient", "term", "lab_panel").get(pk=ae.pk)
    for name, value in changes.items():
        if name not in unknown:
            setattr(candidate, name, value)
    with problems.collect():
        _ae_validate(candidate)
    problems.raise_if_any()
    changes = {**changes, "death": candidate.death}
    with transaction.atomic():
        updated = record_update(ae, changes, user=user, reason=reason, expected_version=expected_version)
        if candidate.lab_panel is not None:
            # A lab AE's grade query (raised by a panel correction) closes once they agree.
            from cleaning.services import lab_panel_regrade

            lab_panel_regrade(panel=candidate.lab_panel)
        computation_request(ae.patient.trial_id, TrialComputation.Kind.ESCALATION)
    return updated  # type: ignore[return-value]


# ---------------------------------------------------------------- lab proposals


def _proposal(panel: LabPanel, meddra_code: str) -> Any:
    for graded in selectors.lab_panel_grades(panel):
        if graded.meddra_code == meddra_code:
            return graded
    raise ValidationError({"meddra_code": ["This lab panel proposes no AE for that term."]})


def lab_proposal_confirm(
    *, user: Any, panel: LabPanel, meddra_code: str, attribution: str, data: dict[str, Any] | None = None
) -> AdverseEvent:
    """The coordinator confirms a proposed lab AE: an AE with the proposed grade, source=lab."""
    _require_data_entry(user, panel.patient)
    graded = _proposal(panel, meddra_code)
    if AdverseEvent.objects.filter(lab_panel=panel, term__meddra_code=meddra_code).exists():
        raise ValidationError({"meddra_code": ["This proposal was already confirmed."]})
    term = CtcaeTerm.objects.get(version=ctcae.CTCAE_VERSION, meddra_code=meddra_code)
    values = {
        "term": term,
        "grade": graded.grade,
        "onset": panel.date,
        "attribution": attribution,
        **(data or {}),
        "source": AdverseEvent.Source.LAB,
        "lab_panel": panel,
    }
    return ae_record(user=user, patient=panel.patient, data=values)


def lab_proposal_dismiss(*, user: Any, panel: LabPanel, meddra_code: str, reason: str) -> LabProposalDismissal:
    """The coordinator dismisses a proposal, saying why (kept, audited). A dismissal is of
    one grade: after a panel correction changed the grade, the proposal is back and a new
    dismissal updates the earlier one (its history keeps both)."""
    _require_data_entry(user, panel.patient)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the proposed AE is dismissed."]})
    graded = _proposal(panel, meddra_code)
    earlier = LabProposalDismissal.objects.filter(lab_panel=panel, meddra_code=meddra_code).first()
    if earlier is not None:
        if earlier.proposed_grade == graded.grade:
            raise ValidationError({"meddra_code": ["This proposal was already dismissed."]})
        # Dismissed at another grade before a correction of the panel: this dismissal is of the new grade.
        with transaction.atomic():
            return record_update(  # type: ignore[return-value]
                earlier,
                {"proposed_grade": graded.grade, "term": graded.term, "reason": reason.strip()},
                user=user,
                reason=f"Proposal dismissed again at grade {graded.grade} after a correction of the lab panel",
            )
    dismissal = LabProposalDismissal(
        patient=panel.patient,
        lab_panel=panel,
        meddra_code=meddra_code,
        term=graded.term,
        proposed_grade=graded.grade,
        reason=reason.strip(),
    )
    try:
        with transaction.atomic():
            record_create(dismissal, user=user)
    except (IntegrityError, ValidationError) as exc:
        raise ValidationError({"meddra_code": ["This proposal was already dismissed."]}) from exc
    return dismissal


# ---------------------------------------------------------------- GVHD

# An episode's grading (MAGIC stages, NIH severity); the bundle carries the same fields.
GVHD_GRADING_FIELDS = ("acute_grade", "skin_stage", "liver_stage", "gi_stage", "chronic_severity", "liver_involved")
GVHD_FIELDS = ("kind", "onset", "resolved", *GVHD_GRADING_FIELDS)


def _gvhd_validate(ep: GvhdEpisode) -> None:
    errors: dict[str, list[str]] = {}
    if ep.kind == GvhdEpisode.Kind.ACUTE:
        if ep.acute_grade is None:
            errors["acute_grade"] = ["Acute GVHD needs its MAGIC grade (1-4)."]
        if ep.chronic_severity:
            errors["chronic_severity"] = ["Severity (NIH) is for chronic GVHD only."]
    elif ep.kind == GvhdEpisode.Kind.CHRONIC:
        if not ep.chronic_severity:
            errors["chronic_severity"] = ["Chronic GVHD needs its NIH severity (mild, moderate, severe)."]
        for name in ("acute_grade", "skin_stage", "liver_stage", "gi_stage"):
            if getattr(ep, name) is not None:
                errors[name] = ["Grades and organ stages (MAGIC) are for acute GVHD only."]
    if ep.liver_stage and not ep.liver_involved:
        ep.liver_involved = True  # a liver stage >= 1 is liver involvement
    if ep.onset is not None:
        dates = adverse_events.check_dates(adverse_events.AeDates(ep.onset, ep.resolved, None))
        for name, message in dates.items():
            errors.setdefault(name, []).append(message)
        # Graft-versus-host disease follows the graft: an episode is dated from day 0.
        hct = Transplant.objects.filter(patient_id=ep.patient_id).values_list("date", flat=True).first()
        for message in not_before("GVHD onset", ep.onset, "HCT date (day 0)", hct):
            errors.setdefault("onset", []).append(message)
    episode_dates = (("onset", "GVHD onset", ep.onset), ("resolved", "resolution date", ep.resolved))
    _clinical_dates(errors, ep.patient, episode_dates)
    if errors:
        raise ValidationError(errors)


def gvhd_record(*, user: Any, patient: Patient, data: dict[str, Any]) -> GvhdEpisode:
    _require_data_entry(user, patient)
    ep = GvhdEpisode(patient=patient, **{k: v for k, v in data.items() if k in GVHD_FIELDS})
    _gvhd_validate(ep)
    with transaction.atomic():
        record_create(ep, user=user)
    return ep


# ---------------------------------------------------------------- DLT adjudication


def _raise_problems(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _adjudication_problems(
    patient: Patient, data: dict[str, Any], supersedes: DltAdjudication | None
) -> dict[str, list[str]]:
    """Every check of a DLT decision, one place for signing now and historic import."""
    errors: dict[str, list[str]] = {}
    ae = data.get("adverse_event")
    if ae is not None and ae.patient_id != patient.pk:
        errors["adverse_event"] = ["This AE belongs to another patient."]
    if not (data.get("rationale") or "").strip():
        errors["rationale"] = ["Give the rationale for the decision."]
    if data.get("rule") not in DltAdjudication.Rule.values:
        errors["rule"] = ["Choose the DLT rule the decision is about."]
    if data.get("event_date") is None:
        errors["event_date"] = ["Give the date of the event."]
    _clinical_dates(errors, patient, (("event_date", "event date", data.get("event_date")),))
    if data.get("is_dlt") is None:
        errors["is_dlt"] = ["Say whether this is a DLT."]
    if data.get("rule") == DltAdjudication.Rule.INVESTIGATOR and data.get("is_dlt") is False and supersedes is None:
        errors["is_dlt"] = ["A declaration without a rule is a DLT; to reject a candidate, adjudicate the candidate."]
    if supersedes is not None:
        if supersedes.patient_id != patient.pk:
            errors["supersedes"] = ["That adjudication belongs to another patient."]
        elif supersedes.superseded_by_id is not None:
            errors["supersedes"] = ["That adjudication was already superseded; supersede the latest one."]
    return errors


def adjudication_sign(
    *,
    user: Any,
    patient: Patient,
    data: dict[str, Any],
    password: str,
    supersedes: DltAdjudication | None = None,
) -> DltAdjudication:
    """An investigator's signed decision on a candidate DLT, or a DLT no rule found.

    Written and signed in one transaction (a wrong password writes nothing). A signed
    adjudication is never edited: a new one supersedes it (PROTOCOL s5).
    """
    if not access.can(user, "adjudicate", patient.trial_id):
        raise PermissionDenied("Only an investigator of this trial adjudicates DLTs.")
    # Counted with failed sign-ins and locked out like them (core.signatures).
    password_reentry_check(user, password, wrong="The password is not correct; the adjudication was not signed.")
    _raise_problems(_adjudication_problems(patient, data, supersedes))
    ae = data.get("adverse_event")
    adjudication = DltAdjudication(
        patient=patient,
        adverse_event=ae,
        rule=data["rule"],
        event_date=data["event_date"],
        is_dlt=data["is_dlt"],
        rationale=data["rationale"].strip(),
        # What the decision rests on: a later edit of the AE sends it back for review.
        evidence=ae.dlt_evidence() if ae is not None else {},
    )
    with transaction.atomic():
        # Adjudications of one patient are serialised on the patient row, so two
        # investigators cannot both decide the same candidate or supersede the same one.
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        _check_not_decided(adjudication, supersedes)
        record_create(adjudication, user=user)
        signature = signature_apply(adjudication, user=user, password=password, meaning=Signature.Meaning.ADJUDICATED)
        # The link to its own signature is not signed content (core.signatures): a
        # history row of the same version, no new version.
        signature_link(adjudication, signature, user=user)
        if supersedes is not None:
            record_update(
                supersedes,
                {"superseded_by": adjudication},
                user=user,
                reason=f"Superseded by signed adjudication #{adjudication.pk}",
            )
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return adjudication


def adjudication_import(
    *,
    user: Any,
    patient: Patient,
    data: dict[str, Any],
    signed_by_name: str,
    signed_on: Any,
    supersedes: DltAdjudication | None = None,
) -> DltAdjudication:
    """A historic signed adjudication carried in by a trial bundle (docs/api.md).

    The same checks as ``adjudication_sign``; the signer's name and date are kept as
    recorded (``signed_by_name``/``signed_on``) and no live signature is applied, so
    the signer need not exist as a user. Only an investigator's context may import.
    """
    if not access.can(user, "adjudicate", patient.trial_id):
        raise PermissionDenied("Only an investigator of this trial adjudicates DLTs.")
    errors = _adjudication_problems(patient, data, supersedes)
    if not (signed_by_name or "").strip():
        errors.setdefault("by", []).append("A historic adjudication needs the signer's name.")
    if signed_on is None:
        errors.setdefault("at", []).append("A historic adjudication needs its signing date.")
    elif data.get("event_date") is not None and signed_on < data["event_date"]:
        errors.setdefault("at", []).append(f"Signed on {signed_on}, before the event of {data['event_date']}.")
    if signed_on is not None:
        # A historic signing date is a date like the others: not in the future (issue 16).
        _clinical_dates(errors, patient, (("at", "signing date", signed_on),))
    _raise_problems(errors)
    adjudication = DltAdjudication(
        patient=patient,
        adverse_event=data.get("adverse_event"),
        rule=data["rule"],
        event_date=data["event_date"],
        is_dlt=data["is_dlt"],
        rationale=data["rationale"].strip(),
        signed_by_name=signed_by_name.strip(),
        signed_on=signed_on,
        evidence=_imported_evidence(data),
    )
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        _check_not_decided(adjudication, supersedes)
        record_create(adjudication, user=user, reason="historic signed adjudication (trial bundle import)")
        if supersedes is not None:
            record_update(
                supersedes,
                {"superseded_by": adjudication},
                user=user,
                reason=f"Superseded by imported adjudication #{adjudication.pk}",
            )
        computation_request(patient.trial_id, TrialComputation.Kind.ESCALATION)
    return adjudication


def _imported_evidence(data: dict[str, Any]) -> dict[str, object]:
    """The AE values a historic decision rests on: as the bundle carried them (so a
    decision whose AE was edited after signing stays invalidated after a move), else the
    AE's values now (an older bundle without them)."""
    ae = data.get("adverse_event")
    if ae is None:
        return {}
    carried = data.get("evidence")
    if carried is None:
        return ae.dlt_evidence()  # type: ignore[no-any-return]
    if set(carried) != set(dlt.EVIDENCE_FIELDS):
        raise ValidationError({"evidence": [f"The evidence has exactly these keys: {', '.join(dlt.EVIDENCE_FIELDS)}."]})
    return {name: carried[name] for name in dlt.EVIDENCE_FIELDS}


def _check_not_decided(new: DltAdjudication, supersedes: DltAdjudication | None) -> None:
    """A candidate has one standing decision: a second one must supersede it."""
    if supersedes is not None and (
        DltAdjudication.objects.filter(pk=supersedes.pk, superseded_by__isnull=False).exists()
    ):
        raise ValidationError({"supersedes": ["That adjudication was already superseded; supersede the latest one."]})
    standing = DltAdjudication.objects.filter(patient_id=new.patient_id, rule=new.rule, superseded_by__isnull=True)
    if new.adverse_event_id is not None:
        standing = standing.filter(adverse_event_id=new.adverse_event_id)
    else:
        standing = standing.filter(adverse_event__isnull=True, event_date=new.event_date)
    if supersedes is not None:
        standing = standing.exclude(pk=supersedes.pk)
    existing = standing.first()
    if existing is not None:
        raise ValidationError(
            {
                "non_field_errors": [
                    f"This candidate already has a signed decision (#{existing.pk}); supersede it instead."
                ]
            }
        )


def adjudication_sign_existing(*, user: Any, adjudication: DltAdjudication, password: str) -> DltAdjudication:
    """Sign an unsigned adjudication; a signed one is never signed twice."""
    if not access.can(user, "adjudicate", adjudication.patient.trial_id):
        raise PermissionDenied("Only an investigator of this trial adjudicates DLTs.")
    if adjudication.signature_id is not None or adjudication.signed_by_name:
        raise SignatureRefused({"password": ["This adjudication is already signed; supersede it with a new one."]})
    with transaction.atomic():
        signature = signature_apply(adjudication, user=user, password=password, meaning=Signature.Meaning.ADJUDICATED)
        signature_link(adjudication, signature, user=user)
        computation_request(adjudication.patient.trial_id, TrialComputation.Kind.ESCALATION)
    return adjudication


def adjudication_edit(*, user: Any, adjudication: DltAdjudication, **_: Any) -> None:
    """Refused for a signed adjudication: only a new signed one supersedes it."""
    if not access.can(user, "adjudicate", adjudication.patient.trial_id):
        raise PermissionDenied("Only an investigator of this trial adjudicates DLTs.")
    raise ValidationError(
        {"non_field_errors": ["A signed adjudication cannot be edited; record a new signed one that supersedes it."]}
    )


def ctcae_dictionary_load(model: Any = CtcaeTerm) -> int:
    """Load the CTCAE v5.0 dictionary shipped in safety/data if it is not there yet.

    Used by the data migration (with its historical model) and by tests whose
    transactional teardown empties every table. Returns how many terms were added.
    """
    if model.objects.filter(version=ctcae.CTCAE_VERSION).exists():
        return 0
    catalogue = ctcae.load_ctcae(ctcae.BUNDLED_CSV)
    rows = model.objects.bulk_create(
        [
            model(
                version=t.version,
                meddra_code=t.meddra_code,
                soc=t.soc,
                term=t.term,
                **{f"grade_{g}": (t.grade_texts[g - 1] or "") for g in range(1, 6)},
                definition=t.definition or "",
                navigational_note=t.navigational_note or "",
            )
            for t in catalogue.terms
        ]
    )
    return len(rows)
