"""The Dropbox provider's own cases against the Dropbox emulator: what the shared contract
does not say (cursor resets, deletions by path, renames, team spaces, throttling, token
refresh, cut streams, hashes, longpoll and the watcher it wakes, the operator's settings)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conformance.cases import CLIP, published, read, scan_all
from tests.conformance.harness import videos_of
from tests.providers.dropbox.harness import APP_KEY, DropboxHarness, emulator_env
from tests.providers.oauth_harness import running
from vpack.db.models import Connection, ConnectionStatus, Source, VideoState
from vpack.providers.base import Checkpoint, Found, Removed, ScanEvent
from vpack.providers.dropbox.provider import DropboxProvider
from vpack.providers.errors import AuthExpired, RateLimited
from vpack.providers.kit.oauth import spec_from_env
from vpack.providers.registry import source_options
from vpack.services import Services
from vpack.settings import Settings
from vpack.sync.executors import LocalExecutor


class TeamHarness(DropboxHarness):
    team = True


@pytest.fixture
async def dbx(tmp_path: Path) -> AsyncIterator[DropboxHarness]:
    async with running(DropboxHarness, tmp_path) as made:
        yield made


@pytest.fixture
async def team(tmp_path: Path) -> AsyncIterator[DropboxHarness]:
    async with running(TeamHarness, tmp_path) as made:
        yield made


def downloads(h: DropboxHarness) -> int:
    return h.dbx.count("/2/files/download")


async def events(
    h: DropboxHarness, cursor: str | None, selection: str | None = None
) -> tuple[list[ScanEvent], str | None]:
    provider = h.build()
    seen: list[ScanEvent] = []
    last = None
    try:
        async for event in provider.scan(
            selection or h.selection(), cursor, source_options("dropbox", {})
        ):
            seen.append(event)
            if isinstance(event, Checkpoint):
                last = event.cursor
    finally:
        await provider.aclose()
    return seen, last


async def synced(services: Services, h: DropboxHarness) -> int:
    """A source over the harness's selection with Cam1/a.mp4 (CLIP), synced once."""
    await h.add_video("Cam1", "a.mp4", CLIP)
    source_id = await h.add_source(services)
    await services.engine.sync([source_id])
    return source_id


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- scan
async def test_first_scan_pages_of_2000_with_a_checkpoint_each_then_one_request(
    dbx: DropboxHarness,
) -> None:
    dbx.dbx.add_many("/Project/Area/Cam1", 2500, 10)
    dbx.dbx.add_file("/Project/Area/Cam1/notes.txt", b"not a video")
    dbx.dbx.add_file("/Project/beside.mp4", b"outside the selection")
    dbx.dbx.reset_counts()
    seen, cursor = await events(dbx, None)
    found = [e for e in seen if isinstance(e, Found)]
    assert len(found) == 2500 and {e.video.camera for e in found} == {"Cam1"}
    assert sum(isinstance(e, Checkpoint) for e in seen) >= 2
    assert dbx.dbx.count("/2/files/list_folder") == 2  # list_folder, then one continue
    video = found[0].video
    assert video.revision == video.extra["rev"] and len(video.hash or "") == 64
    assert video.path.startswith("Area/Cam1/clip-")
    dbx.dbx.reset_counts()
    again, _ = await events(dbx, cursor)
    assert [type(e).__name__ for e in again] == ["Checkpoint"]
    assert [r.path for r in dbx.dbx.requests] == ["/2/files/list_folder/continue"]


