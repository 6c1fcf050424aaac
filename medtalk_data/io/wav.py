"""Reading the 16-bit PCM WAV files medtalk writes (the audio stage's 16 kHz mono ``audio.wav``).

One module for every reader: the whole file, a span of it, piece by piece, its format, and its RMS
envelope, each reading only what it needs; and :func:`write_wav` for samples made in memory (tests,
benchmarks). The standard library's ``wave`` is enough for these files (16-bit PCM; media files are
decoded by PyAV through :func:`medtalk_data.audio.stage.extract_audio`, which streams its own).
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

PCM16_SCALE = 32768.0


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    """Float samples in [-1, 1] ((n,) mono or (n, channels)) → a 16-bit PCM WAV, written atomically."""
    from .files import atomic_path

    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_path(Path(path)) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return Path(path)


def wav_format(path: Path) -> tuple[int, int, int, int] | None:
    """(rate, channels, bytes per sample, frames) of a PCM WAV, or None if it is not one ``wave`` reads."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
    except (wave.Error, EOFError):
        return None


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit mono WAV written by :func:`extract_audio` as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return data.astype(np.float32) / PCM16_SCALE, rate


@contextmanager
def wav_reader(path: Path) -> Iterator[tuple[int, Callable[[int], np.ndarray]]]:
    """A 16-bit mono WAV opened to be read in pieces: (rate, ``read(n)`` → its next ≤ n samples, float32)."""
    with wave.open(str(path), "rb") as wav:
        yield (
            wav.getframerate(),
            lambda n: np.frombuffer(wav.readframes(n), dtype=np.int16).astype(np.float32) / PCM16_SCALE,
        )


def read_wav_span(path: Path, start_s: float, end_s: float) -> np.ndarray:
    """Samples [start_s, end_s) of a 16-bit mono WAV as float32, reading only that span."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        first = min(max(0, round(start_s * rate)), wav.getnframes())
        wav.setpos(first)
        raw = wav.readframes(max(0, round(end_s * rate) - first))
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / PCM16_SCALE


def energy_envelope(path: Path, frame_s: float = 0.01) -> np.ndarray:
    """RMS of each ``frame_s`` frame of a 16-bit mono WAV (float32, read a second at a time)."""
    out = []
    with wav_reader(path) as (rate, read):
        frame = max(1, round(frame_s * rate))
        block = frame * 100
        rest = np.zeros(0, dtype=np.float32)
        while len(samples := read(block)):
            x = np.concatenate([rest, samples])
            usable = len(x) // frame * frame
            out.append(np.sqrt((x[:usable].reshape(-1, frame) ** 2).mean(axis=1)))
            rest = x[usable:]
        if len(rest):
            out.append(np.sqrt(np.array([(rest**2).mean()], dtype=np.float32)))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)
