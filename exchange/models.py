"""Stored CDISC packages (issue 18): one zip per build, versioned per trial.

A sponsor (or an investigator: capability "export") asks for a package; a Celery task
builds it (exchange.services.cdisc_package_build): every dataset as XPT v5 and
Dataset-JSON v1.1, define.xml 2.1 and a conformance report, zipped. The zip lives under
``settings.CDISC_PACKAGE_ROOT`` (private: never under STATIC or a public MEDIA URL) and
is served only through the scoped download views. docs/exports.md, "CDISC packages".
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import AuditedModel
from trial.models import Trial


class CdiscPackage(AuditedModel):
    """One build of a trial's CDISC package. Created audited (who asked, when); the build's
    progress and outcome are written by the worker (exchange.services)."""

    scope_trial_path = "trial"
    scope_site_path = None

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    OPEN = (Status.QUEUED, Status.RUNNING)

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="cdisc_packages")
    # The package version: 1, 2, 3... per trial ("version" is AuditedModel's edit counter).
    number = models.PositiveIntegerField("package version")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The requester's role in the trial when asked: what a sponsor is shown instead of a name.
    requested_by_role = models.CharField(max_length=20)
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The zip, relative to settings.CDISC_PACKAGE_ROOT; empty until the build is done.
    file_name = models.CharField(max_length=200, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    dataset_counts = models.JSONField(default=dict, blank=True)
    conformance = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The worker holding the build (exchange.services: a redelivered task takes it over).
    claim = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["trial", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "number"], name="cdisc_package_number_once_per_trial"),
            # One build at a time per trial (exchange.services.cdisc_package_request says why).
            models.UniqueConstraint(
                fields=["trial"], condition=Q(status__in=["queued", "running"]), name="cdisc_package_one_open_per_trial"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="cdisc_package_progress_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trial.code} CDISC package v{self.number}"

    @property
    def download_name(self) -> str:
        return f"{self.trial.code}-cdisc-v{self.number}.zip"
