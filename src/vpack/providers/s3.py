"""Amazon S3 and S3-compatible stores (MinIO, Wasabi, R2, B2, Ceph) through boto3."""

from __future__ import annotations

import asyncio
import functools
import logging
import posixpath
import re
import threading
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import BaseModel, Field, SecretStr

from vpack.providers.base import (
    AuthExpired,
    AuthKind,
    BadConfig,
    BlockingReader,
    BrowsePage,
    Checkpoint,
    Features,
    Found,
    HashKind,
    Identity,
    Node,
    NotFound,
    Permanent,
    Provider,
    ProviderError,
    RateLimited,
    RemoteVideo,
    ScanEvent,
    Transient,
    Waiting,
    stream_in_thread,
)
from vpack.providers.local import VIDEO_EXTENSIONS
from vpack.providers.registry import register

log = logging.getLogger(__name__)

_READ_BYTES = 1024 * 1024
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")  # multipart ETags are "md5-of-md5s-N": no content hash
# Objects here need a restore before GetObject works (Glacier Instant Retrieval does not).
_ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_BAD_KEYS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"})
_WRONG_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_THROTTLED = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)


class S3Config(BaseModel):
    bucket: str = Field(min_length=1, description="The bucket the videos are in.")
    prefixes: list[str] = Field(
        default_factory=list,
        description="Key prefixes this connection may read (empty: the whole bucket).",
    )
    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="For S3-compatible stores (MinIO, Wasabi, R2, B2...)."
    )
    path_style: bool = Field(default=False, description="bucket in the path, not the host name")
    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretStr


class S3SourceOptions(BaseModel):
    pass


def _prefix(node: str) -> str:
    """A node id as a key prefix: no leading slash, one trailing slash ("" = the bucket)."""
    node = node.lstrip("/")
    return node if not node or node.endswith("/") else node + "/"


def _last_segment(prefix: str) -> str:
    return prefix.rstrip("/").rpartition("/")[2]


