"""Make small test media with PyAV from real clips: rotated, variable-rate, two faces, no face, truncated, remuxed.

Everything is written into folders the caller gives (pytest tmp folders); nothing is downloaded.
"""

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
    """Mono float32 audio of a file at its own rate (the first ``seconds`` if given)."""
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


def _mux_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, audio: tuple) -> None:
    samples, rate = audio
    for start in range(0, len(samples), 1024):
        block = samples[start : start + 1024].astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


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
    """Encode RGB frames to H.264 (+ AAC) in an MP4/MOV/MKV named by ``path``.

    ``times_s`` gives explicit (variable) frame timestamps on a 1/1000 s time base.
    ``display_rotation`` is FFmpeg's display-matrix angle (counter-clockwise degrees): a player turns
    each stored frame by it. A portrait phone clip stored landscape has -90 (the old ``rotate=90`` tag).
    ``faststart`` puts the 'moov' index before the media data (the default MP4 layout puts it at the end).
    """
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
            _mux_audio(container, astream, audio)
    return path


def write_audio_only(path: Path, samples: np.ndarray, rate: int, codec: str = "aac") -> Path:
    """An audio-only container (e.g. .m4a or .mp4 holding just AAC)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        _mux_audio(container, stream, (samples, rate))
    return path


def remux(src: Path, dst: Path, *, faststart: bool = False, max_seconds: float | None = None) -> Path:
    """Copy a real clip's packets (no re-encoding) into a new MP4, optionally 'moov' first and cut short."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(*streams):
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            if max_seconds is not None and packet.pts is not None and packet.pts * packet.time_base >= max_seconds:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return dst


def top_level_boxes(path: Path) -> list[str]:
    """Types of an MP4/MOV file's top-level boxes, in file order (e.g. ftyp, free, mdat, moov)."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes


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
    """Two clips in one picture (hstack), as long as the shorter one."""
    n = min(len(left), len(right))
    return [np.concatenate([left[i], right[i]], axis=1) for i in range(n)]


def pad_to_portrait(frames: list[np.ndarray], extra: int = 64) -> list[np.ndarray]:
    """Black bars above and below: a taller-than-wide upright picture (so rotation changes the shape)."""
    half = extra // 2
    return [np.pad(f, ((half, extra - half), (0, 0), (0, 0))) for f in frames]


def alternating_times(n: int, short_s: float = 0.030, long_s: float = 0.050) -> list[float]:
    """Timestamps of a variable-rate stream whose intervals alternate short/long (mean = 25 fps for 30/50 ms)."""
    times = [0.0]
    for i in range(1, n):
        times.append(times[-1] + (short_s if i % 2 else long_s))
    return times


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    """The first ``fraction`` of a file's bytes (an interrupted download or copy)."""
    data = src.read_bytes()
    dst.write_bytes(data[: math.floor(len(data) * fraction)])
    return dst
