"""The planning page's form: true DLT probabilities, the designs to compare and their
parameters. Shared parameters (target, cohort size, maximum N) apply to every design but
3+3; the service (analysis.services.simulation_run_check) holds the rules."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from analysis.designs.comparison import (
    DEFAULT_SEED,
    DEFAULT_TRIALS,
    DESIGN_LABELS,
    MAX_SEED,
    MAX_TRIALS,
    MIN_TRIALS,
)
from analysis.escalation import Variant
from trial.configuration import CRM_MODELS, DesignSpec
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


_DEFAULTS = DesignSpec()


def _numbers(raw: str, field: str) -> list[float]:
    parts = [p for p in raw.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError as exc:
        raise ValidationError(f"{field}: give numbers separated by commas, e.g. 0.05, 0.1, 0.2, 0.35.") from exc


class PlanningForm(forms.Form):
    trial = forms.ModelChoiceField(
        queryset=None,  # the trials the user plans (set in __init__)
        required=False,
        empty_label="None (free-standing)",
        help_text="Tie the run to a trial: its planners and sponsors see it. Free-standing runs are yours only.",
    )
    true_dlt_probabilities = forms.CharField(
        label="True DLT probabilities",
        help_text="One per dose level, lowest first, separated by commas (2 to 10 levels): 0.05, 0.12, 0.25, 0.40.",
        max_length=200,
    )
    designs = forms.MultipleChoiceField(
        label="Designs to compare",
        choices=list(DESIGN_LABELS.items()),
        widget=forms.CheckboxSelectMultiple,
    )
    variant = forms.ChoiceField(
        label="3+3 variant",
        choices=[(Variant.STORER_A.value, "Storer A"), (Variant.SIX_AT_MTD.value, "Six patients at the MTD")],
        initial=Variant.STORER_A.value,
    )
    target_dlt_rate = forms.FloatField(
        label="Target DLT rate", initial=_DEFAULTS.target_dlt_rate, help_text="BOIN, i3+3, mTPI-2, CRM (0.05 to 0.6)."
    )
    cohort_size = forms.IntegerField(label="Cohort size", initial=_DEFAULTS.cohort_size, help_text="Not 3+3.")
    max_sample_size = forms.IntegerField(
        label="Maximum sample size", initial=_DEFAULTS.max_sample_size, help_text="Not 3+3."
    )
    boin_p_saf = forms.FloatField(label="BOIN p.saf", required=False, help_text="Empty: 0.6 x target.")
    boin_p_tox = forms.FloatField(label="BOIN p.tox", required=False, help_text="Empty: 1.4 x target.")
    boin_n_earlystop = forms.IntegerField(
        label="BOIN n.earlystop", initial=_DEFAULTS.boin_n_earlystop, help_text="100: off in practice."
    )
    crm_skeleton = forms.CharField(
        label="CRM skeleton",
        required=False,
        max_length=200,
        help_text="One prior DLT probability per level, increasing (needed for the CRM).",
    )
    crm_model = forms.ChoiceField(label="CRM model", choices=[(m, m) for m in CRM_MODELS], initial=_DEFAULTS.crm_model)
    crm_prior_sd = forms.FloatField(label="CRM prior SD", initial=round(_DEFAULTS.crm_prior_sd, 4))
    overdose_threshold = forms.FloatField(
        label="Overdose threshold",
        required=False,
        help_text="A level whose true DLT probability is above this is an overdose. Empty: the target DLT rate.",
    )
    n_trials = forms.IntegerField(
        label="Simulated trials", initial=DEFAULT_TRIALS, help_text=f"{MIN_TRIALS:,} to {MAX_TRIALS:,}."
    )
    seed = forms.IntegerField(
        label="Seed", initial=DEFAULT_SEED, help_text=f"0 to {MAX_SEED}: the same seed gives the same trials."
    )

    def __init__(self, *args: Any, trials: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trial"].queryset = trials  # type: ignore[attr-defined]

    def clean_true_dlt_probabilities(self) -> list[float]:
        return _numbers(self.cleaned_data["true_dlt_probabilities"], "True DLT probabilities")

    def clean_crm_skeleton(self) -> list[float]:
        return _numbers(self.cleaned_data.get("crm_skeleton") or "", "CRM skeleton")


def planning_data(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The form's values as the service takes them (the API body's shape); fields the form
    refused are left out, so the service's check reports on the others."""
    data: dict[str, Any] = {}
    for name in ("true_dlt_probabilities", "n_trials", "seed", "overdose_threshold", "trial"):
        if cleaned.get(name) is not None:
            data[name] = cleaned[name]
    if data.get("overdose_threshold") is None and cleaned.get("target_dlt_rate") is not None:
        data["overdose_threshold"] = cleaned["target_dlt_rate"]
    if "designs" in cleaned:
        shared = {k: cleaned[k] for k in ("target_dlt_rate", "cohort_size", "max_sample_size") if k in cleaned}
        designs = []
        for design in cleaned["designs"]:
            values: dict[str, Any] = {"design": design}
            if design == "3+3":
                values["variant"] = cleaned.get("variant") or Variant.STORER_A.value
            else:
                values |= shared
            if design == "boin":
                values |= {k: cleaned.get(k) for k in ("boin_p_saf", "boin_p_tox")}
                if cleaned.get("boin_n_earlystop") is not None:
                    values["boin_n_earlystop"] = cleaned["boin_n_earlystop"]
            if design == "crm":
                values["crm_skeleton"] = cleaned.get("crm_skeleton") or []
                for k in ("crm_model", "crm_prior_sd"):
                    if cleaned.get(k) is not None:
                        values[k] = cleaned[k]
            designs.append(values)
        data["designs"] = designs
    return data
