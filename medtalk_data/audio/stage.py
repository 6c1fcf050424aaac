"""Extract a clip's audio as 16 kHz mono 16-bit WAV, streaming, with its offset to video time.

Sample ``i`` of the written WAV plays at ``offset_s + i / 16000`` seconds on the clip's video
time axis (0 = first decoded video frame).
"""

from __future__ import annotations

import math
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClipError
from ..io.files import atomic_path
from ..io.media import REENCODE_FIX, _av_errors, _short, open_container

TARGET_RATE = 16_000


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    n_samples: int
    duration_s: float
    offset_s: float
    source_sample_rate: int
    source_channels: int
    source_codec: str
    peak: float  # max |sample| in [0, 1]
    rms_dbfs: float  # -inf for digital silence
    clipped_fraction: float = 0.0  # share of source samples at full scale (measured before downmix/resampling)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not math.isfinite(d["rms_dbfs"]):
            d["rms_dbfs"] = None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioInfo:
        """Inverse of :meth:`to_dict` (digital silence's null loudness back to -inf); unknown keys are left out."""
        from ..io.records import record_from_dict

        rms = data.get("rms_dbfs")
        return record_from_dict(cls, {**data, "rms_dbfs": -math.inf if rms is None else rms})


def _first_video_time(container: Any) -> float | None:
    """Timestamp of the first video packet with a pts, without decoding pictures."""
    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return None


def extract_audio(path: Path, out_wav: Path, video_start_s: float | None = None) -> AudioInfo:
    """Decode the first audio stream to ``out_wav`` (atomically). Raises ClipError('no_audio')."""
    import av

    container = open_container(path)
    try:
        if not container.streams.audio:
            raise ClipError("no_audio", "no audio stream", "audio stages are skipped for this clip")
        stream = container.streams.audio[0]
        if video_start_s is None:
            video_start_s = _first_video_time(container) or 0.0
        resampler = av.AudioResampler(format="s16", layout="mono", rate=TARGET_RATE)
        as_float = av.AudioResampler(format="flt")  # the source's own rate and channels, as float
        n_source = n_clipped = 0
        n = 0
        sum_sq = 0.0
        peak = 0
        start: float | None = None
        with atomic_path(out_wav) as tmp, wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(TARGET_RATE)

            def write(frames: list[Any]) -> None:
                nonlocal n, sum_sq, peak
                for f in frames:
                    pcm = f.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    if pcm.size == 0:
                        continue
                    wav.writeframes(pcm.tobytes())
                    n += pcm.size
                    wide = pcm.astype(np.float64)  # int32 dot products overflow on loud audio
                    sum_sq += float(np.dot(wide, wide))
                    peak = max(peak, int(np.abs(wide).max()))

            try:
                for frame in container.decode(stream):
                    if start is None and frame.time is not None:
                        start = float(frame.time)
                    for f in as_float.resample(frame):
                        values = f.to_ndarray()
                        n_source += values.size
                        n_clipped += int(np.count_nonzero(np.abs(values) >= 0.999))
                    write(resampler.resample(frame))
                write(resampler.resample(None))
            except _av_errors() as err:
                raise ClipError("audio_undecodable", f"audio decoding failed ({_short(err)})", REENCODE_FIX) from err
        if n == 0:
            out_wav.unlink(missing_ok=True)
            raise ClipError("no_audio", "audio stream holds no samples", "audio stages are skipped for this clip")
        rms = math.sqrt(sum_sq / n) / 32768.0
        return AudioInfo(
            sample_rate=TARGET_RATE,
            n_samples=n,
            duration_s=n / TARGET_RATE,
            offset_s=(start or 0.0) - video_start_s,
            source_sample_rate=int(stream.codec_context.sample_rate or 0),
            source_channels=int(stream.codec_context.channels or 0),
            source_codec=stream.codec_context.name or "",
            peak=peak / 32768.0,
            rms_dbfs=20 * math.log10(rms) if rms > 0 else -math.inf,
            clipped_fraction=n_clipped / n_source if n_source else 0.0,
        )
    finally:
        container.close()
