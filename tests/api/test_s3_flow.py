"""An S3 bucket through the API as a user adds one: the form, browse, a source, sync, status."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, login, wait_for
from tests.providers.s3.harness import S3Harness, auth_moto
from vpack.api.app import create_app
from vpack.settings import Settings

CLIPS = {"footage/Cam1/order-001.mp4": os.urandom(150_000), "footage/Cam2/order-002.mp4": b"2"}


@pytest.fixture
def bucket(tmp_path: Any) -> Iterator[S3Harness]:
    harness = S3Harness(tmp_path)
    for key, data in CLIPS.items():
        harness.client.put_object(Bucket=harness.bucket, Key=key, Body=data)
    yield harness
    harness.proxy.stop()
    harness.client.close()


@pytest.fixture
def live(api_settings: Settings) -> Iterator[tuple[TestClient, list[bytes]]]:
    """The app with its worker, and every response body it sends, for the secret check."""
    seen: list[bytes] = []
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        test_client.event_hooks["response"].append(lambda r: seen.append(r.read()))
        yield test_client, seen


def _form(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Fill the connection form the provider's schema describes, as the web UI does."""
    fields = schema["properties"]
    assert set(schema["required"]) <= set(values), "every required field is filled"
    assert set(values) <= set(fields), "nothing the form does not have"
    return values


def test_connect_a_bucket_browse_pick_and_sync(
    live: tuple[TestClient, list[bytes]], bucket: S3Harness
) -> None:
    client, seen = live
    client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(client, *ADMIN)}"}
    client.cookies.clear()

    providers = {p["name"]: p for p in client.get("/api/providers", headers=auth).json()}
    schema = providers["s3"]["config_schema"]
    assert providers["s3"]["auth"] == "keys"
    assert schema["properties"]["secret_access_key"]["writeOnly"] is True
    config = bucket.connection_config()
    made = client.post(
        "/api/connections",
        headers=auth,
        json={"provider": "s3", "name": "Shop bucket", "config": _form(schema, config)},
    )
    assert made.status_code == 201, made.text
    connection = made.json()
    assert connection["account"] == f"s3://{bucket.bucket} on {bucket.proxy.url}"
    assert "secret_access_key" not in connection["config"]

    browse = f"/api/connections/{connection['id']}/browse"
    top = client.get(browse, headers=auth).json()
    assert [n["id"] for n in top["nodes"]] == ["footage/"]
    cameras = client.get(browse, headers=auth, params={"node": "footage/"}).json()
    assert [n["name"] for n in cameras["nodes"]] == ["Cam1", "Cam2"]

    source = client.post(
        "/api/sources",
        headers=auth,
        json={
            "connection_id": connection["id"],
            "name": "Bucket footage",
            "selections": ["footage/"],
            "cameras": {"Cam1": "Packing desk 1"},
        },
    )
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]
    assert client.post(f"/api/sources/{source_id}/sync", headers=auth).status_code == 202
    status = wait_for(
        lambda: (
            (s := client.get(f"/api/sources/{source_id}/status", headers=auth).json())["counts"][
                "done"
            ]
            == len(CLIPS)
            and s
        )
    )
    assert status["bytes_done"] == sum(len(d) for d in CLIPS.values())
    assert status["connection_status"] == "ok"

    videos = client.get("/api/videos", headers=auth, params={"source_id": source_id}).json()
    by_name = {v["name"]: v for v in videos["items"]}
    first = by_name["order-001.mp4"]
    assert first["camera"] == "Packing desk 1" and by_name["order-002.mp4"]["camera"] == "Cam2"
    assert first["sha256"] == hashlib.sha256(CLIPS["footage/Cam1/order-001.mp4"]).hexdigest()
    content = client.get(f"/api/videos/{first['id']}/content", headers=auth)
    assert content.content == CLIPS["footage/Cam1/order-001.mp4"]

    assert any(b"Shop bucket" in body for body in seen), "responses were recorded"
    assert all(config["secret_access_key"].encode() not in body for body in seen)


def test_wrong_keys_are_refused_with_a_reason_and_never_echoed(
    live: tuple[TestClient, list[bytes]],
) -> None:
    client, seen = live
    locked = auth_moto()
    client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(client, *ADMIN)}"}
    client.cookies.clear()
    wrong = {**locked.config(locked.reader), "secret_access_key": "a-wrong-secret-value"}
    refused = client.post(
        "/api/connections",
        headers=auth,
        json={"provider": "s3", "name": "Locked", "config": wrong},
    )
    assert refused.status_code == httpx.codes.BAD_REQUEST, refused.text
    assert "secret access key does not belong" in refused.text
    assert client.get("/api/connections", headers=auth).json() == []
    assert any(b"secret access key" in body for body in seen), "responses were recorded"
    assert all(b"a-wrong-secret-value" not in body for body in seen)
