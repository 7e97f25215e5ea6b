from django import forms

from core.forms import ReasonForChangeForm
from patients.models import Patient
from trial import access


class PatientRegisterForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["site", "subject_id", "sex", "race", "birth_year"]
        help_texts = {"birth_year": "Year only: Trialdesk stores no birth dates or names."}

    def __init__(self, *args, user, trial, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The choice list is scoped like everything else: only the user's own sites.
        self.fields["site"].queryset = access.sites_for(user, trial)
        self.instance.trial = trial

    def validate_unique(self) -> None:
        # Uniqueness is the service's rule (one place); it reports it on subject_id.
        pass


class PatientEditForm(ReasonForChangeForm, forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["sex", "race", "birth_year"]
