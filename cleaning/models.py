"""Data cleaning: queries on records and fields, and source data verification.

Every queried or verified record belongs to one patient's casebook, so each row
carries its trial, site and patient (scoping and lock guard read those, not the
generic target). Threads and marks are never deleted; they are ``lock_level =
"query"``: a frozen casebook still takes answers and closes, a locked one nothing.
"""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from core.models import AuditedModel
from patients.models import Patient
from trial.models import Site, Trial


class DataQuery(AuditedModel):
    """A question on one record, or on one field of it, and its state."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"
        CLOSED = "closed", "Closed"

    class Origin(models.TextChoices):
        MANUAL = "manual", "Raised by a person"
        AUTOMATIC = "automatic", "Raised by a rule"

    scope_trial_path = "trial"
    scope_site_path = "site"
    lock_patient_path = "patient"
    lock_level = "query"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="data_queries")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    field_name = models.CharField(max_length=60, blank=True, help_text="Empty: the query is on the whole record.")
    question = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    rule_code = models.CharField(
        max_length=80, blank=True, help_text="The rule that raised an automatic query, e.g. lab_plausibility:platelets."
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # Imported from a trial bundle (exchange/bundle.py): who raised it, as recorded there
    # (a username; historic, like an imported signature: the user need not exist here).
    imported = models.BooleanField(default=False)
    raised_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "data query"
        verbose_name_plural = "data queries"
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="query_target_idx"),
            models.Index(fields=["patient", "state"], name="query_patient_state_idx"),
            models.Index(fields=["trial", "state", "created_at"], name="query_trial_state_idx"),
            models.Index(fields=["site", "state", "created_at"], name="query_site_state_idx"),
        ]
        constraints = [
            # An automatic rule keeps at most one live query per record (the periodic
            # task raises idempotently and the database backs it).
            models.UniqueConstraint(
                fields=["content_type", "object_id", "rule_code"],
                condition=~models.Q(state="closed") & ~models.Q(rule_code=""),
                name="query_one_live_per_rule",
            ),
            models.CheckConstraint(
                condition=models.Q(origin="manual", rule_code="")
                | (models.Q(origin="automatic") & ~models.Q(rule_code="")),
                name="query_rule_code_iff_automatic",
            ),
            models.CheckConstraint(
                condition=models.Q(state="closed", closed_at__isnull=False)
                | (~models.Q(state="closed") & models.Q(closed_at__isnull=True)),
                name="query_closed_at_iff_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"Query #{self.pk}"


class QueryMessage(AuditedModel):
    """One step of a query's thread (append-only in practice: services only create)."""

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        ANSWER = "answer", "Answer"
        CORRECTION = "correction", "Answer with data correction"
        CLOSE = "close", "Closed"
        REOPEN = "reopen", "Re-opened"
        AUTO_CLOSE = "auto_close", "Closed automatically (data fixed)"

    scope_trial_path = "query__trial"
    scope_site_path = "query__site"
    lock_patient_path = "query__patient"
    lock_level = "query"

    query = models.ForeignKey(DataQuery, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A correction names the history row the record's own update service wrote and
    # the record version it produced: raise -> correction -> close in one trail.
    target_history_id = models.PositiveBigIntegerField(null=True, blank=True)
    target_version = models.PositiveIntegerField(null=True, blank=True)
    corrected_field = models.CharField(max_length=60, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    # Imported from a trial bundle: the author's username as recorded ("" with no author: the system).
    author_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Query #{self.query_id} {self.get_kind_display()}"


class SourceVerification(AuditedModel):
    """A monitor's source data verification of one version of one record.

    Current iff ``record_version`` equals the target's ``version``; a later edit
    clears it by that comparison (derived, no write hook).
    """

    scope_trial_path = "trial"
    scope_site_path = "site"
    lock_patient_path = "patient"
    lock_level = "query"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="source_verifications")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    record_version = models.PositiveIntegerField()
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField()
    # Imported from a trial bundle: the monitor's username as recorded (``verified_by`` is
    # then the import service user); record_version 0 = a version from before the import.
    imported = models.BooleanField(default=False)
    verified_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-verified_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="sdv_target_idx"),
            models.Index(fields=["patient"], name="sdv_patient_idx"),
        ]

    def __str__(self) -> str:
        return f"SDV of {self.content_type.model} #{self.object_id} v{self.record_version}"