async def test_a_reset_cursor_lists_again_without_fetching_anything_twice(
    services: Services, dbx: DropboxHarness
) -> None:
    for camera, name in [("Cam1", "a.mp4"), ("Cam2", "b.mp4"), ("Cam2", "c.mp4")]:
        dbx.dbx.add_file(dbx.path(camera, name), CLIP)
    source_id = await dbx.add_source(services)
    assert (await services.engine.sync([source_id])).total("downloaded") == 3
    fetched = downloads(dbx)
    dbx.dbx.reset_cursors()  # continue now answers 409 reset
    relisted = await services.engine.sync([source_id])
    assert relisted.ok and relisted.total("new") == 0 and downloads(dbx) == fetched
    assert dbx.dbx.count("/2/files/list_folder/continue") >= 1
    assert all(r.state == VideoState.DONE for r in await videos_of(services, source_id))
    dbx.dbx.delete(dbx.path("Cam2", "c.mp4"))  # while the cursor is dead
    dbx.dbx.reset_cursors()
    again = await services.engine.sync([source_id])
    assert again.total("removed") == 1 and again.total("downloaded") == 0
    rows = {r.name: r for r in await videos_of(services, source_id)}
    assert rows["c.mp4"].removed_at is not None and rows["a.mp4"].removed_at is None


async def test_deleted_files_and_folders_are_removed_by_path(dbx: DropboxHarness) -> None:
    await dbx.add_video("Cam1", "a.mp4", b"a")
    await dbx.add_video("Cam1", "b.mp4", b"b")
    await dbx.add_video("Cam2", "c.mp4", b"c")
    dbx.dbx.add_file("/Project/Area/Cam2/deep/d.mp4", b"d")
    _, cursor = await events(dbx, None)
    ids = {
        name: dbx.dbx.file_id(dbx.path(cam, name))
        for cam, name in [("Cam1", "a.mp4"), ("Cam1", "b.mp4"), ("Cam2", "c.mp4")]
    }
    deep = dbx.dbx.file_id("/Project/Area/Cam2/deep/d.mp4")
    dbx.dbx.delete("/Project/Area/Cam1/a.mp4")
    seen, cursor = await events(dbx, cursor)
    assert [e.remote_id for e in seen if isinstance(e, Removed)] == [ids["a.mp4"]]
    dbx.dbx.delete("/Project/Area/Cam2")  # the folder, with a sub-folder
    seen, _ = await events(dbx, cursor)
    assert {e.remote_id for e in seen if isinstance(e, Removed)} == {ids["c.mp4"], deep}


async def test_a_rename_or_move_fetches_nothing_and_removes_nothing(
    services: Services, dbx: DropboxHarness
) -> None:
    source_id = await synced(services, dbx)
    before = downloads(dbx)
    dbx.dbx.move("/Project/Area/Cam1/a.mp4", "/Project/Area/Cam1/renamed.mp4")
    dbx.dbx.move("/Project/Area/Cam1/renamed.mp4", "/Project/Area/Cam2/renamed.mp4")
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 0 and report.total("removed") == 0
    assert downloads(dbx) == before
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.DONE and row.removed_at is None
    # Renamed away from a video name, then gone: now it is removed.
    dbx.dbx.move("/Project/Area/Cam2/renamed.mp4", "/Project/Area/Cam2/renamed.txt")
    assert (await services.engine.sync([source_id])).total("removed") == 1


async def test_a_changed_file_is_fetched_again(services: Services, dbx: DropboxHarness) -> None:
    source_id = await synced(services, dbx)
    await dbx.add_video("Cam1", "a.mp4", b"new content")  # a new revision at the same path
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == 1 and report.total("removed") == 0
    rows = await videos_of(services, source_id)
    assert published(services, rows[-1]) == b"new content"


