"""Infrastructure records: the audited base class, electronic signatures, API tokens."""

import hashlib

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.errors import ReasonRequired


class AuditedModel(models.Model):
    """Base of every clinical record.

    django-simple-history keeps a full copy of each version (who, when UTC, reason);
    old and new values are read by comparing consecutive versions. ``save`` refuses an
    edit after first entry that carries no reason, so no write path (form, API, import,
    shell) can skip it. ``version`` counts saves for optimistic concurrency (API 409).
    A save into a frozen or locked casebook raises ``core.errors.RecordLocked`` (issue 12;
    class attributes ``lock_patient_path`` and ``lock_level``, see core.locks).
    """

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    history = HistoricalRecords(inherit=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # A frozen or locked casebook refuses every write, whichever path it came by
        # (core.locks; views refuse earlier with a banner, this is the backstop).
        from core.locks import lock_refusal

        refusal = lock_refusal(self)
        if refusal is not None:
            raise refusal
        if not self._state.adding:
            if not str(getattr(self, "_change_reason", "") or "").strip():
                raise ReasonRequired()
            self.version += 1
        super().save(*args, **kwargs)
        # A reason explains one edit: the next save of this instance needs its own.
        self.__dict__.pop("_change_reason", None)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Clinical records are never deleted: a withdrawal or an "entered in error"
        # status keeps the trail. History rows could not be deleted anyway (triggers).
        raise ValidationError("Clinical records cannot be deleted; record a status change instead.")


class CurrentRecordManager(models.Manager):  # type: ignore[type-arg]
    """The records that count: a voided record ("entered in error") is left out of every
    clinical read (tables, DLT, survival, checks, automatic queries). ``all_objects``
    still reads it (exports with their flag, the bundle, the audit trail)."""

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return super().get_queryset().filter(voided_at__isnull=True)


class Voidable(models.Model):
    """A clinical record that can be voided as entered in error (issue 19): never deleted,
    kept with who, when and why (core.audit.record_void), excluded from results."""

    voided_at = models.DateTimeField("voided at", null=True, blank=True, editable=False)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    void_reason = models.TextField("reason for voiding", blank=True, editable=False)
    # Historic: who voided it, as a trial bundle carried it in (voided_by is then empty),
    # like DltAdjudication.signed_by_name; the user need not exist on this server.
    voided_by_name = models.CharField("voided by (as recorded)", max_length=200, blank=True, editable=False)

    objects = CurrentRecordManager()
    all_objects = models.Manager()  # noqa: DJ012 - a second manager, not a field

    class Meta:
        abstract = True

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None

    @property
    def voided_by_display(self) -> str:
        """Who voided it: the user's name, or the name a trial bundle carried in."""
        if self.voided_by_name:
            return f"{self.voided_by_name} (imported)"
        user = self.voided_by
        if user is None:
            return ""
        return str(user.get_full_name() or user.get_username())  # type: ignore[attr-defined]


class Signature(models.Model):
    """An electronic signature (21 CFR 11.50/11.70 style) on one version of one record.

    ``record_hash`` is the SHA-256 of the signed record's content at signing time; a
    later edit changes the record's hash, so the signature shows as invalidated.
    ``seal`` is an HMAC over everything else in this row plus the record's identity, so
    a tampered hash, a changed meaning or a signature moved to another record fails
    verification. Rows are append-only (database triggers, see core.audit_guard).
    """

    class Meaning(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed and approved"
        ADJUDICATED = "adjudicated", "DLT adjudication: I confirm this decision"
        ESCALATION = "escalation", "Dose-escalation decision: I authorise it"
        ELIGIBILITY = "eligibility", "Eligibility confirmed"
        LOCK = "lock", "Casebook frozen/locked"

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    signed_at = models.DateTimeField(default=timezone.now)
    record_version = models.PositiveIntegerField()
    record_hash = models.CharField(max_length=64)
    seal = models.CharField(max_length=64)
    imported = models.BooleanField(default=False, help_text="Historic signature carried in by a trial bundle.")

    class Meta:
        indexes = [models.Index(fields=["content_type", "object_id"])]
        ordering = ["signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.printed_name} — {self.get_meaning_display()} — {self.signed_at:%Y-%m-%d %H:%M} UTC"


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user API token. Only its SHA-256 is stored; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'SAS nightly pull'.")
    prefix = models.CharField(max_length=12, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
