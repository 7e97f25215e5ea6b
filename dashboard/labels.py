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

from safety.dlt import DltRule, Evaluability
from trial.escalation import Decision, DltStatus

RULE_LABELS: dict[str, str] = {
    # trial.escalation.Decision (docs/api.md vocabulary)
    Decision.ENROLL: "Enrol at the current level",
    Decision.WAIT: "Wait for DLT evaluation",
    Decision.ESCALATE: "Escalate",
    Decision.EXPAND: "Expand the cohort",
    "stay": "Stay at the current level",  # analysis.designs.common.DesignDecision.STAY (issue 17)
    Decision.DE_ESCALATE: "De-escalate",
    Decision.MTD_DECLARED: "MTD declared",
    Decision.STOP_NO_MTD: "Stop: no MTD",
    # trial.escalation.DltStatus and safety.dlt.Evaluability
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
    # survival subgroups (trial.services._survival)
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


def label_codes_in(text: str) -> str:
    """``text`` with every snake_case code in it replaced by its label."""
    return _CODE.sub(lambda m: label(m.group(0)), text)
