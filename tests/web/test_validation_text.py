"""Validation errors in the user's language: the API's 422 answers, the contracts' payload
refusals, and the pydantic error types behind both (tsunagu.validation_text)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from chainkit import STAFF_KEY, make_node, submit_and_wait
from democache import demo_copy
from tsunagu.errors import Rejected
from tsunagu.validation_text import (
    GENERIC_JA,
    SHOWN,
    InputValueError,
    explain,
    explain_all,
    field_path,
    summary,
)

PASSWORD = "pw"
PYDANTIC_WORDS = re.compile(r"should|Input|Field|String|List|Value error|valid", re.IGNORECASE)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
# ASCII a Japanese message may hold: formats and literal values users must type as they are.
ALLOWED_ASCII = ("true", "false", "JSON", "YYYY-MM-DD", "ISO 8601", "HH:MM", "UUID", "URL")


def _english_left(ja: str, fields: list[str]) -> list[str]:
    """ASCII words in a Japanese message once field names, 「quoted values」 and formats
    are taken out: there must be none."""
    text = re.sub(r"「[^」]*」", "", ja)
    for word in sorted([*fields, *ALLOWED_ASCII], key=len, reverse=True):
        text = text.replace(word, "") if word else text
    return re.findall(r"[A-Za-z]{2,}", text)


# --- each pydantic error type -----------------------------------------------------------------


class Colour(Enum):
    red = "red"
    green = "green"


def _real_date(value: str) -> str:
    date.fromisoformat(value)  # raises an English ValueError for 2027-02-30
    return value


def _japanese_rule(value: str) -> str:
    raise ValueError("この値は使えません")


def _both_rule(value: str) -> str:
    raise InputValueError("must name a known shelter", "登録された避難所を指定してください")


def _custom(value: str) -> str:
    raise PydanticCustomError("our_rule", "Custom rule {n} broken", {"n": 3})


LAX = ConfigDict(strict=False)
STRICT = ConfigDict(strict=True)
CASES: list[tuple[Any, ConfigDict, str, str, str, str]] = [
    # annotation, config, JSON input, pydantic type, Japanese part, English part
    (Annotated[str, Field(min_length=3)], STRICT, '"ab"', "string_too_short", "3文字以上", "3"),
    (Annotated[str, Field(min_length=1)], STRICT, '""', "string_too_short", "入力して", "empty"),
    (
        Annotated[str, Field(max_length=200)],
        STRICT,
        json.dumps("x" * 201),
        "string_too_long",
        "200文字以内",
        "at most 200",
    ),
    (
        Annotated[str, Field(pattern=r"^[a-z]+$")],
        STRICT,
        '"ABC"',
        "string_pattern_mismatch",
        "形式が正しくありません",
        "format",
    ),
    (str, STRICT, "5", "string_type", "文字列", "text"),
    (
        Literal["public", "members", "private"],
        STRICT,
        '"everyone"',
        "literal_error",
        "「public」「members」「private」のいずれか",
        "'public', 'members' or 'private'",
    ),
    (Colour, STRICT, '"blue"', "enum", "「red」「green」のいずれか", "'red' or 'green'"),
    (int, LAX, '"many"', "int_parsing", "整数", "whole number"),
    (int, STRICT, '"5"', "int_type", "整数", "whole number"),
    (int, LAX, "2.5", "int_from_float", "整数", "whole number"),
    (float, LAX, '"much"', "float_parsing", "数値", "number"),
    (float, STRICT, '"1.5"', "float_type", "数値", "number"),
    (Annotated[int, Field(gt=0)], STRICT, "0", "greater_than", "0より大きい", "greater than 0"),
    (Annotated[int, Field(ge=1)], STRICT, "0", "greater_than_equal", "1以上", "at least 1"),
    (Annotated[int, Field(lt=10)], STRICT, "10", "less_than", "10未満", "less than 10"),
    (
        Annotated[int, Field(le=10_000_000)],
        STRICT,
        "10000001",
        "less_than_equal",
        "10,000,000以下",
        "at most 10,000,000",
    ),
    (Annotated[int, Field(multiple_of=5)], STRICT, "7", "multiple_of", "5の倍数", "multiple"),
    (bool, LAX, '"maybe"', "bool_parsing", "true または false", "true or false"),
    (bool, STRICT, "1", "bool_type", "true または false", "true or false"),
    (int, STRICT, "{bad", "json_invalid", "JSON", "JSON"),
    (date, STRICT, '"2020-13-01"', "date_parsing", "正しい日付", "date"),
    (datetime, STRICT, '"yesterday"', "datetime_parsing", "正しい日時", "date and time"),
    (list[int], STRICT, "5", "list_type", "リスト", "list"),
    (Annotated[list[int], Field(min_length=1)], STRICT, "[]", "too_short", "1件以上", "1 item"),
    (
        Annotated[list[int], Field(max_length=2)],
        STRICT,
        "[0,1,2]",
        "too_long",
        "2件以内",
        "at most 2 items",
    ),
    (dict[str, int], STRICT, "[1]", "dict_type", "JSONオブジェクト", "JSON object"),
    (
        Annotated[str, AfterValidator(_real_date)],
        STRICT,
        '"2027-02-30"',
        "value_error",
        GENERIC_JA,
        "day is out of range for month",
    ),
    (
        Annotated[str, AfterValidator(_japanese_rule)],
        STRICT,
        '"x"',
        "value_error",
        "この値は使えません",
        "not valid",
    ),
    (
        Annotated[str, AfterValidator(_both_rule)],
        STRICT,
        '"x"',
        "value_error",
        "登録された避難所を指定してください",
        "must name a known shelter",
    ),
    (
        Annotated[str, AfterValidator(_custom)],
        STRICT,
        '"x"',
        "our_rule",
        GENERIC_JA,
        "Custom rule 3 broken",
    ),
]


def _errors(annotation: Any, config: ConfigDict, raw: str) -> list[dict[str, Any]]:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=config)
    with pytest.raises(ValidationError) as caught:
        adapter.validate_json(raw)
    return caught.value.errors(include_url=False)


@pytest.mark.parametrize(("annotation", "config", "raw", "kind", "ja", "en"), CASES)
def test_each_error_type_in_both_languages(
    annotation: Any, config: ConfigDict, raw: str, kind: str, ja: str, en: str
) -> None:
    errors = _errors(annotation, config, raw)
    assert [e["type"] for e in errors] == [kind], errors
    message = explain(errors[0])
    assert ja in message.ja and en in message.en, message
    assert not PYDANTIC_WORDS.search(message.ja), message
    assert not _english_left(message.ja, []), message
    assert not JAPANESE.search(message.en), message


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,20}$")]
    qty: Annotated[int, Field(gt=0, le=1000)]


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: Annotated[str, Field(min_length=1, max_length=10)]
    visibility: Literal["public", "municipality", "private"]
    colour: Colour
    when: datetime
    day: Annotated[str, AfterValidator(_real_date)]
    urgent: bool
    ratio: float
    items: Annotated[list[Item], Field(min_length=1, max_length=3)]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["public", "2027-02-30", "2026-01-01", "2026-01-01T00:00:00Z", "red"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
ORDERS = st.dictionaries(
    st.sampled_from([*Order.model_fields, "extra", "body"]), JSON_VALUES, max_size=10
) | st.builds(
    lambda items: {"items": items},
    st.lists(st.dictionaries(st.sampled_from(["sku", "qty", "x"]), JSON_VALUES), max_size=5),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ORDERS)
def test_no_pydantic_english_in_japanese(body: dict[str, Any]) -> None:
    """Whatever is wrong with a payload, its Japanese messages carry no English words but
    field names, quoted accepted values and formats; its English ones no Japanese."""
    try:
        Order.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        messages = explain_all(exc.errors(include_url=False))
    else:
        return
    fields = [m.field for m in messages] + [p for m in messages for p in m.field.split(".")]
    for m in messages:
        assert m.ja and m.en
        assert not PYDANTIC_WORDS.search(m.ja), m
        assert not _english_left(m.ja, fields), m
        assert not JAPANESE.search(m.en), m
    japanese = summary(messages, "ja")
    assert japanese.startswith("入力内容が正しくありません。")
    assert not _english_left(japanese, fields), japanese


def test_field_paths_keep_their_dots_and_drop_the_request_part() -> None:
    body = {
        "title": "t",
        "visibility": "public",
        "colour": "red",
        "when": "2026-01-01T00:00:00Z",
        "day": "2026-01-01",
        "urgent": False,
        "ratio": 0.5,
        "items": [{"sku": "rice", "qty": 1}, {"sku": "water", "qty": 0}],
    }
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(json.dumps(body))
    (error,) = caught.value.errors()
    assert explain(error).field == "items.1.qty"
    assert explain({**error, "loc": ("body", *error["loc"])}, ("body",)).field == "items.1.qty"
    assert field_path(("body", "visibility"), ("body", "query")) == "visibility"
    assert field_path(("query", "limit"), ("body", "query")) == "limit"
    assert field_path(("body",), ("body",)) == ""
    assert field_path(("payload", "body"), ("body",)) == "payload.body"  # only a leading part


def test_summary_lists_each_field_and_counts_the_rest() -> None:
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(json.dumps({"title": "", "visibility": "everyone"}))
    messages = explain_all(caught.value.errors())
    ja, en = summary(messages, "ja"), summary(messages, "en")
    assert ja.startswith(
        "入力内容が正しくありません。title：入力してください。"
        "visibility：「public」「municipality」「private」のいずれかを指定してください。"
        "colour：必須項目です。"
    ), ja
    assert en.startswith(
        "The input is not valid: title: must not be empty; visibility: must be one of "
        "'public', 'municipality' or 'private'; colour: is required; "
    ), en
    many = messages * 3
    assert summary(many, "ja").endswith(f"ほか{len(many) - SHOWN}件。")
    assert summary(many, "en").endswith(f"; and {len(many) - SHOWN} more.")


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("validation-text"), apps, PASSWORD)
    try:
        yield TestClient(create_app(node, private, apps))
    finally:
        node.stop()


@pytest.fixture(scope="module")
def staff(http: TestClient) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": "staff1", "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


BAD_DOCUMENT = {"sha256": "a" * 64, "title": "", "category": "poem", "org": "tachikawa"}


def test_api_answers_a_bad_field_in_japanese(http: TestClient, staff: dict[str, str]) -> None:
    before = http.get("/api/v1/status").json()
    response = http.post(
        "/api/v1/documents", json=BAD_DOCUMENT, headers={**staff, "Accept-Language": "ja"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_input"
    detail = problem["detail"]
    assert detail == problem["detail_ja"], problem
    assert detail.startswith("入力内容が正しくありません。title：入力してください。"), detail
    assert "category：「notice」" in detail and "のいずれかを指定してください。" in detail
    assert "org：この項目は指定できません。" in detail
    assert not PYDANTIC_WORDS.search(detail), detail
    assert not _english_left(detail, ["title", "category", "org"]), detail
    for error in problem["errors"]:  # the documented members stay, with both languages added
        assert {"loc", "msg", "type", "msg_en", "msg_ja"} <= set(error), error
        assert error["loc"][0] == "body"
        assert not PYDANTIC_WORDS.search(error["msg_ja"]), error
    assert http.get("/api/v1/status").json() == before


def test_api_answers_a_bad_field_in_english(http: TestClient, staff: dict[str, str]) -> None:
    response = http.post(
        "/api/v1/documents", json=BAD_DOCUMENT, headers={**staff, "Accept-Language": "en"}
    )
    problem = response.json()
    assert response.status_code == 422 and problem["code"] == "invalid_input"
    detail = problem["detail"]
    assert detail == problem["detail_en"] != problem["detail_ja"]
    assert detail.startswith("The input is not valid: title: must not be empty; "), detail
    assert "category: must be one of 'notice'," in detail
    assert "org: is not an accepted field" in detail
    assert not JAPANESE.search(detail), detail


def test_api_query_parameter_in_japanese(http: TestClient) -> None:
    response = http.get("/api/v1/documents?limit=0", headers={"Accept-Language": "ja"})
    problem = response.json()
    assert response.status_code == 422, problem
    assert problem["detail"] == "入力内容が正しくありません。limit：1以上の値を指定してください。"
    assert problem["errors"][0]["loc"] == ["query", "limit"]


def test_page_shows_a_bad_parameter_in_japanese(http: TestClient) -> None:
    response = http.get("/explorer?before=0&lang=ja")
    assert response.status_code == 422
    assert "before：1以上の値を指定してください。" in response.text
    assert "Input should" not in response.text and "greater than" not in response.text


# --- contracts --------------------------------------------------------------------------------


def test_contract_refusal_of_a_payload_is_japanese() -> None:
    from tsunagu.apps.documents.contract import DocumentsContract

    payload = {"sha256": "a" * 64, "title": "", "category": "poem"}
    with pytest.raises(Rejected) as caught:
        DocumentsContract().parse("register", payload)
    refusal = caught.value
    assert refusal.code == "invalid_payload"
    assert refusal.message_ja.startswith("入力内容が正しくありません。title：入力してください。")
    assert "category：「notice」" in refusal.message_ja
    assert not PYDANTIC_WORDS.search(refusal.message_ja), refusal.message_ja
    assert refusal.message_en.startswith("Invalid payload: title: ")


def test_refused_payload_in_a_block_keeps_its_english_reason(tmp_path: Path) -> None:
    """The English reason is part of the block (results_hash): its wording is unchanged, so
    chains written before still verify; the receipt's Japanese reason is Japanese."""
    node, _ = make_node(tmp_path)
    try:
        receipt = submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": "a", "value": "x"})
    finally:
        node.stop()
    assert receipt.status == "rejected" and receipt.code == "invalid_payload"
    assert receipt.reason == "Invalid payload: value: Input should be a valid integer"
    assert receipt.reason_ja == "入力内容が正しくありません。value：整数で指定してください。"
