"""The OneDrive provider's own cases against the Graph emulator: what the shared contract
does not say (ancestry of delta items, renames, resyncs, URLs dying mid-file, hashes,
throttling, business drives, document libraries, the operator's settings)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conformance.cases import CLIP, published, scan_all
from tests.conformance.harness import videos_of
from tests.providers.onedrive.harness import CLIENT_ID, OneDriveHarness, emulator_env, sign_in
from vpack.db.models import VideoState
from vpack.providers.base import Removed
from vpack.providers.errors import RateLimited
from vpack.providers.kit.oauth import spec_from_env
from vpack.providers.onedrive.provider import SITES_SCOPE, OneDriveProvider
from vpack.providers.registry import source_options
from vpack.services import Services
from vpack.settings import Settings


class BusinessHarness(OneDriveHarness):
    account = "business"


@pytest.fixture
async def od(tmp_path: Path) -> AsyncIterator[OneDriveHarness]:
    made = OneDriveHarness(tmp_path)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def work(tmp_path: Path) -> AsyncIterator[OneDriveHarness]:
    made = BusinessHarness(tmp_path)
    try:
        yield made
    finally:
        await made.aclose()


def downloads(h: OneDriveHarness) -> int:
    return h.od.count("/download/")


async def events(h: OneDriveHarness, cursor: str | None) -> tuple[list[object], str | None]:
    provider = h.build()
    options = source_options("onedrive", {})
    seen: list[object] = []
    last = None
    try:
        async for event in provider.scan(h.selection(), cursor, options):
            seen.append(event)
            last = getattr(event, "cursor", last)
    finally:
        await provider.aclose()
    return seen, last


# ---------------------------------------------------------------- scan
async def test_delta_keeps_only_what_lies_under_the_selection(od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "in.mp4", b"inside")
    elsewhere = od.od.add_folder("Elsewhere")
    od.od.add_file("out.mp4", elsewhere, b"outside")
    od.od.add_file("beside.mp4", od.project, b"beside the selection")
    deep = od.od.add_folder("2026", od._camera_folder("Cam2"))
    od.od.add_file("deep.mp4", od.od.add_folder("01", deep), b"two levels down")
    await od.add_video("Cam1", "notes.txt", b"not a video")
    found, cursor = await scan_all(od)
    assert {(v.name, v.camera) for v in found} == {("in.mp4", "Cam1"), ("deep.mp4", "Cam2")}
    deep_one = next(v for v in found if v.name == "deep.mp4")
    assert deep_one.path == "Area/Cam2/2026/01/deep.mp4"
    # The feed is the drive's, from its root: one feed, not one per folder.
    assert od.od.count("/v1.0/drives/") and not od.od.count("/v1.0/me/drive/items/")
    od.od.reset_counts()
    again, _ = await events(od, cursor)
    assert [type(e).__name__ for e in again] == ["Checkpoint"]
    assert len(od.od.requests) == 1, "an unchanged drive costs one request"


async def test_first_scan_pages_to_the_delta_link_with_a_checkpoint_per_page(
    od: OneDriveHarness,
) -> None:
    od.od.add_many(od._camera_folder("Cam1"), 2500, 10)
    seen, _ = await events(od, None)
    found = [e for e in seen if type(e).__name__ == "Found"]
    checkpoints = [e for e in seen if type(e).__name__ == "Checkpoint"]
    assert len(found) == 2500 and len(checkpoints) >= 3
    assert od.od.count("/v1.0/drives/") <= 5  # pages of 1000


async def test_a_rename_or_move_fetches_nothing(services: Services, od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.sync([source_id])
    before = downloads(od)
    item = od._files["Cam1", "a.mp4"]
    od.od.rename(item, "renamed.mp4")
    od.od.move(item, od._camera_folder("Cam2"))
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 0 and downloads(od) == before
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.DONE and row.removed_at is None


async def test_a_changed_file_is_fetched_again(services: Services, od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.sync([source_id])
    od.od.update_file(od._files["Cam1", "a.mp4"], b"new content")
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 1
    rows = await videos_of(services, source_id)
    assert published(services, rows[-1]) == b"new content"


async def test_moving_out_removes_and_a_folder_moved_in_is_listed(
    services: Services, od: OneDriveHarness
) -> None:
    await od.add_video("Cam1", "a.mp4", b"a")
    outside = od.od.add_folder("Outside")
    cam9 = od.od.add_folder("Cam9", outside)
    od.od.add_file("moved-in.mp4", cam9, b"came with its folder")
    source_id = await od.add_source(services)
    await services.engine.sync([source_id])
    od.od.move(od._files["Cam1", "a.mp4"], outside)
    od.od.move(cam9, od.area)  # delta sends the folder only, not its file
    report = await services.engine.sync([source_id])
    assert report.total("removed") == 1 and report.total("downloaded") == 1
    rows = {r.name: r for r in await videos_of(services, source_id)}
    assert rows["a.mp4"].removed_at is not None
    assert rows["moved-in.mp4"].camera == "Cam9"


async def test_deleting_a_folder_removes_its_files(od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "a.mp4", b"a")
    await od.add_video("Cam1", "b.mp4", b"b")
    _, cursor = await scan_all(od)
    od.od.delete(od._camera_folder("Cam1"))
    seen, _ = await events(od, cursor)
    removed = {e.remote_id for e in seen if isinstance(e, Removed)}
    assert removed == {od._files["Cam1", "a.mp4"], od._files["Cam1", "b.mp4"]}


async def test_resync_required_enumerates_again_without_fetching_twice(
    services: Services, od: OneDriveHarness
) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.sync([source_id])
    od.od.expire_delta_tokens()  # every token now answers 410 resyncRequired
    before = downloads(od)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 0 and downloads(od) == before
    await od.add_video("Cam1", "b.mp4", b"after the resync")
    third = await services.engine.sync([source_id])
    assert third.total("downloaded") == 1


async def test_business_delta_without_ctag_still_fetches_a_rename_not(
    services: Services, work: OneDriveHarness
) -> None:
    await work.add_video("Cam1", "a.mp4", CLIP)
    found, _ = await scan_all(work)
    (video,) = found
    assert video.revision.startswith("qxh:")  # business delta carries no cTag
    source_id = await work.add_source(services)
    await services.engine.sync([source_id])
    before = downloads(work)
    work.od.rename(work._files["Cam1", "a.mp4"], "b.mp4")
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 0 and downloads(work) == before
    identity = await work.build().check()
    assert identity.label == "owner@example.com" and identity.details["drive_type"] == "business"


# ---------------------------------------------------------------- downloads
async def test_download_url_expiring_mid_file_is_fetched_afresh_and_resumed(
    services: Services, od: OneDriveHarness
) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.scan_source(source_id)
    od.od.cut_next_download(100_000, expire_url=True)
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].downloaded == 1
    (row,) = await videos_of(services, source_id)
    assert published(services, row) == CLIP
    assert row.sha256 == hashlib.sha256(CLIP).hexdigest()
    reads = [r for r in od.od.requests if r.path.startswith("/download/")]
    assert [r.headers.get("range") for r in reads] == [None, "bytes=100000-", "bytes=100000-"]
    assert [r.status for r in reads] == [200, 401, 206]  # the dead URL, then a fresh one
    assert od.od.count("/v1.0/drives/") >= 2  # /content asked twice


async def test_a_wrong_hash_is_never_published(services: Services, od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    od.od.report_wrong_hash(od._files["Cam1", "a.mp4"])
    source_id = await od.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.total("failed") == 1 and report.total("downloaded") == 0
    assert not any(services.store.videos_dir.rglob("*.mp4"))
    (row,) = await videos_of(services, source_id)
    assert row.state != VideoState.DONE and "QuickXorHash" in (row.error or "")
    assert not list(services.store.staging_dir.iterdir()), "the bad bytes are dropped"


async def test_a_resume_from_a_part_another_process_left_is_still_hash_checked(
    services: Services, od: OneDriveHarness
) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.scan_source(source_id)
    (row,) = await videos_of(services, source_id)
    part = services.store.part_path(row.id)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(CLIP[:100_000][::-1])  # a prefix that is not the file's
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].downloaded == 0
    assert not any(services.store.videos_dir.rglob("*.mp4"))


async def test_throttling_honours_retry_after(od: OneDriveHarness) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    od.od.throttle_next(2, retry_after=1)
    found, _ = await scan_all(od)  # short waits are sat out inline
    assert len(found) == 1
    od.od.throttle_next(1, status=503, retry_after=120)
    provider = od.build()
    with pytest.raises(RateLimited) as caught:
        await provider.check()
    await provider.aclose()
    assert caught.value.retry_after == 120  # long ones pause the connection in the engine


async def test_a_throttling_storm_pauses_without_failing(
    services: Services, od: OneDriveHarness
) -> None:
    await od.add_video("Cam1", "a.mp4", CLIP)
    source_id = await od.add_source(services)
    await services.engine.scan_source(source_id)
    od.od.throttle_next(3, retry_after=None)  # no Retry-After: backoff
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].failed == 0 and tallies[source_id].downloaded == 1


# ---------------------------------------------------------------- tokens and settings
async def test_every_rotated_refresh_token_is_kept_and_none_sent_twice(
    od: OneDriveHarness,
) -> None:
    first = od.tokens.refresh_token
    for _ in range(3):
        od.od.expire_access_tokens()
        provider = od.build()
        await provider.check()
        await provider.aclose()
    assert od.tokens.refresh_token != first and od.od.refresh_token_is_active(
        od.tokens.refresh_token or ""
    )
    sent = [f["refresh_token"] for f in od.od.token_requests if "refresh_token" in f]
    assert len(sent) == 3 and len(set(sent)) == 3
    assert all("Files.Read" in f.get("scope", "") for f in od.od.token_requests[1:])


async def test_document_libraries_appear_only_when_granted(od: OneDriveHarness) -> None:
    site = od.od.add_site("Warehouse")
    library = od.od.add_library(site, "Camera exports")
    provider = od.build()
    tops = (await provider.browse(None)).nodes
    await provider.aclose()
    assert [n.name for n in tops] == ["My files"]
    od.tokens = sign_in(od.od, ["Files.Read", "User.Read", "offline_access", SITES_SCOPE])
    provider = od.build()
    tops = (await provider.browse(None)).nodes
    await provider.aclose()
    assert [n.name for n in tops] == ["My files", "Warehouse / Camera exports"]
    assert tops[1].id == f"{library}:root"


def test_operator_settings_tenant_secret_and_document_libraries(
    od: OneDriveHarness, settings: Settings
) -> None:
    defaults = OneDriveProvider.oauth
    assert defaults is not None
    spec = spec_from_env("onedrive", defaults, settings, environ={"VPACK_ONEDRIVE_CLIENT_ID": "x"})
    assert spec.authorize_url == "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    assert spec.scopes == ["Files.Read", "User.Read", "offline_access"]
    assert spec.client_secret is None and spec.refresh_with_scope  # a public PKCE client
    env = {
        **emulator_env(od.od),
        "VPACK_ONEDRIVE_TENANT": "organizations",
        "VPACK_ONEDRIVE_CLIENT_SECRET": "s3cret",
        "VPACK_ONEDRIVE_DOCUMENT_LIBRARIES": "true",
    }
    spec = spec_from_env("onedrive", defaults, settings, environ=env)
    assert spec.token_url == f"{od.od.base_url}/organizations/oauth2/v2.0/token"
    assert spec.client_id == CLIENT_ID and spec.client_secret == "s3cret"
    assert spec.scopes[-1] == SITES_SCOPE
    assert spec.redirect_uri.endswith("/api/cloud/onedrive/oauth/callback")
    assert os.environ["VPACK_ONEDRIVE_API_URL"] == od.od.graph_url
