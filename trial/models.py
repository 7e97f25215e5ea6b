"""Trial configuration: the protocol as data, and who may do what in which trial.

Every threshold the rules use is a field here, with the seed trial's value as default
(docs/protocol.md: "a second trial with other numbers must need no code change").
"""

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.models import AuditedModel
from trial.configuration import DesignSpec, design_problems
from trial.countries import ISO_3166_ALPHA3


def validate_time_zone(value: str) -> None:
    """An IANA zone name (e.g. Europe/Paris), or empty for the server's TIME_ZONE."""
    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone name (e.g. UTC, America/New_York).") from exc


code_validator = RegexValidator(r"^[A-Z0-9][A-Z0-9-]*$", "Use capital letters, digits and hyphens (e.g. INO-POST-HCT).")
# SDTM text is ASCII (the XPT datasets refuse anything else), so a name the CDISC
# package carries is checked where it is entered.
ascii_text_validator = RegexValidator(
    r"^[ -~]*$", "Use plain ASCII letters, digits and punctuation (SDTM text is ASCII): no accents or symbols."
)


def country_validator(value: str) -> None:
    """An ISO 3166-1 alpha-3 country code (three capital letters of the standard's list)."""
    if value and value not in ISO_3166_ALPHA3:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-3 country code (e.g. USA, FRA, DEU).")


