"""Property-based: every route answers bad input with 4xx and a message, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import ADMIN, login
from vpack.api.app import create_app
from vpack.settings import Settings

SKIPPED_PATHS = {
    "/api/events",  # an endless stream
    "/api/auth/logout",  # would end the test's own session
}


@pytest.fixture
def signed_in(api_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(
        api_settings.model_copy(update={"api_rate_limit": "1000000/minute"}), run_worker=False
    )
    with TestClient(app) as client:
        client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        token = login(client, *ADMIN)
        client.cookies.clear()
        yield client, {"Authorization": f"Bearer {token}"}


def _fuzz(op: Any, client: TestClient, auth: dict[str, str], failures: list[str]) -> None:
    @settings(
        max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=op.as_strategy())
    def check(case: Any) -> None:
        case.headers = {**(case.headers or {}), **auth}
        response = case.call(session=client)
        where = f"{op.method.upper()} {op.path}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            assert "detail" in response.json(), (where, response.text)

    check()


def test_no_route_answers_500(signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = signed_in
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for op in operations:
        if op.path not in SKIPPED_PATHS:
            _fuzz(op, client, auth, failures)
    assert failures == []


# What a hostile user types where text, a number or a date is expected: each broke a
# route once (a 500) or was stored and broke a later list or scan.
HOSTILE = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfff",
        "\x07bell",
        "x" * 300,
        "/" + "y" * 5000,
        "0001-01-01",
        "9999-12-31T23:59:59",
        "0001-01-01T00:00:00",
        "1e3",
        "-1",
        1e308,
        -(2**70),
        2**63,
        float("-0.0"),
    ]
)


def _leaves(value: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where the scalars sit in a JSON body."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*where, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*where, i))]
    return [where]


def _replaced(value: Any, where: tuple[Any, ...], new: Any) -> Any:
    if not where:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[where[0]] = _replaced(value[where[0]], where[1:], new)
    return copy


def _fuzz_hostile(op: Any, client: TestClient, auth: dict[str, str], failures: list[str]) -> None:
    """A request valid by the schema, one value in it made hostile, sent as JSON escapes
    (a lone surrogate has no UTF-8 to travel as otherwise)."""

    @settings(
        max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=op.as_strategy(), data=st.data())
    def check(case: Any, data: st.DataObject) -> None:
        bad = data.draw(HOSTILE)
        body, query = case.body, dict(case.query or {})
        targets = [("body", w) for w in _leaves(body)] if isinstance(body, dict | list) else []
        targets += [("query", (k,)) for k in query]
        if not targets:
            return
        part, where = data.draw(st.sampled_from(targets))
        if part == "body":
            body = _replaced(body, where, bad)
        else:
            query[where[0]] = str(bad)
        headers = {**auth, "content-type": "application/json"}
        content = json.dumps(body) if isinstance(body, dict | list) else None
        # A lone surrogate in a URL is the bytes a careless encoder writes for it.
        raw = {k: str(v).encode("utf-8", "surrogatepass") for k, v in query.items()}
        url = f"{case.formatted_path}?{urlencode(raw)}" if raw else case.formatted_path
        response = client.request(op.method.upper(), url, headers=headers, content=content)
        if response.status_code >= 500:
            failures.append(
                f"{op.method.upper()} {op.path} {part}{list(where)}={bad!r}: "
                f"{response.status_code} {response.text[:200]}"
            )

    check()


def test_no_route_answers_500_to_hostile_values(
    signed_in: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = signed_in
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path not in SKIPPED_PATHS:
            _fuzz_hostile(op, client, auth, failures)
    assert failures == []
