"""What a video is (duration, codecs, start time) and recorder streams remuxed to MP4 (PyAV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # PyAV is imported where a file is first probed or remuxed: it costs 35-60 ms
    # of start-up, and most commands (and a sync with nothing new) never need it.
    import av

# Tags muxers use for the wall-clock start of a recording.
_START_TAGS = ("creation_time", "date", "DATE_RECORDED", "com.apple.quicktime.creationdate")


@dataclass(frozen=True)
class Probe:
    duration_s: float | None = None
    codecs: str | None = None  # e.g. "h264,aac"
    recorded_start: datetime | None = None
    error: str | None = None


def demuxer_for(head: bytes) -> str | None:
    """The demuxer for a file that starts with `head`, when those bytes leave no doubt:
    an ISO base media file (MP4, MOV, 3GP) opens with its `ftyp` box. Naming it
    spares ffmpeg trying every format it knows, about half of a small file's probe."""
    return "mp4" if head[4:8] == b"ftyp" else None


def probe(path: Path, demuxer: str | None = None) -> Probe:
    """What PyAV can tell about a file; a file it cannot read gives `error`, never raises.

    `demuxer` (see demuxer_for) is tried first; if it cannot read the file, ffmpeg
    probes for the format as it would without it."""
    if demuxer is not None:
        found = _probe(path, demuxer)
        if found.error is None:
            return found
    return _probe(path, None)


def _probe(path: Path, demuxer: str | None) -> Probe:
    import av

    try:
        # A capped probe size keeps a non-video file from costing 50 ms of CPU; real
        # recordings still give their streams and duration. Decoders skip every
        # frame: what is kept (codecs, duration, start time) comes from the
        # container, and finding stream info otherwise decodes several frames of
        # each video (a 1080p H.264 clip: 4.3 -> 0.7 ms of CPU). The option reaches
        # the decoders of formats that name their streams in the header (MP4, MKV,
        # TS, AVI); MPEG-PS finds its streams by decoding, as before.
        with av.open(
            str(path),
            mode="r",
            format=demuxer,
            metadata_errors="ignore",
            options={"formatprobesize": "65536", "skip_frame": "all"},
        ) as container:
            duration = _duration(container)
            codecs = ",".join(
                s.codec_context.name for s in container.streams if s.codec_context is not None
            )
            start = _start_time(container.metadata)
            for stream in container.streams:
                start = start or _start_time(stream.metadata)
            return Probe(duration_s=duration, codecs=codecs or None, recorded_start=start)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        return Probe(error=f"not a readable video: {_describe(exc)}")


def _duration(container: av.container.InputContainer) -> float | None:
    import av

    if container.duration is not None and container.duration > 0:
        return round(container.duration / av.time_base, 3)
    best: float | None = None
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
            best = max(best or 0.0, seconds)
    return round(best, 3) if best else None


def _start_time(metadata: dict[str, str]) -> datetime | None:
    for tag in _START_TAGS:
        raw = metadata.get(tag)
        if raw:
            parsed = _parse_time(raw)
            if parsed is not None:
                return parsed
    return None


def _parse_time(raw: str) -> datetime | None:
    text = raw.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.year < 1971:  # muxers write 1970/1904 epochs when they know nothing
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---------------------------------------------------------------- remux

# Audio MP4 players decode everywhere; others (G.711, G.726, MP2, PCM) become AAC.
# MP2 is allowed in MP4 by the spec, but demuxers read it back as MP3 and fail.
_MP4_AUDIO = frozenset({"aac", "mp3"})
_AAC_FRAME = 1024


class RemuxError(Exception):
    """The vendor stream could not be turned into an MP4 (not video, or damaged)."""


@dataclass(frozen=True)
class Remuxed:
    info: Probe  # of the MP4: what is kept, so nobody needs to probe it again
    video_packets: int

    @property
    def duration_s(self) -> float | None:
        return self.info.duration_s

    @property
    def codecs(self) -> str:  # e.g. "h264,aac"
        return self.info.codecs or ""