class Trial(AuditedModel):
    class Design(models.TextChoices):
        THREE_PLUS_THREE = "3+3", "3+3 (Storer 1989)"
        BOIN = "boin", "BOIN (Liu & Yuan 2015)"
        I3PLUS3 = "i3+3", "i3+3 (Liu, Wang & Ji 2020)"
        MTPI2 = "mtpi2", "mTPI-2 / Keyboard (Guo et al. 2017)"
        CRM = "crm", "CRM (O'Quigley et al. 1990)"

    class CrmModel(models.TextChoices):
        EMPIRIC = "empiric", "Empiric (power)"
        LOGISTIC = "logistic", "One-parameter logistic"

    class EscalationVariant(models.TextChoices):
        STORER_A = "storer_a", "Storer design A (textbook 3+3)"
        SIX_AT_MTD = "six_at_mtd", "Six evaluable patients needed at the MTD"

    class BsaMethod(models.TextChoices):
        MOSTELLER = "mosteller", "Mosteller"
        DUBOIS = "dubois", "DuBois"

    class SurvivalOrigin(models.TextChoices):
        HCT = "hct", "Allogeneic HCT (day 0)"
        FIRST_DOSE = "first_dose", "First dose (C1D1)"

    scope_trial_path = "pk"
    scope_site_path = None

    code = models.CharField(max_length=40, unique=True, validators=[code_validator])
    title = models.CharField(max_length=300)
    # SDTM TS SPONSOR (exchange/cdisc); empty: not recorded (TS then says UNK).
    sponsor = models.CharField(
        "sponsor",
        max_length=200,
        blank=True,
        validators=[ascii_text_validator],
        help_text="The sponsor's name as the CDISC package's trial summary (TS SPONSOR) gives it; ASCII.",
    )
    design = models.CharField(max_length=10, choices=Design.choices, default=Design.THREE_PLUS_THREE)
    escalation_variant = models.CharField(
        max_length=20, choices=EscalationVariant.choices, default=EscalationVariant.STORER_A
    )
    # The model-based and interval designs (issue 17; trial.configuration.design_problems
    # checks them; defaults are the R packages' defaults: BOIN, dfcrm). Unused by 3+3.
    target_dlt_rate = models.FloatField("target DLT rate", default=0.3)
    cohort_size = models.PositiveSmallIntegerField(default=3)
    max_sample_size = models.PositiveSmallIntegerField("maximum sample size", default=30)
    boin_p_saf = models.FloatField(
        "BOIN p.saf", null=True, blank=True, help_text="Highest DLT rate deemed sub-therapeutic; empty: 0.6 x target."
    )
    boin_p_tox = models.FloatField(
        "BOIN p.tox", null=True, blank=True, help_text="Lowest DLT rate deemed overly toxic; empty: 1.4 x target."
    )
    boin_n_earlystop = models.PositiveSmallIntegerField(
        "BOIN n.earlystop",
        default=100,
        help_text="Stop once this many patients are at the level the next cohort stays at.",
    )
    crm_skeleton = models.JSONField(
        "CRM skeleton",
        default=list,
        blank=True,
        help_text="Prior DLT probability per dose level, increasing in (0, 1).",
    )
    crm_model = models.CharField("CRM model", max_length=10, choices=CrmModel.choices, default=CrmModel.EMPIRIC)
    crm_prior_sd = models.FloatField("CRM prior SD", default=1.1575836902790226, help_text="dfcrm's sqrt(1.34).")
    # Backfill (issue 17; analysis.designs.backfill): patients treated at a cleared level
    # below the current one while the dose finding goes on; their DLTs count for their level.
    backfill_enabled = models.BooleanField(
        "backfill", default=False, help_text="Treat backfill patients at cleared levels below the current one."
    )
    backfill_max_per_level = models.PositiveSmallIntegerField(
        "backfill patients per level",
        default=3,
        help_text="Backfill places each cleared level has in the whole trial (0 = none).",
    )
    backfill_levels = models.PositiveSmallIntegerField(
        "backfill levels",
        default=0,
        help_text="0: every cleared level below the current one; N: only the N cleared levels nearest below it.",
    )
    cycle_length_days = models.PositiveSmallIntegerField(
        default=28, validators=[MinValueValidator(7), MaxValueValidator(84)]
    )
    dlt_window_cycles = models.PositiveSmallIntegerField(
        "DLT window (cycles)", default=2, validators=[MinValueValidator(1), MaxValueValidator(6)]
    )
    # PROTOCOL s6: after the MTD is declared (signed), further patients may be treated at
    # it. 2 = the seed trial, which treated 2 patients at L4 beyond its deciding cohort.
    expansion_cohort_size = models.PositiveSmallIntegerField(
        "expansion at the MTD (patients)",
        default=2,
        validators=[MaxValueValidator(100)],
        help_text="Open slots at the MTD once its declaration is signed, beyond the deciding cohort(s); 0 = none.",
    )
    bsa_method = models.CharField("BSA method", max_length=12, choices=BsaMethod.choices, default=BsaMethod.MOSTELLER)
    # Eligibility (PROTOCOL s2)
    age_min = models.PositiveSmallIntegerField(default=16, validators=[MaxValueValidator(120)])
    age_max = models.PositiveSmallIntegerField(default=75, validators=[MaxValueValidator(120)])
    enrol_day_min = models.PositiveSmallIntegerField("first enrolment day after HCT", default=40)
    enrol_day_max = models.PositiveSmallIntegerField("last enrolment day after HCT", default=100)
    min_platelets = models.DecimalField(
        "platelets must exceed (x10^9/L)", max_digits=6, decimal_places=1, default=Decimal("50")
    )
    min_anc = models.DecimalField("ANC must exceed (x10^9/L)", max_digits=5, decimal_places=2, default=Decimal("1.0"))
    screening_lab_days = models.PositiveSmallIntegerField("labs valid for (days)", default=14)
    # Dosing (PROTOCOL s3)
    max_delay_days = models.PositiveSmallIntegerField("maximum dose delay (days)", default=7)
    reduction_percent = models.PositiveSmallIntegerField(
        "dose reduction (%)", default=50, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    # DLT (PROTOCOL s5)
    dlt_min_grade = models.PositiveSmallIntegerField(
        "DLT grade threshold (>=)", default=3, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    dlt_cytopenia_days = models.PositiveSmallIntegerField("cytopenia DLT if lasting more than (days)", default=28)
    sae_report_hours = models.PositiveSmallIntegerField("SAE reporting deadline (hours)", default=24)
    # Survival (PROTOCOL s8)
    survival_origin = models.CharField(max_length=12, choices=SurvivalOrigin.choices, default=SurvivalOrigin.HCT)
    landmark_days = models.DecimalField(max_digits=7, decimal_places=2, default=Decimal("365.25"))
    # "Today" for the date rules (patients.clinical_dates): no clinical fact is dated after
    # today where the trial runs. Empty: the server's TIME_ZONE (settings, default UTC).
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_time_zone],
        help_text="IANA time zone of the trial (e.g. America/New_York); empty: the server's TIME_ZONE.",
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(age_min__lte=models.F("age_max")), name="trial_age_range"),
            models.CheckConstraint(
                condition=Q(enrol_day_min__lte=models.F("enrol_day_max")), name="trial_enrol_window"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def zone_name(self) -> str:
        return self.time_zone or settings.TIME_ZONE

    def local_today(self) -> date:
        """Today's date in the trial's time zone (the upper bound of every clinical date)."""
        return timezone.localdate(timezone=ZoneInfo(self.zone_name))

    def clean(self) -> None:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValidationError({"age_max": "The maximum age must not be below the minimum age."})
        if (
            self.enrol_day_min is not None
            and self.enrol_day_max is not None
            and self.enrol_day_min > self.enrol_day_max
        ):
            raise ValidationError({"enrol_day_max": "The enrolment window must end on or after its first day."})
        problems = design_problems(self.design_spec())
        if problems:
            raise ValidationError(problems)

    def design_spec(self) -> DesignSpec:
        return DesignSpec(
            design=self.design,
            target_dlt_rate=self.target_dlt_rate,
            cohort_size=self.cohort_size,
            max_sample_size=self.max_sample_size,
            boin_p_saf=self.boin_p_saf,
            boin_p_tox=self.boin_p_tox,
            boin_n_earlystop=self.boin_n_earlystop,
            crm_skeleton=self.crm_skeleton,
            crm_model=self.crm_model,
            crm_prior_sd=self.crm_prior_sd,
            backfill_enabled=self.backfill_enabled,
            backfill_max_per_level=self.backfill_max_per_level,
            backfill_levels=self.backfill_levels,
        )


class Site(AuditedModel):
    scope_trial_path = "trial"
    scope_site_path = "pk"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(max_length=20, validators=[code_validator])
    name = models.CharField(max_length=200)
    # SDTM DM.COUNTRY (exchange/cdisc): the country where the site is, ISO 3166-1 alpha-3.
    country = models.CharField(
        max_length=3,
        blank=True,
        default="",
        validators=[country_validator],
        help_text="ISO 3166-1 alpha-3 code of the site's country (e.g. USA, FRA, DEU).",
    )

    class Meta:
        ordering = ["trial", "code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="site_code_unique_per_trial"),
            # The form of an ISO 3166-1 alpha-3 code (the list itself is country_validator's).
            models.CheckConstraint(
                condition=Q(country="") | Q(country__regex=r"^[A-Z]{3}$"), name="site_country_alpha3"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class DoseLevel(AuditedModel):
    scope_trial_path = "trial"
    scope_site_path = None

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="dose_levels")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    dose_mg_m2 = models.DecimalField("dose (mg/m²)", max_digits=8, decimal_places=3)

    class Meta:
        ordering = ["trial", "level"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "level"], name="dose_level_unique_per_trial"),
            models.CheckConstraint(condition=Q(level__gte=1), name="dose_level_from_1"),
            models.CheckConstraint(condition=Q(dose_mg_m2__gt=0), name="dose_level_positive"),
        ]

    def __str__(self) -> str:
        return f"L{self.level} {self.dose_mg_m2.normalize()} mg/m²"


