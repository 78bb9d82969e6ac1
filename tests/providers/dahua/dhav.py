"""A writer of DHAV, the container Dahua recorders store and send (`.dav`), for the emulator.

Written from the layout FFmpeg's `dhav` demuxer reads (libavformat/dhav.c), so that
what the emulator serves is what PyAV (and the provider's remux) meets on a device:

- a stream of frames, each `DHAV` + type (0xFD video key frame, 0xFC other video,
  0xF0 audio, 0xF1 auxiliary) + subtype + channel + sub-number (1 byte each) +
  frame number (u32 LE) + frame length (u32 LE, the whole frame from `DHAV` to the
  end of its trailer) + date (u32 LE: seconds, minutes, hours, day, month, year -
  2000 packed in 6/6/5/5/4/6 bits, the device's wall clock) + a millisecond counter
  (u16 LE, wrapping) + extension length (u8) + checksum (u8, which the demuxer skips);
- extension fields of 4 or 8 bytes: 0x80 width/8 and height/8, 0x81 video codec
  (2 = H.264) and frame rate, 0x83 audio channels, codec (0x0E = G.711 A-law,
  0x0A = G.711 mu-law) and a sample-rate index (2 = 8000 Hz);
- then the payload (H.264 in Annex B byte-stream form, or audio samples), and a
  trailer `dhav` + the frame length again (the demuxer walks it backwards to find
  the duration).

The demuxer stamps a packet with its date's second, plus the millisecond counter's
advance while the second stays the same; this writer keeps both in step with the
recording's real timing. The checksum (the byte sum of the first 23 header bytes)
is this writer's guess: FFmpeg does not check it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

VIDEO_KEY, VIDEO, AUDIO = 0xFD, 0xFC, 0xF0
H264 = 0x02
ALAW, MULAW = 0x0E, 0x0A
_RATE_8000 = 2  # index into the demuxer's table of sample rates
_AUDIO_MS = 40  # one audio frame per 40 ms (320 samples at 8 kHz), as cameras send


@dataclass(frozen=True)
class Frame:
    kind: int
    at_ms: int  # from the start of the recording
    payload: bytes


def pack_date(when: datetime) -> int:
    """A wall-clock time as DHAV's 32-bit date."""
    return (
        when.second
        | when.minute << 6
        | when.hour << 12
        | when.day << 17
        | when.month << 22
        | (when.year - 2000) << 26
    )


def unpack_date(value: int) -> datetime:
    return datetime(
        2000 + (value >> 26 & 0x3F),
        value >> 22 & 0x0F,
        value >> 17 & 0x1F,
        value >> 12 & 0x1F,
        value >> 6 & 0x3F,
        value & 0x3F,
    )


def frame_bytes(
    kind: int, number: int, local_start: datetime, frame: Frame, ext: bytes, channel: int = 0
) -> bytes:
    """One DHAV frame: header, extension fields, payload, trailer."""
    when = local_start + timedelta(milliseconds=frame.at_ms)
    length = 24 + len(ext) + len(frame.payload) + 8
    head = b"DHAV" + struct.pack(
        "<BBBBIIIHB", kind, 0, channel, 0, number, length, pack_date(when), frame.at_ms & 0xFFFF,
        len(ext),
    )  # fmt: skip
    head += bytes([sum(head) & 0xFF])
    return head + ext + frame.payload + b"dhav" + struct.pack("<I", length)


def write_dhav(
    out: BinaryIO,
    local_start: datetime,
    seconds: float,
    *,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    audio: int | None = ALAW,
    channel: int = 0,
) -> None:
    """A recording of `seconds` as a recorder writes it: H.264 (a key frame each second,
    no B-frames) and, unless `audio` is None, G.711 at 8 kHz, interleaved in time order.
    `local_start` is the device's wall clock (naive) at the first frame."""
    frames = _video(seconds, fps, size)
    if audio is not None:
        frames += _audio(seconds, audio)
    frames.sort(key=lambda f: (f.at_ms, f.kind == AUDIO))
    video_ext = bytes([0x80, 0, size[0] // 8, size[1] // 8, 0x81, 0, H264, fps])
    audio_ext = bytes([0x83, 1, audio or ALAW, _RATE_8000])
    for number, frame in enumerate(frames, start=1):
        ext = video_ext if frame.kind == VIDEO_KEY else audio_ext if frame.kind == AUDIO else b""
        out.write(frame_bytes(frame.kind, number, local_start, frame, ext, channel))


def _video(seconds: float, fps: int, size: tuple[int, int]) -> list[Frame]:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.options = {"bf": "0", "g": str(fps), "preset": "ultrafast", "tune": "zerolatency"}
    frames: list[Frame] = []
    count = max(1, round(seconds * fps))
    packets: list[av.Packet] = []
    for i in range(count):
        img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        img[:, :, 0] = (np.arange(size[0]) * 4 + i * 8) % 256
        img[:, :, 1] = (i * 16) % 256
        picture = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        picture.pts = i
        packets.extend(codec.encode(picture))
    packets.extend(codec.encode(None))
    for packet in packets:
        assert packet.pts is not None
        kind = VIDEO_KEY if packet.is_keyframe else VIDEO
        frames.append(Frame(kind, packet.pts * 1000 // fps, bytes(packet)))
    return frames


def _audio(seconds: float, codec_id: int) -> list[Frame]:
    codec = av.CodecContext.create("pcm_alaw" if codec_id == ALAW else "pcm_mulaw", "w")
    codec.sample_rate = 8000
    codec.layout = "mono"
    codec.format = "s16"
    per_frame = 8000 * _AUDIO_MS // 1000
    frames: list[Frame] = []
    for n in range(int(seconds * 1000) // _AUDIO_MS):
        t = (np.arange(n * per_frame, (n + 1) * per_frame) / 8000).astype(np.float64)
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        chunk = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        chunk.sample_rate = 8000
        chunk.pts = n * per_frame
        payload = b"".join(bytes(p) for p in codec.encode(chunk))
        frames.append(Frame(AUDIO, n * _AUDIO_MS, payload))
    return frames
