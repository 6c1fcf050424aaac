"""Make small test videos with PyAV from real clips: rotated, variable-rate, two faces, no face, truncated."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def read_rgb(path: Path, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decoded RGB frames of a real clip (up to ``max_frames``) and its frame rate."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames, fps


def read_audio(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 audio of a file at its own rate."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks)
    return (audio[: int(seconds * rate)] if seconds else audio), rate


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    times_s: list[float] | None = None,
    display_rotation: float | None = None,
    audio: tuple[np.ndarray, int] | None = None,
    faststart: bool = False,
) -> Path:
    """Encode RGB frames to H.264 mp4; ``times_s`` gives explicit (variable) timestamps."""
    frames = list(frames)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        if times_s is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if display_rotation is not None:
            stream.set_display_rotation(display_rotation)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=audio[1])
            astream.layout = "mono"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if times_s is not None:
                frame.pts = round(times_s[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if astream is not None:
            samples, rate = audio
            chunk = 1024
            for start in range(0, len(samples), chunk):
                block = samples[start : start + chunk].astype(np.float32)[None, :]
                aframe = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
                aframe.sample_rate = rate
                aframe.pts = start
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))
    return path


def write_audio_only(path: Path, samples: np.ndarray, rate: int, codec: str = "aac") -> Path:
    """An audio-only container (e.g. .m4a or .mp4 holding just AAC)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            block = samples[start : start + 1024].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def noise_frames(n: int, size: int = 160, seed: int = 0) -> list[np.ndarray]:
    """Moving colour gradients with noise: video with no face in it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    frames = []
    for i in range(n):
        base = np.stack([(x + 3 * i) % 256, (y * 2 + i) % 256, ((x + y) // 2) % 256], axis=-1)
        frames.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return frames


def side_by_side(left: list[np.ndarray], right: list[np.ndarray]) -> list[np.ndarray]:
    n = min(len(left), len(right))
    return [np.concatenate([left[i], right[i]], axis=1) for i in range(n)]


def irregular_times(n: int, fps: float, seed: int = 0) -> list[float]:
    """Timestamps of a variable-rate stream: frame intervals jitter between 0.6 and 1.6 periods."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0.6, 1.6, n - 1) / fps
    return [0.0, *np.cumsum(steps).tolist()]


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: math.floor(len(data) * fraction)])
    return dst
