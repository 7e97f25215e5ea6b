"""Patient forms: shape and types only. Every clinical rule is the service's (one place);
its errors come back next to the fields through core.forms.add_service_errors."""

from django import forms

from core.forms import ReasonForChangeForm
from patients.models import Assessment, Patient, PatientEvent, Screening, Transplant
from patients.services import (
    ASSESSMENT_FIELDS,
    DISEASE_FIELDS,
    EDITABLE_FIELDS,
    EVENT_FIELDS,
    SCREENING_FIELDS,
    TRANSPLANT_FIELDS,
)
from trial import access


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):  # type: ignore[no-untyped-def]
        super().__init__(attrs, format="%Y-%m-%d")


def _date_widgets(*fields: str) -> dict[str, forms.Widget]:
    return {field: DateInput() for field in fields}


class ServiceValidatedModelForm(forms.ModelForm):
    def validate_unique(self) -> None:
        # Uniqueness is the service's rule (one place); it reports it on the right field.
        pass


class PatientRegisterForm(ServiceValidatedModelForm):
    class Meta:
        model = Patient
        fields = ["site", "subject_id", "sex", "race", "birth_year", *DISEASE_FIELDS]
        help_texts = {"birth_year": "Year only: Trialdesk stores no birth dates or names."}

    def __init__(self, *args, user, trial, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The choice list is scoped like everything else: only the user's own sites.
        sites = access.sites_for(user, trial)
        self.fields["site"].queryset = sites
        # A coordinator of one site registers there: it comes preselected (still a choice to check).
        only = list(sites.values_list("pk", flat=True)[:2])
        if len(only) == 1:
            self.initial.setdefault("site", only[0])
        self.instance.trial = trial


class PatientEditForm(ReasonForChangeForm, ServiceValidatedModelForm):
    class Meta:
        model = Patient
        fields = list(EDITABLE_FIELDS)


class TransplantForm(ServiceValidatedModelForm):
    class Meta:
        model = Transplant
        fields = list(TRANSPLANT_FIELDS)
        widgets = _date_widgets("date")
        help_texts = {"date": "Day 0: the stem cell infusion date."}


class TransplantEditForm(ReasonForChangeForm, TransplantForm):
    pass


class ConsentForm(forms.Form):
    protocol_version = forms.ModelChoiceField(queryset=None, label="Protocol version consented to")  # type: ignore[arg-type]
    date = forms.DateField(label="Consent date", widget=DateInput())
    version_override_reason = forms.CharField(
        required=False,
        label="Investigator's reason for a version other than the current one",
        help_text="Only when consenting to a version superseded on the consent date (investigators only).",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )

    def __init__(self, *args, trial, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["protocol_version"].queryset = trial.protocol_versions.order_by("effective")


class ScreeningForm(ServiceValidatedModelForm):
    class Meta:
        model = Screening
        fields = list(SCREENING_FIELDS)
        widgets = _date_widgets("date", "lab_date")
        help_texts = {
            "date": "Eligibility is judged for this date; enrol while the screening is valid.",
            "platelets_10e9_l": "In x10^9/L (= x10^3/uL): 50, not 50000.",
            "anc_10e9_l": "In x10^9/L: 1.2, not 1200.",
            "agvhd_grade": "0 if none.",
        }


class EnrolForm(forms.Form):
    enrolled_on = forms.DateField(label="Enrolment date", widget=DateInput())
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, trial, investigator: bool, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if trial.backfill_enabled:
            # Issue 17: a backfill place is an open slot, for whoever enrols.
            self.fields["backfill"] = forms.BooleanField(
                required=False,
                label="Backfill",
                help_text="Enrol into a backfill place (a cleared level below the current one) instead of the "
                "dose-finding cohort; without a chosen level, the highest level with a backfill place.",
            )
        if investigator:
            # Only investigators may choose a level; it is recorded as a protocol deviation.
            self.fields["dose_level"] = forms.ModelChoiceField(
                queryset=trial.dose_levels.order_by("level"),
                required=False,
                label="Dose level (investigator's choice)",
                help_text="Leave empty to assign the lowest level with an open slot.",
            )
            self.fields["deviation_reason"] = forms.CharField(
                required=False,
                label="Reason for enrolling at this level (protocol deviation)",
                widget=forms.Textarea(attrs={"rows": 2}),
                max_length=1000,
            )


class AssessmentForm(ServiceValidatedModelForm):
    class Meta:
        model = Assessment
        fields = list(ASSESSMENT_FIELDS)
        widgets = _date_widgets("date")
        help_texts = {
            "method": "MRD only.",
            "result": "MRD only.",
            "level": "MRD only: a fraction, e.g. 0.0001 for 10^-4.",
            "blasts_pct": "Bone marrow only.",
            "response": "Bone marrow only.",
        }


class AssessmentEditForm(ReasonForChangeForm, AssessmentForm):
    pass


class EventForm(ServiceValidatedModelForm):
    class Meta:
        model = PatientEvent
        fields = list(EVENT_FIELDS)
        widgets = {**_date_widgets("date"), "details": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "cause": "Death only.",
            "reason": "End of treatment only.",
            "blasts_pct": "Relapse only.",
            "relapse_site": "Relapse only: marrow, blood or the extramedullary site.",
        }


class EventEditForm(ReasonForChangeForm, EventForm):
    pass


class LockChangeForm(forms.Form):
    """Freeze, lock or unlock a casebook (or lock/unlock the trial), signed by password."""

    action = forms.ChoiceField(label="Change the state to", widget=forms.RadioSelect)
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to unlock (or to step back from locked to frozen); kept in the audit trail.",
    )
    password = forms.CharField(
        label="Re-enter your password to sign",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = choices  # type: ignore[attr-defined]


class CasebookHistoryFilterForm(forms.Form):
    """The casebook audit trail's filters (GET): record type, who, and a date range."""

    record_type = forms.ChoiceField(label="Record type", required=False)
    user = forms.ChoiceField(label="Changed by", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, types: list[tuple[str, str]], people: list[tuple[int, str]], **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["record_type"].choices = [("", "every record"), *types]  # type: ignore[attr-defined]
        self.fields["user"].choices = [("", "anyone"), *[(str(pk), name) for pk, name in people]]  # type: ignore[attr-defined]

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            self.add_error("until", "The end of the range must be on or after its start.")
        return data
