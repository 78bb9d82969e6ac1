"""The local-folder provider on real directories: cameras, settling, odd names, changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vpack.providers.base import Checkpoint, Found, RemoteVideo, ScanEvent, Waiting
from vpack.providers.errors import BadConfig, NotFound, Transient
from vpack.providers.local.provider import LocalProvider, LocalSourceOptions, decode_relpath
from vpack.providers.registry import build_provider


def _write(path: Path, data: bytes = b"video", age: float = 3600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def _provider(root: Path) -> LocalProvider:
    provider = build_provider("local", {"roots": [str(root)]})
    assert isinstance(provider, LocalProvider)
    return provider


async def _scan(root: Path, settle: float = 0) -> list[ScanEvent]:
    options = LocalSourceOptions(settle_seconds=settle)
    return [e async for e in _provider(root).scan(str(root), None, options)]


def _found(events: list[ScanEvent]) -> dict[str, RemoteVideo]:
    return {e.video.path: e.video for e in events if isinstance(e, Found)}


async def test_cameras_are_first_level_folders_or_the_root(tmp_path: Path) -> None:
    root = tmp_path / "Shop"
    _write(root / "Cam1" / "2025" / "a.mp4")
    _write(root / "b.MOV")
    _write(root / "Cam2" / "notes.txt")
    _write(root / ".trash" / "c.mp4")
    videos = _found(await _scan(root))
    assert set(videos) == {"Cam1/2025/a.mp4", "b.MOV"}
    assert videos["Cam1/2025/a.mp4"].camera == "Cam1"
    assert videos["b.MOV"].camera == "Shop"


async def test_every_listed_extension_is_taken(tmp_path: Path) -> None:
    exts = [".mp4", ".avi", ".mov", ".mkv", ".flv", ".wmv", ".m4v", ".dav", ".ts"]
    for ext in exts:
        _write(tmp_path / f"clip{ext}")
    assert {Path(p).suffix for p in _found(await _scan(tmp_path))} == set(exts)


async def test_files_still_being_written_wait(tmp_path: Path) -> None:
    _write(tmp_path / "old.mp4")
    _write(tmp_path / "fresh.mp4", age=0)
    events = await _scan(tmp_path, settle=60)
    assert set(_found(events)) == {"old.mp4"}
    assert [e.remote_id for e in events if isinstance(e, Waiting)] == ["fresh.mp4"]
    assert isinstance(events[-1], Checkpoint) and events[-1].complete


async def test_revision_changes_with_the_content(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.mp4", b"one")
    before = _found(await _scan(tmp_path))["a.mp4"]
    _write(path, b"three", age=10)
    after = _found(await _scan(tmp_path))["a.mp4"]
    assert before.remote_id == after.remote_id and before.revision != after.revision


async def test_non_utf8_names_round_trip(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/cam/bad\xff name.mp4"
    os.makedirs(os.path.dirname(raw))
    with open(raw, "wb") as handle:
        handle.write(b"bytes")
    os.utime(raw, (time.time() - 3600,) * 2)
    (video,) = _found(await _scan(tmp_path)).values()
    assert decode_relpath(video.remote_id) == b"cam/bad\xff name.mp4"
    video.remote_id.encode("utf-8")  # storable as text
    assert b"".join([c async for c in _provider(tmp_path).open(video)]) == b"bytes"


async def test_browse_offers_only_folders_a_request_can_name(tmp_path: Path) -> None:
    os.makedirs(os.fsencode(tmp_path) + b"/bad\xff cam")
    (tmp_path / "good cam").mkdir()
    _write(Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff cam/a.mp4")))
    provider = _provider(tmp_path)
    page = await provider.browse(str(tmp_path))
    assert [n.name for n in page.nodes] == ["good cam"]
    (video,) = _found(await _scan(tmp_path)).values()  # its parent's scan still takes it
    assert decode_relpath(video.remote_id) == b"bad\xff cam/a.mp4"


async def test_unreadable_sub_folder_does_not_hide_the_rest(tmp_path: Path) -> None:
    _write(tmp_path / "ok" / "a.mp4")
    events = await _scan(tmp_path)
    assert set(_found(events)) == {"ok/a.mp4"}
    # A sub-folder that vanishes between listing and reading marks the scan partial.
    provider = _provider(tmp_path)
    (tmp_path / "gone").mkdir()
    original = os.scandir

    def flaky(path: bytes | str = ".") -> object:
        if os.fsdecode(path).endswith("gone"):
            raise PermissionError(13, "Permission denied", path)
        return original(path)

    os.scandir = flaky  # type: ignore[assignment]
    try:
        options = LocalSourceOptions(settle_seconds=0)
        events = [e async for e in provider.scan(str(tmp_path), None, options)]
    finally:
        os.scandir = original
    assert set(_found(events)) == {"ok/a.mp4"}
    assert isinstance(events[-1], Checkpoint) and not events[-1].complete


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: _write(p / "file.mp4"), "not a folder"),
    ],
)
async def test_bad_selection_is_refused_clearly(tmp_path: Path, make, message) -> None:  # type: ignore[no-untyped-def]
    target = make(tmp_path)
    with pytest.raises(BadConfig, match=message):
        await _provider(tmp_path).validate_selection(str(target))


async def test_paths_outside_the_roots_are_refused(tmp_path: Path) -> None:
    inside = tmp_path / "allowed"
    inside.mkdir()
    (tmp_path / "secret").mkdir()
    provider = _provider(inside)
    with pytest.raises(BadConfig, match="outside"):
        await provider.browse(str(tmp_path / "secret"))
    with pytest.raises(BadConfig, match="outside"):
        await provider.browse(str(inside / ".." / "secret"))
    with pytest.raises(BadConfig, match="absolute"):
        await provider.browse("relative/path")
    os.symlink(tmp_path / "secret", inside / "link")
    with pytest.raises(BadConfig, match="outside"):
        await provider.browse(str(inside / "link"))


async def test_browse_top_lists_the_roots(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    provider = _provider(tmp_path)
    top = await provider.browse(None)
    assert [n.id for n in top.nodes] == [str(tmp_path)]
    (child,) = (await provider.browse(str(tmp_path))).nodes
    assert child.name == "a" and child.has_children
    (leaf,) = (await provider.browse(child.id)).nodes
    assert not leaf.has_children


async def test_open_refuses_a_file_replaced_since_the_scan(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.mp4", b"one")
    video = _found(await _scan(tmp_path))["a.mp4"]
    _write(path, b"other content", age=5)
    with pytest.raises(NotFound, match="changed after it was listed"):
        [c async for c in _provider(tmp_path).open(video)]
    path.unlink()
    with pytest.raises(NotFound, match="removed"):
        [c async for c in _provider(tmp_path).open(video)]


async def test_a_file_that_grows_while_read_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.mp4", os.urandom(9 * 1024 * 1024))
    video = _found(await _scan(tmp_path))["a.mp4"]
    stream = _provider(tmp_path).open(video)
    await anext(stream)
    with open(path, "ab") as handle:  # the camera is still writing
        handle.write(b"more")
    with pytest.raises(Transient, match="changed while it was being copied"):
        async for _ in stream:
            pass


async def test_check_reports_missing_roots(tmp_path: Path) -> None:
    assert (await _provider(tmp_path).check()).label.startswith("Folders on")
    with pytest.raises(BadConfig, match="does not exist"):
        await _provider(tmp_path / "nope").check()