async def test_a_team_account_browses_its_team_space_and_reads_from_it(
    team: DropboxHarness,
) -> None:
    team.dbx.add_file("/Shared/Cameras/Dock/t.mp4", b"team space", team_space=True)
    provider = team.build()
    try:
        identity = await provider.check()
        assert identity.details["team"] is True and identity.label == "owner@example.com"
        tops = {n.name: n for n in (await provider.browse(None)).nodes}
        assert set(tops) == {"My folder", "Team space"}
        shared = {n.name: n for n in (await provider.browse(tops["Team space"].id)).nodes}
        assert "Shared" in shared  # the team space's root, not the member folder
        cameras = {n.name: n for n in (await provider.browse(shared["Shared"].id)).nodes}
        mine = {n.name for n in (await provider.browse(tops["My folder"].id)).nodes}
        assert mine == {"Project"}
    finally:
        await provider.aclose()
    selection = cameras["Cameras"].id
    found, _ = await events(team, None, selection)
    (video,) = [e.video for e in found if isinstance(e, Found)]
    assert video.camera == "Dock" and video.extra["root"] == team.dbx.root_namespace_id
    assert await read(team, video) == b"team space"
    sent = [r for r in team.dbx.requests if r.path == "/2/files/download"]
    assert json.loads(sent[-1].headers["dropbox-api-path-root"])[".tag"] == "root"


async def test_throttling_short_waits_inline_long_ones_pause_the_connection(
    dbx: DropboxHarness,
) -> None:
    await dbx.add_video("Cam1", "a.mp4", CLIP)
    dbx.dbx.rate_limit_next(2, retry_after=1)
    found, _ = await scan_all(dbx)
    assert len(found) == 1
    dbx.dbx.rate_limit_next(1, retry_after=120)
    provider = dbx.build()
    with pytest.raises(RateLimited) as caught:
        await provider.check()
    await provider.aclose()
    assert caught.value.retry_after == 120


async def test_an_expired_token_is_refreshed_once_without_a_secret(dbx: DropboxHarness) -> None:
    await dbx.add_video("Cam1", "a.mp4", CLIP)
    dbx.dbx.reset_counts()
    dbx.dbx.expire_access_tokens()
    found, _ = await scan_all(dbx)  # several calls, one refresh
    assert len(found) == 1
    assert dbx.dbx.count("/oauth2/token") == 1
    dbx.dbx.revoke_refresh_tokens()
    dbx.dbx.expire_access_tokens()
    provider = dbx.build()
    with pytest.raises(AuthExpired):
        await provider.check()
    await provider.aclose()


async def test_a_cut_stream_is_resumed_with_a_range(dbx: DropboxHarness) -> None:
    await dbx.add_video("Cam1", "a.mp4", CLIP)
    (video,) = (await scan_all(dbx))[0]
    dbx.dbx.reset_counts()
    dbx.dbx.cut_next_download(100_000)
    assert await read(dbx, video) == CLIP
    ranges = [r.headers.get("range") for r in dbx.dbx.requests if r.path == "/2/files/download"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) >= 100_000 and len(ranges) == 2


async def test_a_wrong_hash_is_never_published(services: Services, dbx: DropboxHarness) -> None:
    await dbx.add_video("Cam1", "a.mp4", CLIP)
    source_id = await dbx.add_source(services)
    dbx.dbx.corrupt_next_download()
    report = await services.engine.sync([source_id])
    assert report.total("failed") == 1 and not any(services.store.videos_dir.rglob("*.mp4"))
    (row,) = await videos_of(services, source_id)
    assert row.state != VideoState.DONE and "content_hash" in (row.error or "").lower().replace(
        " ", "_"
    )
    await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert published(services, row) == CLIP and row.sha256 == hashlib.sha256(CLIP).hexdigest()


# ---------------------------------------------------------------- near-real-time
async def test_longpoll_says_when_something_changed_and_honours_backoff(
    dbx: DropboxHarness,
) -> None:
    _, cursor = await events(dbx, None)
    assert cursor is not None
    provider = dbx.build()
    try:
        dbx.dbx.longpoll_wait = 0.2
        assert await provider.wait_for_changes([cursor], 30) is False
        dbx.dbx.longpoll_wait = None  # wait until a change
        waiting = asyncio.ensure_future(provider.wait_for_changes([cursor], 30))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await dbx.add_video("Cam1", "new.mp4", b"new")
        assert await asyncio.wait_for(waiting, 10) is True
        dbx.dbx.longpoll_backoff = 1
        assert await provider.wait_for_changes([cursor], 30) is True
        started = time.monotonic()
        assert await provider.wait_for_changes([cursor], 30) is True
        assert time.monotonic() - started >= 0.9  # Dropbox asked for a second of rest
        dbx.dbx.longpoll_backoff = None
        dbx.dbx.reset_cursors()
        assert await provider.wait_for_changes([cursor], 30) is True  # reset: list again
    finally:
        await provider.aclose()
    polls = [r for r in dbx.dbx.requests if r.path == "/2/files/list_folder/longpoll"]
    assert polls and all("authorization" not in r.headers for r in polls)
    assert all(r.arg["timeout"] == 30 for r in polls)


