"""Through the API, a user cannot point a recorder or an endpoint at the server itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, login
from tests.providers.hikvision.emulator import HikvisionDevice
from vpack.api.app import create_app
from vpack.settings import Settings


@pytest.fixture
def strict(api_settings: Settings) -> Iterator[TestClient]:
    """The service as shipped: loopback and link-local refused."""
    shipped = Settings.model_fields["blocked_networks"].default
    settings = api_settings.model_copy(update={"blocked_networks": shipped})
    with TestClient(create_app(settings, run_worker=False)) as client:
        client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        client.headers["Authorization"] = f"Bearer {login(client, *ADMIN)}"
        client.cookies.clear()
        yield client


def test_a_recorder_on_the_servers_loopback_is_refused_before_any_request(
    strict: TestClient,
) -> None:
    with HikvisionDevice() as nvr:
        answer = strict.post(
            "/api/connections",
            json={
                "provider": "hikvision",
                "name": "Not a recorder",
                "config": {
                    "host": "127.0.0.1",
                    "port": nvr.port,
                    "username": "admin",
                    "password": "Vpack-12345",
                },
            },
        )
        assert answer.status_code == 400, answer.text
        assert "VPACK_BLOCKED_NETWORKS" in answer.text
        assert sum(nvr.calls.values()) == 0, "nothing was sent to the blocked address"
    assert strict.get("/api/connections").json() == []


def test_cloud_metadata_is_refused_as_an_s3_endpoint(strict: TestClient) -> None:
    answer = strict.post(
        "/api/connections",
        json={
            "provider": "s3",
            "name": "metadata",
            "config": {
                "bucket": "b",
                "endpoint_url": "http://169.254.169.254/latest/meta-data/",
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": "secret",
            },
        },
    )
    assert answer.status_code == 400 and "169.254.169.254" in answer.text
