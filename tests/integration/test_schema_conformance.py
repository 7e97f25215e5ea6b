"""The OpenAPI document at /api/v1/schema/ against the running API (issue 8).

schemathesis loads the document from the Django WSGI application and calls every GET
operation as the investigator of a populated demo trial: a few generated requests per
operation, valid (positive) and invalid (negative: wrong types, out-of-range integers...),
plus one request per operation with the ids of real records, so the 200 responses are
checked too. Every response goes through EVERY check schemathesis registers (issue 16 item
15): no 5xx, status code, content type, headers and body documented for that status
(core.schema.document_errors adds the error statuses to every operation), invalid data
refused, valid data accepted, authentication not ignored, and the rest.
"""

import contextlib
import datetime

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks  # registers the OpenAPI checks

from analysis.services import simulation_run_execute
from core.tokens import token_issue
from exchange.services import cdisc_package_build, cdisc_package_request
from tests.factories import (
    AdverseEventFactory,
    AssessmentFactory,
    ConcomitantMedicationFactory,
    ConsentFactory,
    CycleFactory,
    DataQueryFactory,
    DltAdjudicationFactory,
    GvhdEpisodeFactory,
    LabPanelFactory,
    PatientEventFactory,
    PatientFactory,
    ScreeningFactory,
    SimulationRunFactory,
    TransplantFactory,
)
from trial.demo import load_demo
from trial.models import RoleGrant

assert openapi_checks.ignored_auth in REGISTERED_CHECKS.get_all()
CHECKS = REGISTERED_CHECKS.get_all()  # every check of the installed schemathesis (14 in 4.32), none excluded
GENERATED_PER_OPERATION = 6  # per mode (positive, negative): keeps the test near a minute


@pytest.fixture
def demo(db, settings, tmp_path):  # type: ignore[no-untyped-def]
    """The seed trial's configuration with patients that have one record of every kind, and
    one built CDISC package (its download answers 200)."""
    trial, _ = load_demo()
    sites = {s.code: s for s in trial.sites.all()}
    level = trial.dose_levels.get(level=1)
    records = {}
    for number, site_code in enumerate(["UHC", "CCF", "MSK"], start=1):
        patient = PatientFactory(
            trial=trial,
            site=sites[site_code],
            subject_id=f"{site_code}-00{number}",
            dose_level=level,
            enrolled_on=datetime.date(2024, 3, 30),
        )
        TransplantFactory(patient=patient)
        ConsentFactory(patient=patient)
        ScreeningFactory(patient=patient)
        records["cycle"] = CycleFactory(patient=patient)
        records["lab_panel"] = LabPanelFactory(patient=patient)
        ae = AdverseEventFactory(patient=patient)
        records["adverse_event"] = ae
        records["dlt_adjudication"] = DltAdjudicationFactory(patient=patient, adverse_event=ae)
        records["assessment"] = AssessmentFactory(patient=patient)
        records["patient_event"] = PatientEventFactory(patient=patient)
        records["medication"] = ConcomitantMedicationFactory(patient=patient)
        records["gvhd_episode"] = GvhdEpisodeFactory(patient=patient)
        records["patient"] = patient
        records["data_query"] = DataQueryFactory(record=ae)
    investigator = RoleGrant.objects.get(trial=trial, role=RoleGrant.Role.INVESTIGATOR).user
    # A planning simulation of the trial, run in-process so its result is a real one.
    run = SimulationRunFactory(trial=trial, requested_by=investigator, n_trials=100)
    simulation_run_execute(run.pk)
    records["simulation_run"] = run
    settings.CDISC_PACKAGE_ROOT = tmp_path / "packages"
    records["cdisc_package"], _ = cdisc_package_request(trial, investigator)
    assert cdisc_package_build(records["cdisc_package"].pk) == "done"
    _, key = token_issue(user=investigator, name="schemathesis")
    return trial, records, {"Authorization": f"Token {key}"}


