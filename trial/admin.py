from django import forms
from django.contrib import admin, messages

from core.admin_forms import AuditedAdmin, NoDeleteInline
from trial import services
from trial.configuration import DoseLevelSpec, dose_level_problems
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


class SiteInline(NoDeleteInline):
    model = Site


class DoseLevelInline(NoDeleteInline):
    model = DoseLevel
    formset = DoseLevelFormSet


class ProtocolVersionInline(NoDeleteInline):
    model = ProtocolVersion


@admin.register(Trial)
class TrialAdmin(AuditedAdmin):
    list_display = ["code", "title", "escalation_variant", "cycle_length_days"]
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