async def test_longpoll_wakes_the_watcher_and_the_file_is_fetched_without_a_sync(
    services: Services, dbx: DropboxHarness
) -> None:
    await dbx.add_video("Cam1", "a.mp4", CLIP)
    source_id = await dbx.add_source(services)
    await services.engine.sync([source_id])  # the interval (60 s) is now far off
    async with services.db.session() as session:
        source = await session.get(Source, source_id)
        assert source is not None and source.next_scan_at is not None

    async def fetched() -> bool:
        rows = await videos_of(services, source_id)
        return [r.state for r in rows] == [VideoState.DONE, VideoState.DONE]

    stop = asyncio.Event()
    executor = LocalExecutor(services.engine, tick_seconds=0.05, watch_seconds=30)
    runner = asyncio.create_task(executor.run(stop))
    try:
        await wait_until(lambda: _polling(dbx))
        landed = time.monotonic()
        await dbx.add_video("Cam1", "b.mp4", b"landed just now")
        await wait_until(fetched)
        assert time.monotonic() - landed < 5
    finally:
        stop.set()
        await asyncio.wait_for(runner, 15)  # the watcher's longpoll is cancelled


async def _polling(h: DropboxHarness) -> bool:
    return h.dbx.count("/2/files/list_folder/longpoll") > 0


async def test_a_failing_longpoll_backs_off_and_never_stops_the_executor(
    services: Services, dbx: DropboxHarness
) -> None:
    await synced(services, dbx)
    dbx.dbx.rate_limit_next(1000, retry_after=1)  # every call, longpoll included, is refused
    stop = asyncio.Event()
    runner = asyncio.create_task(
        LocalExecutor(services.engine, tick_seconds=0.05, watch_seconds=30).run(stop)
    )
    try:
        await wait_until(lambda: _polling(dbx))
        await asyncio.sleep(1.5)
        assert not runner.done()
        assert dbx.dbx.count("/2/files/list_folder/longpoll") < 20  # waits, no busy loop
    finally:
        stop.set()
        await asyncio.wait_for(runner, 15)
    async with services.db.session() as session:
        (status,) = (await session.execute(select(Connection.status))).scalars().all()
    assert status == ConnectionStatus.OK


# ---------------------------------------------------------------- settings
def test_operator_settings_pkce_or_secret(dbx: DropboxHarness, settings: Settings) -> None:
    defaults = DropboxProvider.oauth
    assert defaults is not None
    spec = spec_from_env("dropbox", defaults, settings, environ={"VPACK_DROPBOX_CLIENT_ID": "x"})
    assert spec.authorize_url == "https://www.dropbox.com/oauth2/authorize"
    assert spec.token_url == "https://api.dropboxapi.com/oauth2/token"
    assert spec.scopes == ["files.metadata.read", "files.content.read", "account_info.read"]
    assert spec.extra_authorize_params == {"token_access_type": "offline"}
    assert spec.client_secret is None  # PKCE alone
    env = {**emulator_env(dbx.dbx), "VPACK_DROPBOX_CLIENT_SECRET": "s3cret"}
    spec = spec_from_env("dropbox", defaults, settings, environ=env)
    assert spec.client_id == APP_KEY and spec.client_secret == "s3cret"
    assert spec.redirect_uri.endswith("/api/cloud/dropbox/oauth/callback")
