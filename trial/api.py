"""Trials through the API: the configuration (read-only).

The trial-level results (escalation, survival) are actions of the same resource added by
analysis.api, which registers it (analysis.urls)."""

from rest_framework import serializers, viewsets

from trial import selectors
from trial.models import DoseLevel, ProtocolVersion, Site, Trial
from trial.permissions import API_WRITE_PERMISSIONS


class TrialOutput(serializers.ModelSerializer):
    class SiteOut(serializers.ModelSerializer):
        class Meta:
            model = Site
            fields = ["code", "name", "country"]

    class DoseLevelOut(serializers.ModelSerializer):
        dose_mg_m2 = serializers.FloatField()

        class Meta:
            model = DoseLevel
            fields = ["level", "dose_mg_m2"]

    class ProtocolVersionOut(serializers.ModelSerializer):
        class Meta:
            model = ProtocolVersion
            fields = ["version", "effective", "max_cycles"]

    sites = SiteOut(many=True, read_only=True)
    dose_levels = DoseLevelOut(many=True, read_only=True)
    protocol_versions = ProtocolVersionOut(many=True, read_only=True)

    class Meta:
        model = Trial
        fields = [
            "id", "code", "title", "design", "target_dlt_rate", "cohort_size", "max_sample_size", "boin_p_saf",
            "boin_p_tox", "boin_n_earlystop", "crm_skeleton", "crm_model", "crm_prior_sd", "backfill_enabled",
            "backfill_max_per_level", "backfill_levels", "escalation_variant",
            "expansion_cohort_size", "cycle_length_days",
            "dlt_window_cycles", "bsa_method", "age_min", "age_max", "enrol_day_min", "enrol_day_max", "min_platelets",
            "min_anc",
            "screening_lab_days", "max_delay_days", "reduction_percent", "dlt_min_grade", "dlt_cytopenia_days",
            "sae_report_hours", "survival_origin", "landmark_days", "sites", "dose_levels", "protocol_versions",
        ]  # fmt: skip


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TrialOutput
    queryset = Trial.objects.none()  # the real queryset is scoped per request
    permission_classes = API_WRITE_PERMISSIONS

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.trial_list(self.request.user)