class ProtocolVersion(AuditedModel):
    scope_trial_path = "trial"
    scope_site_path = None

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="protocol_versions")
    version = models.CharField(max_length=20)
    effective = models.DateField()
    max_cycles = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])

    class Meta:
        ordering = ["trial", "effective", "version"]
        constraints = [models.UniqueConstraint(fields=["trial", "version"], name="protocol_version_unique")]

    def __str__(self) -> str:
        return f"v{self.version} (from {self.effective}, max {self.max_cycles} cycles)"


class RoleGrant(models.Model):
    """A user's role in one trial. Coordinators hold one grant per site.

    Grants are never deleted: a revocation stamps ``revoked_at``. Every grant and
    revocation is in the history table (who, when, reason), which is append-only.
    """

    class Role(models.TextChoices):
        COORDINATOR = "coordinator", "Site coordinator"
        INVESTIGATOR = "investigator", "Investigator"
        SPONSOR = "sponsor", "Sponsor (read-only exports)"
        ADMIN = "admin", "Trial administrator"
        DATA_MANAGER = "data_manager", "Data manager"
        MONITOR = "monitor", "Monitor (sponsor's clinical research associate)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_grants")
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="role_grants")
    role = models.CharField(max_length=20, choices=Role.choices)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "role", "user"]
        constraints = [
            # A coordinator's scope is a site; everyone else's is the whole trial.
            models.CheckConstraint(
                condition=(Q(role="coordinator", site__isnull=False) | (~Q(role="coordinator") & Q(site__isnull=True))),
                name="role_grant_site_only_for_coordinator",
            ),
            # One active grant per user, trial, role (and site for coordinators). Two
            # partial constraints, because SQLite cannot treat NULL sites as equal.
            models.UniqueConstraint(
                fields=["user", "trial", "role", "site"],
                condition=Q(revoked_at__isnull=True, site__isnull=False),
                name="role_grant_active_unique_site",
            ),
            models.UniqueConstraint(
                fields=["user", "trial", "role"],
                condition=Q(revoked_at__isnull=True, site__isnull=True),
                name="role_grant_active_unique_trial",
            ),
        ]

    def __str__(self) -> str:
        where = f" at {self.site.code}" if self.site_id else ""
        return f"{self.user} — {self.get_role_display()} in {self.trial}{where}"

    def clean(self) -> None:
        if self.role == self.Role.COORDINATOR and not self.site_id:
            raise ValidationError({"site": "A site coordinator must be given a site."})
        if self.role != self.Role.COORDINATOR and self.site_id:
            raise ValidationError({"site": "Only site coordinators are limited to a site; leave it empty."})
        if self.site_id and self.trial_id and self.site.trial_id != self.trial_id:
            raise ValidationError({"site": "This site belongs to another trial."})


