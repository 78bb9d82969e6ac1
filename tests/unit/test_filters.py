"""Source filters: which found videos a source takes, by name, size and day."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from vpack import catalog
from vpack.db.models import Source, Video
from vpack.providers.base import RemoteVideo
from vpack.providers.errors import BadConfig
from vpack.services import Services
from vpack.sync.filters import SourceFilters

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def _video(name: str, size: int | None = 5_000_000, when: datetime | None = None) -> RemoteVideo:
    return RemoteVideo(
        remote_id=name, revision="1", name=name, camera="Cam1", size=size, modified_at=when
    )


def test_no_filters_take_everything() -> None:
    assert SourceFilters().accepts(_video("anything.bin", size=0))


def test_name_patterns_are_globs_without_regard_to_case() -> None:
    only_orders = SourceFilters(include=["order-*", "*.MKV"], exclude=["*-preview.*"])
    assert only_orders.accepts(_video("ORDER-1001.mp4"))
    assert only_orders.accepts(_video("desk.mkv"))
    assert not only_orders.accepts(_video("desk.mp4"))
    assert not only_orders.accepts(_video("order-1001-preview.mp4"))


def test_smallest_size_in_megabytes_lets_unknown_sizes_through() -> None:
    at_least_one = SourceFilters(min_size_mb=1)
    assert not at_least_one.accepts(_video("test.mp4", size=999_999))
    assert at_least_one.accepts(_video("real.mp4", size=1_000_000))
    assert at_least_one.accepts(_video("live.mp4", size=None))  # a recorder's open stream


def test_since_starts_at_the_shops_midnight() -> None:
    since = SourceFilters(since=date(2026, 11, 24))
    # 23:30 UTC on the 23rd is 06:30 on the 24th in Hanoi: taken there, not in UTC.
    late = _video("a.mp4", when=datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    assert since.accepts(late, HANOI)
    assert not since.accepts(late, UTC)
    early = _video("b.mp4", when=datetime(2026, 11, 23, 16, 59, tzinfo=UTC))  # 23:59 Hanoi
    assert not since.accepts(early, HANOI)
    naive_utc = _video("c.mp4", when=datetime(2026, 11, 23, 17, 0))  # 00:00 Hanoi
    assert since.accepts(naive_utc, HANOI)
    assert since.accepts(_video("undated.mp4", when=None), HANOI)


def _write(path: Path, size: int, mtime: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (mtime.timestamp(),) * 2)


async def test_a_source_fetches_only_what_its_filters_take(
    services: Services, tmp_path: Path
) -> None:
    footage = tmp_path / "footage"
    old = datetime(2020, 1, 1, 12, tzinfo=UTC)
    new = datetime.fromtimestamp(time.time() - 3600, UTC)
    _write(footage / "Cam1" / "order-1.mp4", 2_000_000, new)
    _write(footage / "Cam1" / "order-2.mp4", 10, new)  # too small
    _write(footage / "Cam1" / "order-0.mp4", 2_000_000, old)  # before `since`
    _write(footage / "Cam1" / "desk.mp4", 2_000_000, new)  # not an order
    connection = await catalog.local_connection(services.db)
    source_id = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="orders",
        selections=[str(footage)],
        options={"settle_seconds": 0},
        interval_s=60,
        filters={"include": ["order-*"], "min_size_mb": 1, "since": "2021-01-01"},
    )
    report = await services.engine.sync([source_id])
    (tally,) = report.sources
    assert (tally.new, tally.downloaded, tally.filtered) == (1, 1, 3)
    async with services.db.session() as session:
        names = list((await session.execute(select(Video.name))).scalars())
    assert names == ["order-1.mp4"]
    # Filtered files are still there: a full listing does not take them for removed.
    again = await services.engine.sync([source_id])
    assert again.sources[0].removed == 0 and again.sources[0].filtered == 3


async def test_bad_filters_are_refused_with_a_reason(services: Services, tmp_path: Path) -> None:
    (tmp_path / "footage").mkdir()
    connection = await catalog.local_connection(services.db)
    with pytest.raises(BadConfig, match="filters"):
        await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection,
            name="x",
            selections=[str(tmp_path / "footage")],
            options={},
            interval_s=60,
            filters={"since": "last tuesday"},
        )


async def test_filters_stored_before_they_were_read_stop_the_scan_with_a_reason(
    services: Services, tmp_path: Path
) -> None:
    """Earlier versions stored any `filters` dict unread; such a source says what is
    wrong instead of failing obscurely, and keeps everything it had."""
    _write(tmp_path / "footage" / "Cam1" / "a.mp4", 10, datetime(2026, 1, 1, tzinfo=UTC))
    connection = await catalog.local_connection(services.db)
    source_id = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="old",
        selections=[str(tmp_path / "footage")],
        options={"settle_seconds": 0},
        interval_s=60,
    )
    async with services.db.transaction() as session:
        await session.execute(
            update(Source).where(Source.id == source_id).values(filters={"colour": "red"})
        )
    report = await services.engine.sync([source_id])
    (tally,) = report.sources
    assert tally.error and "invalid filters: colour" in tally.error
    async with services.db.session() as session:
        source = await session.get(Source, source_id)
    assert source is not None and source.filters == {"colour": "red"}
    assert source.last_error and "invalid filters" in source.last_error
