"""The S3 provider against moto's real HTTP server, one fresh bucket per harness.

The provider talks to moto through the fault proxy (tests/providers/s3/faults.py),
so the contract's throttling, dropped-stream and wrong-bytes cases can be staged;
the harness arranges objects by talking to moto directly. Credential checks need
moto's IAM auth switched on, which is process-wide in moto: that server runs in a
subprocess of its own (AuthMoto), leaving every other test's server open.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config as BotoConfig
from moto.server import ThreadedMotoServer

from tests.conformance.harness import CUT_STREAM, RANGED, RATE_LIMIT, WRONG_HASH, Harness
from tests.providers.s3.faults import S3FaultProxy

KEY_ID = "AKIAVPACKTEST"
SECRET = "vpack-test-secret"
_lock = threading.Lock()
_endpoint: str | None = None
_auth_moto: AuthMoto | None = None


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


def s3_client(endpoint: str, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=BotoConfig(max_pool_connections=16, s3={"addressing_style": "path"}),
    )


def admin_client() -> Any:
    """A boto3 client for arranging the test's bucket (the provider makes its own)."""
    return s3_client(moto_endpoint())


def put_many(client: Any, bucket: str, keys: list[str], body: bytes = b"") -> None:
    """Create many small objects quickly: moto serves requests in parallel."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=body), keys))


def upload_in_parts(
    client: Any, bucket: str, key: str, data: bytes, part_size: int, full_crc32: str = ""
) -> None:
    """A multipart upload, as big files are uploaded: its ETag is then no MD5.

    With `full_crc32="CRC32"` the object gets a full-object CRC32 checksum (S3's
    ChecksumType FULL_OBJECT), which GetObject returns and clients can check.
    """
    checksum: dict[str, Any] = {}
    if full_crc32:
        checksum = {"ChecksumAlgorithm": full_crc32, "ChecksumType": "FULL_OBJECT"}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **checksum)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), part_size), start=1):
        made = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data[start : start + part_size],
            **({"ChecksumAlgorithm": full_crc32} if full_crc32 else {}),
        )
        part = {"PartNumber": number, "ETag": made["ETag"]}
        if full_crc32:
            part["ChecksumCRC32"] = made["ChecksumCRC32"]
        parts.append(part)
    whole: dict[str, Any] = {}
    if full_crc32:
        crc = zlib.crc32(data).to_bytes(4, "big")
        whole = {"ChecksumCRC32": base64.b64encode(crc).decode(), "ChecksumType": "FULL_OBJECT"}
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **whole
    )


async def boto3_reads(provider: Any) -> list[str]:
    """The keys an S3 provider reads through boto3 from now on, in order; reads
    that take the direct GET (providers/s3_get.py) do not show up here."""
    keys: list[str] = []
    client = await asyncio.to_thread(provider._client)
    client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: keys.append(params["Key"])
    )
    return keys


# ---------------------------------------------------------------- moto with IAM auth on
@dataclass(frozen=True)
class AccessKey:
    key_id: str
    secret: str


_SERVE_UNTIL_STDIN_CLOSES = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
sys.stdin.read()
server.stop()
"""


class AuthMoto:
    """A moto server in its own process that checks signatures and IAM policies.

    Set up while open (moto's default), then locked with moto's documented
    `/moto-api/reset-auth` switch: from then on every request must be signed by a
    known IAM access key whose policies allow it.

    Only moto 5.2.4 and 5.2.5 check both halves as AWS does (pinned in uv.lock):
    up to 5.2.3 the signature was recomputed over Werkzeug's percent-decoded URL,
    so a listing with `prefix=footage%2F` failed SignatureDoesNotMatch; 5.2.6
    authorizes by API name (`s3:ListObjectsV2`), so the least-privilege policy's
    `s3:ListBucket`, the action AWS documents for ListObjectsV2, is refused.
    """

    bucket = "vpack-locked"
    other_bucket = "vpack-locked-other"

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        # The child serves until its stdin closes, which happens however this
        # process ends (a signal-on-parent-death would follow the spawning thread).
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVE_UNTIL_STDIN_CLOSES, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_up()
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )
        self.admin = self._user(iam, "admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
        # The least-privilege policy docs/providers/s3.md recommends.
        self.reader = self._user(
            iam,
            "reader",
            [
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{self.bucket}",
                },
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{self.bucket}/*",
                },
            ],
        )
        admin = self.client(self.admin)
        for bucket in (self.bucket, self.other_bucket):
            admin.create_bucket(Bucket=bucket)
            admin.put_object(Bucket=bucket, Key="footage/Cam1/a.mp4", Body=b"locked clip")
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.endpoint}/moto-api/data.json", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)

    @staticmethod
    def _user(iam: Any, name: str, statements: list[dict[str, Any]]) -> AccessKey:
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        made = iam.create_access_key(UserName=name)["AccessKey"]
        return AccessKey(made["AccessKeyId"], made["SecretAccessKey"])

    def client(self, key: AccessKey) -> Any:
        return s3_client(self.endpoint, key.key_id, key.secret)

    def iam(self) -> Any:
        return boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.admin.key_id,
            aws_secret_access_key=self.admin.secret,
        )

    def config(self, key: AccessKey, **changes: Any) -> dict[str, Any]:
        """Provider config reaching the locked bucket with `key`."""
        return {
            "bucket": self.bucket,
            "endpoint_url": self.endpoint,
            "path_style": True,
            "access_key_id": key.key_id,
            "secret_access_key": key.secret,
            **changes,
        }

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def auth_moto() -> AuthMoto:
    """The auth-checking moto, started on first use and shared by the session."""
    global _auth_moto
    with _lock:
        if _auth_moto is None:
            _auth_moto = AuthMoto()
            atexit.register(_auth_moto.stop)
        return _auth_moto


# ---------------------------------------------------------------- the harness
class S3Harness(Harness):
    name = "s3"
    provider_name = "s3"
    capabilities = frozenset({RANGED, RATE_LIMIT, CUT_STREAM, WRONG_HASH})
    prefix = "footage/"

    def __init__(self, base: Path) -> None:
        self.client = admin_client()
        self.bucket = f"vpack-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=self.bucket)
        # S3 has no folders: an object under the prefix makes the selection exist.
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}.keep", Body=b"")
        self.proxy = S3FaultProxy(moto_endpoint()).start()

    def connection_config(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "endpoint_url": self.proxy.url,
            "path_style": True,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
        }

    def bad_connection_config(self) -> dict[str, Any]:
        locked = auth_moto()
        return locked.config(AccessKey(locked.reader.key_id, "not-the-secret"))

    def selection(self) -> str:
        return self.prefix

    def key(self, camera: str, name: str) -> str:
        return f"{self.prefix}{camera}/{name}"

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        key = self.key(camera, name)
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def remove_video(self, camera: str, name: str) -> None:
        key = self.key(camera, name)
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        where = parent or self.prefix
        keys = [f"{where}{name}/.keep" for name in names]
        await asyncio.to_thread(put_many, self.client, self.bucket, keys)
        return where

    # S3 sends no Retry-After with SlowDown: clients back off on their own.
    async def rate_limit_next(self, requests: int, retry_after: float) -> None:
        self.proxy.fail_next(requests, "SlowDown")

    async def cut_next_download(self, after_bytes: int) -> None:
        self.proxy.cut_next_download(after_bytes)

    async def corrupt_next_download(self) -> None:
        self.proxy.corrupt_next_download()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.proxy.stop)
        await asyncio.to_thread(self.client.close)
