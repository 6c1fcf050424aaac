"""Probe and stream-decode media with PyAV (FFmpeg).

Frames are yielded one at a time as upright RGB arrays with their real presentation time, so
memory does not depend on the video's length. Rotation metadata (phone video) is applied.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ClipError

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError, IndexError)


def open_container(path: Path):
    """Open a media file or raise a ClipError that says why and what to do."""
    import av

    try:
        size = path.stat().st_size
    except OSError as err:
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
        raise ClipError("undecodable", f"not a readable media file ({_short(err)})", REENCODE_FIX) from err


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


def probe(path: Path) -> MediaInfo:
    """Read stream headers (no decoding)."""
    with open_container(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration) / 1_000_000 if container.duration else 0.0
        info: dict[str, Any] = {"has_video": video is not None, "has_audio": audio is not None, "duration_s": duration}
        if video is not None:
            rate = video.average_rate or video.guessed_rate or video.base_rate
            info.update(
                width=int(video.codec_context.width or 0),
                height=int(video.codec_context.height or 0),
                video_codec=video.codec_context.name or "",
                nominal_fps=float(rate) if rate else 0.0,
                guessed_fps=float(video.guessed_rate) if video.guessed_rate else 0.0,
                header_frames=int(video.frames or 0),
                rotation_deg=_rotation_from_stream(video),
            )
            if video.duration and video.time_base:
                info["duration_s"] = max(duration, float(video.duration * video.time_base))
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
    period = 1.0 / nominal_fps if nominal_fps > 0 else 1.0 / 25.0
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
