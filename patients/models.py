"""Patients. No names, record numbers or birth dates: a subject ID and a birth year."""

from types import SimpleNamespace
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from core.locks import LOCKED, OPEN, OPEN_INFO, LockInfo
from core.models import AuditedModel, Voidable
from trial.models import DoseLevel, ProtocolVersion, Site, Trial, TrialLock


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

    class Diagnosis(models.TextChoices):
        B_ALL = "b_all", "CD22+ B-cell ALL"
        CML_LYMPHOID_BLAST = "cml_lymphoid_blast", "CML in lymphoid blast crisis"

    class CytogeneticRisk(models.TextChoices):
        STANDARD = "standard", "Standard"
        ADVERSE = "adverse", "Adverse"
        UNKNOWN = "unknown", "Unknown"

    scope_trial_path = "trial"
    scope_site_path = "site"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="patients")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    subject_id = models.CharField(
        "subject ID",
        max_length=30,
        validators=[
            # \A...\Z: the whole text (a "$" would also match before a final newline).
            RegexValidator(r"\A[A-Z0-9]+-[0-9]{3,}\Z", "Use the site code, a hyphen and a number, e.g. UHC-001.")
        ],
    )
    sex = models.CharField(max_length=10, choices=Sex.choices)
    race = models.CharField(max_length=12, choices=Race.choices, default=Race.UNREPORTED)
    birth_year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1900), MaxValueValidator(2100)])
    # Disease and prior therapy (PROTOCOL s2; the paper's Table 1)
    diagnosis = models.CharField(max_length=24, choices=Diagnosis.choices, blank=True)
    cd22_positive = models.BooleanField("CD22 positive", null=True, blank=True)
    ph_positive = models.BooleanField("Ph positive", null=True, blank=True)
    cytogenetic_risk = models.CharField(max_length=12, choices=CytogeneticRisk.choices, blank=True)
    prior_lines = models.PositiveSmallIntegerField(
        "prior lines of therapy", null=True, blank=True, validators=[MaxValueValidator(20)]
    )
    prior_asparaginase = models.BooleanField("prior asparaginase-containing regimen", null=True, blank=True)
    prior_blinatumomab = models.BooleanField(null=True, blank=True)
    prior_inotuzumab = models.BooleanField("prior INO", null=True, blank=True)
    prior_car_t = models.BooleanField("prior CAR T-cell therapy", null=True, blank=True)
    prior_hct = models.BooleanField("prior allo-HCT", null=True, blank=True)
    hct_ci = models.PositiveSmallIntegerField("HCT-CI", null=True, blank=True, validators=[MaxValueValidator(30)])
    # Enrolment: the dose level comes from the trial's open slot (escalation engine).
    dose_level = models.ForeignKey(DoseLevel, null=True, blank=True, on_delete=models.PROTECT, related_name="patients")
    enrolled_on = models.DateField(null=True, blank=True)
    enrolment_deviation = models.TextField(
        blank=True, help_text="Set when the patient was enrolled at a level the 3+3 rules had not opened."
    )
    # Issue 17: enrolled into a backfill place (a cleared level below the current one,
    # analysis.designs.backfill), not into a dose-finding cohort. Set by the enrolment
    # service, audited with the enrolment.
    enrolled_as_backfill = models.BooleanField("backfill patient", default=False)

    class Meta:
        ordering = ["trial", "subject_id"]
        constraints = [models.UniqueConstraint(fields=["trial", "subject_id"], name="subject_id_unique_per_trial")]

    def __str__(self) -> str:
        return self.subject_id

    def get_absolute_url(self) -> str:
        return reverse("patient_detail", kwargs={"patient_id": self.pk})

    # The casebook owner for core.locks: every record that reaches a patient is guarded.
    lock_owner = True

    @staticmethod
    def _lock_info(subject_id: str, trial_code: str, casebook: Any, trial_lock: Any) -> LockInfo:
        """Build the effective lock from the two lock rows (objects or None); the trial lock wins."""
        if trial_lock is not None and trial_lock.state == LOCKED:
            return LockInfo(
                LOCKED,
                subject_id,
                True,
                trial_code,
                trial_lock.changed_at,
                trial_lock.changed_by_name or "",
                trial_lock.reason or "",
            )
        if casebook is None or casebook.state == OPEN:
            return LockInfo(OPEN, subject_id, trial_code=trial_code)
        return LockInfo(
            casebook.state,
            subject_id,
            False,
            trial_code,
            casebook.changed_at,
            casebook.changed_by_name or "",
            casebook.reason or "",
        )

    @classmethod
    def lock_info_for(cls, pk: int) -> LockInfo:
        """The effective lock of patient ``pk``'s casebook (one query)."""
        fields = ("state", "changed_at", "changed_by_name", "reason")
        row = (
            cls.objects.filter(pk=pk)
            .values(
                "subject_id",
                "trial__code",
                *(f"casebook_lock__{f}" for f in fields),
                *(f"trial__lock__{f}" for f in fields),
            )
            .first()
        )
        if row is None:
            return OPEN_INFO

        def lock_row(prefix: str) -> SimpleNamespace | None:
            if row[f"{prefix}state"] is None:
                return None
            return SimpleNamespace(**{f: row[f"{prefix}{f}"] for f in fields})

        return cls._lock_info(
            row["subject_id"], row["trial__code"], lock_row("casebook_lock__"), lock_row("trial__lock__")
        )

    @property
    def lock(self) -> LockInfo:
        """This casebook's effective lock: from the lock rows loaded with the patient
        (selectors select_related "casebook_lock" and "trial__lock"), else one query."""
        cls = type(self)
        loaded = (
            cls.casebook_lock.is_cached(self)  # type: ignore[attr-defined]
            and cls.trial.is_cached(self)  # type: ignore[attr-defined]
            and Trial.lock.is_cached(self.trial)  # type: ignore[attr-defined]
        )
        if not loaded:
            return cls.lock_info_for(self.pk)
        casebook = getattr(self, "casebook_lock", None)
        trial_lock = getattr(self.trial, "lock", None)
        return self._lock_info(self.subject_id, self.trial.code, casebook, trial_lock)

    @classmethod
    def lock_info_for_new(cls, patient: "Patient") -> LockInfo:
        """A patient registered now: refused only when the whole trial is locked."""
        lock = (
            TrialLock.objects.filter(trial_id=patient.trial_id, state=TrialLock.State.LOCKED)
            .select_related("trial")
            .first()
        )
        if lock is None:
            return OPEN_INFO
        return LockInfo(
            LOCKED, patient.subject_id, True, lock.trial.code, lock.changed_at, lock.changed_by_name, lock.reason
        )

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


