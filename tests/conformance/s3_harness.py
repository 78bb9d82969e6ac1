"""The S3 provider against moto's real HTTP server, one fresh bucket per harness."""

from __future__ import annotations

import asyncio
import atexit
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from moto.server import ThreadedMotoServer

from tests.conformance.harness import RANGED, Harness

KEY_ID = "AKIAVPACKTEST"
SECRET = "vpack-test-secret"
_lock = threading.Lock()
_endpoint: str | None = None


def moto_endpoint() -> str:
    """One moto server for the whole test session, started on first use."""
    global _endpoint
    with _lock:
        if _endpoint is None:
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            atexit.register(server.stop)
            host, port = server.get_host_and_port()
            _endpoint = f"http://{host}:{port}"
        return _endpoint


def admin_client() -> Any:
    """A boto3 client for arranging the test's bucket (the provider makes its own)."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint(),
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=BotoConfig(max_pool_connections=16),
    )


def put_many(client: Any, bucket: str, keys: list[str], body: bytes = b"") -> None:
    """Create many small objects quickly: moto serves requests in parallel."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=body), keys))


class S3Harness(Harness):
    name = "s3"
    provider_name = "s3"
    capabilities = frozenset({RANGED})
    prefix = "footage/"

    def __init__(self, base: Path) -> None:
        self.client = admin_client()
        self.bucket = f"vpack-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=self.bucket)
        # S3 has no folders: an object under the prefix makes the selection exist.
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}.keep", Body=b"")

    def connection_config(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "endpoint_url": moto_endpoint(),
            "path_style": True,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
        }

    def bad_connection_config(self) -> dict[str, Any]:
        # moto checks signatures only with its global IAM auth on, which would
        # affect every test at once: a missing bucket stands in for bad settings.
        return {**self.connection_config(), "bucket": f"{self.bucket}-missing"}

    def selection(self) -> str:
        return self.prefix

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        key = f"{self.prefix}{camera}/{name}"
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def remove_video(self, camera: str, name: str) -> None:
        key = f"{self.prefix}{camera}/{name}"
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        where = parent or self.prefix
        keys = [f"{where}{name}/.keep" for name in names]
        await asyncio.to_thread(put_many, self.client, self.bucket, keys)
        return where

    async def aclose(self) -> None:
        await asyncio.to_thread(self.client.close)
