"""Probe and stream-decode media with PyAV (FFmpeg).

Frames are yielded one at a time as upright RGB arrays with their real presentation time, so
memory does not depend on the video's length. Rotation metadata (phone video) is applied.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClipError
from .files import display_path

# The frame rates video is made at (NTSC exactly); the one table that grids and exports snap to.
STANDARD_RATES: tuple[float, ...] = (
    24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0, 60000 / 1001, 60.0, 90.0, 100.0, 120000 / 1001, 120.0,
)  # fmt: skip
FALLBACK_FPS = 25.0  # where a container says nothing

REENCODE_FIX = "re-download the file or re-encode it (e.g. `ffmpeg -i in.mp4 -c:v libx264 -c:a aac out.mp4`)"


@dataclass(frozen=True)
class MediaInfo:
    """What the container says, before decoding."""

    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rotation_deg: int = 0
    video_codec: str = ""
    nominal_fps: float = 0.0  # the container's average frame rate
    guessed_fps: float = 0.0  # FFmpeg's r_frame_rate: the rate the timestamps are laid out on
    header_frames: int = 0
    duration_s: float = 0.0
    audio_codec: str = ""
    audio_sample_rate: int = 0
    audio_channels: int = 0
    container_format: str = ""  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "png_pipe"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def upright_size(self) -> tuple[int, int] | None:
        """(width, height) of the picture as shown (rotation applied), None if unknown."""
        width, height = (self.height, self.width) if self.rotation_deg % 180 == 90 else (self.width, self.height)
        return (width, height) if width > 0 and height > 0 else None

    @property
    def is_still_image(self) -> bool:
        """A picture file (PNG, JPEG, BMP, TIFF, WebP…) whatever its name: FFmpeg reads it as a one-frame video."""
        return self.container_format == "image2" or self.container_format.endswith("_pipe")


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError, IndexError)


def open_container(path: Path):
    """Open a media file or raise a ClipError that says why and what to do."""
    import av

    try:
        size = path.stat().st_size
    except OSError as err:
        if isinstance(err, FileNotFoundError) and path.is_symlink():
            target = display_path(os.readlink(path))
            raise ClipError("unreadable", f"broken symbolic link (to {target})", "fix or remove the link") from err
        raise ClipError(
            "unreadable", f"cannot read file ({err.strerror or err})", "check that it exists and that you may read it"
        ) from err
    if size == 0:
        raise ClipError("empty_file", "file is empty (0 bytes)", "re-download or remove it")
    if not os.access(path, os.R_OK):
        raise ClipError("unreadable", "permission denied", "make the file readable (chmod +r)")
    try:
        return av.open(os.fspath(path), metadata_errors="replace")
    except _av_errors() as err:
        if _mp4_without_index(path):
            raise ClipError(
                "truncated",
                "incomplete MP4/MOV file: its index ('moov' box) is missing (cut-short download or recording)",
                "download or export the file again",
            ) from err
        raise ClipError("undecodable", f"not a readable media file ({_short(err)})", REENCODE_FIX) from err


def _mp4_without_index(path: Path) -> bool:
    """True for a file that starts like an MP4/MOV ('ftyp' box) but whose top-level boxes hold no 'moov'."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                head = fh.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if kind == b"moov" or (pos == 0 and kind != b"ftyp"):
                    return False
                box = int.from_bytes(head[8:16], "big") if box == 1 else (box or size - pos)
                if box < 8:
                    return False
                pos += box
    except OSError:
        return False
    return True


def _short(err: BaseException) -> str:
    """FFmpeg's reason without the errno prefix and the file name (the caller names the file)."""
    text = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
    return str(text)[:200]


def _rotation_from_stream(stream: Any) -> int:
    """Display rotation in degrees (counter-clockwise, FFmpeg's display-matrix convention)."""
    rot = stream.metadata.get("rotate") if stream.metadata else None
    if rot is not None:
        try:
            return -int(float(rot)) % 360
        except ValueError:
            return 0
    return 0


def _rotation_of_first_frame(container: Any, stream: Any) -> int:
    """Display rotation as the decoder reports it (FFmpeg 7+ no longer sets the ``rotate`` tag)."""
    try:
        for frame in container.decode(stream):
            return round(getattr(frame, "rotation", 0) or 0) % 360
    except _av_errors():
        pass  # an undecodable stream is reported by the face stage
    return 0


