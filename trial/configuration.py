"""Pure checks of a trial's configuration (no Django): dose levels and protocol versions.

Used by the admin forms, the services and the bundle importer alike.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class DoseLevelSpec:
    level: int
    dose_mg_m2: Decimal


def dose_level_problems(levels: Sequence[DoseLevelSpec]) -> list[str]:
    """Levels are numbered 1..n without gaps and doses strictly increase with the level.

    PROTOCOL s1: "Start at L1. No level below L1." The 3+3 engine walks the levels in
    order, so a gap or a non-increasing dose would make "escalate" meaningless.
    """
    problems: list[str] = []
    ordered = sorted(levels, key=lambda spec: spec.level)
    numbers = [spec.level for spec in ordered]
    if len(set(numbers)) != len(numbers):
        problems.append("Dose level numbers must be unique.")
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"Dose levels must be numbered 1 to {len(numbers)} without gaps (got {numbers}).")
    for spec in ordered:
        if spec.dose_mg_m2 <= 0:
            problems.append(f"Level {spec.level}: the dose must be greater than 0 mg/m².")
    for lower, higher in zip(ordered, ordered[1:], strict=False):
        if higher.dose_mg_m2 <= lower.dose_mg_m2:
            problems.append(
                f"Level {higher.level} ({higher.dose_mg_m2} mg/m²) must be a higher dose than "
                f"level {lower.level} ({lower.dose_mg_m2} mg/m²)."
            )
    return problems


# --- the dose-finding design (issue 17) ------------------------------------------------

DESIGNS = ("3+3", "boin", "i3+3", "mtpi2", "crm")
CRM_MODELS = ("empiric", "logistic")
# The trial fields that make up the design; a change of any of them after the first
# enrolment needs a protocol version and a reason (trial.services.trial_design_change).
DESIGN_FIELDS = (
    "design",
    "target_dlt_rate",
    "cohort_size",
    "max_sample_size",
    "boin_p_saf",
    "boin_p_tox",
    "boin_n_earlystop",
    "crm_skeleton",
    "crm_model",
    "crm_prior_sd",
    "backfill_enabled",
    "backfill_max_per_level",
    "backfill_levels",
)
# Bounds of the backfill settings (analysis.designs.backfill).
BACKFILL_MAX_PER_LEVEL = 100
BACKFILL_MAX_LEVELS = 20


@dataclass(frozen=True)
class DesignSpec:
    """The design and its parameters as the trial stores them (R packages' defaults)."""

    design: str = "3+3"
    target_dlt_rate: float = 0.3
    cohort_size: int = 3
    max_sample_size: int = 30
    boin_p_saf: float | None = None  # None: 0.6 x target (R BOIN)
    boin_p_tox: float | None = None  # None: 1.4 x target (R BOIN)
    boin_n_earlystop: int = 100  # 100: off in practice (R BOIN's default)
    crm_skeleton: Sequence[float] = ()
    crm_model: str = "empiric"
    crm_prior_sd: float = 1.1575836902790226  # dfcrm: sqrt(1.34)
    # Backfill (analysis.designs.backfill): off by default; places per level; 0 = every
    # cleared level below the current one, N = the N cleared levels nearest below it.
    backfill_enabled: bool = False
    backfill_max_per_level: int = 3
    backfill_levels: int = 0


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def design_problems(spec: DesignSpec, n_levels: int | None = None) -> dict[str, list[str]]:
    """Every problem of the design's parameters, by field name ({} when all is well).

    The bounds are the designs' own (analysis.designs): BOIN's target range 0.05 to 0.6,
    p.saf at least 10% of the target below it and p.tox 10% above; the i3+3 and mTPI-2
    intervals (target +- 0.05) inside (0, 1); the CRM skeleton one probability per dose
    level, strictly increasing in (0, 1). ``n_levels`` (when known) checks the skeleton's
    length. The 3+3 design uses none of them, but they must still be sane numbers.
    """
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if spec.design not in DESIGNS:
        add("design", f"{spec.design!r} is not a design; use one of: {', '.join(DESIGNS)}.")
    target = spec.target_dlt_rate
    if not _number(target) or not 0.05 <= target <= 0.6:
        add("target_dlt_rate", f"The target DLT rate must be a number from 0.05 to 0.6 (got {target!r}).")
        target_ok = False
    else:
        target_ok = True
    if spec.design == "i3+3" and target_ok and not 0.05 < target <= 0.5:
        add(
            "target_dlt_rate",
            "With i3+3 the equivalence interval [target - 0.05, target + 0.05] needs its lower end above 0 "
            f"and the 0.05 margin at least 10% of the target: use a target above 0.05 and at most 0.5 "
            f"(got {target}).",
        )
    if spec.design == "mtpi2" and target_ok and not target > 0.05:
        add(
            "target_dlt_rate",
            f"With mTPI-2 the target key [target - 0.05, target + 0.05] must lie above 0: use a target above 0.05 "
            f"(got {target}).",
        )
    if not isinstance(spec.cohort_size, int) or isinstance(spec.cohort_size, bool) or not 1 <= spec.cohort_size <= 12:
        add("cohort_size", f"The cohort size must be a whole number from 1 to 12 (got {spec.cohort_size!r}).")
    elif (
        not isinstance(spec.max_sample_size, int)
        or isinstance(spec.max_sample_size, bool)
        or not spec.cohort_size <= spec.max_sample_size <= 1000
    ):
        add(
            "max_sample_size",
            f"The maximum sample size must be a whole number from the cohort size ({spec.cohort_size}) "
            f"to 1000 (got {spec.max_sample_size!r}).",
        )
    if spec.boin_p_saf is not None:
        if not _number(spec.boin_p_saf) or not 0 < spec.boin_p_saf < 1:
            add("boin_p_saf", f"BOIN p.saf must be a number in (0, 1) or empty (got {spec.boin_p_saf!r}).")
        elif target_ok and target - spec.boin_p_saf < 0.1 * target - 1e-12:  # analysis.designs.boin's tolerance
            add(
                "boin_p_saf",
                f"BOIN p.saf ({spec.boin_p_saf}) must be below the target ({target}) by at least 10% of it "
                f"(at most {0.9 * target:.4g}).",
            )
    if spec.boin_p_tox is not None:
        if not _number(spec.boin_p_tox) or not 0 < spec.boin_p_tox < 1:
            add("boin_p_tox", f"BOIN p.tox must be a number in (0, 1) or empty (got {spec.boin_p_tox!r}).")
        elif target_ok and spec.boin_p_tox - target < 0.1 * target - 1e-12:
            add(
                "boin_p_tox",
                f"BOIN p.tox ({spec.boin_p_tox}) must be above the target ({target}) by at least 10% of it "
                f"(at least {1.1 * target:.4g}).",
            )
    n_stop = spec.boin_n_earlystop
    if not isinstance(n_stop, int) or isinstance(n_stop, bool) or not 1 <= n_stop <= 1000:
        add("boin_n_earlystop", f"BOIN n.earlystop must be a whole number from 1 to 1000 (got {n_stop!r}).")
    if spec.crm_model not in CRM_MODELS:
        add("crm_model", f"{spec.crm_model!r} is not a CRM model; use one of: {', '.join(CRM_MODELS)}.")
    if not _number(spec.crm_prior_sd) or not 0 < spec.crm_prior_sd <= 10:
        add("crm_prior_sd", f"The CRM prior SD must be a number above 0 and at most 10 (got {spec.crm_prior_sd!r}).")
    skeleton = spec.crm_skeleton
    if not isinstance(skeleton, list | tuple) or not all(_number(v) for v in skeleton):
        add("crm_skeleton", "The CRM skeleton must be a list of numbers, one per dose level (e.g. [0.05, 0.1, 0.2]).")
    else:
        if any(not 0 < v < 1 for v in skeleton):
            add("crm_skeleton", f"Each skeleton probability must lie strictly between 0 and 1 (got {list(skeleton)}).")
        if any(b <= a for a, b in zip(skeleton, skeleton[1:], strict=False)):
            add("crm_skeleton", f"The skeleton must increase strictly with the dose level (got {list(skeleton)}).")
        if spec.design == "crm" and not skeleton:
            add("crm_skeleton", "The CRM design needs a skeleton: one prior DLT probability per dose level.")
        elif skeleton and n_levels is not None and len(skeleton) != n_levels:
            add(
                "crm_skeleton",
                f"The skeleton has {len(skeleton)} probabilities but the trial has {n_levels} dose levels "
                "(one per level).",
            )
        # dfcrm's logistic model (intercept 3): scaled doses logit(s) - 3 must be < 0.
        logistic = spec.design == "crm" and spec.crm_model == "logistic" and not problems.get("crm_skeleton")
        if logistic and any(math.log(v / (1 - v)) - 3 >= 0 for v in skeleton):
            add("crm_skeleton", "With the logistic model every skeleton probability must be below 0.9526 (dfcrm).")
    problems.update(backfill_problems(spec))
    return problems


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def backfill_problems(spec: DesignSpec) -> dict[str, list[str]]:
    """The backfill settings (issue 17): a yes/no, a whole number of places per level
    (0 to 100; at least 1 when backfill is on, else it could never open) and a whole number
    of levels (0 = every cleared level below the current one, up to 20)."""
    problems: dict[str, list[str]] = {}
    if not isinstance(spec.backfill_enabled, bool):
        problems["backfill_enabled"] = [f"Backfill is on or off: true or false (got {spec.backfill_enabled!r})."]
    cap = spec.backfill_max_per_level
    if not _whole(cap) or not 0 <= cap <= BACKFILL_MAX_PER_LEVEL:
        problems["backfill_max_per_level"] = [
            f"Backfill patients per level must be a whole number from 0 to {BACKFILL_MAX_PER_LEVEL} (got {cap!r})."
        ]
    elif spec.backfill_enabled is True and cap == 0:
        problems["backfill_max_per_level"] = [
            "With backfill on, at least 1 backfill patient per level (0 would never open a place)."
        ]
    levels = spec.backfill_levels
    if not _whole(levels) or not 0 <= levels <= BACKFILL_MAX_LEVELS:
        problems["backfill_levels"] = [
            f"Backfill levels must be a whole number from 0 (every cleared level below the current one) to "
            f"{BACKFILL_MAX_LEVELS} (got {levels!r})."
        ]
    return problems


def design_change_problems(
    changed: Sequence[str], enrolled: int, protocol_version: str | None, known_versions: Sequence[str], reason: str
) -> dict[str, list[str]]:
    """A change of the design (any of DESIGN_FIELDS) after the first enrolment is refused
    unless it names one of the trial's protocol versions and gives a reason (issue 17)."""
    if not changed or enrolled == 0:
        return {}
    problems: dict[str, list[str]] = {}
    what = ", ".join(changed)
    if not protocol_version:
        problems["protocol_version"] = [
            f"{enrolled} patient(s) are enrolled: changing {what} needs the protocol version that amends the design."
        ]
    elif protocol_version not in known_versions:
        problems["protocol_version"] = [
            f"{protocol_version!r} is not a protocol version of this trial ({', '.join(known_versions) or 'none'})."
        ]
    if not reason.strip():
        problems["reason"] = [f"{enrolled} patient(s) are enrolled: say why {what} changes."]
    return problems
