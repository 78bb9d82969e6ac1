"""The hand-off feed: every published video once, in publish order, none skipped."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from tests.api.conftest import ADMIN, Person, local_source, login, wait_for
from tests.media import make_video
from tests.unit.test_engine import _add
from vpack.api.app import create_app
from vpack.db.models import FeedCounter, Video
from vpack.services import Services
from vpack.settings import Settings
from vpack.sync.publish import Done, Publisher
from vpack.sync.transfer import Staged


@pytest.fixture
def live(api_settings: Settings) -> Iterator[TestClient]:
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1, "concurrency": 4})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        yield test_client


def _old(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600,) * 2)


def test_a_consumer_reading_during_the_downloads_gets_each_video_once_in_order(
    live: TestClient, footage: Path
) -> None:
    for i in range(40):
        _old(footage / "shop" / f"cam{i % 2}" / f"order-{i:03d}.mp4", os.urandom(2000 + i))
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()

    seen: list[dict[str, object]] = []
    after = 0
    stop = threading.Event()
    failures: list[str] = []

    def consume() -> None:  # a consumer polling as fast as it can, beside four downloads
        nonlocal after
        while not stop.is_set():
            page = live.get("/api/videos/feed", headers=auth, params={"after": after, "limit": 7})
            if page.status_code != 200:
                failures.append(page.text)
                return
            body = page.json()
            seen.extend(body["items"])
            after = body["after"]

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        source = local_source(live, auth, footage / "shop")
        wait_for(lambda: len(seen) >= 40, explain=lambda: f"{len(seen)} seen; {failures}")
    finally:
        stop.set()
        reader.join()
    assert not failures
    seqs = [item["seq"] for item in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 40, "in order, no repeats"
    done = live.get("/api/videos", headers=auth, params={"limit": 500, "state": "done"}).json()
    assert {item["id"] for item in seen} == {v["id"] for v in done["items"]}, "no gaps"
    first = seen[0]
    assert first["source_id"] == source["id"] and Path(str(first["path"])).is_absolute()
    assert Path(str(first["path"])).stat().st_size == first["size"]
    content = live.get(str(first["content_url"]), headers=auth)
    assert content.status_code == 200 and len(content.content) == first["size"]
    again = live.get("/api/videos/feed", headers=auth, params={"after": after}).json()
    assert again == {"items": [], "after": after}, "nothing new: the same cursor back"


def test_the_feed_is_each_owners_own(
    client: TestClient, admin: Person, make_user, footage: Path
) -> None:  # type: ignore[no-untyped-def]
    other = make_user("other")
    assert client.get("/api/videos/feed", headers=other.auth).json()["items"] == []
    assert (
        client.get("/api/videos/feed", params={"after": -1}, headers=other.auth).status_code == 422
    )
    assert client.get("/api/videos/feed").status_code == 401


async def test_a_slow_publisher_holds_back_later_numbers_until_it_commits(
    services: Services, tmp_path: Path
) -> None:
    """A group that takes its numbers first is visible before any group after it."""
    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no concurrent commits to order")
    publisher = Publisher(services.db, services.store)
    async with services.db.transaction() as slow:
        # What a publishing commit does first: take numbers under the counter's lock.
        await slow.execute(
            update(FeedCounter).where(FeedCounter.id == 1).values(last_seq=FeedCounter.last_seq + 1)
        )
        blocked = asyncio.create_task(_commit_one(publisher, services, tmp_path))
        await asyncio.sleep(0.5)
        assert not blocked.done(), "the next group waits for the slow one's commit"
    seq = await blocked
    assert seq == 2, "numbered after the slow group's 1"


async def _commit_one(publisher: Publisher, services: Services, tmp_path: Path) -> int:
    """Publish one real staged video through the publisher; return its number."""
    source_id = await _add(services, tmp_path / "cam")
    async with services.db.transaction() as session:
        video_id = (
            await session.execute(
                insert(Video)
                .values(
                    source_id=source_id,
                    selection="s",
                    remote_id="r",
                    revision="1",
                    camera="cam",
                    name="a.mp4",
                    extra={},
                )
                .returning(Video.id)
            )
        ).scalar_one()
    part = services.store.part_path(video_id)
    part.parent.mkdir(parents=True, exist_ok=True)
    make_video(tmp_path / "a.mp4", seconds=1).rename(part)
    staged = Staged(part, part.stat().st_size, "0" * 64)
    placement = services.store.placement(source_id, "cam", datetime.now(UTC), "a.mp4")
    await publisher.commit([Done(video_id, source_id, staged, placement, {"state": "done"})])
    async with services.db.session() as session:
        seq = await session.scalar(select(Video.published_seq).where(Video.id == video_id))
    assert seq is not None
    return int(seq)
