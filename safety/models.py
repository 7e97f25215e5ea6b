"""Safety records: the CTCAE dictionary, adverse events, GVHD episodes, DLT adjudications.

Grades, lab-based proposals and DLT candidates come from the pure modules ``ctcae``,
``lab_grading`` and ``dlt``; only an investigator's signed adjudication makes a DLT.
"""

from typing import ClassVar

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import Signature, Voidable
from dosing.models import LabPanel
from patients.models import Patient, PatientEvent, PatientRecord
from safety import dlt


class CtcaeTerm(models.Model):
    """One CTCAE term (dictionary data, loaded from safety/data; not a clinical record)."""

    version = models.CharField(max_length=8, default="5.0")
    meddra_code = models.CharField("MedDRA code", max_length=12)
    soc = models.CharField("system organ class", max_length=120)
    term = models.CharField(max_length=200)
    grade_1 = models.TextField(blank=True)
    grade_2 = models.TextField(blank=True)
    grade_3 = models.TextField(blank=True)
    grade_4 = models.TextField(blank=True)
    grade_5 = models.TextField(blank=True)
    definition = models.TextField(blank=True)
    navigational_note = models.TextField(blank=True)

    class Meta:
        ordering = ["term"]
        constraints = [models.UniqueConstraint(fields=["version", "meddra_code"], name="ctcae_code_unique")]

    def __str__(self) -> str:
        return f"{self.term} ({self.meddra_code})"

    @property
    def grades(self) -> list[int]:
        """The grades this term defines (an empty text means "-" in the CTCAE file)."""
        return [g for g in range(1, 6) if getattr(self, f"grade_{g}")]


class AdverseEvent(Voidable, PatientRecord):
    class Attribution(models.TextChoices):
        UNRELATED = "unrelated", "Unrelated"
        UNLIKELY = "unlikely", "Unlikely"
        POSSIBLE = "possible", "Possible"
        PROBABLE = "probable", "Probable"
        DEFINITE = "definite", "Definite"

    class Action(models.TextChoices):
        NONE = "none", "None"
        DELAYED = "delayed", "Dose delayed"
        REDUCED = "reduced", "Dose reduced"
        DISCONTINUED = "discontinued", "Drug discontinued"

    class Outcome(models.TextChoices):
        RECOVERED = "recovered", "Recovered/resolved"
        RECOVERING = "recovering", "Recovering/resolving"
        NOT_RECOVERED = "not_recovered", "Not recovered/not resolved"
        SEQUELAE = "sequelae", "Recovered with sequelae"
        FATAL = "fatal", "Fatal"
        UNKNOWN = "unknown", "Unknown"

    class Source(models.TextChoices):
        REPORTED = "reported", "Reported"
        LAB = "lab", "Proposed from a lab value, confirmed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    clinical_date_fields: ClassVar[dict[str, str]] = {"onset": "AE onset", "resolved": "AE resolution date"}
    term = models.ForeignKey(CtcaeTerm, on_delete=models.PROTECT, related_name="+")
    ctcae_version = models.CharField(max_length=8, default="5.0")
    specify = models.CharField("specify (for 'Other, specify' terms)", max_length=200, blank=True)
    grade = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    onset = models.DateField()
    resolved = models.DateField(null=True, blank=True, help_text="Empty while ongoing.")
    attribution = models.CharField("attribution to INO", max_length=10, choices=Attribution.choices)
    serious = models.BooleanField(default=False)
    sae_death = models.BooleanField("SAE: death", default=False)
    sae_life_threatening = models.BooleanField("SAE: life-threatening", default=False)
    sae_hospitalisation = models.BooleanField("SAE: hospitalisation or prolongation", default=False)
    sae_disability = models.BooleanField("SAE: disability/incapacity", default=False)
    sae_congenital = models.BooleanField("SAE: congenital anomaly", default=False)
    sae_important = models.BooleanField("SAE: important medical event", default=False)
    sae_reported_at = models.DateTimeField("SAE reported to sponsor at", null=True, blank=True)
    expected = models.BooleanField(null=True, blank=True)
    action = models.CharField("action taken with INO", max_length=14, choices=Action.choices, default=Action.NONE)
    outcome = models.CharField(max_length=14, choices=Outcome.choices, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.REPORTED)
    lab_panel = models.ForeignKey(LabPanel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    death = models.ForeignKey(PatientEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["patient", "onset", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(resolved__isnull=True) | models.Q(resolved__gte=models.F("onset")),
                name="ae_resolved_after_onset",
            ),
            models.CheckConstraint(
                condition=~models.Q(grade=5) | models.Q(death__isnull=False), name="ae_grade5_has_death"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.term.term} G{self.grade} {self.onset}"

    def dlt_evidence(self) -> dict[str, object]:
        """The values a DLT decision on this AE rests on (safety.dlt.EVIDENCE_FIELDS), JSON-ready."""
        return {
            "term": self.term.term,
            "grade": self.grade,
            "onset": self.onset.isoformat() if self.onset else None,
            "resolved": self.resolved.isoformat() if self.resolved else None,
            "attribution": self.attribution,
        }


class GvhdEpisode(Voidable, PatientRecord):
    """GVHD has no CTCAE v5 term: acute (MAGIC grade 1-4, organ stages) or chronic (NIH)."""

    class Kind(models.TextChoices):
        ACUTE = "acute", "Acute"
        CHRONIC = "chronic", "Chronic"

    class ChronicSeverity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="gvhd_episodes")
    clinical_date_fields: ClassVar[dict[str, str]] = {"onset": "GVHD onset", "resolved": "GVHD resolution date"}
    kind = models.CharField(max_length=8, choices=Kind.choices)
    onset = models.DateField()
    resolved = models.DateField(null=True, blank=True)
    acute_grade = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(4)]
    )
    skin_stage = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(4)])
    liver_stage = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(4)])
    gi_stage = models.PositiveSmallIntegerField("GI stage", null=True, blank=True, validators=[MaxValueValidator(4)])
    chronic_severity = models.CharField(max_length=10, choices=ChronicSeverity.choices, blank=True)
    liver_involved = models.BooleanField(default=False)

    class Meta:
        ordering = ["patient", "onset", "id"]

    def __str__(self) -> str:
        return f"{self.patient} {self.get_kind_display()} GVHD {self.onset}"


