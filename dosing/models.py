"""Dosing records: labs, cycles (with the dose arithmetic), deviations, concomitant drugs.

The numbers (BSA, dose, due dates, windows) come from the pure modules ``bsa`` and
``schedule``; the services store what they computed so the record shows what was given.
"""

from typing import ClassVar

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import Voidable
from patients.models import Patient, PatientRecord
from trial.models import DoseLevel


class LabPanel(Voidable, PatientRecord):
    """A CBC and liver panel on one date, in SI units (docs/api.md)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_panels")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "lab date"}
    date = models.DateField("drawn on")
    platelets = models.DecimalField("platelets (x10^9/L)", max_digits=7, decimal_places=1, null=True, blank=True)
    anc = models.DecimalField("ANC (x10^9/L)", max_digits=6, decimal_places=2, null=True, blank=True)
    hemoglobin = models.DecimalField("haemoglobin (g/L)", max_digits=5, decimal_places=1, null=True, blank=True)
    bilirubin = models.DecimalField("bilirubin (umol/L)", max_digits=6, decimal_places=1, null=True, blank=True)
    alt = models.DecimalField("ALT (U/L)", max_digits=7, decimal_places=1, null=True, blank=True)
    ast = models.DecimalField("AST (U/L)", max_digits=7, decimal_places=1, null=True, blank=True)

    class Meta:
        ordering = ["patient", "date", "id"]

    def __str__(self) -> str:
        return f"{self.patient} labs {self.date}"


class Deviation(PatientRecord):
    """A protocol deviation recorded by an investigator (delay > allowance, dosing with a
    failed safety check, enrolment at a level not opened)."""

    class Kind(models.TextChoices):
        DELAY = "delay", "Dose delayed beyond the allowance"
        SAFETY_CHECK = "safety_check", "Dosed with a failed pre-dose safety check"
        ENROLMENT = "enrolment", "Enrolment outside the open slot"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="deviations")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "deviation date"}
    kind = models.CharField(max_length=16, choices=Kind.choices)
    date = models.DateField()
    reason = models.TextField()
    cycle_number = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The cycle this deviation allows (a late dose or a dose with a failed safety check).",
    )

    class Meta:
        ordering = ["patient", "date", "id"]

    def __str__(self) -> str:
        return f"{self.patient} deviation ({self.get_kind_display()}) {self.date}"


class Cycle(PatientRecord):
    """One treatment cycle: INO on day 1 (PROTOCOL s1, s3)."""

    class ReductionReason(models.TextChoices):
        CYTOPENIA = "cytopenia", "Cytopenia"
        UNRESOLVED_SYMPTOMS = "unresolved_symptoms", "Unresolved symptoms"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cycles")
    clinical_date_fields: ClassVar[dict[str, str]] = {"day1": "day-1 date"}
    number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    due_date = models.DateField()
    day1 = models.DateField("day 1 (dose date)", null=True, blank=True)
    dose_level = models.ForeignKey(DoseLevel, on_delete=models.PROTECT, related_name="+")
    height_cm = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    bsa_m2 = models.DecimalField("BSA (m²)", max_digits=4, decimal_places=2, null=True, blank=True)
    dose_mg_m2 = models.DecimalField("dose (mg/m²)", max_digits=6, decimal_places=3, null=True, blank=True)
    dose_mg = models.DecimalField("dose given (mg)", max_digits=7, decimal_places=2, null=True, blank=True)
    reduced = models.BooleanField(default=False)
    reduction_reason = models.CharField(max_length=20, choices=ReductionReason.choices, blank=True)
    full_dose_restored = models.BooleanField(
        default=False,
        help_text="An investigator documented a return to full dose after this cycle: later cycles are not reduced.",
    )
    delay_days = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(365)])
    delay_reason = models.CharField(max_length=200, blank=True)
    given = models.BooleanField(default=True)
    not_given_reason = models.CharField(max_length=200, blank=True)
    safety_check = models.JSONField(default=list, blank=True, help_text="The pre-dose safety check as computed.")
    # GVHD/SOS status at the visit, entered with the labs: the safety app (GVHD episodes)
    # is above dosing in the dependency order, so the check cannot read it from there.
    acute_gvhd_grade = models.PositiveSmallIntegerField(
        "active acute GVHD grade", null=True, blank=True, validators=[MaxValueValidator(4)]
    )
    liver_gvhd = models.BooleanField("active liver GVHD", null=True, blank=True)
    sos = models.BooleanField("SOS/VOD", null=True, blank=True)
    lab_panel = models.ForeignKey(
        LabPanel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Labs entered with the visit.",
    )
    deviation = models.ForeignKey(Deviation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["patient", "number"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="cycle_number_unique"),
            models.CheckConstraint(
                condition=models.Q(reduced=False) | ~models.Q(reduction_reason=""), name="cycle_reduction_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} C{self.number}"


class ConcomitantMedication(Voidable, PatientRecord):
    """Concomitant medication, e.g. a TKI for Ph+ ALL (PROTOCOL s3)."""

    class Agent(models.TextChoices):
        IMATINIB = "imatinib", "Imatinib"
        DASATINIB = "dasatinib", "Dasatinib"
        NILOTINIB = "nilotinib", "Nilotinib"
        PONATINIB = "ponatinib", "Ponatinib"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    clinical_date_fields: ClassVar[dict[str, str]] = {"start": "start date", "stop": "stop date"}
    agent = models.CharField(max_length=12, choices=Agent.choices)
    other_agent = models.CharField(max_length=100, blank=True)
    start = models.DateField()
    stop = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["patient", "start", "id"]

    def __str__(self) -> str:
        return f"{self.patient} {self.get_agent_display()} from {self.start}"
