"""The S3 provider against moto's HTTP server: paging, odd keys, revisions, archives, multipart."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pycurl
import pytest
from sqlalchemy import select

from tests.conformance.harness import videos_of
from tests.providers.s3.harness import S3Harness, boto3_reads, put_many, upload_in_parts
from vpack.db.models import Connection, VideoState
from vpack.providers.base import Found, RemoteVideo, ScanEvent
from vpack.providers.errors import BadConfig, NotFound, RateLimited, Transient
from vpack.providers.s3 import provider as s3_module
from vpack.providers.s3.provider import S3Provider, S3SourceOptions
from vpack.services import Services
from vpack.sync.transfer import Staged, stage_each_blocking


def _provider(s3: S3Harness, **changes: object) -> S3Provider:
    provider = s3.build({**s3.connection_config(), **changes})
    assert isinstance(provider, S3Provider)
    return provider


async def _scan(s3: S3Harness) -> list[ScanEvent]:
    provider = _provider(s3)
    try:
        return await _scan_with(provider, s3)
    finally:
        await provider.aclose()


async def _scan_with(provider: S3Provider, s3: S3Harness) -> list[ScanEvent]:
    return [e async for e in provider.scan(s3.selection(), None, S3SourceOptions())]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _found(events: list[ScanEvent]) -> list[RemoteVideo]:
    return [e.video for e in events if isinstance(e, Found)]


async def _put(s3: S3Harness, key: str, data: bytes, **extra: str) -> None:
    await asyncio.to_thread(s3.client.put_object, Bucket=s3.bucket, Key=key, Body=data, **extra)


async def test_scan_pages_past_a_thousand_keys(s3: S3Harness) -> None:
    keys = [f"{s3.prefix}Cam{i % 3}/clip-{i:04d}.mp4" for i in range(2500)]
    before = datetime.now(UTC).replace(microsecond=0)
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"x")
    after = datetime.now(UTC)
    s3.proxy.reset_counts()
    found = _found(await _scan(s3))
    assert sorted(v.remote_id for v in found) == sorted(keys)
    assert {v.camera for v in found} == {"Cam0", "Cam1", "Cam2"}
    stamps = {v.modified_at for v in found}
    assert all(t is not None and before <= t <= after for t in stamps), "LastModified, in UTC"
    assert s3.proxy.counts["ListObjectsV2"] == 3, "1,000 keys a page, each page read once"


async def _clips(s3: S3Harness, count: int) -> list[str]:
    """`count` one-byte clips under one camera; the request counts start from here."""
    keys = [f"{s3.prefix}Cam1/clip-{i:04d}.mp4" for i in range(count)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"x")
    s3.proxy.reset_counts()
    return keys


async def test_the_next_page_is_asked_for_while_the_engine_holds_this_one(
    s3: S3Harness,
) -> None:
    keys = await _clips(s3, 2100)
    provider = _provider(s3)
    scan = provider.scan(s3.selection(), None, S3SourceOptions())
    try:
        first = await anext(scan)
        assert isinstance(first, Found)
        # The consumer has asked for one event, from page 1; page 2 is fetched anyway.
        for _ in range(500):
            if s3.proxy.counts["ListObjectsV2"] >= 2:
                break
            await asyncio.sleep(0.01)
        assert s3.proxy.counts["ListObjectsV2"] == 2, "page 2 requested ahead, page 3 not yet"
        rest = [e async for e in scan]
    finally:
        await scan.aclose()
        await provider.aclose()
    listed = [first.video.remote_id, *(v.remote_id for v in _found(rest))]
    assert listed == sorted(keys), "every key once, in order"
    assert s3.proxy.counts["ListObjectsV2"] == 3


async def test_a_scan_left_part_way_asks_for_nothing_more(s3: S3Harness) -> None:
    await _clips(s3, 1500)
    provider = _provider(s3)
    scan = provider.scan(s3.selection(), None, S3SourceOptions())
    try:
        assert isinstance(await anext(scan), Found)
        await scan.aclose()  # the page asked for ahead is dropped, not left running
        again = _found(await _scan_with(provider, s3))
    finally:
        await provider.aclose()
    assert len(again) == 1500, "the provider still scans after an abandoned scan"
    assert 3 <= s3.proxy.counts["ListObjectsV2"] <= 4


async def test_odd_keys_land_safely(services: Services, s3: S3Harness) -> None:
    keys = {
        "footage/Cam 1/clip one.mp4": b"spaces",
        "footage/Kamera-ü/видео 1.mp4": b"unicode",
        "footage/../escape.mp4": b"dots",
        "footage/Cam1/../../../etc/passwd.mp4": b"climb",
        "footage//double.mp4": b"double slash",
        "footage/direct.mp4": b"no camera folder",
    }
    for key, data in keys.items():
        await _put(s3, key, data)
    source_id = await s3.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == len(keys)
    root = services.store.videos_dir.resolve()
    rows = await videos_of(services, source_id)
    assert {r.remote_id for r in rows} == set(keys)
    for row in rows:
        assert row.local_path and row.state == VideoState.DONE
        published = services.store.absolute(row.local_path).resolve()
        assert root in published.parents
        assert published.read_bytes() == keys[row.remote_id]
    cameras = {r.remote_id: r.camera for r in rows}
    assert cameras["footage/direct.mp4"] == cameras["footage//double.mp4"] == "footage"


async def test_overwritten_object_is_a_new_revision(services: Services, s3: S3Harness) -> None:
    key = f"{s3.prefix}Cam1/a.mp4"
    await _put(s3, key, b"first take")
    source_id = await s3.add_source(services)
    await services.engine.sync([source_id])
    await _put(s3, key, b"second take, longer")
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 1
    rows = await videos_of(services, source_id)
    assert len({r.revision for r in rows}) == 2
    newest = rows[-1]
    assert newest.local_path
    assert services.store.absolute(newest.local_path).read_bytes() == b"second take, longer"


async def test_a_version_replaced_after_the_scan_is_not_read(s3: S3Harness) -> None:
    await _put(s3, f"{s3.prefix}Cam1/a.mp4", b"old")
    (video,) = _found(await _scan(s3))
    assert video.hash and len(video.hash) == 32
    await _put(s3, f"{s3.prefix}Cam1/a.mp4", b"new")
    provider = _provider(s3)
    with pytest.raises(NotFound, match="new version follows"):
        [c async for c in provider.open(video)]
    await provider.aclose()


async def test_archived_objects_are_skipped(services: Services, s3: S3Harness) -> None:
    await _put(s3, f"{s3.prefix}Cam1/cold.mp4", b"frozen", StorageClass="GLACIER")
    await _put(s3, f"{s3.prefix}Cam1/warm.mp4", b"here")
    source_id = await s3.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1
    assert [r.name for r in await videos_of(services, source_id)] == ["warm.mp4"]


async def test_multipart_object_is_verified_by_size(services: Services, s3: S3Harness) -> None:
    key = f"{s3.prefix}Cam1/long.mp4"
    data = os.urandom(64 * 1024 * 1024)
    await asyncio.to_thread(upload_in_parts, s3.client, s3.bucket, key, data, 8 * 1024 * 1024)
    (video,) = _found(await _scan(s3))
    assert video.revision.endswith("-8") and video.hash is None and video.size == len(data)
    source_id = await s3.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1
    (row,) = await videos_of(services, source_id)
    assert row.local_path and row.sha256 == hashlib.sha256(data).hexdigest()
    assert services.store.absolute(row.local_path).read_bytes() == data
    # One whole read: S3 sends the full-object checksum only for that.
    assert s3.proxy.ranges == [None]


async def test_a_large_object_is_read_as_ranges_in_flight_together(
    services: Services, s3: S3Harness
) -> None:
    step = s3_module._RANGE_BYTES
    data = os.urandom(s3_module._PARALLEL_FROM + 2 * step + 12345)
    await _put(s3, f"{s3.prefix}Cam1/long.mp4", data)
    source_id = await s3.add_source(services)
    s3.proxy.reset_counts()
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1
    wanted = {f"bytes={a}-{min(a + step, len(data)) - 1}" for a in range(0, len(data), step)}
    assert len(s3.proxy.ranges) == len(wanted) and set(s3.proxy.ranges) == wanted
    (row,) = await videos_of(services, source_id)
    assert row.local_path and services.store.absolute(row.local_path).read_bytes() == data
    assert row.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_cut_range_fails_the_read_and_the_retry_heals_it(
    services: Services, s3: S3Harness
) -> None:
    data = os.urandom(s3_module._PARALLEL_FROM + 1)
    await _put(s3, f"{s3.prefix}Cam1/long.mp4", data)
    source_id = await s3.add_source(services)
    s3.proxy.cut_next_download(after_bytes=1000)
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1 and not any(services.store.videos_dir.rglob("*.mp4"))
    second = await services.engine.sync([source_id])
    assert second.ok and second.total("downloaded") == 1
    (row,) = await videos_of(services, source_id)
    assert row.local_path and services.store.absolute(row.local_path).read_bytes() == data


async def test_clear_errors_for_bad_settings(s3: S3Harness) -> None:
    missing = _provider(s3, bucket=f"{s3.bucket}-gone")
    with pytest.raises(BadConfig, match="does not exist"):
        await missing.check()
    await missing.aclose()
    unreachable = _provider(s3, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(BadConfig, match="cannot reach"):
        await unreachable.check()
    await unreachable.aclose()
    outside = _provider(s3, prefixes=["footage/Cam1"])
    with pytest.raises(BadConfig, match="outside"):
        await outside.validate_selection("other/")
    assert [n.id for n in (await outside.browse(None)).nodes] == ["footage/Cam1/"]
    await outside.aclose()


async def test_a_cut_download_resumes_with_a_range(services: Services, s3: S3Harness) -> None:
    data = os.urandom(3 * 1024 * 1024)
    await _put(s3, f"{s3.prefix}Cam1/a.mp4", data)
    source_id = await s3.add_source(services)
    s3.proxy.cut_next_download(after_bytes=1_500_000)
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1 and first.total("downloaded") == 0
    second = await services.engine.sync([source_id])
    assert second.ok and second.total("downloaded") == 1
    assert s3.proxy.ranges == [None, "bytes=1500000-"], "the rest only, not the whole again"
    (row,) = await videos_of(services, source_id)
    assert row.local_path and row.sha256 == hashlib.sha256(data).hexdigest()
    assert services.store.absolute(row.local_path).read_bytes() == data


async def test_slow_down_is_retried_a_bounded_number_of_times(
    services: Services, s3: S3Harness
) -> None:
    await _put(s3, f"{s3.prefix}Cam1/a.mp4", b"clip")
    source_id = await s3.add_source(services)
    await services.engine.scan_source(source_id)
    s3.proxy.fail_next(50, "SlowDown")
    s3.proxy.reset_counts()
    tallies = await services.engine.run_downloads([source_id], max_rate_limit_wait=0)
    # The direct GET (the listing showed the route), botocore's own retries (3
    # attempts), then the connection is paused: no storm.
    assert s3.proxy.counts["GetObject"] == 1 + 3
    assert tallies[source_id].failed == 0 and tallies[source_id].downloaded == 0
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.PENDING and row.attempts == 0
    assert row.error and "slow down" in row.error
    async with services.db.session() as session:
        (connection,) = (await session.execute(select(Connection))).scalars()
    assert connection.paused_until is not None


async def test_a_checksum_catches_what_no_md5_can(services: Services, s3: S3Harness) -> None:
    """A multipart object has no MD5 to check, but a full-object CRC32 it has."""
    key = f"{s3.prefix}Cam1/long.mp4"
    data = os.urandom(11 * 1024 * 1024)
    await asyncio.to_thread(
        upload_in_parts, s3.client, s3.bucket, key, data, 5 * 1024 * 1024, "CRC32"
    )
    source_id = await s3.add_source(services)
    s3.proxy.corrupt_next_download()
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1 and not any(services.store.videos_dir.rglob("*.mp4"))
    (row,) = await videos_of(services, source_id)
    assert row.error and "checksum" in row.error
    second = await services.engine.sync([source_id])
    assert second.ok and second.total("downloaded") == 1
    (row,) = await videos_of(services, source_id)
    assert row.local_path and services.store.absolute(row.local_path).read_bytes() == data


async def test_a_bucket_in_another_region_is_found_and_named(s3: S3Harness) -> None:
    await _put(s3, f"{s3.prefix}Cam1/a.mp4", b"far away")
    s3.proxy.place_bucket(s3.bucket, "eu-west-1")
    provider = _provider(s3, region="us-east-1")
    identity = await provider.check()
    assert identity.details["region"] == "eu-west-1"
    assert identity.details["configured_region"] == "us-east-1"
    (video,) = [
        e.video
        async for e in provider.scan(s3.selection(), None, S3SourceOptions())
        if isinstance(e, Found)
    ]
    assert b"".join([c async for c in provider.open(video)]) == b"far away"
    await provider.aclose()
    right = _provider(s3, region="eu-west-1")
    assert "configured_region" not in (await right.check()).details
    await right.aclose()


async def test_an_sse_kms_etag_is_not_taken_for_an_md5(s3: S3Harness) -> None:
    """S3 gives SSE-KMS objects ETags that are no MD5 of the content; the read shows it."""
    key = f"{s3.prefix}Cam1/sealed.mp4"
    await _put(s3, key, b"encrypted at rest", ServerSideEncryption="aws:kms")
    await _put(s3, f"{s3.prefix}Cam1/plain.mp4", b"not encrypted")
    s3.proxy.etag_is_not_md5(s3.bucket, key)
    by_name = {v.name: v for v in _found(await _scan(s3))}
    sealed, plain = by_name["sealed.mp4"], by_name["plain.mp4"]
    assert sealed.hash != _md5(b"encrypted at rest")
    provider = _provider(s3)
    try:
        assert b"".join([c async for c in provider.open(sealed)]) == b"encrypted at rest"
        assert b"".join([c async for c in provider.open(plain)]) == b"not encrypted"
        assert provider.expected_hash(sealed) is None
        assert provider.expected_hash(plain) == plain.hash == _md5(b"not encrypted")
    finally:
        await provider.aclose()


async def test_an_sse_kms_object_is_synced(services: Services, s3: S3Harness) -> None:
    key = f"{s3.prefix}Cam1/sealed.mp4"
    await _put(s3, key, b"encrypted at rest", ServerSideEncryption="aws:kms")
    s3.proxy.etag_is_not_md5(s3.bucket, key)
    source_id = await s3.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1


async def test_plain_reads_skip_boto3_and_its_failures_fall_back_to_it(s3: S3Harness) -> None:
    """After a first read through boto3, objects with odd keys arrive through the direct
    GET; an answer other than the object goes to boto3, whose error we report."""
    keys = {
        f"{s3.prefix}Cam 1/clip one.mp4": b"spaces",
        f"{s3.prefix}Kamera-ü/видео~1.mp4": b"unicode",
        f"{s3.prefix}../escape.mp4": b"dots",
        f"{s3.prefix}/double.mp4": b"double slash",
    }
    for key, data in keys.items():
        await _put(s3, key, data)
    provider = _provider(s3)
    try:
        boto3_gets = await boto3_reads(provider)
        videos = {v.remote_id: v for v in _found(await _scan(s3))}
        s3.proxy.reset_counts()
        for key, data in keys.items():
            assert b"".join([c async for c in provider.open(videos[key])]) == data
            rest = [c async for c in provider.open(videos[key], offset=2)]
            assert b"".join(rest) == data[2:], "a resumed read sends its Range"
        first = next(iter(keys))
        assert boto3_gets == [first], "boto3 made the first read, which shows the URL to use"
        assert s3.proxy.counts["GetObject"] == 2 * len(keys)
        assert s3.proxy.ranges[-1] == "bytes=2-"

        gone = videos[f"{s3.prefix}Cam 1/clip one.mp4"]
        await asyncio.to_thread(s3.client.delete_object, Bucket=s3.bucket, Key=gone.remote_id)
        with pytest.raises(NotFound, match="removed before it could be copied"):
            [c async for c in provider.open(gone)]
        assert boto3_gets == [first, gone.remote_id], "the 404 was asked again through boto3"

        s3.proxy.fail_next(50, "SlowDown")
        s3.proxy.reset_counts()
        with pytest.raises(RateLimited):
            [c async for c in provider.open(videos[first])]
        assert s3.proxy.counts["GetObject"] == 1 + 3, "the direct GET, then boto3's 3 attempts"

        assert provider._direct is not None
        provider._direct._base = "http://127.0.0.1:9/nowhere/"  # a port nothing listens on
        with pytest.raises(Transient, match="cannot reach"):
            [c async for c in provider.open(videos[first])]
    finally:
        await provider.aclose()


def test_the_direct_get_takes_the_url_boto3_used() -> None:
    """Virtual-host style on AWS, path style on an endpoint: the pattern is what botocore
    itself sent for the first read (answered here offline, before it leaves)."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config

    from vpack.providers.s3.get import DirectGet
    from vpack.providers.s3.listing import bucket_url
    from vpack.providers.s3.sigv4 import Keys

    class Raw:
        def stream(self, *_: object, **__: object) -> list[bytes]:
            return [b""]

    def answer(request: object, **_: object) -> AWSResponse:
        return AWSResponse("", 200, {"content-length": "0"}, Raw())

    session = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    aws = session.client("s3", region_name="eu-west-1")
    minio = session.client(
        "s3", endpoint_url="http://nas.local:9000", config=Config(s3={"addressing_style": "path"})
    )
    for client, bucket, base, settings in (
        (aws, "my-bucket", "https://my-bucket.s3.eu-west-1.amazonaws.com/", (None, False)),
        (minio, "cams", "http://nas.local:9000/cams/", ("http://nas.local:9000", True)),
    ):
        direct = DirectGet(Keys("AKIAEXAMPLE", "secret"))
        direct.attach(client)
        client.meta.events.register_last("before-send.s3.GetObject", answer)
        assert direct._http is not None and not direct.ready, "nothing learnt before a first read"
        client.get_object(Bucket=bucket, Key="Cam 1/ü~x.mp4")
        direct.learn("Cam 1/ü~x.mp4")
        assert direct.ready and direct.streams and direct._base == base
        # The URL a listing takes from the settings alone (s3_list) is botocore's too.
        assert bucket_url(*settings, bucket, "eu-west-1") + "/" == base