class PatientRecord(AuditedModel):
    """Base of the records that hang off one patient: scoped through the patient."""

    scope_trial_path = "patient__trial"
    scope_site_path = "patient__site"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    # The record's clinical dates, field -> label (patients.selectors.earliest_clinical_date:
    # a birth-year edit is checked against them). Planned dates (a cycle's due date) are not.
    clinical_date_fields: ClassVar[dict[str, str]] = {}

    class Meta:
        abstract = True


class Transplant(AuditedModel):
    """The allogeneic HCT the trial follows (day 0 = stem cell infusion)."""

    class DiseaseStatus(models.TextChoices):
        CR1 = "cr1", "CR1"
        CR2 = "cr2", "CR2"
        CR3_PLUS = "cr3_plus", "CR3 or later"

    class Conditioning(models.TextChoices):
        MAC = "mac", "Myeloablative (MAC)"
        RIC = "ric", "Reduced intensity (RIC)"
        NMA = "nma", "Non-myeloablative (NMA)"

    class Regimen(models.TextChoices):
        BUSULFAN = "busulfan", "Busulfan based"
        MELPHALAN = "melphalan", "Melphalan based"
        TBI = "tbi", "Other + TBI"
        OTHER = "other", "Other"

    class DonorType(models.TextChoices):
        MATCHED_SIBLING = "matched_sibling", "Matched sibling"
        MATCHED_RELATED = "matched_related", "Matched related (other)"
        HAPLOIDENTICAL = "haploidentical", "Haploidentical"
        MATCHED_UNRELATED = "matched_unrelated", "Matched unrelated"
        MISMATCHED_UNRELATED = "mismatched_unrelated", "Mismatched unrelated"
        CORD_BLOOD = "cord_blood", "Cord blood"

    class GraftSource(models.TextChoices):
        BONE_MARROW = "bone_marrow", "Bone marrow"
        PERIPHERAL_BLOOD = "peripheral_blood", "Peripheral blood"
        CORD_BLOOD = "cord_blood", "Cord blood"

    class GvhdProphylaxis(models.TextChoices):
        CNI_MTX = "cni_mtx", "CNI + MTX"
        CNI_MMF = "cni_mmf", "CNI + MMF"
        PTCY = "ptcy", "PTCy"
        OTHER = "other", "Other"

    scope_trial_path = "patient__trial"
    scope_site_path = "patient__site"

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="transplant")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "HCT date"}
    date = models.DateField("HCT date (day 0)")
    disease_status = models.CharField("disease status at HCT", max_length=10, choices=DiseaseStatus.choices)
    conditioning = models.CharField(max_length=4, choices=Conditioning.choices)
    regimen = models.CharField("conditioning regimen", max_length=12, choices=Regimen.choices, blank=True)
    atg = models.BooleanField("ATG", null=True, blank=True)
    donor_type = models.CharField(max_length=24, choices=DonorType.choices, blank=True)
    graft_source = models.CharField(max_length=20, choices=GraftSource.choices, blank=True)
    gvhd_prophylaxis = models.CharField("GVHD prophylaxis", max_length=10, choices=GvhdProphylaxis.choices, blank=True)
    mrd_before = models.BooleanField("MRD positive before HCT", null=True, blank=True)
    mrd_after = models.BooleanField("MRD positive after HCT", null=True, blank=True)
    cr_at_day30 = models.BooleanField("CR confirmed at day +30", null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.patient} HCT {self.date}"


