"""``/openapi.json`` describes errors as the API answers them (docs/protocol.md 7.1).

Against a real demo node over TestClient: every ``422`` is ``application/problem+json`` with
the ``Problem`` schema (not FastAPI's ``HTTPValidationError``), ``POST /api/v1/tx`` lists its
admission refusals, every ``$ref`` resolves, and real error answers fit the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from democache import demo_copy

PASSWORD = "pw"
PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
SECTION_7_1 = {"type", "title", "status", "detail", "detail_en", "detail_ja", "code"}
FIELD_ERROR = {"loc", "msg", "type", "msg_en", "msg_ja"}
JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "array": list,
    "object": dict,
}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("openapi"), apps, PASSWORD)
    try:
        yield TestClient(create_app(node, private, apps))
    finally:
        node.stop()


@pytest.fixture(scope="module")
def spec(http: TestClient) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """A small JSON Schema check: $ref, type, required and properties (what Problem uses)."""
    if "$ref" in schema:
        _check(spec, _resolve(spec, schema["$ref"]), value, where)
        return
    expected = schema.get("type")
    if expected is not None:
        assert isinstance(value, JSON_TYPES[expected]), (where, expected, value)
        assert not isinstance(value, bool), (where, value)
    if isinstance(value, dict):
        missing = set(schema.get("required", ())) - set(value)
        assert not missing, (where, missing)
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check(spec, sub, value[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(spec, schema["items"], item, f"{where}[{i}]")


def test_every_422_is_a_problem(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    found = 0
    for path, method, operation in _operations(spec):
        response = operation["responses"].get("422")
        if response is None:
            continue
        found += 1
        assert response["content"] == {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}, (path, method)
        assert "invalid_input" in response["description"]
    assert found >= 50  # every route with a parameter or a body: about 80 today


def test_problem_schema_has_the_members_of_7_1(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["type"] == "object"
    assert set(problem["required"]) == SECTION_7_1
    assert SECTION_7_1 | {"instance", "errors", "last_seq", "tx_id", "height", "index"} <= set(
        problem["properties"]
    )
    assert problem["properties"]["status"]["type"] == "integer"
    assert problem["additionalProperties"] is True
    field = _resolve(spec, problem["properties"]["errors"]["items"]["$ref"])
    assert set(field["required"]) == FIELD_ERROR == set(field["properties"])


def test_tx_lists_its_refusals(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/api/v1/tx"]["post"]["responses"]
    assert set(responses) == {"201", "400", "403", "409", "413", "422", "503"}
    for status in ("400", "403", "409", "413", "422", "503"):
        assert responses[status]["content"] == {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}
    assert "replayed_seq" in responses["409"]["description"]
    assert "unknown_signer" in responses["403"]["description"]


def test_no_validation_error_schema_is_left_and_every_ref_resolves(
    spec: dict[str, Any],
) -> None:
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text
    refs = set(_refs(spec))
    assert PROBLEM_REF in refs
    for ref in refs:
        assert isinstance(_resolve(spec, ref), dict), ref


def test_the_document_is_built_once(http: TestClient, spec: dict[str, Any]) -> None:
    assert http.get("/openapi.json").json() == spec
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text and "swagger-ui-bundle.js" in docs.text


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("post", "/api/v1/tx", {"content": b"{}", "headers": {"content-type": "text/plain"}},
         422, "invalid_input"),
        ("get", "/api/v1/log/entries?start=0", {}, 422, "invalid_input"),
        ("post", "/api/v1/tx", {"json": {"chain_id": "x"}}, 400, "malformed_transaction"),
        ("post", "/api/v1/tx", {"content": b"{", "headers": {"content-type": "application/json"}},
         400, "malformed_json"),
    ],
)  # fmt: skip
def test_real_errors_fit_the_schema(
    http: TestClient,
    spec: dict[str, Any],
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = getattr(http, method)(url, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    path = url.split("?")[0]
    declared = spec["paths"][path][method]["responses"][str(status)]
    _check(spec, declared["content"][PROBLEM]["schema"], body, "problem")