async def test_reads_one_after_another_keep_their_connection(s3: S3Harness) -> None:
    """Real S3 keeps connections open: a new one per object would cost a TCP (and TLS)
    handshake each. The first read goes through boto3, over its connection; the reads
    after it, whole or resumed, from whichever thread, go through libcurl and all over
    the one connection it opened."""
    keys = [f"{s3.prefix}cam/clip-{i:02d}.mp4" for i in range(8)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"0123456789")
    provider = _provider(s3)
    try:
        boto3_gets = await boto3_reads(provider)
        videos = _found(await _scan(s3))
        s3.proxy.reset_counts()

        def read(video: RemoteVideo, offset: int) -> bytes:
            return b"".join(provider.blocking_reader(video)(offset))

        for video in videos:
            assert await asyncio.to_thread(read, video, 0) == b"0123456789"
            assert await asyncio.to_thread(read, video, 4) == b"456789"
        assert len(boto3_gets) == 1 and s3.proxy.counts["GetObject"] == 16
        assert len(s3.proxy.clients) == 2, "boto3's connection, then libcurl's for the rest"
    finally:
        await provider.aclose()


async def test_a_small_read_cut_short_keeps_what_came_and_resumes_after_it(
    s3: S3Harness,
) -> None:
    """Through libcurl too, a cut keeps the bytes that arrived: they are handed on
    before the error, and the retry asks only for the rest."""
    keys = [f"{s3.prefix}cam/first.mp4", f"{s3.prefix}cam/second.mp4"]
    data = os.urandom(200_000)
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, data)
    provider = _provider(s3)
    try:
        boto3_gets = await boto3_reads(provider)
        first, second = sorted(_found(await _scan(s3)), key=lambda v: v.remote_id)

        def read(video: RemoteVideo, offset: int, into: list[bytes]) -> None:
            for chunk in provider.blocking_reader(video)(offset):
                into.append(chunk)

        await asyncio.to_thread(read, first, 0, [])
        s3.proxy.reset_counts()
        s3.proxy.cut_next_download(after_bytes=70_000)
        got: list[bytes] = []
        with pytest.raises(Transient, match="cut short"):
            await asyncio.to_thread(read, second, 0, got)
        assert b"".join(got) == data[:70_000], "what came before the cut is handed on"
        rest: list[bytes] = []
        await asyncio.to_thread(read, second, 70_000, rest)
        assert b"".join(rest) == data[70_000:]
        assert s3.proxy.ranges == [None, "bytes=70000-"]
        assert boto3_gets == [first.remote_id], "both reads of the second went through libcurl"
    finally:
        await provider.aclose()


