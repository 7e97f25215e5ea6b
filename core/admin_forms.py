"""Admin plumbing: a reason for change on every admin edit of an audited record."""

from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin


class ReasonAdminForm(forms.ModelForm):
    reason_for_change = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when saving a record that already exists, including its inline rows (audit trail).",
    )

    def clean(self):  # type: ignore[no-untyped-def]
        # Required on every save of an existing record: the inline rows (sites, dose
        # levels) take their reason from here, and this form cannot see whether they changed.
        data = super().clean()
        if self.instance.pk and not (data.get("reason_for_change") or "").strip():
            self.add_error(
                "reason_for_change", "A reason for change is required when editing a record after first entry."
            )
        return data


class AuditedAdmin(SimpleHistoryAdmin):
    """Saves the parent and its inlines with the user and the reason; deletes nothing."""

    form = ReasonAdminForm

    def _reason(self, form) -> str:  # type: ignore[no-untyped-def]
        return (form.cleaned_data.get("reason_for_change") or "").strip() or "first entry (admin)"

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        obj._history_user = request.user
        obj._change_reason = self._reason(form)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        for instance in formset.save(commit=False):
            instance._history_user = request.user
            instance._change_reason = self._reason(form) if instance.pk else "first entry (admin)"
            instance.save()
        formset.save_m2m()

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class NoDeleteInline(admin.TabularInline):
    extra = 0
    can_delete = False
