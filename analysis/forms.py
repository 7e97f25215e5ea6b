from django import forms

from analysis.escalation import Variant
from trial.models import Trial


class EscalationSignForm(forms.Form):
    decision = forms.CharField(widget=forms.HiddenInput)
    dose_level = forms.IntegerField(widget=forms.HiddenInput)
    rationale = forms.CharField(
        label="Basis of the decision",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. SRC meeting minutes ref.",
    )
    password = forms.CharField(
        label="Re-enter your password to sign", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class OperatingCharacteristicsForm(forms.Form):
    p = forms.CharField(
        label="True DLT probability per level", initial="0.1,0.2,0.3,0.4", help_text="Comma-separated, level 1 first."
    )
    variant = forms.ChoiceField(choices=Trial.EscalationVariant.choices, initial=Variant.STORER_A.value)