@register
class S3Provider(Provider):
    name = "s3"
    label = "Amazon S3"
    description = "A bucket on Amazon S3 or an S3-compatible store (MinIO, Wasabi, R2, B2, Ceph)."
    auth = AuthKind.KEYS
    features = Features(ranged_reads=True, hash_kind=HashKind.MD5, full_listing=True)
    Config = S3Config
    SourceOptions = S3SourceOptions

    config: S3Config

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._client_obj: Any = None
        self._client_lock = threading.Lock()

    # ------------------------------------------------------------ boto3 plumbing
    def _client(self) -> Any:
        """The boto3 client, made on first use in a worker thread (creating one is slow)."""
        with self._client_lock:
            if self._client_obj is None:
                cfg = self.config
                options: dict[str, Any] = {
                    "region_name": cfg.region,
                    "s3": {"addressing_style": "path" if cfg.path_style else "auto"},
                    "retries": {"mode": "standard", "max_attempts": 3},
                    "connect_timeout": 15,
                    "read_timeout": 60,
                    "max_pool_connections": 32,
                }
                if cfg.endpoint_url:
                    # Newer SDK checksum defaults break several S3-compatible stores.
                    options["request_checksum_calculation"] = "when_required"
                    options["response_checksum_validation"] = "when_required"
                session = boto3.session.Session(
                    aws_access_key_id=cfg.access_key_id,
                    aws_secret_access_key=cfg.secret_access_key.get_secret_value(),
                    region_name=cfg.region,
                )
                self._client_obj = session.client(
                    "s3", endpoint_url=cfg.endpoint_url, config=BotoConfig(**options)
                )
            return self._client_obj

    def _call(self, operation: str, *, checking: bool = False, **params: Any) -> Any:
        """One S3 request with its failures as our error classes (blocking)."""
        try:
            return getattr(self._client(), operation)(Bucket=self.config.bucket, **params)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, params.get("Key"), checking=checking) from None

    def _error(self, exc: Exception, key: str | None, *, checking: bool) -> ProviderError:
        bucket, where = self.config.bucket, self.config.endpoint_url or "S3"
        if isinstance(exc, EndpointConnectionError):
            message = f"cannot reach {where}: check the endpoint URL and the network"
            return BadConfig(message) if checking else Transient(message)
        if isinstance(exc, NoCredentialsError | ParamValidationError):
            return BadConfig(f"invalid S3 request: {exc}")
        if isinstance(exc, BotoConnectionError | HTTPClientError | BotoCoreError):
            return Transient(f"{where}: {exc}")
        assert isinstance(exc, ClientError)
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code, status = str(error.get("Code", "")), int(meta.get("HTTPStatusCode") or 0)
        if code in _BAD_KEYS:
            message = f"the access key or secret is wrong for bucket {bucket} ({code})"
            return BadConfig(message) if checking else AuthExpired(message)
        if code == "NoSuchBucket":
            return BadConfig(f"bucket {bucket} does not exist")
        if code in _WRONG_REGION:
            region = meta.get("HTTPHeaders", {}).get("x-amz-bucket-region")
            hint = f" (it is in {region})" if region else ""
            return BadConfig(
                f"bucket {bucket} is not in region {self.config.region}{hint}: fix the region"
            )
        if code in ("AccessDenied", "AllAccessDisabled"):
            return BadConfig(
                f"the key may not read bucket {bucket}: it needs s3:ListBucket and s3:GetObject"
            )
        if code in ("NoSuchKey", "404") or (status == 404 and key):
            return NotFound(f"{key} was removed before it could be copied")
        if code == "PreconditionFailed" or status == 412:
            return NotFound(f"{key} changed after it was listed; the new version follows")
        if code == "InvalidObjectState":
            return Permanent(f"{key} is archived (Glacier): restore it before it can be copied")
        if code in _THROTTLED or status in (429, 503):
            after = meta.get("HTTPHeaders", {}).get("retry-after")
            return RateLimited(f"{where} asks us to slow down ({code or status})", _float(after))
        if status >= 500 or status == 0:
            return Transient(f"{where} failed: {code or status} {error.get('Message', '')}")
        return Permanent(f"S3 refused the request: {code} {error.get('Message', '')}".strip())

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def _allowed(self, node: str) -> str:
        prefix = _prefix(node)
        allowed = [_prefix(p) for p in self.config.prefixes]
        if allowed and not any(prefix.startswith(p) for p in allowed):
            raise BadConfig(f"{node} is outside the prefixes this connection may read")
        return prefix

    # ------------------------------------------------------------ interface
    async def check(self) -> Identity:
        cfg = self.config
        first = _prefix(cfg.prefixes[0]) if cfg.prefixes else ""
        # ListObjectsV2 rather than ListBuckets: least-privilege keys may only list this bucket.
        await self._run(self._call, "list_objects_v2", checking=True, Prefix=first, MaxKeys=1)
        host = cfg.endpoint_url or f"s3.{cfg.region}.amazonaws.com"
        return Identity(
            id=f"{host}/{cfg.bucket}",
            label=f"s3://{cfg.bucket}" + (f" on {cfg.endpoint_url}" if cfg.endpoint_url else ""),
            details={"bucket": cfg.bucket, "region": cfg.region, "prefixes": cfg.prefixes},
        )

    async def validate_selection(self, selection: str) -> str:
        prefix = self._allowed(selection)
        found = await self._run(
            self._call, "list_objects_v2", checking=True, Prefix=prefix, MaxKeys=1
        )
        if not found.get("KeyCount"):
            raise BadConfig(f"nothing in bucket {self.config.bucket} under {prefix or '/'}")
        return _last_segment(prefix) or self.config.bucket

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None and self.config.prefixes:
            return BrowsePage(nodes=[self._node(_prefix(p)) for p in self.config.prefixes])
        params: dict[str, Any] = {
            "Prefix": self._allowed(node or ""),
            "Delimiter": "/",
            "MaxKeys": self.features.page_size,
        }
        if page:
            params["ContinuationToken"] = page
        listing = await self._run(self._call, "list_objects_v2", **params)
        nodes = [self._node(p["Prefix"]) for p in listing.get("CommonPrefixes", [])]
        more = listing.get("IsTruncated") and listing.get("NextContinuationToken")
        return BrowsePage(nodes=nodes, next_page=more or None)

    def _node(self, prefix: str) -> Node:
        # Whether a prefix has sub-prefixes costs a request each: let the tree ask.
        return Node(id=prefix, name=_last_segment(prefix) or prefix, kind="folder")

    async def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        prefix = self._allowed(selection)
        camera = _last_segment(prefix) or self.config.bucket
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": self.features.page_size}
            if token:
                params["ContinuationToken"] = token
            listing = await self._run(self._call, "list_objects_v2", **params)
            for obj in listing.get("Contents", []):
                event = self._event(obj, prefix, camera)
                if event is not None:
                    yield event
            token = listing.get("NextContinuationToken") if listing.get("IsTruncated") else None
            if not token:
                break
        yield Checkpoint(cursor=None)

    def _event(self, obj: dict[str, Any], prefix: str, default_camera: str) -> ScanEvent | None:
        key: str = obj["Key"]
        if posixpath.splitext(key)[1].lower() not in VIDEO_EXTENSIONS:
            return None
        if obj.get("StorageClass") in _ARCHIVED:
            # Seen but not offered: a lifecycle move to Glacier is not a removal.
            log.info(
                "s3://%s/%s is archived (%s): skipped", self.config.bucket, key, obj["StorageClass"]
            )
            return Waiting(key)
        etag = str(obj.get("ETag", "")).strip('"')
        first, sep, _ = key[len(prefix) :].partition("/")
        return Found(
            RemoteVideo(
                remote_id=key,
                revision=etag,
                name=posixpath.basename(key),
                camera=first if sep and first else default_camera,
                size=obj.get("Size"),
                hash=etag.lower() if _PLAIN_MD5.fullmatch(etag.lower()) else None,
                modified_at=obj.get("LastModified"),
                path=key,
            )
        )

    def blocking_reader(self, video: RemoteVideo) -> BlockingReader:
        return functools.partial(self._read, video)

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return stream_in_thread(self._read(video, offset))

    def _read(self, video: RemoteVideo, offset: int) -> Generator[bytes, None, None]:
        """The object's bytes from `offset`, only while its ETag is still the listed one."""
        params: dict[str, Any] = {"Key": video.remote_id, "IfMatch": f'"{video.revision}"'}
        if offset:
            params["Range"] = f"bytes={offset}-"
        body = self._call("get_object", **params)["Body"]
        try:
            while True:
                try:
                    chunk = body.read(_READ_BYTES)
                except (IncompleteReadError, ResponseStreamingError, HTTPClientError) as exc:
                    raise Transient(f"{video.path}: download cut short ({exc})") from None
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def aclose(self) -> None:
        if self._client_obj is not None:
            await asyncio.to_thread(self._client_obj.close)
        await super().aclose()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
