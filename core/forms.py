"""Form pieces shared by every app: reason for change, e-signature, service errors."""

from django import forms
from django.core.exceptions import ValidationError


class ReasonForChangeForm(forms.Form):
    """Mixed into every edit form of a record that already exists."""

    reason_for_change = forms.CharField(
        label="Reason for change",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for any change after first entry; kept in the audit trail.",
        error_messages={"required": "A reason for change is required when editing a record after first entry."},
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class SignatureForm(forms.Form):
    password = forms.CharField(
        label="Re-enter your password to sign",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names (the rest on top)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