async def test_small_reads_over_tls_check_the_certificate_as_boto3_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3-compatible store with its own CA (AWS_CA_BUNDLE): libcurl trusts what
    boto3 trusts, and refuses a certificate that CA did not sign."""
    from tests.emulators.serving import self_signed_certificate
    from tests.providers.s3.faults import S3FaultProxy
    from vpack.providers.s3.curl import CurlPool
    from vpack.providers.s3.get import DirectGet

    certfile, keyfile = self_signed_certificate(tmp_path)
    other_ca, _ = self_signed_certificate(tmp_path / "other")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certfile))
    harness = await asyncio.to_thread(S3Harness, tmp_path)
    tls = S3FaultProxy(harness.proxy.upstream)
    await asyncio.to_thread(tls.start, certfile=certfile, keyfile=keyfile)
    provider = _provider(harness, endpoint_url=tls.url)
    try:
        assert tls.url.startswith("https://")
        keys = [f"{harness.prefix}cam/clip-{i}.mp4" for i in range(3)]
        await asyncio.to_thread(put_many, harness.client, harness.bucket, keys, b"over tls")
        boto3_gets = await boto3_reads(provider)
        videos = _found(await _scan(harness))
        for video in videos:
            assert b"".join([c async for c in provider.open(video)]) == b"over tls"
        assert len(boto3_gets) == 1 and tls.counts["GetObject"] == 3

        direct = provider._direct
        assert isinstance(direct, DirectGet) and direct._pool is not None
        assert direct._pool.transport.ca_bundle == str(certfile)
        # New handles trust another CA.
        direct._pool = CurlPool(
            dataclasses.replace(direct._pool.transport, ca_bundle=str(other_ca))
        )
        with pytest.raises(Transient, match=r"SSL certificate .*self-signed"):
            [c async for c in provider.open(videos[0])]
        assert len(boto3_gets) == 1, "the refusal is not retried around the check"
    finally:
        await provider.aclose()
        await asyncio.to_thread(tls.stop)
        await harness.aclose()


async def test_small_reads_take_the_proxy_boto3_takes(
    s3: S3Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint behind a proxy named in HTTP_PROXY (upper case, which libcurl alone
    would ignore for http://): the listing, boto3's first read and libcurl's reads
    all go through it; with NO_PROXY naming the host, none do. (Reads come from a
    provider that did not list, so its first read goes through boto3.)"""
    from tests.emulators.forward_proxy import ForwardProxy

    keys = [f"{s3.prefix}cam/clip-{i}.mp4" for i in range(3)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"via proxy")
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        lister, provider = _provider(s3), _provider(s3)
        try:
            boto3_gets = await boto3_reads(provider)
            videos = _found(await _scan_with(lister, s3))
            assert lister._client_obj is None, "the listing went through libcurl"
            for video in videos:
                assert b"".join([c async for c in provider.open(video)]) == b"via proxy"
            assert len(boto3_gets) == 1, "the reads after the first went through libcurl"
            # (The fault proxy's own client, httpx, also takes HTTP_PROXY to reach moto.)
            ours = [url for url in proxy.forwarded if url.startswith(s3.proxy.url)]
            assert len([url for url in ours if "/cam/clip-" in url]) == 3
            assert any("list-type=2" in url for url in ours)
        finally:
            await lister.aclose()
            await provider.aclose()

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        proxy.forwarded.clear()
        direct = _provider(s3)
        try:
            videos = _found(await _scan_with(direct, s3))
            for video in videos:
                assert b"".join([c async for c in direct.open(video)]) == b"via proxy"
            assert not [url for url in proxy.forwarded if url.startswith(s3.proxy.url)]
        finally:
            await direct.aclose()