class TrialComputation(models.Model):
    """A trial-level result recomputed by a worker (enrolment summary, escalation, survival).

    A data change bumps ``request_seq`` in its own transaction, so the request commits
    with the data and survives a broker outage (the row is the outbox). A run records
    the ``request_seq`` it answered in ``computed_seq``; the result is stale while
    ``computed_seq < request_seq``. A counter rather than clock times: a request that
    waited on the row lock during a run must still leave the result stale.
    """

    class Kind(models.TextChoices):
        ENROLMENT = "enrolment", "Enrolment summary"
        ESCALATION = "escalation", "3+3 escalation state"
        SURVIVAL = "survival", "Survival summaries"
        # The investigator dashboard's per-patient lists (DLT candidates awaiting
        # adjudication, overdue assessments, swimmer rows) and Table 2: bench/README.md issue 11.
        DASHBOARD = "dashboard", "Trial dashboard lists"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="computations")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    request_seq = models.PositiveBigIntegerField(default=1)
    computed_seq = models.PositiveBigIntegerField(default=0)
    requested_at = models.DateTimeField(default=timezone.now)
    computed_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="How many times the result was computed.")
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trial", "kind"], name="trial_computation_unique")]

    def __str__(self) -> str:
        return f"{self.trial} {self.kind} (request {self.request_seq}, computed {self.computed_seq})"

    @property
    def stale(self) -> bool:
        return self.computed_seq < self.request_seq


class EscalationSignoff(models.Model):
    """An investigator's signed 3+3 decision (dose-escalation meeting, PROTOCOL s6).

    A decision takes effect (opens slots) only once signed. Imported historic sign-offs
    keep the signer's name and date as recorded and carry no live signature.
    """

    scope_trial_path = "trial"
    scope_site_path = None

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="escalation_signoffs")

    class Decision(models.TextChoices):
        ESCALATE = "escalate", "Escalate"
        STAY = "stay", "Stay at the level"
        EXPAND = "expand", "Expand the cohort"
        DE_ESCALATE = "de_escalate", "De-escalate"
        MTD_DECLARED = "mtd_declared", "MTD declared"
        STOP_NO_MTD = "stop_no_mtd", "Stop: no MTD"

    decision = models.CharField(max_length=20, choices=Decision.choices)
    dose_level = models.PositiveSmallIntegerField()
    rationale = models.TextField(blank=True)
    signature = models.ForeignKey("core.Signature", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signed_by_name = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField(default=timezone.now)
    imported = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.trial} {self.decision} L{self.dose_level} ({self.signed_by_name})"


class TrialLock(AuditedModel):
    """The trial-level lock (issue 12): while locked, every casebook of the trial is locked
    for the analysis. One row per trial, changed in place: each lock and unlock is a new
    version in the history (who, when, reason) and carries its own signature (meaning
    "lock"). Not casebook data itself, so the lock guard never refuses it; recomputations
    keep running on locked data.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        LOCKED = "locked", "Locked"

    scope_trial_path = "trial"
    scope_site_path = None
    lock_patient_path = None
    signature_unsigned_fields = ("signature",)

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="lock")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_by_name = models.CharField(max_length=200, blank=True, help_text="Printed name (kept for imports).")
    reason = models.TextField(blank=True)
    signature = models.ForeignKey("core.Signature", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.trial} lock: {self.get_state_display()}"