class DltAdjudication(PatientRecord):
    """An investigator's signed decision on a DLT candidate (or a DLT no rule found).

    Signed adjudications are never edited: a new one supersedes the old (PROTOCOL s5).
    """

    # Set after signing, pointing forward to the superseding decision: not signed
    # content (for core.signatures.record_hash once it honours this attribute).
    # ``evidence`` is checked against the AE by ``signature_evidence_problem`` instead
    # (hashing it would invalidate every signature made before the field existed).
    signature_unsigned_fields = ("superseded_by", "evidence")

    class Rule(models.TextChoices):
        SOS = "sos", "SOS (any grade)"
        PROLONGED_CYTOPENIA = "prolonged_cytopenia", "Grade >= 3 neutropenia/thrombocytopenia > 28 days"
        NON_HEMATOLOGIC = "non_hematologic_grade3_related", "Non-haematological grade >= 3, related"
        DEATH = "death", "Death"
        INVESTIGATOR = "investigator", "Declared by the investigator"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="dlt_adjudications")
    clinical_date_fields: ClassVar[dict[str, str]] = {"event_date": "DLT event date"}
    adverse_event = models.ForeignKey(
        AdverseEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="adjudications"
    )
    rule = models.CharField(max_length=32, choices=Rule.choices)
    event_date = models.DateField()
    is_dlt = models.BooleanField()
    rationale = models.TextField()
    signature = models.ForeignKey(Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signed_by_name = models.CharField(max_length=200, blank=True, help_text="Historic signer (bundle import).")
    signed_on = models.DateField(null=True, blank=True, help_text="Historic signing date (bundle import).")
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    evidence = models.JSONField(
        default=dict,
        blank=True,
        help_text="The AE's term, grade, dates and attribution when the decision was signed (issue 16).",
    )

    class Meta:
        ordering = ["patient", "event_date", "id"]

    def __str__(self) -> str:
        verdict = "DLT" if self.is_dlt else "not a DLT"
        return f"{self.patient} {self.get_rule_display()} {self.event_date}: {verdict}"

    @property
    def evidence_changes(self) -> tuple[str, ...]:
        """What changed in the AE since the decision was signed ("grade 3 -> 2"); empty if nothing."""
        if self.adverse_event_id is None or self.adverse_event is None:
            return ()
        return dlt.evidence_changes(self.evidence, self.adverse_event.dlt_evidence())

    @property
    def needs_readjudication(self) -> bool:
        """A standing decision whose AE was edited after it was signed: back to the investigator."""
        return self.superseded_by_id is None and bool(self.evidence_changes)

    def signature_evidence_problem(self) -> str | None:
        """Asked by core.signatures.signature_verify: the record it signs is unchanged, but
        the AE the decision rests on is not (PROTOCOL s5: the decision was taken on it)."""
        changes = self.evidence_changes
        if not changes:
            return None
        return (
            f"The adverse event this decision rests on was edited after signing ({'; '.join(changes)}): "
            "the signature no longer applies; re-adjudicate (supersede this decision)."
        )


class LabProposalDismissal(PatientRecord):
    """A coordinator's dismissal of an AE the lab grading proposed (PROTOCOL s4), with why.

    One per lab panel and term, of the grade proposed: a dismissed proposal is not proposed
    again unless a correction of the panel changes its grade (then a new dismissal updates this one).
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_dismissals")
    lab_panel = models.ForeignKey(LabPanel, on_delete=models.PROTECT, related_name="+")
    meddra_code = models.CharField("MedDRA code", max_length=12)
    term = models.CharField(max_length=200)
    proposed_grade = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    reason = models.TextField("reason for dismissal")

    class Meta:
        ordering = ["patient", "lab_panel", "id"]
        constraints = [models.UniqueConstraint(fields=["lab_panel", "meddra_code"], name="lab_dismissal_once_per_term")]

    def __str__(self) -> str:
        return f"{self.patient} {self.term} G{self.proposed_grade} dismissed"
