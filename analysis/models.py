"""Stored planning simulations (issue 17): operating characteristics of several designs.

A SimulationRun is a planning artefact, not clinical data: no patient, no casebook, so not
an AuditedModel (its progress is written many times per run). Who asked and when, who
cancelled and when, are fields of the row; the inputs never change after the request.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from analysis.designs.comparison import DEFAULT_TRIALS, MAX_SEED, MAX_TRIALS, MIN_TRIALS
from trial.models import Trial


class SimulationRun(models.Model):
    """Operating characteristics of one or more designs for true DLT probabilities, by a
    seeded simulation that a Celery worker runs (analysis.tasks.simulation_run_task).

    Tied to a trial (its dose levels and design as the defaults; seen by the trial's
    planners) or free-standing (``trial`` empty; seen by the user who asked only).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    # Scoped through trial.access for the runs tied to a trial (analysis.selectors adds the
    # user's own free-standing runs).
    scope_trial_path = "trial"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, null=True, blank=True, related_name="simulation_runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    # Each design with every parameter it uses (analysis.designs.comparison.DesignChoice.parameters).
    designs = models.JSONField()
    true_dlt_probabilities = models.JSONField()
    n_trials = models.PositiveIntegerField(default=DEFAULT_TRIALS)
    seed = models.PositiveBigIntegerField()
    overdose_threshold = models.FloatField(
        help_text="A level whose true DLT probability is above this is an overdose (the overdose fraction)."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with every progress report: a run whose worker died is claimed again after
    # RUNNING_STALE_SECONDS without one (analysis.services.simulation_run_execute).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(n_trials__gte=MIN_TRIALS) & Q(n_trials__lte=MAX_TRIALS), name="simulation_run_n_trials"
            ),
            models.CheckConstraint(condition=Q(seed__lte=MAX_SEED), name="simulation_run_seed"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="simulation_run_progress"),
            models.CheckConstraint(
                condition=Q(overdose_threshold__gte=0) & Q(overdose_threshold__lte=1),
                name="simulation_run_overdose_threshold",
            ),
        ]
        indexes = [models.Index(fields=["requested_by", "-requested_at"], name="simulation_run_requester")]

    def __str__(self) -> str:
        return f"simulation run #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.CANCELLED, self.Status.FAILED}
