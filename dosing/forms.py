from django import forms

from core.forms import ReasonForChangeForm
from dosing.carry_forward import LABELS, CarriedStatus, unconfirmed
from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel

YES_NO_UNKNOWN = [("", "Not recorded"), ("false", "No"), ("true", "Yes")]


def _yes_no(label: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=YES_NO_UNKNOWN,
        coerce=lambda v: v == "true",
        empty_value=None,
        required=False,
    )


def _date_widget() -> forms.DateInput:
    """An <input type="date">: its value must be ISO (YYYY-MM-DD) or browsers show it blank."""
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CycleForm(forms.Form):
    """One coordinator screen per cycle: labs, GVHD/SOS status, dose, administration.

    Only input shapes are checked here; every dosing rule is the service's.
    """

    number = forms.IntegerField(label="Cycle number", min_value=1)
    day1 = forms.DateField(label="Day 1 (dose date)", widget=_date_widget())
    # Labs (SI units)
    lab_date = forms.DateField(
        label="Labs drawn on", required=False, widget=_date_widget(),
        help_text="Leave empty to use labs already on file.",
    )  # fmt: skip
    platelets = forms.DecimalField(
        label="Platelets (x10^9/L)", required=False, min_value=0, max_digits=7, decimal_places=1
    )
    anc = forms.DecimalField(label="ANC (x10^9/L)", required=False, min_value=0, max_digits=6, decimal_places=2)
    hemoglobin = forms.DecimalField(
        label="Haemoglobin (g/L)", required=False, min_value=0, max_digits=5, decimal_places=1
    )
    bilirubin = forms.DecimalField(
        label="Bilirubin (umol/L)", required=False, min_value=0, max_digits=6, decimal_places=1
    )
    alt = forms.DecimalField(label="ALT (U/L)", required=False, min_value=0, max_digits=7, decimal_places=1)
    ast = forms.DecimalField(label="AST (U/L)", required=False, min_value=0, max_digits=7, decimal_places=1)
    # GVHD / SOS status at the visit
    acute_gvhd_grade = forms.TypedChoiceField(
        label="Active acute GVHD grade",
        choices=[("", "Not recorded"), ("0", "None"), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4")],
        coerce=int, empty_value=None, required=False,
    )  # fmt: skip
    liver_gvhd = _yes_no("Active liver GVHD")
    sos = _yes_no("SOS/VOD")
    # Dose and administration
    height_cm = forms.DecimalField(label="Height (cm)", required=False, max_digits=6, decimal_places=1)
    weight_kg = forms.DecimalField(label="Weight (kg)", required=False, max_digits=6, decimal_places=1)
    reduced = forms.BooleanField(label="Reduced dose", required=False)
    reduction_reason = forms.ChoiceField(
        label="Reason for the reduction", choices=[("", "—"), *Cycle.ReductionReason.choices], required=False
    )
    delay_reason = forms.CharField(label="Reason for a delay", max_length=200, required=False)
    given = forms.TypedChoiceField(
        label="Dose given", choices=[("true", "Given"), ("false", "Not given")], coerce=lambda v: v == "true",
        initial="true",
    )  # fmt: skip
    not_given_reason = forms.CharField(label="Reason not given", max_length=200, required=False)
    dose_mg = forms.DecimalField(
        label="Administered dose (mg)", required=False, min_value=0, max_digits=7, decimal_places=2,
        help_text="Leave empty to record the computed dose.",
    )  # fmt: skip

    def __init__(self, *args, carried: CarriedStatus | None = None, saving: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        """``carried``: the GVHD/SOS status proposed from the latest record (dosing.carry_forward):
        the fields start with it, each marked with its source, and a save that keeps any of
        them needs ``status_confirmed`` ticked. ``saving``: the form was sent to save (not Check)."""
        super().__init__(*args, **kwargs)
        self.carried = carried if carried is not None and carried.values else None
        self.saving = saving
        if self.carried is None:
            return
        for value in self.carried.values:
            field = self.fields[value.field]
            shown = dict(field.choices)[_choice(value.value)]  # type: ignore[attr-defined]
            field.help_text = (
                f"Carried forward from {value.source} ({shown}), confirm: tick the box below or change it."
            )
            self.initial.setdefault(value.field, _choice(value.value))
        self.fields["status_confirmed"] = forms.BooleanField(
            label="I confirm the GVHD/SOS status carried forward is still the patient's status at this visit",
            required=False,
        )
        # right after the status fields
        order = list(self.fields)
        order.remove("status_confirmed")
        order.insert(order.index("sos") + 1, "status_confirmed")
        self.order_fields(order)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if self.saving and self.carried is not None and not data.get("status_confirmed"):
            kept = unconfirmed(self.carried, data)
            if kept:
                names = ", ".join(LABELS[f] for f in kept)
                self.add_error(
                    "status_confirmed",
                    f"The GVHD/SOS status is carried forward from {self.carried.sources} ({names}): "
                    "confirm it is still the status at this visit, or change it.",
                )
        return data


def _choice(value: int | bool) -> str:
    """A carried value as the status fields' choices spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class DeviationForm(forms.ModelForm):
    class Meta:
        model = Deviation
        fields = ["kind", "cycle_number", "date", "reason"]
        widgets = {"date": _date_widget()}


class FullDoseRestoreForm(ReasonForChangeForm):
    pass


class MedicationForm(forms.ModelForm):
    class Meta:
        model = ConcomitantMedication
        fields = ["agent", "other_agent", "start", "stop"]
        widgets = {"start": _date_widget(), "stop": _date_widget()}


class MedicationEditForm(ReasonForChangeForm, MedicationForm):
    pass


class CycleCorrectionForm(ReasonForChangeForm, CycleForm):
    """The correction of a recorded cycle: what the site entered, without the cycle number
    and the labs (their own records); every rule is the service's (cycle_update)."""

    # An <input type="date"> shows its value only in ISO form (the locale's 29/03/2024 shows empty).
    day1 = forms.DateField(label="Day 1 (dose date)", widget=_date_widget())
    number = None  # type: ignore[assignment]
    lab_date = None  # type: ignore[assignment]
    platelets = None  # type: ignore[assignment]
    anc = None  # type: ignore[assignment]
    hemoglobin = None  # type: ignore[assignment]
    bilirubin = None  # type: ignore[assignment]
    alt = None  # type: ignore[assignment]
    ast = None  # type: ignore[assignment]

    field_order = [
        "day1",
        "given",
        "not_given_reason",
        "acute_gvhd_grade",
        "liver_gvhd",
        "sos",
        "height_cm",
        "weight_kg",
        "reduced",
        "reduction_reason",
        "delay_reason",
        "dose_mg",
        "reason_for_change",
    ]

    @staticmethod
    def initial_for(cycle: Cycle) -> dict[str, object]:
        """The cycle's values as the form shows them (yes/no choices as "true"/"false")."""

        def choice(value: bool | None) -> str:
            return "" if value is None else ("true" if value else "false")

        return {
            "day1": cycle.day1,
            "given": choice(cycle.given),
            "not_given_reason": cycle.not_given_reason,
            "acute_gvhd_grade": "" if cycle.acute_gvhd_grade is None else str(cycle.acute_gvhd_grade),
            "liver_gvhd": choice(cycle.liver_gvhd),
            "sos": choice(cycle.sos),
            "height_cm": cycle.height_cm,
            "weight_kg": cycle.weight_kg,
            "reduced": cycle.reduced,
            "reduction_reason": cycle.reduction_reason,
            "delay_reason": cycle.delay_reason,
            "dose_mg": cycle.dose_mg,
            "version": cycle.version,
        }


class LabPanelCorrectionForm(ReasonForChangeForm, forms.ModelForm):
    """The correction of a lab panel (visit or unscheduled); every rule is the service's
    (lab_panel_update)."""

    class Meta:
        model = LabPanel
        fields = ["date", "platelets", "anc", "hemoglobin", "bilirubin", "alt", "ast"]
        widgets = {"date": _date_widget()}

    field_order = ["date", "platelets", "anc", "hemoglobin", "bilirubin", "alt", "ast", "reason_for_change"]