def _read(provider: S3Provider, video: RemoteVideo, offset: int = 0) -> bytes:
    reader = provider.blocking_reader(video)
    return b"".join(reader(offset))


def _until(condition: Callable[[], bool]) -> bool:
    """Wait (at most 5 s) for something another thread or process does."""
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


async def _warm(
    s3: S3Harness, provider: S3Provider, count: int, size: int = 1000
) -> list[tuple[RemoteVideo, bytes]]:
    """`count` objects of random bytes, listed, after one read through boto3 has
    shown the direct GET its URL; the proxy's counts start from zero."""
    data = {f"{s3.prefix}cam/clip-{i:02d}.mp4": os.urandom(size) for i in range(count + 1)}
    for key, body in data.items():
        await _put(s3, key, body)
    videos = sorted(_found(await _scan_with(provider, s3)), key=lambda v: v.remote_id)
    first, rest = videos[0], videos[1:]
    assert await asyncio.to_thread(_read, provider, first) == data[first.remote_id]
    s3.proxy.reset_counts()
    return [(video, data[video.remote_id]) for video in rest]


async def test_a_read_ahead_leaves_at_once_and_its_answer_is_taken_later(
    s3: S3Harness,
) -> None:
    """The GET of the video after next goes out before this thread asks for it; the
    later read takes that answer instead of asking again."""
    provider = _provider(s3)
    try:
        (a, a_data), (b, b_data) = await _warm(s3, provider, 2)

        def in_one_thread() -> tuple[bool, bytes, int, bytes]:
            provider.read_ahead(b)
            sent = _until(lambda: s3.proxy.counts["GetObject"] == 1)
            got_a = _read(provider, a)
            count_before_b = s3.proxy.counts["GetObject"]
            return sent, got_a, count_before_b, _read(provider, b)

        sent, got_a, count_before_b, got_b = await asyncio.to_thread(in_one_thread)
        assert sent, "the read ahead reached the server before any read was asked for"
        assert (got_a, got_b) == (a_data, b_data)
        assert count_before_b == 2 and s3.proxy.counts["GetObject"] == 2, "b was not asked twice"
    finally:
        await provider.aclose()


