"""Amazon S3 and S3-compatible stores (MinIO, Wasabi, R2, B2, Ceph) through boto3 (plain
reads through the lighter path in `get.py`, scans' listings through `listing.py`'s).

boto3 is imported with the first client, not with this module: a scan's first
listing leaves without it (`listing.py`), and the import and the client (0.2 s of CPU)
are made while the store answers."""

from __future__ import annotations

import asyncio
import functools
import logging
import posixpath
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from vpack.providers.base import (
    AuthKind,
    BlockingReader,
    BrowsePage,
    Checkpoint,
    Features,
    Found,
    HashKind,
    Identity,
    Node,
    Provider,
    RemoteVideo,
    ScanEvent,
    Waiting,
    stream_in_thread,
)
from vpack.providers.errors import (
    AuthExpired,
    BadConfig,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit.files import camera_folder, is_video_name
from vpack.providers.registry import register
from vpack.providers.s3.curl import FetchFailed
from vpack.providers.s3.get import DirectGet
from vpack.providers.s3.listing import DirectList, bucket_url, environment_transport
from vpack.providers.s3.sigv4 import Keys

if TYPE_CHECKING:
    from botocore.response import StreamingBody

log = logging.getLogger(__name__)

_READ_BYTES = 1024 * 1024
_CONNECT_TIMEOUT, _READ_TIMEOUT = 15, 60  # seconds, for boto3 and libcurl alike
# Large objects are read as consecutive ranges, several in flight, handed on in order:
# one slow connection no longer sets the pace, the `.part` stays a prefix of the object
# (resume and hashing unchanged) and memory is bounded by the ranges in flight.
_PARALLEL_FROM = 32 * 1024 * 1024
_RANGE_BYTES = 4 * 1024 * 1024
_RANGES_IN_FLIGHT = 4
# Reads of at most this many bytes (small objects, the ranges above) are fetched whole,
# through libcurl (`get.py`): the per-request cost then matters most.
_FETCH_AT_MOST = _RANGE_BYTES
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")  # multipart ETags are "md5-of-md5s-N": no content hash
# Objects here need a restore before GetObject works (Glacier Instant Retrieval does not).
_ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_WRONG_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
# Codes for keys S3 refuses, and what to tell the user.
_KEY_MESSAGES = {
    "InvalidAccessKeyId": "{where} does not know the access key id {key}: check it "
    "(keys of one S3 service or account do not work on another)",
    "SignatureDoesNotMatch": "the secret access key does not belong to access key id {key}: "
    "check the secret",
    "InvalidToken": "the access key {key} was refused as invalid: make a new key",
    "ExpiredToken": "the access key {key} has expired: make a new key",
}
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
    verify_checksums: bool = Field(
        default=True,
        description="Check the x-amz-checksum-* a download carries; turn off only for a "
        "store that sends wrong ones.",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        """A full http(s) URL with a plain host, read before any check or request, so the
        address the network rules judge is the one botocore then dials."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r} needs its scheme: https://{value}")
        if not parts.hostname or "%" in parts.netloc or "@" in parts.netloc:
            raise ValueError(f"{value!r} has no plain host name (like s3.example.com:9000)")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number below 65536
        except ValueError:
            raise ValueError(f"{value!r} has an invalid port") from None
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: an endpoint has no ?query or #fragment")
        return value


class S3SourceOptions(BaseModel):
    pass


def _prefix(node: str) -> str:
    """A node id as a key prefix: no leading slash, one trailing slash ("" = the bucket)."""
    node = node.lstrip("/")
    return node if not node or node.endswith("/") else node + "/"


def _last_segment(prefix: str) -> str:
    return prefix.rstrip("/").rpartition("/")[2]


def _next_token(listing: dict[str, Any]) -> str | None:
    """The continuation token of the page after this ListObjectsV2 page, if any."""
    token = listing.get("NextContinuationToken") if listing.get("IsTruncated") else None
    return token or None


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
        self._direct: DirectGet | None = None  # plain GETs without boto3's per-call cost
        self._lister: DirectList | None = None  # scans' listings without boto3
        self._list_directly = True  # until a listing had to go through boto3
        self._client_lock = threading.Lock()
        self._bucket_region: str | None = None  # where S3 said the bucket is, if not config.region
        # (key, ETag) of SSE-KMS objects read: their ETag is no MD5 though it looks like one.
        self._etag_not_md5: set[tuple[str, str]] = set()

    # ------------------------------------------------------------ boto3 plumbing
    def _client(self) -> Any:
        """The boto3 client, made on first use in a worker thread (creating one is slow)."""
        with self._client_lock:
            if self._client_obj is None:
                import boto3
                import botocore.session
                from botocore.config import Config as BotoConfig

                cfg = self.config
                options: dict[str, Any] = {
                    "region_name": cfg.region,
                    "s3": {"addressing_style": "path" if cfg.path_style else "auto"},
                    "retries": {"mode": "standard", "total_max_attempts": 3},
                    "connect_timeout": _CONNECT_TIMEOUT,
                    "read_timeout": _READ_TIMEOUT,
                    "max_pool_connections": 32,
                }
                if cfg.endpoint_url:
                    # Newer SDK checksum defaults break several S3-compatible stores.
                    options["request_checksum_calculation"] = "when_required"
                    options["response_checksum_validation"] = "when_required"
                core = botocore.session.Session()
                # Timestamps stay as S3 sent them (ISO 8601), as the AWS CLI keeps them:
                # botocore's parser (dateutil) took 40 ms of every 1,000-key listing
                # page; the one timestamp used is parsed in _event.
                factory = core.get_component("response_parser_factory")
                factory.set_parser_defaults(timestamp_parser=str)
                session = boto3.session.Session(
                    aws_access_key_id=cfg.access_key_id,
                    aws_secret_access_key=cfg.secret_access_key.get_secret_value(),
                    region_name=cfg.region,
                    botocore_session=core,
                )
                client = session.client(
                    "s3", endpoint_url=cfg.endpoint_url, config=BotoConfig(**options)
                )
                client.meta.events.register("needs-retry.s3", self._note_region)
                if self._direct is None:
                    self._direct = DirectGet(self._keys())
                self._direct.attach(client)
                self._client_obj = client
            return self._client_obj

    def _note_region(self, response: Any = None, **_: Any) -> None:
        """Remember the region a wrong-region answer names. botocore re-signs and
        retries such requests itself; check() then tells which region is right."""
        http, parsed = response or (None, None)
        error = (parsed or {}).get("Error")
        if http is None or not error:
            return
        region = error.get("Region") or http.headers.get("x-amz-bucket-region")
        if region and region != self.config.region:
            self._bucket_region = str(region)

    def _call(self, operation: str, *, checking: bool = False, **params: Any) -> Any:
        """One S3 request with its failures as our error classes (blocking)."""
        from botocore.exceptions import BotoCoreError, ClientError  # loaded by the client

        try:
            return getattr(self._client(), operation)(Bucket=self.config.bucket, **params)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, params.get("Key"), checking=checking) from None

    def _error(self, exc: Exception, key: str | None, *, checking: bool) -> ProviderError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            HTTPClientError,
            NoCredentialsError,
            ParamValidationError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

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
        if code in _KEY_MESSAGES:
            message = _KEY_MESSAGES[code].format(key=self.config.access_key_id, where=where)
            return BadConfig(message) if checking else AuthExpired(message)
        if code == "RequestTimeTooSkewed":
            message = "this machine's clock is too far off for S3 to accept requests: fix it"
            return BadConfig(message) if checking else Transient(message)
        if code == "NoSuchBucket":
            return BadConfig(f"bucket {bucket} does not exist")
        if code in _WRONG_REGION:
            region = meta.get("HTTPHeaders", {}).get("x-amz-bucket-region")
            hint = f" (it is in {region})" if region else ""
            return BadConfig(
                f"bucket {bucket} is not in region {self.config.region}{hint}: fix the region"
            )
        if code in ("AccessDenied", "AllAccessDisabled"):
            what = f"{key} in bucket {bucket}" if key else f"bucket {bucket}"
            return BadConfig(
                f"access denied to {what}: the key needs s3:ListBucket on the bucket and "
                "s3:GetObject on its objects (is the bucket name right?)"
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
        details: dict[str, Any] = {
            "bucket": cfg.bucket,
            "region": cfg.region,
            "prefixes": cfg.prefixes,
        }
        if self._bucket_region:
            # Working, at one extra request per run: say where the bucket really is.
            log.warning(
                "bucket %s is in region %s, not %s: set that region to save a redirect",
                cfg.bucket,
                self._bucket_region,
                cfg.region,
            )
            details["region"] = self._bucket_region
            details["configured_region"] = cfg.region
        return Identity(
            id=f"{host}/{cfg.bucket}",
            label=f"s3://{cfg.bucket}" + (f" on {cfg.endpoint_url}" if cfg.endpoint_url else ""),
            details=details,
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
        next_page: asyncio.Future[Any] | None = self._list_page(prefix, None)
        try:
            while next_page is not None:
                listing = await next_page
                token = _next_token(listing)
                # The next page is asked for before this one is handed on: the store
                # lists while the engine records (a page of 1,000 keys is a round trip
                # and ~150 ms of a busy server's time), so neither waits for the other.
                next_page = self._list_page(prefix, token) if token else None
                for obj in listing.get("Contents", []):
                    event = self._event(obj, prefix, camera)
                    if event is not None:
                        yield event
        finally:
            if next_page is not None:  # the scan was abandoned: no page is wanted
                next_page.cancel()
                await asyncio.gather(next_page, return_exceptions=True)
        yield Checkpoint(cursor=None)

    def _list_page(self, prefix: str, token: str | None) -> asyncio.Future[Any]:
        """One ListObjectsV2 page under `prefix`, already on its way."""
        return asyncio.ensure_future(self._run(self._fetch_page, prefix, token))

    def _fetch_page(self, prefix: str, token: str | None) -> dict[str, Any]:
        """One page of a listing (blocking): through libcurl where `listing.py` can send it,
        else through boto3."""
        lister = self._direct_lister()
        if lister is not None:
            listing = lister.page(prefix, token, self.features.page_size)
            if listing is not None:
                self._route_proven(lister)
                return listing
            # Refused, redirected or unreadable: boto3 asks again and says what is
            # wrong, and lists from here on.
            with self._client_lock:
                self._list_directly, self._lister = False, None
            lister.close()
        params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": self.features.page_size}
        if token:
            params["ContinuationToken"] = token
        answer: dict[str, Any] = self._call("list_objects_v2", **params)
        return answer

    def _direct_lister(self) -> DirectList | None:
        with self._client_lock:
            if self._lister is None and self._list_directly:
                cfg = self.config
                url = bucket_url(cfg.endpoint_url, cfg.path_style, cfg.bucket, cfg.region)
                if url is None:
                    self._list_directly = False
                    return None
                transport = environment_transport(url, _CONNECT_TIMEOUT, _READ_TIMEOUT)
                self._lister = DirectList(url, cfg.region, self._keys(), transport)
            return self._lister

    def _route_proven(self, lister: DirectList) -> None:
        """A listing came back from the bucket URL the settings give: reads can go
        there too, with no boto3 (see `get.py`)."""
        if self._direct is not None and self._direct.ready:
            return
        with self._client_lock:
            if self._direct is None:
                self._direct = DirectGet(self._keys())
            self._direct.take_route(lister.objects, self.config.region, lister.transport)

    def _keys(self) -> Keys:
        cfg = self.config
        return Keys(cfg.access_key_id, cfg.secret_access_key.get_secret_value())

    def _event(self, obj: dict[str, Any], prefix: str, default_camera: str) -> ScanEvent | None:
        key: str = obj["Key"]
        if not is_video_name(key):
            return None
        if obj.get("StorageClass") in _ARCHIVED:
            # Seen but not offered: a lifecycle move to Glacier is not a removal.
            log.info(
                "s3://%s/%s is archived (%s): skipped", self.config.bucket, key, obj["StorageClass"]
            )
            return Waiting(key)
        etag = str(obj.get("ETag", "")).strip('"')
        return Found(
            RemoteVideo(
                remote_id=key,
                revision=etag,
                name=posixpath.basename(key),
                camera=camera_folder(key[len(prefix) :]) or default_camera,
                size=obj.get("Size"),
                hash=etag.lower() if _PLAIN_MD5.fullmatch(etag.lower()) else None,
                modified_at=_timestamp(obj.get("LastModified")),
                path=key,
            )
        )

    def blocking_reader(self, video: RemoteVideo) -> BlockingReader:
        return functools.partial(self._read, video)

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return stream_in_thread(self._read(video, offset))

    def _read(self, video: RemoteVideo, offset: int) -> Generator[bytes, None, None]:
        """The object's bytes from `offset`, only while its ETag is still the listed one."""
        # No MD5 to check (a multipart ETag): an x-amz-checksum-* is then the only
        # content check, and S3 sends it only for a whole-object read, which botocore
        # checks as the body is read. (With an MD5 it would only cost CPU.)
        whole_checksum = self._checks_whole(video, offset)
        if video.size is not None and video.size - offset >= _PARALLEL_FROM and not whole_checksum:
            yield from self._read_ranges(video, offset, video.size)
            return
        params = self._get_params(video)
        if offset:
            params["Range"] = f"bytes={offset}-"
        elif whole_checksum:
            params["ChecksumMode"] = "ENABLED"
        if video.size is not None and video.size - offset <= _FETCH_AT_MOST:
            try:
                data = self._fetch(video, params)
            except FetchFailed as exc:
                if exc.received:
                    yield exc.received  # a prefix of the object: the retry resumes after it
                raise self._fetch_error(video, exc) from None
            if data is not None:
                if data:
                    yield data
                return
        yield from self._body(video, self._get(video, params))

    def _checks_whole(self, video: RemoteVideo, offset: int) -> bool:
        """Is this a read whose x-amz-checksum-* botocore must check?"""
        return not offset and self.config.verify_checksums and video.hash is None

    def read_ahead(self, video: RemoteVideo | None) -> None:
        direct = self._direct
        if direct is None:
            return
        if video is None:
            direct.forget()
            return
        small = video.size is not None and video.size <= _FETCH_AT_MOST
        if not small or self._checks_whole(video, 0):
            return  # not a read that goes through libcurl whole
        try:
            headers = self._direct_headers(self._get_params(video))
            if headers is not None:
                direct.start(video.remote_id, headers)
        except Exception:  # a hint only: the read itself reports what goes wrong
            log.debug("s3://%s/%s: not sent ahead", self.config.bucket, video.remote_id)

    def _get_params(self, video: RemoteVideo) -> dict[str, Any]:
        return {"Key": video.remote_id, "IfMatch": f'"{video.revision}"'}

    def _get(
        self, video: RemoteVideo, params: dict[str, Any], direct: bool = True
    ) -> StreamingBody:
        """The object's body; S3's errors as ours. `direct=False`: ask boto3 now."""
        got = self._get_direct(params) if direct else None
        if got is None:
            response = self._call("get_object", **params)
            if self._direct is not None:
                self._direct.learn(params["Key"])
            got = response["Body"], response["ResponseMetadata"]["HTTPHeaders"]
        body, headers = got
        self._note_encryption(video, headers)
        return body

    def _fetch(self, video: RemoteVideo, params: dict[str, Any]) -> bytes | None:
        """A bounded read whole, through libcurl (see `get.py`); None when it must go
        through `_get`: before boto3's first read, or with a checksum to validate."""
        headers = self._direct_headers(params)
        if headers is None:
            return None
        assert self._direct is not None
        got = self._direct.fetch(params["Key"], headers)
        if got is None:  # not the object: boto3 asks again and tells what it is
            return b"".join(self._body(video, self._get(video, params, direct=False)))
        data, response_headers = got
        self._note_encryption(video, response_headers)
        return data

    def _fetch_error(self, video: RemoteVideo, exc: FetchFailed) -> ProviderError:
        where = self.config.endpoint_url or "S3"
        if not exc.reached:
            return Transient(f"cannot reach {where}: check the endpoint URL and the network")
        if exc.cut:
            return Transient(f"{video.path}: download cut short ({exc})")
        return Transient(f"{where}: {exc}")  # TLS refused, no answer: as boto3's errors read

    def _note_encryption(self, video: RemoteVideo, headers: Mapping[str, str]) -> None:
        if video.hash and headers.get("x-amz-server-side-encryption", "").startswith("aws:kms"):
            log.info("%s is SSE-KMS encrypted: its ETag is no MD5", video.path)
            self._etag_not_md5.add((video.remote_id, video.revision))

    def _direct_headers(self, params: dict[str, Any]) -> dict[str, str] | None:
        """The headers of a plain GET without boto3 (see `get.py`); None when boto3 must
        do it: before the route is known, or with a checksum to validate."""
        if self._direct is None or not self._direct.ready:
            self._client()  # its first read shows the route
        if self._direct is None or not self._direct.ready or "ChecksumMode" in params:
            return None
        headers = {"If-Match": params["IfMatch"]}
        if "Range" in params:
            headers["Range"] = params["Range"]
        return headers

    def _get_direct(self, params: dict[str, Any]) -> tuple[StreamingBody, Mapping[str, str]] | None:
        """A plain streamed GET without boto3 (see `get.py`); None when boto3 must do it."""
        headers = self._direct_headers(params)
        if headers is None or self._direct is None or not self._direct.streams:
            return None
        from botocore.exceptions import BotoCoreError

        try:
            return self._direct.get(params["Key"], headers)
        except BotoCoreError as exc:
            raise self._error(exc, params["Key"], checking=False) from None

    def _read_ranges(
        self, video: RemoteVideo, offset: int, size: int
    ) -> Generator[bytes, None, None]:
        """Consecutive ranges from `offset`, a few fetched at once, yielded in order."""
        starts = iter(range(offset, size, _RANGE_BYTES))
        pool = ThreadPoolExecutor(_RANGES_IN_FLIGHT, thread_name_prefix="s3-range")
        in_flight: deque[Future[bytes]] = deque()

        def next_range() -> None:
            start = next(starts, None)
            if start is not None:
                end = min(start + _RANGE_BYTES, size) - 1
                in_flight.append(pool.submit(self._fetch_range, video, start, end))

        try:
            for _ in range(_RANGES_IN_FLIGHT):
                next_range()
            while in_flight:
                data = in_flight.popleft().result()  # a failed range ends the read here
                next_range()
                yield data
        finally:
            # Stopped early or failed: what was handed on is a prefix; drop the rest.
            pool.shutdown(wait=False, cancel_futures=True)

    def _fetch_range(self, video: RemoteVideo, start: int, end: int) -> bytes:
        params = {**self._get_params(video), "Range": f"bytes={start}-{end}"}
        try:
            data = self._fetch(video, params)
        except FetchFailed as exc:
            raise self._fetch_error(video, exc) from None
        if data is None:
            data = b"".join(self._body(video, self._get(video, params)))
        if len(data) != end - start + 1:
            raise Transient(f"{video.path}: range {start}-{end} came back with {len(data)} bytes")
        return data

    def _body(self, video: RemoteVideo, body: StreamingBody) -> Generator[bytes, None, None]:
        from botocore.exceptions import (
            FlexibleChecksumError,
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
        )

        try:
            while True:
                try:
                    chunk = body.read(_READ_BYTES)
                except FlexibleChecksumError as exc:
                    # What arrived is not the object: a retry must not resume from it.
                    raise Transient(f"{video.path}: {exc}", restart=True) from None
                except (IncompleteReadError, ResponseStreamingError, HTTPClientError) as exc:
                    raise Transient(f"{video.path}: download cut short ({exc})") from None
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def destinations(self) -> list[str]:
        host = urlsplit(self.config.endpoint_url).hostname if self.config.endpoint_url else None
        return [host] if host else []

    def expected_hash(self, video: RemoteVideo) -> str | None:
        """The MD5 the bytes just read must have: the listed ETag, unless the read
        showed SSE-KMS (or dual-layer DSSE-KMS) encryption, whose ETags are not MD5s
        of the content even for single-part uploads (S3 API Reference, Object / ETag).
        (SSE-C objects cannot be read at all without the customer's key.)"""
        if (video.remote_id, video.revision) in self._etag_not_md5:
            return None
        return video.hash

    async def aclose(self) -> None:
        if self._client_obj is not None:
            await asyncio.to_thread(self._client_obj.close)
        if self._direct is not None:
            self._direct.close()
        if self._lister is not None:
            self._lister.close()
        await super().aclose()


def _timestamp(value: str | None) -> datetime | None:
    """A listing's LastModified ("2026-11-25T06:17:27.000Z") as a datetime in UTC."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        log.warning("unreadable LastModified %r", value)
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
