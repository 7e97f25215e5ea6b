"""Bad input is never a 500 (issue 16 item 12): every URL pattern of the project, walked
with huge, negative and non-numeric values in every query parameter it reads, and every
API endpoint with a body nested 1,000 deep and a body over DATA_UPLOAD_MAX_MEMORY_SIZE.

The walker finds the URL patterns itself (tests/integration/test_site_walls.py fills their
arguments) and the parameters each one reads: the OpenAPI document's query parameters of
the operation and the names its view's source reads (``request.GET.get("x")``,
``query_params.get("x")``, ``int_param(request, "x")``). A new endpoint or a new parameter
is covered without editing this test.
"""

import inspect
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import get_resolver
from drf_spectacular.generators import SchemaGenerator

from core.tokens import token_issue
from tests.factories import SCOPED_FACTORIES
from tests.integration.test_site_walls import _fill, _model_for, _walk

BAD_INTEGERS = ["9" * 25, "-1", "\u00b2", "abc", ""]  # 25 digits overflow bigint; "²".isdigit() is True
DEEP = "[" * 1000 + "]" * 1000
READS = re.compile(
    r"""(?:GET|query_params)(?:\.get)?[\[(]\s*["'](\w+)["']|(?:int_param|query_int)\(\s*request,\s*["'](\w+)["']"""
)


def _source_names(callback) -> set[str]:  # type: ignore[no-untyped-def]
    """The query parameter names the view's code reads."""
    holders = [getattr(callback, "cls", None), getattr(callback, "view_class", None), inspect.unwrap(callback)]
    names: set[str] = set()
    for holder in holders:
        if holder is None:
            continue
        try:
            source = inspect.getsource(holder)
        except (OSError, TypeError):
            continue
        names |= {a or b for a, b in READS.findall(source)}
    return names


def _schema_parameters() -> list[tuple[re.Pattern[str], str, dict[str, str]]]:
    """(path regex, method, {query parameter: schema type}) of every OpenAPI operation."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in document["paths"].items():
        regex = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in item.items():
            query = {
                p["name"]: p.get("schema", {}).get("type", "")
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            }
            operations.append((regex, method, query))
    return operations


def _urls(world):  # type: ignore[no-untyped-def]
    """(url, pattern) of every non-admin URL pattern, object arguments naming objects in the investigator's scope."""
    objects = {model: make(world["trial"], world["site_a"]) for model, make in SCOPED_FACTORIES.items()}
    for regex, pattern in _walk(get_resolver()):
        kwargs = list(pattern.pattern.regex.groupindex)
        if regex.startswith("admin/") or "format" in kwargs:
            continue
        values = {}
        for kwarg in kwargs:
            model = _model_for(kwarg, pattern.callback)
            assert model in objects, f"{regex}: cannot fill <{kwarg}> (see test_site_walls)"
            values[kwarg] = objects[model].pk
        yield _fill(regex, values), pattern


def _api_urls(world) -> list[str]:  # type: ignore[no-untyped-def]
    # The OpenAPI document and its HTML viewer are read-only pages about the API, not endpoints of it.
    return [
        url for url, _ in _urls(world) if url.startswith("/api/") and url not in {"/api/v1/schema/", "/api/v1/docs/"}
    ]


def _error_format(response) -> bool:  # type: ignore[no-untyped-def]
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("detail"), str) and isinstance(body.get("errors"), dict)


