"""Property-based: every route answers bad input with 4xx and a message, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

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
