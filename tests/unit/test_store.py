"""Safe names, placement and the no-clobber link into the store."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from vpack.settings import Settings
from vpack.store import MAX_NAME_BYTES, VideoStore, safe_name, with_suffix_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("clip.mp4", "clip.mp4"),
        ("..", "video"),
        (".", "video"),
        ("...", "video"),
        ("", "video"),
        ("../../etc/passwd", "_._.._etc_passwd"),
        ("..mp4", "_.mp4"),
        (".hidden.mp4", "_hidden.mp4"),
        ("a\nb\r\tc.mp4", "a_b__c.mp4"),
        ("cam\x00era.mp4", "cam_era.mp4"),
        ("a/b\\c:d*e?.mp4", "a_b_c_d_e_.mp4"),
        (b"caf\xe9.mp4", "caf\ufffd.mp4"),
        ("e\u0301.mp4", "\u00e9.mp4"),  # NFC: one name for what looks the same
        ("trailing. ", "trailing"),
        ("right\u202eto-left.mp4", "right_to-left.mp4"),  # bidi override (Cf) is refused
    ],
)
def test_safe_name(raw: str | bytes, expected: str) -> None:
    assert safe_name(raw) == expected


def test_surrogate_escaped_names_become_replacement_characters() -> None:
    assert safe_name(os.fsdecode(b"bad\xff.mp4")) == "bad\ufffd.mp4"


def test_long_names_fit_and_keep_their_extension() -> None:
    name = safe_name("x" * 300 + ".mp4")
    assert len(name.encode()) == MAX_NAME_BYTES and name.endswith(".mp4")
    vietnamese = safe_name("Đơn hàng " * 60 + ".mkv")  # multi-byte: cut on a character
    assert len(vietnamese.encode()) <= MAX_NAME_BYTES and vietnamese.endswith(".mkv")
    vietnamese.encode("utf-8")  # still valid UTF-8
    assert len(with_suffix_number(name, 12).encode()) <= MAX_NAME_BYTES
    assert with_suffix_number(name, 12).endswith(" (12).mp4")


def test_placement_layout(tmp_path: Path) -> None:
    store = VideoStore(tmp_path / "v", tmp_path / "s", zone=UTC)
    place = store.placement(7, "Cam/1", datetime(2025, 1, 2, 3, tzinfo=UTC), "a.mp4")
    assert place.folder == Path("7/Cam_1/2025/01/02") and place.name == "a.mp4"


def test_placement_dates_follow_the_shops_zone(tmp_path: Path) -> None:
    """06:30 in Hanoi is 23:30 UTC the day before: the folder says the shop's day."""
    store = VideoStore(tmp_path / "v", tmp_path / "s", zone=ZoneInfo("Asia/Ho_Chi_Minh"))
    recorded = datetime(2025, 1, 1, 23, 30, tzinfo=UTC)
    assert store.placement(1, "cam", recorded, "a.mp4").folder == Path("1/cam/2025/01/02")
    naive_utc = datetime(2025, 1, 1, 23, 30)  # as SQLite hands it back
    assert store.placement(1, "cam", naive_utc, "a.mp4").folder == Path("1/cam/2025/01/02")


def test_an_unknown_zone_is_refused_with_an_example() -> None:
    with pytest.raises(ValidationError, match="Asia/Ho_Chi_Minh"):
        Settings(timezone="Mars/Olympus")
    assert Settings(timezone="Asia/Ho_Chi_Minh").zone == ZoneInfo("Asia/Ho_Chi_Minh")
    assert Settings(timezone="").zone is None


def _part(store: VideoStore, video_id: int, data: bytes) -> Path:
    store.ensure_dirs()
    part = store.part_path(video_id)
    part.write_bytes(data)
    return part


def test_link_never_replaces_another_file(tmp_path: Path) -> None:
    store = VideoStore(tmp_path / "v", tmp_path / "s")
    place = store.placement(1, "cam", datetime(2025, 1, 2, tzinfo=UTC), "a.mp4")
    first = store.link(_part(store, 1, b"one"), place)
    second = store.link(_part(store, 2, b"two"), place)
    third = store.link(_part(store, 3, b"three"), place)
    assert [first.name, second.name, third.name] == ["a.mp4", "a (2).mp4", "a (3).mp4"]
    assert store.absolute(first).read_bytes() == b"one"
    assert store.absolute(third).read_bytes() == b"three"


def test_link_adopts_its_own_earlier_link(tmp_path: Path) -> None:
    """A crash after linking but before recording: the retry must not make a copy."""
    store = VideoStore(tmp_path / "v", tmp_path / "s")
    place = store.placement(1, "cam", datetime(2025, 1, 2, tzinfo=UTC), "a.mp4")
    part = _part(store, 1, b"one")
    assert store.link(part, place) == store.link(part, place)
    assert sorted(p.name for p in store.absolute(place.folder).iterdir()) == ["a.mp4"]


def test_link_makes_the_folder_it_finds_missing(tmp_path: Path) -> None:
    store = VideoStore(tmp_path / "v", tmp_path / "s")
    place = store.placement(1, "cam", datetime(2025, 1, 2, tzinfo=UTC), "a.mp4")
    first = store.link(_part(store, 1, b"one"), place)
    shutil.rmtree(store.absolute(place.folder).parent)  # the day's and month's folders
    again = store.link(_part(store, 2, b"two"), place)
    assert again == first and store.absolute(again).read_bytes() == b"two"
    with pytest.raises(FileNotFoundError):
        store.link(store.part_path(3), place)  # no such `.part`: an error, not a loop
    other = store.placement(1, "cam", datetime(2025, 2, 1, tzinfo=UTC), "a.mp4")
    with pytest.raises(FileNotFoundError):
        store.link(store.part_path(3), other)
    assert store.absolute(other.folder).is_dir()


def test_discard_removes_only_the_part(tmp_path: Path) -> None:
    store = VideoStore(tmp_path / "v", tmp_path / "s")
    part = _part(store, 5, b"x")
    store.discard(5)
    store.discard(5)  # twice is fine
    assert not part.exists()
