"""Frozen-backbone features: computed once per clip, cached on disk, aligned to rig frames by time.

Alignment is by timestamps, never by counting: rig frame ``t`` sits at ``time_s`` on the video
axis, audio sample 0 at ``audio_offset_s``; a feature frame ``i`` covers ``[i, i+1) / rate_hz``
seconds of audio. When features are denser than rig frames (Whisper 50 Hz → 25 fps) each rig
frame takes the mean of the feature frames whose centres fall inside its own frame interval
(two at 50 Hz → 25 fps); otherwise features are linearly interpolated at the frame centre.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path, sha256_file
from medtalk_data.io.wav import read_wav

SAMPLE_RATE = 16000
SILENCE_HANGOVER_S = 0.3  # animate: pauses shorter than twice this keep the mouth articulating, as real mouths do
REST_HANGOVER_S = 0.15  # training frames this far from speech energy count as the face at rest (train.rest_pose)


def align_to_frames(feats: np.ndarray, rate_hz: float, times_s: np.ndarray, fps: float) -> np.ndarray:
    """(n, D) features at ``rate_hz`` → (len(times_s), D) float32 at the given audio-axis times."""
    n, dim = feats.shape
    out = np.zeros((len(times_s), dim), dtype=np.float32)
    if n == 0 or len(times_s) == 0:
        return out
    feats = feats.astype(np.float32, copy=False)
    if rate_hz > 1.5 * fps:
        # feature frame i is centred at (i + 0.5) / rate_hz; it belongs to the rig frame whose interval
        # [t - half, t + half) holds that centre. The bounds sit half a feature frame away from the
        # integers, so rounding noise in the times cannot add a third frame.
        half = 0.5 / fps
        lo = np.clip(np.ceil((times_s - half) * rate_hz - 0.5).astype(np.int64), 0, n)
        hi = np.clip(np.ceil((times_s + half) * rate_hz - 0.5).astype(np.int64), 0, n)
        cs = np.concatenate([np.zeros((1, dim), np.float64), np.cumsum(feats, axis=0, dtype=np.float64)])
        count = hi - lo
        inside = count > 0
        out[inside] = ((cs[hi[inside]] - cs[lo[inside]]) / count[inside, None]).astype(np.float32)
        # frames past either end of the audio take the nearest feature frame
        edge = ~inside
        if edge.any():
            out[edge] = feats[np.clip((times_s[edge] * rate_hz).astype(np.int64), 0, n - 1)]
        return out
    pos = np.clip(times_s * rate_hz - 0.5, 0, n - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (pos - i0)[:, None].astype(np.float32)
    return feats[i0] * (1 - w) + feats[i1] * w


def audio_sha(path: Path) -> str:
    return sha256_file(path)[:16]


class FeatureCache:
    """``root/<extractor cache key>/<clip_id>-<audio sha>.npy`` (float16): a changed wav or model
    gets new files; an interrupted write leaves nothing behind (temp file + rename)."""

    def __init__(self, root: Path, extractor: Any) -> None:
        self.extractor = extractor
        self.folder = Path(root) / extractor.cache_key()

    def path(self, clip_id: str, wav: Path, sha256: str | None = None) -> Path:
        return self.folder / f"{clip_id}-{sha256[:16] if sha256 else audio_sha(wav)}.npy"

    def get(self, clip_id: str, wav: Path, sha256: str | None = None) -> np.ndarray:
        """The clip's features; ``sha256``: the wav's hash when the caller has it (the file is then not hashed)."""
        wav = Path(wav)
        if not wav.is_file():
            raise MedtalkError(
                f"{display_path(wav)}: audio of clip {clip_id} is missing; re-run `medtalk-data extract` on its source"
            )
        target = self.path(clip_id, wav, sha256)
        if target.is_file():
            try:
                return np.load(target, mmap_mode="r")
            except (OSError, ValueError):
                target.unlink(missing_ok=True)  # damaged cache entry: recompute
        wave, sr = read_wav(wav)
        if sr != SAMPLE_RATE:
            raise MedtalkError(f"{display_path(wav)}: {sr} Hz, expected 16 kHz mono from `medtalk-data extract`")
        feats = np.asarray(self.extractor.extract(wave.astype(np.float32)), dtype=np.float16)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, feats)
        return feats


class TextCache:
    """Token features and sentence embeddings of strings, cached by the text's hash."""

    def __init__(self, root: Path, encoder: Any) -> None:
        self.encoder = encoder
        self.folder = Path(root) / encoder.cache_key()
        self._memory: dict[tuple[str, str], np.ndarray] = {}

    def _get(self, kind: str, text: str) -> np.ndarray:
        key = (kind, text)
        if key in self._memory:
            return self._memory[key]
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]
        target = self.folder / f"{kind}-{digest}.npy"
        value = None
        if target.is_file():
            try:
                value = np.load(target)
            except (OSError, ValueError):
                target.unlink(missing_ok=True)
        if value is None:
            fn = self.encoder.tokens if kind == "tokens" else self.encoder.sentence
            value = np.asarray(fn(text), dtype=np.float32)
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, open(tmp, "wb") as fh:
                np.save(fh, value)
        self._memory[key] = value
        return value

    def tokens(self, text: str) -> np.ndarray:
        return self._get("tokens", text)

    def sentence(self, text: str) -> np.ndarray:
        return self._get("sentence", text)


def frame_rms(wave_16k: np.ndarray, times_s: np.ndarray, half_window: int) -> np.ndarray:
    """RMS of the audio over ±``half_window`` samples around each time (audio axis, seconds);
    0 where the window falls wholly outside the audio. One cumulative sum, not a loop per frame."""
    power = np.concatenate([[0.0], np.cumsum(wave_16k.astype(np.float64) ** 2)])
    centre = (np.asarray(times_s) * SAMPLE_RATE).astype(np.int64)
    lo = np.clip(centre - half_window, 0, len(wave_16k))
    hi = np.clip(centre + half_window, 0, len(wave_16k))
    count = hi - lo
    mean = np.divide(power[hi] - power[lo], count, out=np.zeros(len(count)), where=count > 0)
    return np.sqrt(np.maximum(mean, 0.0))


def voice_activity(
    wave_16k: np.ndarray, times_s: np.ndarray, fps: float, hangover_s: float = SILENCE_HANGOVER_S
) -> np.ndarray:
    """Frames with speech energy: RMS over each frame's interval above a level set from the loud
    part of the file (so a quiet recording is judged against itself), widened by ``hangover_s`` on
    each side."""
    rms = frame_rms(wave_16k, times_s, int(SAMPLE_RATE / fps / 2) + 1)
    loud = np.percentile(rms, 95) if len(rms) else 0.0
    active = rms > max(0.1 * loud, 10 ** (-50 / 20))
    hang = max(int(hangover_s * fps), 1)
    if active.any():
        idx = np.flatnonzero(active)
        near = np.zeros_like(active)
        for k in range(-hang, hang + 1):
            near[np.clip(idx + k, 0, len(active) - 1)] = True
        active = near
    return active


def speech_found(wave_16k: np.ndarray) -> bool | None:
    """Whether a speech detector (Silero VAD, bundled with faster-whisper) hears speech in the audio;
    None where faster-whisper is not installed. Unlike :func:`voice_activity` it tells speech from
    other loud sound (noise, music)."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:
        return None
    return bool(get_speech_timestamps(np.asarray(wave_16k, np.float32), VadOptions()))
