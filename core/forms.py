"""Form pieces shared by every app: reason for change, e-signature, service errors."""

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError

from core.errors import EditConflict, RecordLocked

T = TypeVar("T")


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


def add_service_errors(form: forms.BaseForm, exc: ValidationError, *, skip_flagged: bool = False) -> None:
    """Show a service's ValidationError next to the fields it names (the rest on top).

    ``skip_flagged``: leave out the messages on a field the form itself already refused
    (the service saw that field as absent: "required" twice says nothing new)."""
    if hasattr(exc, "error_dict"):
        flagged = set(form.errors) if skip_flagged else set()
        for field, errors in exc.message_dict.items():
            target = field if field in form.fields else None
            if target is not None and target in flagged:
                continue
            form.add_error(target, errors)
    else:
        form.add_error(None, exc.messages)


def form_submit(form: forms.BaseForm, write: Callable[[], T], check: Callable[[dict[str, Any]], None]) -> T | None:
    """Validate a form and the service's rules in one round (issue 19).

    A valid form runs ``write`` (the service call); its refusals go next to the fields.
    An invalid form still runs ``check`` (the service's own validation, which writes
    nothing) on the fields that did clean, so the page lists the type errors ("enter a
    number") and the rule errors ("labs after the screening date") together instead of
    one set per submit. None when anything was refused.
    """
    if form.is_valid():
        try:
            return write()
        except EditConflict as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            add_service_errors(form, exc)
        return None
    if not form.is_bound:  # nothing was submitted (an empty POST): nothing to check either
        return None
    try:
        check(dict(form.cleaned_data))
    except RecordLocked:
        pass  # the lock gate answers for the page; a form error says nothing more
    except ValidationError as exc:
        add_service_errors(form, exc, skip_flagged=True)
    return None
