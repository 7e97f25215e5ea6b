"""Human labels for every enumeration code a page can show (issue 16 item 20): the one place
that turns ``mtd_declared`` into "MTD declared". Templates use ``{% load labels %}`` and
``{{ value|label }}``.

The table is built from every model field's choices (their labels are the ones the forms
show) and the pure rule modules' vocabularies (escalation decisions, DLT statuses and
rules, eligibility criteria, survival subgroups), which have no labels of
their own because rule modules stay free of presentation.
"""

import re
from functools import cache

from django.apps import apps

from analysis.escalation import Decision, DltStatus
from safety.dlt import DltRule, Evaluability

RULE_LABELS: dict[str, str] = {
    # analysis.escalation.Decision (docs/api.md vocabulary)
    Decision.ENROLL: "Enrol at the current level",
    Decision.WAIT: "Wait for DLT evaluation",
    Decision.ESCALATE: "Escalate",
    Decision.EXPAND: "Expand the cohort",
    "stay": "Stay at the current level",  # analysis.designs.common.DesignDecision.STAY (issue 17)
    Decision.DE_ESCALATE: "De-escalate",
    Decision.MTD_DECLARED: "MTD declared",
    Decision.STOP_NO_MTD: "Stop: no MTD",
    # analysis.escalation.DltStatus and safety.dlt.Evaluability
    DltStatus.DLT: "DLT",
    DltStatus.NO_DLT: "No DLT",
    DltStatus.PENDING: "Pending (in the DLT window)",
    DltStatus.NON_EVALUABLE: "Not evaluable (replaced)",
    Evaluability.EVALUABLE_WITH_DLT: "Evaluable, with DLT",
    Evaluability.EVALUABLE_WITHOUT_DLT: "Evaluable, no DLT",
    # safety.dlt.DltRule (PROTOCOL section 5)
    DltRule.SOS: "SOS/VOD",
    DltRule.PROLONGED_CYTOPENIA: "Prolonged cytopenia",
    DltRule.NON_HEMATOLOGIC_GRADE3_RELATED: "Non-haematological grade ≥ 3, related",
    DltRule.DEATH: "Death",
    # patients.eligibility criteria keys (PROTOCOL section 3)
    "age": "Age",
    "diagnosis": "Diagnosis",
    "cr_at_day30": "CR at day +30 after HCT",
    "high_risk": "High-risk disease",
    "enrolment_window": "Enrolment window after HCT",
    "graft_function": "Graft function (platelets, ANC)",
    "gvhd": "GVHD",
    "sos": "SOS/VOD",
    # criterion status
    "pass": "Pass",
    "fail": "Fail",
    "missing": "Missing data",
    # survival subgroups (analysis.services._survival)
    "mrd": "MRD",
    "conditioning": "Conditioning",
    "dose_level": "Dose level",
    "mac": "Myeloablative (MAC)",
    "ric_nma": "Reduced intensity / non-myeloablative",
}


@cache
def label_table() -> dict[str, str]:
    """Every code -> its label: model choices first, the rule vocabularies over them."""
    table: dict[str, str] = {}
    for model in apps.get_models():
        for f in model._meta.get_fields():
            for value, text in getattr(f, "flatchoices", None) or ():
                if isinstance(value, str) and value:
                    table.setdefault(value, str(text))
            name = getattr(f, "name", "")
            verbose = getattr(f, "verbose_name", None)
            if "_" in name and verbose:  # field names shown in audit trails
                table.setdefault(name, str(verbose)[:1].upper() + str(verbose)[1:])
    table.update({str(k): v for k, v in RULE_LABELS.items()})
    return table


def label(code: object) -> str:
    """The human label of ``code``; a code without one reads as words, never with underscores."""
    if code is None:
        return ""
    text = str(code)
    found = label_table().get(text)
    if found is not None:
        return found
    return text.replace("_", " ") if text.islower() and "_" in text else text


_CODE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
# One-word codes the eligibility reasons quote (patients.eligibility writes "transplanted in
# cr2", "(c) mac conditioning"): the disease status and conditioning at HCT, and the diagnosis.
# Only these fields' codes, so that an English word that is also some other code stays as is.
SENTENCE_CODE_FIELDS = (("patients.Transplant", "disease_status"), ("patients.Transplant", "conditioning"))


@cache
def _sentence_codes() -> re.Pattern[str]:
    words = sorted(
        {
            str(value)
            for model, name in SENTENCE_CODE_FIELDS
            for value, _ in apps.get_model(model)._meta.get_field(name).flatchoices
            if isinstance(value, str) and value and "_" not in value
        },
        key=len,
        reverse=True,
    )
    return re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")


def label_codes_in(text: str) -> str:
    """``text`` with every snake_case code in it, and the one-word eligibility codes
    (cr2, mac...), replaced by its label."""
    text = _CODE.sub(lambda m: label(m.group(0)), text)
    return _sentence_codes().sub(lambda m: label(m.group(0)), text)


# Eligibility outcomes (issue 19): pass, fail and missing data each with its own word,
# icon and colour class, so that missing data never reads as a screen failure.
# (css class suffix, icon, word); the icon is decoration, the word carries the meaning.
OUTCOME_STYLES: dict[str, tuple[str, str]] = {
    "pass": ("pass", "✓"),
    "fail": ("fail", "✗"),
    "missing": ("missing", "?"),
    "eligible": ("pass", "✓"),
    "not_eligible": ("fail", "✗"),
    "incomplete": ("missing", "?"),
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def screening_outcome_text(result: str, criteria: list[dict[str, object]] | None) -> str:
    """The overall result in words: "Incomplete: 2 criteria missing" rather than a
    failure; a screen failure also says how many criteria are still missing."""
    if criteria is None:
        return label(result)
    failed = sum(1 for c in criteria if c.get("status") == "fail")
    missing = sum(1 for c in criteria if c.get("status") == "missing")
    if result == "incomplete":
        return f"Incomplete: {_plural(missing, 'criterion')} missing".replace("criterions", "criteria")
    if result == "not_eligible":
        text = f"Not eligible (screen failure): {_plural(failed, 'criterion')} failed".replace("criterions", "criteria")
        return text + (f", {missing} missing" if missing else "")
    return label(result)


def outcome_style(code: str) -> tuple[str, str]:
    """(css class suffix, icon) of an eligibility status or overall result."""
    return OUTCOME_STYLES.get(code, ("missing", "?"))