async def test_a_batch_of_small_videos_reads_each_once_and_ahead(
    s3: S3Harness, tmp_path: Path
) -> None:
    """Through the shared batch path: every video staged whole and verified, one GET
    each, none left waiting when the batch ends."""
    provider = _provider(s3)
    try:
        videos = await _warm(s3, provider, 6, size=70_000)
        jobs = [(video, tmp_path / f"{i}.part") for i, (video, _) in enumerate(videos)]
        hints: list[str | None] = []
        hint = provider.read_ahead

        def noted(video: RemoteVideo | None) -> None:
            hints.append(video.remote_id if video else None)
            hint(video)

        provider.read_ahead = noted  # type: ignore[method-assign]
        outcomes = await stage_each_blocking(provider, jobs)
        assert hints == [video.remote_id for video, _ in videos[1:]] + [None]
        for (_, data), outcome in zip(videos, outcomes, strict=True):
            assert isinstance(outcome, Staged), outcome
            assert outcome.sha256 == hashlib.sha256(data).hexdigest()
            assert outcome.path.read_bytes() == data
        assert s3.proxy.counts["GetObject"] == len(videos)
        assert s3.proxy.ranges == [None] * len(videos)
    finally:
        await provider.aclose()


async def test_an_answer_read_ahead_serves_only_the_read_it_was_for(s3: S3Harness) -> None:
    """A read ahead is whole: a resumed read of the same video asks for its range;
    one dropped (the batch ended, or too many ahead) is asked for again."""
    provider = _provider(s3)
    try:
        (a, a_data), (b, b_data), (c, c_data), (d, d_data) = await _warm(s3, provider, 4)

        def resumed() -> bytes:
            provider.read_ahead(a)
            return _read(provider, a, 3)

        assert await asyncio.to_thread(resumed) == a_data[3:]
        assert s3.proxy.ranges == [None, "bytes=3-"]

        def dropped() -> list[bytes]:
            for video in (a, b, c, d):  # the fourth: a, the oldest, is dropped
                provider.read_ahead(video)
            got = [_read(provider, video) for video in (d, c, b)]
            provider.read_ahead(a)
            provider.read_ahead(None)  # the batch ends: a is dropped
            return [*got, _read(provider, a)]

        s3.proxy.reset_counts()
        assert await asyncio.to_thread(dropped) == [d_data, c_data, b_data, a_data]
        assert _until(lambda: s3.proxy.counts["GetObject"] == 6)
        assert s3.proxy.counts["GetObject"] == 6, "a three times, b, c and d once"
    finally:
        await provider.aclose()


