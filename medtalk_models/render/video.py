"""Write a preview MP4 (H.264 + AAC) of animated curves, streaming, optionally beside the source video.

Frames are rendered, encoded and dropped one at a time, and audio goes through in 1024-sample
AAC frames, so memory does not grow with the clip's length. The audio is cut or padded with
silence to the animation's duration, so both streams end together; it is resampled to 48 kHz,
where the AAC encoder's priming delay (1024 samples) stays far below one video frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

from .basis import BlendshapeBasis

AUDIO_RATE = 48_000
AAC_FRAME = 1024


def render_curves(
    curves: np.ndarray, names: Sequence[str] | None = None, basis: BlendshapeBasis | None = None, size: int = 256
) -> Iterator[np.ndarray]:
    """Yield one (size, size, 3) RGB render per row of ``curves`` (T, C), channels matched by name."""
    from .basis import default_basis
    from .renderer import MeshRenderer

    curves = np.asarray(curves, dtype=np.float32)
    if curves.ndim != 2:
        raise ValueError(f"curves must be (frames, channels), got shape {curves.shape}")
    if names is None:
        if curves.shape[1] != len(MEDIAPIPE_BLENDSHAPES):
            raise ValueError(f"{curves.shape[1]} channels: pass their names (mediapipe52 has 52)")
        names = MEDIAPIPE_BLENDSHAPES
    basis = basis or default_basis()
    weights = basis.weights_from(curves, names)
    with MeshRenderer((size, size), samples=4) as renderer:
        for row in weights:
            yield renderer.render(basis.vertices(row))


def _even(n: float) -> int:
    return max(2, round(float(n) / 2.0) * 2)


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    import av

    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(width=width, height=height, interpolation="AREA").to_ndarray()


class _SourceVideo:
    """The source video resampled by time: ``at(t)`` is the frame shown at t, scaled to ``height``."""

    def __init__(self, path: Path, height: int) -> None:
        from medtalk_data.io.media import iter_frames, probe

        info = probe(path)
        if not info.has_video:
            raise MedtalkError(f"{display_path(path)}: no video stream to show beside the animation")
        self._frames = iter_frames(path, info.nominal_fps or info.guessed_fps)
        self.height = height
        self.width = 0
        self._current: Any = None
        self._next: Any = next(self._frames, None)
        if self._next is None:
            raise MedtalkError(f"{display_path(path)}: the video holds no decodable frame")
        h, w = self._next.rgb.shape[:2]
        self.width = _even(w * height / h)
        self._scaled: np.ndarray | None = None

    def at(self, t: float) -> np.ndarray:
        """The latest source frame whose time is ≤ t (the last one after the video ends)."""
        advanced = False
        while self._next is not None and (self._current is None or self._next.time_s <= t + 1e-6):
            self._current, self._next = self._next, next(self._frames, None)
            advanced = True
        if advanced or self._scaled is None:
            self._scaled = _resize(self._current.rgb, self.width, self.height)
        return self._scaled

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


def _audio_chunks(path: Path, offset_s: float) -> Iterator[np.ndarray]:
    """Mono float32 samples at 48 kHz, in decoded chunks; ``offset_s`` > 0 prepends silence, < 0 skips."""
    import av

    from medtalk_data.io.media import open_container

    if offset_s > 0:
        yield np.zeros(round(offset_s * AUDIO_RATE), dtype=np.float32)
    skip = round(-offset_s * AUDIO_RATE) if offset_s < 0 else 0
    container = open_container(path)
    try:
        if not container.streams.audio:
            raise MedtalkError(f"{display_path(path)}: no audio stream to put in the preview")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        stream = container.streams.audio[0]

        def samples(frames: list[Any]) -> Iterator[np.ndarray]:
            nonlocal skip
            for f in frames:
                pcm = f.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if skip:
                    cut = min(skip, pcm.size)
                    pcm, skip = pcm[cut:], skip - cut
                if pcm.size:
                    yield pcm

        for frame in container.decode(stream):
            yield from samples(resampler.resample(frame))
        yield from samples(resampler.resample(None))
    finally:
        container.close()


class _AudioWriter:
    """Feeds the audio to an AAC stream in 1024-sample frames, cut or zero-padded to the video's end."""

    def __init__(self, container: Any, source: Path, offset_s: float) -> None:
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        self.stream.bit_rate = 96_000
        self.container = container
        self.written = 0
        self._chunks = _audio_chunks(source, offset_s)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._exhausted = False

    def write_until(self, t: float) -> None:
        """Encode the audio that plays before time ``t`` (keeps the two streams interleaved)."""
        target = round(t * AUDIO_RATE)
        while self.written + AAC_FRAME <= target:
            self._encode(self._take(AAC_FRAME))

    def _take(self, n: int) -> np.ndarray:
        while self._buffer.size < n and not self._exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._buffer = np.concatenate([self._buffer, chunk])
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return np.pad(out, (0, n - out.size)) if out.size < n else out

    def _encode(self, pcm: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.written
        frame.time_base = Fraction(1, AUDIO_RATE)
        self.written += pcm.size
        self.container.mux(self.stream.encode(frame))

    def finish(self, duration_s: float) -> None:
        """Write the rest up to exactly ``duration_s`` (the video's length) and flush the encoder."""
        total = round(duration_s * AUDIO_RATE)
        while self.written < total:
            self._encode(self._take(min(AAC_FRAME, total - self.written)))
        self.container.mux(self.stream.encode(None))
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def write_preview_mp4(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: float,
    *,
    basis: BlendshapeBasis | None = None,
    names: Sequence[str] | None = None,
    audio_wav: str | os.PathLike[str] | None = None,
    audio_offset_s: float = 0.0,
    side_by_side_video: str | os.PathLike[str] | None = None,
    size: int = 256,
    crf: int = 20,
) -> Path:
    """Encode an H.264 (yuv420p) MP4 with AAC audio; written to a temporary name, then renamed.

    ``frames``: RGB images (an iterable, consumed one at a time), or blendshape curves (T, C) as a
    2-D array, rendered on the mesh with ``basis`` (default: the shipped basis) by channel ``names``.
    ``audio_wav``: any audio PyAV reads; sample 0 plays at ``audio_offset_s`` on the animation's
    time axis (the manifest's ``audio_offset_s``). ``side_by_side_video``: the clip's source video,
    shown on the left, resampled by time to ``fps`` and scaled to the same height. The audio is
    cut or padded with silence to the video's length.
    """
    import av

    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    final = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        images: Iterable[np.ndarray] = render_curves(frames, names, basis, size)
    else:
        images = frames
    source = _SourceVideo(Path(side_by_side_video), _even(size)) if side_by_side_video is not None else None
    try:
        with atomic_path(final) as tmp, av.open(os.fspath(tmp), mode="w", format="mp4") as container:
            encoder = _Encoder(container, rate, crf)
            for index, image in enumerate(images):
                image = np.asarray(image, dtype=np.uint8)
                if source is not None:
                    image = _beside(source.at(index / float(rate)), image)
                if encoder.video is None:
                    encoder.start(image.shape[1], image.shape[0])
                    if audio_wav is not None:
                        encoder.audio = _AudioWriter(container, Path(audio_wav), audio_offset_s)
                encoder.write(image)
            encoder.finish()
    finally:
        if source is not None:
            source.close()
    return final


def _beside(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Place two images side by side, scaling ``right`` to ``left``'s height."""
    height = left.shape[0]
    if right.shape[0] != height:
        right = _resize(right, _even(right.shape[1] * height / right.shape[0]), height)
    return np.concatenate([left, right], axis=1)


class _Encoder:
    """H.264 frames with pts = frame index; audio (if any) muxed up to each frame's end time."""

    def __init__(self, container: Any, rate: Fraction, crf: int) -> None:
        self.container = container
        self.rate = rate
        self.crf = crf
        self.video: Any = None
        self.audio: _AudioWriter | None = None
        self.count = 0

    def start(self, width: int, height: int) -> None:
        self.video = self.container.add_stream("libx264", rate=self.rate)
        self.video.width, self.video.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.video.pix_fmt = "yuv420p"
        self.video.options = {"crf": str(self.crf), "preset": "veryfast"}

    def write(self, image: np.ndarray) -> None:
        import av

        image = np.ascontiguousarray(image[: self.video.height, : self.video.width])
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self.count
        frame.time_base = 1 / self.rate
        self.container.mux(self.video.encode(frame))
        self.count += 1
        if self.audio is not None:
            self.audio.write_until(self.count / float(self.rate))

    def finish(self) -> None:
        if self.video is None:
            raise MedtalkError("nothing to write: the animation has no frames")
        self.container.mux(self.video.encode(None))
        if self.audio is not None:
            self.audio.finish(self.count / float(self.rate))