@pytest.fixture
def wsgi_app():  # type: ignore[no-untyped-def]
    # As Django's test client does: a request must not close the test's connection (it
    # holds the test transaction with the demo data).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _real_parameters(path: str, trial, records) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """Path parameters naming real records, and the query an export needs."""
    by_collection = {
        "trials": trial.pk,
        "patients": records["patient"].pk,
        "adverse-events": records["adverse_event"].pk,
        "dlt-adjudications": records["dlt_adjudication"].pk,
        "assessments": records["assessment"].pk,
        "patient-events": records["patient_event"].pk,
        "cycles": records["cycle"].pk,
        "lab-panels": records["lab_panel"].pk,
        "queries": records["data_query"].pk,
        "concomitant-medications": records["medication"].pk,
        "gvhd-episodes": records["gvhd_episode"].pk,
        "simulations": records["simulation_run"].pk,
        "cdisc-packages": records["cdisc_package"].pk,
    }
    segments = path.strip("/").split("/")
    values = {}
    for index, segment in enumerate(segments):
        if segment.startswith("{"):
            name = segment.strip("{}")
            if name == "trial_id":
                values[name] = trial.pk
            elif name == "patient_id":
                values[name] = records["patient"].pk
            else:
                values[name] = by_collection[segments[index - 1]]
    query = {"trial": trial.code, "format": "json"} if "/exports/" in path else {}
    if path.endswith("/operating-characteristics/"):
        query = {"p": "0.05,0.1,0.2,0.3"}
    return values, query


@pytest.mark.django_db
def test_every_get_operation_matches_the_schema(demo, wsgi_app):  # type: ignore[no-untyped-def]
    trial, records, headers = demo
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    gets = [op for op in operations if op.method.upper() == "GET"]
    assert len(gets) >= 25, [op.label for op in gets]
    failures, stats = [], {"operations": 0, "cases": 0}
    for operation in gets:
        path_parameters, query = _real_parameters(operation.path, trial, records)
        try:
            real = operation.Case(path_parameters=path_parameters, query=query)
            response = real.call_and_validate(headers=headers, checks=CHECKS)
            assert response.status_code == 200, (operation.label, response.status_code, response.text[:300])
            if "/exports/" in operation.path:
                csv_case = operation.Case(path_parameters={}, query={"trial": trial.code, "format": "csv"})
                csv_case.call_and_validate(headers=headers, checks=CHECKS)

            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

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
                    case.call_and_validate(headers=headers, checks=CHECKS)

                # Unsatisfiable: no invalid request exists (an operation without parameters): nothing to negate.
                with contextlib.suppress(Unsatisfiable):
                    generated()
            stats["operations"] += 1
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    print(f"schemathesis: {stats['operations']} GET operations, {stats['cases']} generated cases, {len(CHECKS)} checks")
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db
def test_schema_document_is_openapi_3_with_the_contract_paths(client, world):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path in [
        "/api/v1/trials/",
        "/api/v1/trials/{id}/",
        "/api/v1/patients/",
        "/api/v1/patients/{id}/screenings/",
        "/api/v1/patients/{patient_id}/cycles/",
        "/api/v1/adverse-events/",
        "/api/v1/dlt-adjudications/",
        "/api/v1/assessments/",
        "/api/v1/patient-events/",
        "/api/v1/trials/{id}/escalation/",
        "/api/v1/trials/{id}/survival/",
        *[f"/api/v1/exports/{name}/" for name in ("dm", "ex", "ae", "ds", "rs", "dv", "adtte", "odm")],
    ]:
        assert path in document["paths"], path
    # Every operation documents the error statuses with the one error schema (core.schema.document_errors).
    assert document["components"]["schemas"]["Error"]["required"] == ["detail", "errors"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            expected = {"400", "401", "403", "404", "503"} | ({"409", "423"} if method != "get" else set())
            expected |= {"413"} if "requestBody" in operation else set()
            missing = expected - set(operation["responses"])
            assert not missing, (method, path, missing)
            assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)
    # The large lists page by cursor (core.api.CursorPagination).
    for path in ("/api/v1/patients/", "/api/v1/adverse-events/"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert "cursor" in names, path


@pytest.mark.django_db
def test_docs_page_works_offline(client, world, settings):  # type: ignore[no-untyped-def]
    if "drf_spectacular_sidecar" not in settings.INSTALLED_APPS:
        pytest.skip(
            "config/settings.py must add 'drf_spectacular_sidecar' to INSTALLED_APPS and "
            "SWAGGER_UI_DIST/SWAGGER_UI_FAVICON_HREF/REDOC_DIST = 'SIDECAR' to SPECTACULAR_SETTINGS"
        )
    from django.contrib.staticfiles import finders

    client.force_login(world["sponsor"], backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/api/v1/docs/").content.decode()
    assert "cdn." not in page and "drf_spectacular_sidecar" in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