async def test_reads_ahead_that_fail_report_as_reads_do(s3: S3Harness) -> None:
    """An object replaced since the listing answers 412 to a read ahead, and boto3 tells
    why; a read ahead cut short hands on what came, and the retry resumes after it."""
    provider = _provider(s3)
    try:
        (a, _), (b, b_data) = await _warm(s3, provider, 2, size=200_000)
        await _put(s3, a.remote_id, b"replaced")

        def replaced() -> None:
            provider.read_ahead(a)
            _read(provider, a)

        with pytest.raises(NotFound, match="new version follows"):
            await asyncio.to_thread(replaced)

        s3.proxy.reset_counts()
        s3.proxy.cut_next_download(after_bytes=70_000)
        got: list[bytes] = []

        def cut() -> None:
            provider.read_ahead(b)
            for chunk in provider.blocking_reader(b)(0):
                got.append(chunk)

        with pytest.raises(Transient, match="cut short"):
            await asyncio.to_thread(cut)
        assert b"".join(got) == b_data[:70_000]
        assert await asyncio.to_thread(_read, provider, b, 70_000) == b_data[70_000:]
        assert s3.proxy.ranges == [None, "bytes=70000-"]
    finally:
        await provider.aclose()


async def test_a_read_that_cannot_be_sent_ahead_is_read_in_its_turn(
    s3: S3Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending ahead is a hint: when it fails, nothing is raised, and the read goes on."""
    provider = _provider(s3)
    try:
        ((a, a_data),) = await _warm(s3, provider, 1)
        assert provider._direct is not None

        def refused(key: str, headers: dict[str, str]) -> None:
            raise pycurl.error(pycurl.E_OUT_OF_MEMORY, "no handle for it")

        monkeypatch.setattr(provider._direct, "start", refused)

        def in_one_thread() -> bytes:
            provider.read_ahead(a)
            return _read(provider, a)

        assert await asyncio.to_thread(in_one_thread) == a_data
        assert s3.proxy.counts["GetObject"] == 1
    finally:
        await provider.aclose()
