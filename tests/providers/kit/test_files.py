"""The file-store kit's rules, which local folders, Drive and S3 all follow."""

import pytest

from vpack.providers.kit.files import camera_folder, is_video_name


@pytest.mark.parametrize(
    ("name", "video"),
    [
        ("a.mp4", True),
        ("A.MOV", True),
        ("ch01.dav", True),
        (b"cam\xff.mkv", True),  # not UTF-8: the extension still tells
        ("notes.txt", False),
        ("mp4", False),
        (".mp4.part", False),
    ],
)
def test_a_video_is_told_by_its_extension(name: str | bytes, video: bool) -> None:
    assert is_video_name(name) is video


@pytest.mark.parametrize(
    ("relative", "camera"),
    [
        ("Cam1/a.mp4", "Cam1"),
        ("Cam1/2026/11/a.mp4", "Cam1"),  # deeper folders belong to the first
        ("a.mp4", None),  # directly in the selection: the selection's own name
        ("/double.mp4", None),  # an empty first segment names nothing
        (b"Kamera/a.mp4", b"Kamera"),
    ],
)
def test_the_first_folder_below_the_selection_names_the_camera(
    relative: str | bytes, camera: str | bytes | None
) -> None:
    assert camera_folder(relative) == camera