class Consent(PatientRecord):
    """Consent to a protocol version; re-consent to a later version is a new row."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "consent date"}
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="+")
    date = models.DateField()
    # Consent to a version that was not the current one on the consent date is refused
    # unless an investigator records why (issue 16); the reason is kept with the consent.
    version_override_reason = models.TextField(
        "why a version other than the current one", blank=True, help_text="Investigator's reason; empty when current."
    )

    class Meta:
        ordering = ["patient", "date", "id"]
        constraints = [models.UniqueConstraint(fields=["patient", "protocol_version"], name="consent_once_per_version")]

    def __str__(self) -> str:
        return f"{self.patient} consent v{self.protocol_version.version} {self.date}"


class Screening(PatientRecord):
    """One eligibility screening; re-screening adds a row, the old one stays (PROTOCOL s2)."""

    class Result(models.TextChoices):
        ELIGIBLE = "eligible", "Eligible"
        NOT_ELIGIBLE = "not_eligible", "Not eligible (screen failure)"
        INCOMPLETE = "incomplete", "Incomplete (missing data)"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="screenings")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "screening date", "lab_date": "screening lab date"}
    date = models.DateField("screening date")
    lab_date = models.DateField("labs drawn on", null=True, blank=True)
    platelets_10e9_l = models.DecimalField("platelets (x10^9/L)", max_digits=7, decimal_places=1, null=True, blank=True)
    anc_10e9_l = models.DecimalField("ANC (x10^9/L)", max_digits=6, decimal_places=2, null=True, blank=True)
    agvhd_grade = models.PositiveSmallIntegerField(
        "active acute GVHD grade", null=True, blank=True, validators=[MaxValueValidator(4)]
    )
    liver_gvhd = models.BooleanField("active liver GVHD", null=True, blank=True)
    sos_history = models.BooleanField("history of SOS/VOD", null=True, blank=True)
    result = models.CharField(max_length=14, choices=Result.choices)
    criteria = models.JSONField(default=list, help_text="Every criterion with status and reason, as computed.")

    class Meta:
        ordering = ["patient", "date", "id"]

    def __str__(self) -> str:
        return f"{self.patient} screening {self.date}: {self.get_result_display()}"


class Assessment(Voidable, PatientRecord):
    """MRD and bone-marrow disease assessments (PROTOCOL s7)."""

    class Kind(models.TextChoices):
        MRD = "mrd", "MRD"
        BONE_MARROW = "bone_marrow", "Bone marrow disease assessment"

    class Method(models.TextChoices):
        FLOW = "flow", "Flow cytometry"
        PCR = "pcr", "PCR"
        NGS = "ngs", "NGS / clonoSEQ"

    class Result(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEGATIVE = "negative", "Negative"
        INDETERMINATE = "indeterminate", "Indeterminate"

    class Response(models.TextChoices):
        CR = "cr", "CR"
        CRI = "cri", "CRi"
        RELAPSE = "relapse", "Relapse"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "assessment date"}
    kind = models.CharField(max_length=12, choices=Kind.choices)
    date = models.DateField()
    method = models.CharField(max_length=6, choices=Method.choices, blank=True)
    result = models.CharField(max_length=14, choices=Result.choices, blank=True)
    level = models.DecimalField("MRD level (fraction)", max_digits=12, decimal_places=8, null=True, blank=True)
    blasts_pct = models.DecimalField("marrow blasts (%)", max_digits=5, decimal_places=1, null=True, blank=True)
    response = models.CharField(max_length=8, choices=Response.choices, blank=True)
    extramedullary = models.BooleanField("extramedullary disease", null=True, blank=True)

    class Meta:
        ordering = ["patient", "date", "id"]

    def __str__(self) -> str:
        return f"{self.patient} {self.get_kind_display()} {self.date}"


class PatientEvent(Voidable, PatientRecord):
    """Outcome events: relapse, death, last contact, end of treatment, withdrawal (s3, s8)."""

    class Kind(models.TextChoices):
        RELAPSE = "relapse", "Relapse"
        DEATH = "death", "Death"
        LAST_CONTACT = "last_contact", "Last known alive"
        END_OF_TREATMENT = "end_of_treatment", "End of treatment"
        WITHDRAWAL = "withdrawal", "Withdrawal of consent"

    class DeathCause(models.TextChoices):
        RELAPSE = "relapse", "Relapse"
        GVHD = "gvhd", "GVHD"
        INFECTION = "infection", "Infection"
        ORGAN_FAILURE = "organ_failure", "Organ failure"
        OTHER = "other", "Other"

    class EotReason(models.TextChoices):
        COMPLETED = "completed", "Completed"
        WITHDRAWAL = "withdrawal", "Withdrawal (patient or physician decision)"
        TOXICITY = "toxicity", "Toxicity / cytopenia"
        RELAPSE = "relapse", "Relapse"
        DEATH = "death", "Death"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="events")
    clinical_date_fields: ClassVar[dict[str, str]] = {"date": "event date"}
    kind = models.CharField(max_length=20, choices=Kind.choices)
    date = models.DateField()
    cause = models.CharField("cause of death", max_length=16, choices=DeathCause.choices, blank=True)
    reason = models.CharField("end-of-treatment reason", max_length=12, choices=EotReason.choices, blank=True)
    blasts_pct = models.DecimalField("blasts at relapse (%)", max_digits=5, decimal_places=1, null=True, blank=True)
    relapse_site = models.CharField(max_length=100, blank=True)
    details = models.TextField(blank=True)

    class Meta:
        ordering = ["patient", "date", "id"]
        constraints = [
            # One death, one end of treatment, one withdrawal per patient.
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=models.Q(kind__in=["death", "end_of_treatment", "withdrawal"]),
                name="patient_event_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.get_kind_display()} {self.date}"


class CasebookLock(AuditedModel):
    """A patient casebook's lock state (issue 12): open, frozen (no data changes; queries
    still answerable) or locked (nothing changes). One row per patient, made at the first
    freeze or lock and changed in place: each state change is a version in the history
    (who, when, reason) and carries its own signature (meaning "lock"). Not casebook data
    itself (the guard never refuses it); scoped through its patient.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        FROZEN = "frozen", "Frozen"
        LOCKED = "locked", "Locked"

    scope_trial_path = "patient__trial"
    scope_site_path = "patient__site"
    lock_patient_path = None
    signature_unsigned_fields = ("signature",)

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="casebook_lock")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_by_name = models.CharField(max_length=200, blank=True, help_text="Printed name (kept for imports).")
    reason = models.TextField(blank=True)
    signature = models.ForeignKey("core.Signature", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.patient} casebook: {self.get_state_display()}"
