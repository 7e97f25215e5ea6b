from django import forms
from django.contrib import admin, messages

from core.admin_forms import AuditedAdmin, NoDeleteInline, ReasonAdminForm
from trial import services
from trial.configuration import (
    DESIGN_FIELDS,
    DoseLevelSpec,
    design_change_problems,
    design_problems,
    dose_level_problems,
)
from trial.models import DoseLevel, ProtocolVersion, RoleGrant, Site, Trial


class DoseLevelFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        specs = [
            DoseLevelSpec(f.cleaned_data["level"], f.cleaned_data["dose_mg_m2"])
            for f in self.forms
            if f.cleaned_data
            and f.cleaned_data.get("level") is not None
            and f.cleaned_data.get("dose_mg_m2") is not None
        ]
        problems = dose_level_problems(specs)
        if problems:
            raise forms.ValidationError(problems)
        # The CRM skeleton has one probability per dose level (issue 17).
        skeleton = design_problems(self.instance.design_spec(), len(specs)).get("crm_skeleton")
        if skeleton:
            raise forms.ValidationError([f"crm_skeleton: {m}" for m in skeleton])


class SiteInline(NoDeleteInline):
    model = Site


class DoseLevelInline(NoDeleteInline):
    model = DoseLevel
    formset = DoseLevelFormSet


class ProtocolVersionInline(NoDeleteInline):
    model = ProtocolVersion


class TrialAdminForm(ReasonAdminForm):
    design_protocol_version = forms.CharField(
        required=False,
        max_length=20,
        help_text="Changing the design or its parameters after the first enrolment: the protocol version "
        "(one of this trial's) that amends it; the reason for change says why.",
    )

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # A design parameter left out of the submitted form keeps its value (the model's
        # default for a new trial): a 3+3 trial needs none of them.
        for name in self._kept_when_absent():
            self.fields[name].required = False

    def _kept_when_absent(self) -> list[str]:
        # A checkbox (backfill_enabled) is absent from the POST when unticked: absent means
        # False there, not "left out of the form".
        return [
            name
            for name in DESIGN_FIELDS
            if name in self.fields
            and self.is_bound
            and name not in self.data
            and not isinstance(self.fields[name], forms.BooleanField)
        ]

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        for name in self._kept_when_absent():
            data[name] = getattr(self.instance, name)
        trial = self.instance
        if not trial.pk:
            return data
        before = Trial.objects.get(pk=trial.pk)
        changed = [f for f in DESIGN_FIELDS if f in data and data[f] != getattr(before, f)]
        enrolled = before.sites.filter(patients__enrolled_on__isnull=False).count()
        problems = design_change_problems(
            changed,
            enrolled,
            (data.get("design_protocol_version") or "").strip() or None,
            list(before.protocol_versions.values_list("version", flat=True)),
            data.get("reason_for_change") or "",
        )
        for field, texts in problems.items():
            name = {"protocol_version": "design_protocol_version", "reason": "reason_for_change"}[field]
            for message in texts:
                self.add_error(name, message)
        self.design_changed_after_enrolment = bool(changed and enrolled)
        return data


@admin.register(Trial)
class TrialAdmin(AuditedAdmin):
    form = TrialAdminForm
    list_display = ["code", "title", "design", "escalation_variant", "cycle_length_days"]

    def _reason(self, form) -> str:  # type: ignore[no-untyped-def]
        reason = super()._reason(form)
        if getattr(form, "design_changed_after_enrolment", False):
            version = form.cleaned_data.get("design_protocol_version")
            reason = f"design change under protocol version {version}: {reason}"
        return reason

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        if change and any(f in form.changed_data for f in DESIGN_FIELDS):
            services.computation_request(obj.pk, "escalation")

    inlines = [SiteInline, DoseLevelInline, ProtocolVersionInline]


class RoleGrantForm(forms.ModelForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why the role is granted or revoked.")
    revoke = forms.BooleanField(required=False, help_text="Tick to revoke this grant (it is kept in the record).")

    class Meta:
        model = RoleGrant
        fields = ["user", "trial", "role", "site"]


@admin.register(RoleGrant)
class RoleGrantAdmin(admin.ModelAdmin):
    form = RoleGrantForm
    list_display = ["user", "trial", "role", "site", "granted_at", "granted_by", "revoked_at"]
    list_filter = ["trial", "role", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return ["user", "trial", "role", "site", "granted_at", "granted_by", "revoked_at", "revoked_by"] if obj else []

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj:
            return [
                "user",
                "trial",
                "role",
                "site",
                "granted_at",
                "granted_by",
                "revoked_at",
                "revoked_by",
                "revoke",
                "reason",
            ]
        return ["user", "trial", "role", "site", "reason"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Through the services, so grants and revocations are audited with a reason.
        reason = form.cleaned_data["reason"]
        if not change:
            grant = services.role_grant(
                user=obj.user, trial=obj.trial, role=obj.role, site=obj.site, by=request.user, reason=reason
            )
            obj.pk = grant.pk
        elif form.cleaned_data.get("revoke"):
            services.role_revoke(obj, by=request.user, reason=reason)
        else:
            messages.info(request, "Nothing changed: a grant can only be revoked.")

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
