"""Query forms: thin; the services validate (one rule, one place)."""

from typing import Any

from django import forms
from django.db import models

from patients.forms import LockChangeForm

TEXT = {"rows": 3}


class RaiseForm(forms.Form):
    field_name = forms.ChoiceField(label="On", required=False)
    question = forms.CharField(label="Question", max_length=4000, widget=forms.Textarea(attrs=TEXT))

    def __init__(self, *args: Any, fields: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["field_name"].choices = [("", "the whole record"), *fields]  # type: ignore[attr-defined]


class AnswerForm(forms.Form):
    """The coordinator's answer; ``new_value`` is the queried field's own form field (a
    select for choices, a date for dates), present only where a correction is possible."""

    text = forms.CharField(label="Answer", max_length=4000, widget=forms.Textarea(attrs=TEXT))
    reason = forms.CharField(
        label="Reason for change",
        required=False,
        max_length=500,
        help_text="Required with a new value; the audit trail keeps it as 'Query #N: <reason>'.",
    )

    def __init__(self, *args: Any, correct: models.Field | None = None, **kwargs: Any) -> None:  # type: ignore[type-arg]
        super().__init__(*args, **kwargs)
        if correct is None:
            del self.fields["reason"]
            return
        field = _new_value_field(correct)
        if field is None:
            del self.fields["reason"]
            return
        field.label = f"New value of {correct.verbose_name} (leave empty if the data are right)"
        field.help_text = ""
        if isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
            field.choices = [("", "— no change —"), *[c for c in field.choices if c[0] != ""]]  # type: ignore[union-attr]
        self.fields["new_value"] = field
        self.order_fields(["text", "new_value", "reason"])

    def correction(self, field_name: str) -> dict[str, Any] | None:
        """{field: new value}, or None when no new value was given (an empty choice)."""
        if "new_value" not in self.fields or str(self.data.get(self.add_prefix("new_value"), "")).strip() == "":
            return None
        return {field_name: self.cleaned_data.get("new_value")}


_BOOLEAN = {"true": True, "false": False, "null": None}


def _new_value_field(correct: models.Field) -> forms.Field | None:  # type: ignore[type-arg]
    if isinstance(correct, models.BooleanField):
        # A select, not a checkbox: "no change" must differ from "No".
        choices = [("", "— no change —"), ("true", "Yes"), ("false", "No")]
        if correct.null:
            choices.append(("null", "Unknown"))
        return forms.TypedChoiceField(choices=choices, coerce=_BOOLEAN.__getitem__, required=False)
    return correct.formfield(required=False)  # type: ignore[no-any-return]


class CloseForm(forms.Form):
    note = forms.CharField(label="Closing note", required=False, max_length=4000, widget=forms.Textarea(attrs=TEXT))


class ReopenForm(forms.Form):
    text = forms.CharField(label="What is still wrong", max_length=4000, widget=forms.Textarea(attrs=TEXT))


class CasebookLockForm(LockChangeForm):
    """The casebook lock screen: the signed state change, and the acknowledged override of
    the pre-lock checklist (cleaning.services.casebook_lock_checked)."""

    override = forms.BooleanField(
        label="I acknowledge the open checklist items and lock anyway",
        required=False,
        help_text="Only when the pre-lock checklist is not clear; kept with the lock.",
    )
    override_reason = forms.CharField(
        label="Reason for locking over the checklist",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class VoidForm(forms.Form):
    """Void a record entered in error: the reason is required and kept."""

    void_reason = forms.CharField(
        label="Reason for voiding",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. entered on the wrong patient. The record is kept with this reason and its audit trail.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