def _video_duration(stream: Any) -> float | None:
    """The video stream's own duration: from its header (MP4/MOV) or its DURATION tag (Matroska)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION", "")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def probe(path: Path) -> MediaInfo:
    """Read stream headers (and decode the first video frame, for its display rotation)."""
    with open_container(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration) / 1_000_000 if container.duration else 0.0
        info: dict[str, Any] = {
            "has_video": video is not None,
            "has_audio": audio is not None,
            "duration_s": duration,
            "container_format": container.format.name or "",
        }
        if video is not None:
            rate = video.average_rate or video.guessed_rate or video.base_rate
            info.update(
                width=int(video.codec_context.width or 0),
                height=int(video.codec_context.height or 0),
                video_codec=video.codec_context.name or "",
                nominal_fps=float(rate) if rate else 0.0,
                guessed_fps=float(video.guessed_rate) if video.guessed_rate else 0.0,
                header_frames=int(video.frames or 0),
                rotation_deg=_rotation_from_stream(video) or _rotation_of_first_frame(container, video),
            )
            # The video's own length, not the container's: a longer audio track does not make the video truncated.
            info["duration_s"] = _video_duration(video) or duration
        if audio is not None:
            info.update(
                audio_codec=audio.codec_context.name or "",
                audio_sample_rate=int(audio.codec_context.sample_rate or 0),
                audio_channels=int(audio.codec_context.channels or 0),
            )
        return MediaInfo(**info)


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    time_s: float  # seconds after the first decoded frame's timestamp
    pts_time_s: float  # the container's own timestamp
    rgb: np.ndarray  # (H, W, 3) uint8, upright


def upright(rgb: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Rotate a decoded frame by its display rotation (degrees counter-clockwise)."""
    quarter = round(rotation_deg / 90.0) % 4
    return np.rot90(rgb, k=quarter) if quarter else rgb


def iter_frames(path: Path, nominal_fps: float) -> Iterator[DecodedFrame]:
    """Decode video frames in presentation order, one at a time.

    Missing or non-increasing timestamps are repaired (previous + one nominal frame period) so
    that downstream time is strictly increasing; the repair count is visible as ``pts_time_s``
    differing from ``time_s``.
    """
    period = 1.0 / (nominal_fps if nominal_fps > 0 else FALLBACK_FPS)
    container = open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fallback_rotation = _rotation_from_stream(stream)
        first: float | None = None
        prev: float | None = None
        index = 0
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None or not math.isfinite(t) or (prev is not None and t <= prev):
                    t = (prev if prev is not None else 0.0) + period
                    pts_time = float("nan") if frame.time is None else float(frame.time)
                else:
                    pts_time = float(t)
                if first is None:
                    first = t
                prev = t
                rotation = getattr(frame, "rotation", None)
                rotation = fallback_rotation if rotation is None else rotation
                rgb = upright(frame.to_ndarray(format="rgb24"), rotation)
                yield DecodedFrame(index, t - first, pts_time, rgb)
                index += 1
        except _av_errors() as err:
            raise ClipError(
                "truncated", f"decoding stopped after {index} frames ({_short(err)})", REENCODE_FIX
            ) from err
    finally:
        container.close()


def decode_at(path: Path, times_s: Sequence[float], fps: float, max_px: int | None = None) -> list[np.ndarray | None]:
    """The upright RGB frames nearest each time, by seeking rather than decoding the whole video.

    Times are on the extraction's axis (seconds after the first decoded frame, ``frames.parquet``'s
    ``source_time_s``); ``fps`` is the source's rate (half a frame is close enough). ``max_px``
    shrinks each frame by a whole step to at most that height. None where a time found no frame
    (the file is shorter since extraction); ClipError when the file cannot be opened or decoded.
    """
    half = 0.5 / (fps if fps and fps > 0 else FALLBACK_FPS)
    found: list[np.ndarray | None] = [None] * len(times_s)
    container = open_container(path)
    try:
        if not container.streams.video:
            return found
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fallback_rotation = _rotation_from_stream(stream)
        first = next((f.time for f in container.decode(stream) if f.time is not None), None)
        if first is None:
            return found
        for i in sorted(range(len(times_s)), key=lambda k: times_s[k]):
            target = first + float(times_s[i])
            container.seek(max(0, int((target - 1.0) / stream.time_base)), stream=stream, backward=True)
            best, best_gap = None, math.inf
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                gap = abs(frame.time - target)
                if gap < best_gap:
                    best, best_gap = frame, gap
                if frame.time >= target - half:
                    break
            if best is None or best_gap > 2 * half:
                continue
            rotation = getattr(best, "rotation", None)
            rgb = upright(best.to_ndarray(format="rgb24"), fallback_rotation if rotation is None else rotation)
            step = max(1, math.ceil(rgb.shape[0] / max_px)) if max_px else 1
            found[i] = np.ascontiguousarray(rgb[::step, ::step])
    except _av_errors() as err:
        raise ClipError("undecodable", f"decoding failed ({str(err)[:160]})") from err
    finally:
        container.close()
    return found
    return None