def remux_to_mp4(source: Path, target: Path) -> Remuxed:
    """Copy the video (and audio) of a recorder's stream (MPEG-PS, DAV, TS, FLV) into MP4.

    Video packets are copied untouched; audio MP4 cannot carry well is re-encoded
    to AAC. Program streams often leave timestamps off packets that do not start
    a PES packet: those get the previous timestamp plus one frame, as ffmpeg's
    own stream copy does. Raises RemuxError; `target` is then left incomplete
    and is the caller's to remove.
    """
    import av

    try:
        with av.open(str(source), mode="r", metadata_errors="ignore") as given:
            if not given.streams.video:
                raise RemuxError("no video stream in the recording")
            with av.open(str(target), mode="w", format="mp4") as made:
                packets = _copy_streams(given, made)
        if packets == 0:
            raise RemuxError("the recording holds no video frames")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise RemuxError(f"cannot remux to MP4: {_describe(exc)}") from None
    info = probe(target, "mp4")
    if info.error:
        raise RemuxError(f"the remuxed MP4 is unreadable: {info.error}")
    return Remuxed(info=info, video_packets=packets)


class _Copied:
    """One input stream copied packet by packet, timestamps filled in where missing."""

    def __init__(self, given: av.stream.Stream, made: av.container.OutputContainer) -> None:
        self.output = made.add_stream_from_template(given)
        rate = getattr(given, "guessed_rate", None) or getattr(given, "average_rate", None)
        tb = given.time_base
        self.step = max(1, round(1 / (rate * tb))) if rate and tb else 1
        self.last_dts: int | None = None

    def packet(self, packet: av.Packet[Any]) -> av.Packet[Any] | None:
        if packet.dts is None:
            if self.last_dts is None:
                return None  # nothing to place it after: the stream starts at the next timestamp
            packet.dts = self.last_dts + (packet.duration or self.step)
        if packet.pts is None:
            packet.pts = packet.dts
        if self.last_dts is not None and packet.dts <= self.last_dts:
            return None  # a glitch in the recorder's clock; MP4 needs rising timestamps
        self.last_dts = packet.dts
        packet.stream = self.output
        return packet


class _ToAac:
    """An audio stream MP4 cannot carry, decoded and re-encoded to AAC."""

    def __init__(self, given: av.audio.stream.AudioStream, made: av.container.OutputContainer):
        import av

        channels = given.codec_context.channels or 1
        layout = "mono" if channels == 1 else "stereo"
        rate = given.codec_context.sample_rate or 8000
        self.output = made.add_stream("aac", rate=rate, layout=layout)
        self.resampler = av.AudioResampler(
            format="fltp", layout=layout, rate=rate, frame_size=_AAC_FRAME
        )

    def frames(self, frame: av.AudioFrame | None) -> list[av.Packet[Any]]:
        out: list[av.Packet[Any]] = []
        for resampled in self.resampler.resample(frame):
            out.extend(self.output.encode(resampled))
        if frame is None:
            out.extend(self.output.encode(None))
        return out


def _copy_streams(given: av.container.InputContainer, made: av.container.OutputContainer) -> int:
    import av

    copied: dict[int, _Copied] = {}
    encoded: dict[int, _ToAac] = {}
    for stream in given.streams:
        if stream.type == "video":
            copied[stream.index] = _Copied(stream, made)
        elif isinstance(stream, av.audio.stream.AudioStream):
            if stream.codec_context.name in _MP4_AUDIO:
                copied[stream.index] = _Copied(stream, made)
            else:
                encoded[stream.index] = _ToAac(stream, made)
    wanted = [s for s in given.streams if s.index in copied or s.index in encoded]
    video_packets = 0
    for packet in given.demux(wanted):
        if packet.size == 0:
            continue
        index = packet.stream.index
        if index in copied:
            ready = copied[index].packet(packet)
            if ready is not None:
                made.mux(ready)
                video_packets += ready.stream.type == "video"
        else:
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                continue  # one damaged audio frame is not worth the recording
            for frame in frames:
                if isinstance(frame, av.AudioFrame):
                    made.mux(encoded[index].frames(frame))
    for transcoder in encoded.values():
        made.mux(transcoder.frames(None))
    return video_packets


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
