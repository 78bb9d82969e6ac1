"""The S3 provider against moto's HTTP server: paging, odd keys, revisions, archives, multipart."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conformance.harness import videos_of
from tests.conformance.s3_harness import S3Harness, put_many
from vpack.db.models import VideoState
from vpack.providers.base import BadConfig, Found, NotFound, RemoteVideo, ScanEvent
from vpack.providers.s3 import S3Provider, S3SourceOptions
from vpack.services import Services


@pytest.fixture
async def s3(tmp_path: Path) -> AsyncIterator[S3Harness]:
    harness = await asyncio.to_thread(S3Harness, tmp_path)
    try:
        yield harness
    finally:
        await harness.aclose()


def _provider(s3: S3Harness, **changes: object) -> S3Provider:
    provider = s3.build({**s3.connection_config(), **changes})
    assert isinstance(provider, S3Provider)
    return provider


async def _scan(s3: S3Harness) -> list[ScanEvent]:
    provider = _provider(s3)
    try:
        return [e async for e in provider.scan(s3.selection(), None, S3SourceOptions())]
    finally:
        await provider.aclose()


def _found(events: list[ScanEvent]) -> list[RemoteVideo]:
    return [e.video for e in events if isinstance(e, Found)]


async def _put(s3: S3Harness, key: str, data: bytes, **extra: str) -> None:
    await asyncio.to_thread(s3.client.put_object, Bucket=s3.bucket, Key=key, Body=data, **extra)


async def test_scan_pages_past_a_thousand_keys(s3: S3Harness) -> None:
    keys = [f"{s3.prefix}Cam1/clip-{i:04d}.mp4" for i in range(1050)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"x")
    found = _found(await _scan(s3))
    assert sorted(v.remote_id for v in found) == keys
    assert {v.camera for v in found} == {"Cam1"}


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
    data = os.urandom(12 * 1024 * 1024)
    part = 5 * 1024 * 1024

    def upload() -> None:
        client = s3.client
        upload_id = client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]
        parts = []
        for number, start in enumerate(range(0, len(data), part), start=1):
            etag = client.upload_part(
                Bucket=s3.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data[start : start + part],
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        client.complete_multipart_upload(
            Bucket=s3.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    await asyncio.to_thread(upload)
    (video,) = _found(await _scan(s3))
    assert video.revision.endswith("-3") and video.hash is None and video.size == len(data)
    source_id = await s3.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1
    (row,) = await videos_of(services, source_id)
    assert row.local_path
    assert services.store.absolute(row.local_path).read_bytes() == data


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
