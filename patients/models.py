"""Patients. No names, record numbers or birth dates: a subject ID and a birth year."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from core.models import AuditedModel
from trial.models import DoseLevel, Site, Trial


class Patient(AuditedModel):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"

    class Race(models.TextChoices):
        WHITE = "white", "White"
        BLACK = "black", "Black"
        ASIAN = "asian", "Asian"
        OTHER = "other", "Other"
        UNREPORTED = "unreported", "Unreported"

    scope_trial_path = "trial"
    scope_site_path = "site"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="patients")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    subject_id = models.CharField(
        "subject ID",
        max_length=30,
        validators=[
            RegexValidator(r"^[A-Z0-9]+-[0-9]{3,}$", "Use the site code, a hyphen and a number, e.g. UHC-001.")
        ],
    )
    sex = models.CharField(max_length=10, choices=Sex.choices)
    race = models.CharField(max_length=12, choices=Race.choices, default=Race.UNREPORTED)
    birth_year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1900), MaxValueValidator(2100)])
    dose_level = models.ForeignKey(DoseLevel, null=True, blank=True, on_delete=models.PROTECT, related_name="patients")
    enrolled_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["trial", "subject_id"]
        constraints = [models.UniqueConstraint(fields=["trial", "subject_id"], name="subject_id_unique_per_trial")]

    def __str__(self) -> str:
        return self.subject_id

    def get_absolute_url(self) -> str:
        return reverse("patient_detail", kwargs={"patient_id": self.pk})

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.site_id and self.trial_id and self.site.trial_id != self.trial_id:
            errors["site"] = "This site does not take part in this trial."
        elif self.site_id and self.subject_id and not self.subject_id.startswith(f"{self.site.code}-"):
            errors["subject_id"] = f"Subject IDs at {self.site.code} start with '{self.site.code}-'."
        if self.dose_level_id and self.trial_id and self.dose_level.trial_id != self.trial_id:
            errors["dose_level"] = "This dose level belongs to another trial."
        if errors:
            raise ValidationError(errors)
