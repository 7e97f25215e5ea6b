"""The write operations (POST/PUT/PATCH) of /api/v1/schema/ fuzzed by schemathesis (issue 16 item 15).

Every write operation, as the investigator and as a coordinator of the populated demo trial of
test_schema_conformance, valid (positive) and invalid (negative) bodies; positive cases use the
ids of real records so they reach the services. Every check of the installed schemathesis runs:
no 5xx, status code, content type, headers and body documented, invalid data refused,
authentication not ignored... positive_data_acceptance goes through write_data_acceptance: a
schema-valid write may still meet a rule of the trial that no schema states, but never a rule
the schema could state (unknown field, missing version, blank text, a form's "null").
Before core.schema described request bodies, 24 of the 27 operations failed here.
"""

import contextlib
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from core.api import UNKNOWN_FIELD
from core.tokens import token_issue
from tests.integration.test_schema_conformance import CHECKS, _real_parameters, demo, wsgi_app  # noqa: F401
from trial.models import RoleGrant

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
GENERATED_PER_OPERATION = 3

# Rules a schema states: a 400 that names one of them refused a body the schema called valid,
# i.e. the schema is wrong (DRF's field messages, core.api.UNKNOWN_FIELD, the edit's version).
SCHEMA_RULES = (
    UNKNOWN_FIELD,
    "Send the version you read",
    "This field is required.",
    "This field may not be",
    "A valid integer is required",
    "A valid number is required",
    "Not a valid string",
    "is not a valid choice",
    "Must be a valid boolean",
    "has wrong format",
    "Ensure this",
    "Expected a list",
    "Invalid pk",
    "Incorrect type",
)


@schemathesis.check
def write_data_acceptance(ctx, response, case):  # type: ignore[no-untyped-def]
    """positive_data_acceptance for a write: a schema-valid body may still be refused (400) by
    a rule no schema states (the record it names does not exist or is out of scope, a date
    against another record, the trial's state: docs/protocol.md), but never by a rule the
    schema could state (SCHEMA_RULES); any other status is judged by positive_data_acceptance."""
    if response.status_code != 400:
        return openapi_checks.positive_data_acceptance(ctx, response, case)
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    text = json.dumps(response.json(), ensure_ascii=False)
    broken = [rule for rule in SCHEMA_RULES if rule in text]
    assert not broken, f"schema-valid body refused by a rule the schema could state: {text[:600]}"
    return None


# every check, positive_data_acceptance judged through write_data_acceptance (above)
WRITE_CHECKS = [check for check in CHECKS if check is not openapi_checks.positive_data_acceptance]
WRITE_CHECKS.append(write_data_acceptance)


def _real_references(trial, records):  # type: ignore[no-untyped-def]
    """Body fields that name other records, pointed at real ones so that a positive case can get
    past "no such record" to the services' own rules (and sometimes to a 201)."""
    patient, ae = records["patient"], records["adverse_event"]
    return {
        "patient": patient.pk,
        "adverse_event": ae.pk,
        "trial": trial.code,
        "site": patient.site.code,
        "target_type": "safety.adverseevent",
        "target_id": ae.pk,
    }


def _tokens(trial):  # type: ignore[no-untyped-def]
    out = {}
    for role in (RoleGrant.Role.INVESTIGATOR, RoleGrant.Role.COORDINATOR):
        user = RoleGrant.objects.filter(trial=trial, role=role, revoked_at__isnull=True).first().user
        _, key = token_issue(user=user, name=f"schemathesis-{role}")
        out[role] = {"Authorization": f"Token {key}"}
    return out


@pytest.mark.django_db
def test_every_write_operation_matches_the_schema(demo, wsgi_app):  # type: ignore[no-untyped-def]  # noqa: F811
    trial, records, _ = demo
    tokens = _tokens(trial)
    references = _real_references(trial, records)
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    writes = [op for op in operations if op.method.upper() in WRITES]
    assert len(writes) >= 25, [op.label for op in writes]
    failures, stats = [], {"operations": 0, "cases": 0}
    statuses: dict[int, int] = {}
    for operation in writes:
        path_parameters, _query = _real_parameters(operation.path, trial, records)
        for role, headers in tokens.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:

                    @given(case=operation.as_strategy(generation_mode=mode))
                    @settings(
                        max_examples=GENERATED_PER_OPERATION,
                        deadline=None,
                        database=None,
                        derandomize=True,  # the same requests every run: a failure is reproducible
                        phases=[Phase.explicit, Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    )
                    def generated(case):  # type: ignore[no-untyped-def]
                        stats["cases"] += 1
                        # called right away within this iteration: the loop variables are current
                        if path_parameters and mode == GenerationMode.POSITIVE:  # noqa: B023
                            case.path_parameters = {**path_parameters}  # noqa: B023
                        if mode == GenerationMode.POSITIVE and isinstance(case.body, dict):  # noqa: B023
                            case.body.update({k: v for k, v in references.items() if k in case.body})
                        response = case.call_and_validate(headers=headers, checks=WRITE_CHECKS)  # noqa: B023
                        statuses[response.status_code // 100] = statuses.get(response.status_code // 100, 0) + 1

                    with contextlib.suppress(Unsatisfiable):
                        generated()
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label} [{role} {mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
        stats["operations"] += 1
    print(
        f"schemathesis: {stats['operations']} write operations, {stats['cases']} generated cases, {len(CHECKS)} checks, {len(failures)} failures, responses by class {sorted(statuses.items())}"
    )
    assert statuses.get(5, 0) == 0
    assert not failures, "\n\n".join(failures)
