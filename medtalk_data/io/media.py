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

from ..errors import ClipError
from .files import display_path

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


def decode_frame(path: Path, index: int, nominal_fps: float) -> np.ndarray | None:
    """The upright RGB frame ``index`` (in decode order, as ``frames.parquet``'s ``source_frame``) of a
    video, or None when the file moved, broke or is shorter since extraction."""
    try:
        for frame in iter_frames(path, nominal_fps):
            if frame.index == index:
                return frame.rgb
    except ClipError:
        return None
    return None


def upright_size(media: dict[str, Any] | None) -> tuple[int, int] | None:
    """(width, height) of the upright picture from a probe's :meth:`MediaInfo.to_dict`, None if unknown."""
    try:
        width, height = int(media["width"]), int(media["height"])  # type: ignore[index]
        if int(media.get("rotation_deg", 0) or 0) % 180 == 90:  # type: ignore[union-attr]
            width, height = height, width
    except (KeyError, TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None