@pytest.mark.django_db
def test_bad_integers_in_every_query_parameter_are_refused_never_a_500(client, world):  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    _, key = token_issue(user=world["investigator"], name="walker")
    api = {"HTTP_AUTHORIZATION": f"Token {key}"}
    operations = _schema_parameters()
    problems, checked, refused = [], 0, 0
    for url, pattern in _urls(world):
        is_api = url.startswith("/api/")
        names = _source_names(pattern.callback)
        integers: set[str] = set()
        for regex, method, query in operations:
            if method == "get" and regex.match(url):
                names |= set(query)
                integers |= {name for name, kind in query.items() if kind == "integer"}
        for name in sorted(names):
            for value in BAD_INTEGERS:
                if "_auth_user_id" not in client.session:  # the walk passes through the logout URL
                    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
                response = client.get(url, {name: value}, **(api if is_api else {}))
                checked += 1
                where = f"GET {url}?{name}={value}"
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code}")
                elif is_api and response.status_code >= 400 and not _error_format(response):
                    problems.append(f"{where}: {response.status_code} not in the error format")
                elif name in integers and response.status_code not in {400, 404}:
                    problems.append(f"{where}: {response.status_code}; the schema says integer, so a 400")
                refused += response.status_code == 400
    assert not problems, "\n".join(problems)
    assert checked > 150 and refused > 60, (checked, refused)  # the walker really found URLs and parameters


@pytest.mark.django_db
def test_json_nested_1000_deep_is_a_400_on_every_api_endpoint(client, world):  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    problems, refused = [], 0
    urls = _api_urls(world)
    for role in ("investigator", "admin", "coordinator_a"):
        _, key = token_issue(user=world[role], name="walker")
        for url in urls:
            for method in ("post", "put", "patch"):
                response = getattr(client, method)(
                    url, DEEP, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
                )
                where = f"{role} {method.upper()} {url}"
                if response.status_code >= 500 or not _error_format(response):
                    problems.append(f"{where}: {response.status_code} {response.content[:200]!r}")
                else:
                    refused += "nested deeper than 32" in response.json()["detail"]
    assert not problems, "\n".join(problems)
    assert refused > 10, refused  # the body really reached the parser on many endpoints


@pytest.mark.django_db
def test_a_body_over_the_size_limit_is_a_json_413_on_every_api_endpoint(client, world):  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    body = json.dumps({"reason_for_change": "x" * 3000})
    problems, too_large = [], 0
    urls = _api_urls(world)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000):
        for role in ("investigator", "admin"):
            _, key = token_issue(user=world[role], name="walker")
            for url in urls:
                for method in ("post", "patch"):
                    response = getattr(client, method)(
                        url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
                    )
                    where = f"{role} {method.upper()} {url}"
                    # 400: a view that refuses before it reads the body (a signed adjudication is never edited)
                    if response.status_code not in {400, 401, 403, 404, 405, 413, 423} or not _error_format(response):
                        problems.append(f"{where}: {response.status_code} {response.content[:200]!r}")
                    too_large += response.status_code == 413
    assert not problems, "\n".join(problems)
    assert too_large > 10, too_large


@pytest.mark.django_db
def test_a_50_mb_trial_bundle_upload_is_a_json_413(client, world):  # type: ignore[no-untyped-def]
    _, key = token_issue(user=world["admin"], name="admin")
    body = b'{"format": "trial-bundle/1", "padding": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    response = client.generic(
        "POST", "/api/v1/trials/import/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "larger than 10 MB" in response.json()["detail"]


@pytest.mark.django_db
def test_oversized_html_form_post_is_a_400_page_not_a_500(client, world):  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    client.force_login(world["coordinator_a"], backend="django.contrib.auth.backends.ModelBackend")
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000):
        response = client.post(f"/trials/{world['trial'].pk}/patients/new/", {"subject_id": "x" * 5000})
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_bad_html_integer_filter_is_ignored_with_a_message_naming_it(client, world):  # type: ignore[no-untyped-def]
    client.force_login(world["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    for url, name in [
        (f"/trials/{world['trial'].pk}/queries/", "site"),
        (f"/trials/{world['trial'].pk}/dashboard/", "dose_level"),
    ]:
        for value in ("9" * 25, "\u00b2"):
            response = client.get(url, {name: value})
            assert response.status_code == 200
            assert f"The filter &#x27;{name}&#x27; was ignored: a whole number" in response.content.decode()


@pytest.mark.django_db
def test_import_trial_command_refuses_deep_json_with_a_message(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "deep.json"
    path.write_text('{"format": "trial-bundle/1", "trial": ' + DEEP + "}")
    with pytest.raises(CommandError, match="nested deeper than 32 levels"):
        call_command("import_trial", str(path))
