from django import forms

from core.forms import ReasonForChangeForm
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode
from safety.services import AE_FIELDS

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CtcaeTermSelect(forms.Select):
    """Each option says which grades its term defines (data-grades), for the grade picker."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):  # type: ignore[no-untyped-def]
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        term = getattr(value, "instance", None)
        if term is not None:
            option["attrs"]["data-grades"] = " ".join(str(g) for g in term.grades)
        return option


class CtcaeTermField(forms.ModelChoiceField):
    """A plain select of the dictionary (works without JS); safety_ae.js adds search."""

    widget = CtcaeTermSelect

    def label_from_instance(self, obj: CtcaeTerm) -> str:  # type: ignore[override]
        return f"{obj.term} — {obj.soc} ({obj.meddra_code})"


_NO_TERM = "— choose a term —"
_NO_GRADE = "— choose a grade —"


class AdverseEventForm(forms.ModelForm):
    term = CtcaeTermField(
        queryset=CtcaeTerm.objects.all(),
        label="CTCAE term",
        empty_label=_NO_TERM,
        help_text="Search by term, synonym or abbreviation (VOD, ALT, ANC), system organ class or MedDRA code.",
    )
    # Blank first so nothing is preselected; 1-5 are accepted here so that a grade the
    # term does not define reaches the service, which refuses it naming the term's
    # grades (PROTOCOL s4). The widget offers only the term's grades (below, and
    # safety_ae.js when the term changes).
    grade = forms.TypedChoiceField(
        label="Grade",
        choices=[("", _NO_GRADE), *[(g, str(g)) for g in range(1, 6)]],
        coerce=int,
        empty_value=None,
    )
    sae_reported_at = forms.DateTimeField(
        label="SAE reported to sponsor at (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    expected = forms.NullBooleanField(
        label="Expected (per the investigator's brochure)",
        required=False,
        widget=forms.NullBooleanSelect,
    )

    class Meta:
        model = AdverseEvent
        fields = list(AE_FIELDS)  # the same list the service writes (safety/services.py)
        widgets = {"onset": _DATE, "resolved": _DATE}

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        term = self._chosen_term()
        if term is not None:
            # A refused grade is not offered back: the error under the field names it.
            self.fields["grade"].widget.choices = [("", _NO_GRADE), *[(g, str(g)) for g in term.grades]]

    def _chosen_term(self) -> CtcaeTerm | None:
        raw = self["term"].value()
        if raw in (None, ""):
            return None
        return CtcaeTerm.objects.filter(pk=raw).first() if str(raw).isdigit() else None

    def _post_clean(self) -> None:
        # Model validation is the service's (one rule, one place): it reports per field.
        pass


class AdverseEventEditForm(ReasonForChangeForm, AdverseEventForm):
    pass


class LabConfirmForm(forms.Form):
    meddra_code = forms.CharField(widget=forms.HiddenInput)
    attribution = forms.ChoiceField(label="Attribution to INO", choices=AdverseEvent.Attribution.choices)


class LabDismissForm(forms.Form):
    meddra_code = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for dismissal", max_length=500)


class GvhdForm(forms.ModelForm):
    class Meta:
        model = GvhdEpisode
        fields = [
            "kind",
            "onset",
            "resolved",
            "acute_grade",
            "skin_stage",
            "liver_stage",
            "gi_stage",
            "chronic_severity",
            "liver_involved",
        ]
        widgets = {"onset": _DATE, "resolved": _DATE}
        labels = {"acute_grade": "Acute grade (MAGIC 1-4)", "chronic_severity": "Chronic severity (NIH)"}

    def _post_clean(self) -> None:
        pass


class AdjudicationForm(forms.Form):
    rule = forms.ChoiceField(label="DLT rule", choices=DltAdjudication.Rule.choices)
    adverse_event = forms.ModelChoiceField(queryset=AdverseEvent.objects.none(), required=False, label="Adverse event")
    event_date = forms.DateField(label="Event date", widget=_DATE)
    is_dlt = forms.TypedChoiceField(
        label="Decision",
        choices=[("true", "Confirmed: this is a DLT"), ("false", "Rejected: not a DLT")],
        coerce=lambda v: v == "true",
        widget=forms.RadioSelect,
    )
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    password = forms.CharField(
        label="Re-enter your password to sign",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, adverse_events, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["adverse_event"].queryset = adverse_events
