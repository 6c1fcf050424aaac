"""Frozen audio feature extractors: Whisper encoder (CTranslate2), wav2vec2-style transformers models, log-mel.

Every extractor takes float32 mono 16 kHz samples and returns ``(n, dim)`` float32 features with
``n = floor(seconds * rate_hz + 0.5)``; frame ``i`` is centred at ``(i + 0.5) / rate_hz`` seconds, so
features of different extractors (and the video frames) can be put on one time axis. Long audio is
processed in overlapping windows that are cross-faded over their overlap (no step at the seams), so
memory stays bounded for hours of audio.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.blas import OneBlasThread
from medtalk_data.io.files import display_path, sha256_cached

from ._common import (
    FEATURES_VERSION,
    MODELS_EXTRA,
    SAMPLE_RATE,
    SPEECH_EXTRA,
    Closeable,
    as_wave,
    brief,
    check_keys,
    hf_fingerprint,
    hf_model_dir,
    n_frames,
    padded_slice,
    quiet_transformers,
    require,
    safe_key,
    stitch,
    torch_device,
)

AUDIO_KINDS = ("whisper", "hf", "logmel")


class AudioFeatureExtractor(Closeable):
    """What the model and the feature cache rely on; see the module docstring for the time convention."""

    kind: str = ""
    rate_hz: float = 0.0
    dim: int = 0

    def cache_key(self) -> str:
        """Stable, filesystem-safe name; changes whenever the features for the same audio would change."""
        raise NotImplementedError

    def extract(self, wave: np.ndarray) -> np.ndarray:
        """``(n_frames(len(wave)), dim)`` float32 features of float32 mono 16 kHz samples."""
        raise NotImplementedError

    def n_frames(self, n_samples: int) -> int:
        """How many frames :meth:`extract` returns for ``n_samples`` samples."""
        return n_frames(n_samples, self.rate_hz)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cache_key()} {self.rate_hz:g} Hz × {self.dim}>"


# --------------------------------------------------------------------------------------------- whisper


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _whisper_model(model: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The CTranslate2 Whisper folder and its model.bin sha256, chosen as the words stage chooses
    (:func:`medtalk_data.words.asr.choose_model`) but with the pinned tiny.en (384-d features) as the default."""
    from medtalk_data.words.asr import choose_model

    choice = choose_model(model, default="tiny.en", option="audio encoder model")
    return choice.path, choice.pinned.sha256 if choice.pinned else sha256_cached(choice.path / "model.bin")


class WhisperExtractor(AudioFeatureExtractor):
    """Whisper's encoder via faster-whisper/CTranslate2 (no gradients): 50 Hz, 384-d for tiny, 512-d for base.

    Audio goes in 30 s windows (what Whisper was trained on; shorter audio is zero-padded like OpenAI's
    ``log_mel_spectrogram(padding=N_SAMPLES)``), consecutive windows overlap by 2 s and are cross-faded
    there (Whisper features depend on the position in the window; this leaves no step at the seams).
    The input is advanced by 10 ms so that encoder frame ``i`` (centred on mel frame ``2i``) lands at
    ``(i + 0.5) / 50`` s.
    """

    kind = "whisper"
    rate_hz = 50.0
    overlap_frames = 100  # consecutive 30 s windows share 2 s, cross-faded

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        compute_type: str | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        require("faster_whisper", "the whisper audio encoder", SPEECH_EXTRA)
        ctranslate2 = require("ctranslate2", "the whisper audio encoder", SPEECH_EXTRA)
        from faster_whisper import WhisperModel

        self.model_path, self.model_sha256 = _whisper_model(model)
        ct_device, index = _ct2_device(device, ctranslate2)
        self.device = ct_device if ct_device == "cpu" else f"{ct_device}:{index}"
        self.compute_type = compute_type or ("float32" if ct_device == "cpu" else "float16")
        threads = _cpu_count() if cpu_threads is None else int(cpu_threads)
        try:
            self._model = WhisperModel(
                str(self.model_path),
                device=ct_device,
                device_index=index,
                compute_type=self.compute_type,
                cpu_threads=min(threads, 16),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise MedtalkError(
                f"{display_path(self.model_path)}: CTranslate2 cannot load this Whisper model on {self.device} "
                f"with compute_type {self.compute_type} ({brief(err)}); "
                "use a complete model folder or another compute_type"
            ) from err
        self._ct2 = ctranslate2
        self._fe = OneBlasThread(self._model.feature_extractor)  # the same features on every engine
        self._window_samples = int(self._fe.n_samples)  # 30 s
        self._hop = int(self._fe.hop_length)  # 160 samples = 10 ms
        self._mel_frames = self._window_samples // self._hop  # 3000
        self.window_frames = self._mel_frames // 2  # 1500 encoder frames per window
        probe = self._encode(np.zeros((self._fe.mel_filters.shape[0], 4), dtype=np.float32))
        self.dim = int(probe.shape[-1])

    def cache_key(self) -> str:
        return safe_key("whisper", self.model_sha256[:12], self.compute_type, FEATURES_VERSION)

    def _encode(self, mel: np.ndarray) -> np.ndarray:
        storage = self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        out = self._model.model.encode(storage, to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]

    def extract(self, wave: np.ndarray) -> np.ndarray:
        wave = as_wave(wave)
        stride = 2 * self._hop  # samples per encoder frame

        def window(start: int, count: int) -> np.ndarray:
            first = self._hop + stride * start  # the 10 ms advance: encoder frame 0 ↔ sample 160
            chunk = padded_slice(wave, first, first + self._window_samples)  # zero-padded to 30 s
            return self._encode(self._fe(chunk, padding=0)[:, : self._mel_frames])

        n = self.n_frames(wave.shape[0])
        return stitch(n, self.dim, self.window_frames, self.overlap_frames, window)


def _ct2_device(device: str | None, ctranslate2: Any) -> tuple[str, int]:
    name = (device or "cpu").strip().lower()
    if name == "auto":
        name = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise MedtalkError(f"device {device!r} is not valid for the whisper encoder; use cpu, cuda, cuda:N or auto")
    if kind == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise MedtalkError(f"device {device!r} requested but CTranslate2 sees no CUDA GPU; use device: cpu")
    return kind, int(index or 0)


# -------------------------------------------------------------------------------- transformers (wav2vec2)


class HFAudioExtractor(AudioFeatureExtractor):
    """A wav2vec2 / HuBERT / WavLM / data2vec-audio model from a local transformers folder.

    The input is normalised per window like ``Wav2Vec2FeatureExtractor`` (zero mean, unit variance,
    unless the folder's preprocessor_config.json says ``do_normalize: false``), and padded in front by
    ``(receptive field - stride) / 2`` samples so that conv frame ``i`` is centred at ``(i + 0.5) / rate_hz``.
    """

    kind = "hf"
    overlap_s = 2.0  # consecutive windows share 2 s, cross-faded

    def __init__(
        self, path: str | os.PathLike[str], layer: str | int = "last", device: str = "cpu", chunk_s: float = 20.0
    ) -> None:
        torch = require("torch", "the hf audio encoder")
        require("transformers", "the hf audio encoder")
        from transformers import AutoConfig, AutoModel

        self.path = hf_model_dir(path, "hf audio encoder")
        self.device = torch_device(device)
        self._torch = torch
        try:
            with quiet_transformers():
                config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        except Exception as err:  # third-party folders fail in many ways; report one line
            raise MedtalkError(
                f"{display_path(self.path)}: transformers cannot read config.json ({brief(err)})"
            ) from err
        kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
        if not kernels or not strides or not hasattr(config, "hidden_size"):
            raise MedtalkError(
                f"{display_path(self.path)}: {getattr(config, 'model_type', '?')} is not a wav2vec2-style audio model "
                "(no conv_kernel/conv_stride in config.json); use a wav2vec2, HuBERT, WavLM or data2vec-audio folder"
            )
        self.stride = math.prod(int(s) for s in strides)
        self.receptive_field = 1 + sum((int(k) - 1) * math.prod(strides[:i]) for i, k in enumerate(kernels))
        self.rate_hz = SAMPLE_RATE / self.stride
        self.dim = int(config.hidden_size)
        self.num_layers = int(config.num_hidden_layers)
        self.layer = _check_layer(layer, self.num_layers, self.path)
        self.normalize, rate = _preprocessor(self.path)
        if rate != SAMPLE_RATE:
            raise MedtalkError(f"{display_path(self.path)}: model expects {rate} Hz audio; only 16 kHz models work")
        if chunk_s <= 2 * self.overlap_s:
            raise MedtalkError(f"hf audio encoder: chunk_s must be more than {2 * self.overlap_s:g} s, got {chunk_s}")
        self.chunk_s = float(chunk_s)
        try:
            with quiet_transformers():
                model = AutoModel.from_pretrained(self.path, local_files_only=True)
        except Exception as err:  # third-party folders fail in many ways; report one line
            raise MedtalkError(f"{display_path(self.path)}: transformers cannot load the model ({brief(err)})") from err
        self._model = model.eval().to(self.device)
        for p in self._model.parameters():
            p.requires_grad_(False)
        self._fingerprint = hf_fingerprint(self.path)

    def cache_key(self) -> str:
        layer = "last" if self.layer == "last" else f"L{self.layer}"
        return safe_key("hf", self._fingerprint, layer, f"c{self.chunk_s:g}", FEATURES_VERSION)

    def extract(self, wave: np.ndarray) -> np.ndarray:
        torch = self._torch
        wave = as_wave(wave)
        width = max(1, round(self.chunk_s * self.rate_hz))
        overlap = round(self.overlap_s * self.rate_hz)
        front = (self.receptive_field - self.stride) // 2

        def window(start: int, count: int) -> np.ndarray:
            lo = self.stride * start - front
            x = self._window_input(wave, lo, lo + self.stride * (count - 1) + self.receptive_field)
            result = self._model(
                torch.from_numpy(x)[None].to(self.device), output_hidden_states=self.layer != "last", return_dict=True
            )
            hidden = result.last_hidden_state if self.layer == "last" else result.hidden_states[self.layer]
            return hidden[0].float().cpu().numpy()

        with torch.inference_mode():
            return stitch(self.n_frames(wave.shape[0]), self.dim, width, overlap, window)

    def _window_input(self, wave: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Samples ``[lo, hi)`` normalised over their real (in-signal) part, zeros outside the signal."""
        out = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, 0), min(hi, wave.shape[0])
        if b > a:
            real = wave[a:b].astype(np.float64)
            if self.normalize:
                real = (real - real.mean()) / np.sqrt(real.var() + 1e-7)
            out[a - lo : b - lo] = real
        return out


def _check_layer(layer: str | int, num_layers: int, path: Path) -> str | int:
    if layer in (None, "last", "-1"):
        return "last"
    try:
        index = int(layer)
    except (TypeError, ValueError):
        raise MedtalkError(f"hf audio encoder: layer must be 'last' or an integer, got {layer!r}") from None
    if not -(num_layers + 1) <= index <= num_layers:
        raise MedtalkError(
            f"{display_path(path)}: layer {index} out of range; the model has hidden states 0..{num_layers} "
            "(0 = input of the first transformer layer)"
        )
    return index % (num_layers + 1)


def _preprocessor(path: Path) -> tuple[bool, int]:
    """(do_normalize, sampling_rate) from preprocessor_config.json; (True, 16000) without one."""
    file = path / "preprocessor_config.json"
    if not file.is_file():
        return True, SAMPLE_RATE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MedtalkError(f"{display_path(file)}: unreadable ({brief(err)}); fix or delete it") from err
    return bool(data.get("do_normalize", True)), int(data.get("sampling_rate", SAMPLE_RATE))


# ----------------------------------------------------------------------------------------------- log-mel


class LogMelExtractor(AudioFeatureExtractor):
    """Log-mel spectrogram (natural log of HTK-mel power + 1e-6) with torch: the input of a from-scratch network.

    Frame ``i`` is the ``win_ms`` Hann window centred at ``(i + 0.5) * hop``; computed in 60 s pieces,
    which give exactly the same frames as one pass (STFT frames are independent).
    """

    kind = "logmel"
    chunk_frames = 6000

    def __init__(
        self,
        n_mels: int = 80,
        hop_ms: float = 10.0,
        win_ms: float = 25.0,
        f_min: float = 0.0,
        f_max: float = 8000.0,
        device: str = "cpu",
    ) -> None:
        torch = require("torch", "the logmel audio features")
        self._torch = torch
        self.device = torch_device(device)
        self.hop = round(SAMPLE_RATE * hop_ms / 1000)
        self.win = round(SAMPLE_RATE * win_ms / 1000)
        if self.hop < 1 or self.win < self.hop:
            raise MedtalkError(f"logmel: need 0 < hop_ms <= win_ms, got hop_ms={hop_ms}, win_ms={win_ms}")
        if not 0 <= f_min < f_max <= SAMPLE_RATE / 2:
            raise MedtalkError(f"logmel: need 0 <= f_min < f_max <= 8000 Hz, got {f_min}..{f_max}")
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.n_mels = self.dim = int(n_mels)
        self.rate_hz = SAMPLE_RATE / self.hop
        self.f_min, self.f_max = float(f_min), float(f_max)
        fb, self.center_hz = mel_filterbank(self.n_mels, self.n_fft, self.f_min, self.f_max)
        empty = np.flatnonzero(fb.sum(axis=1) == 0)
        if empty.size:
            raise MedtalkError(
                f"logmel: {empty.size} of {n_mels} mel bands get no FFT bin (bands narrower than "
                f"{SAMPLE_RATE / self.n_fft:.1f} Hz); use fewer n_mels, a longer win_ms or a higher f_min"
            )
        self._fb = torch.from_numpy(fb).to(self.device)
        self._window = torch.hann_window(self.win, periodic=True, dtype=torch.float32).to(self.device)

    def cache_key(self) -> str:
        return safe_key(
            "logmel", self.n_mels, f"h{self.hop}", f"w{self.win}", f"f{self.f_min:g}-{self.f_max:g}", FEATURES_VERSION
        )

    def extract(self, wave: np.ndarray) -> np.ndarray:
        torch = self._torch
        wave = as_wave(wave)
        n = self.n_frames(wave.shape[0])
        out = np.empty((n, self.dim), dtype=np.float32)
        front = self.n_fft // 2 - self.hop // 2  # frame i covers [i*hop - front, i*hop - front + n_fft)
        with torch.inference_mode():
            for start in range(0, n, self.chunk_frames):
                count = min(self.chunk_frames, n - start)
                lo = self.hop * start - front
                x = torch.from_numpy(padded_slice(wave, lo, lo + self.hop * (count - 1) + self.n_fft)).to(self.device)
                spec = torch.stft(
                    x,
                    self.n_fft,
                    hop_length=self.hop,
                    win_length=self.win,
                    window=self._window,
                    center=False,
                    return_complex=True,
                )
                power = spec.real.square() + spec.imag.square()  # (freq, frames)
                mel = torch.log(self._fb @ power + 1e-6)
                out[start : start + count] = mel.T[:count].cpu().numpy()
        return out


def mel_filterbank(n_mels: int, n_fft: int, f_min: float, f_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangular HTK-mel filters ``(n_mels, n_fft // 2 + 1)`` (peak 1) and their centre frequencies in Hz."""

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(np.float64(f_min)), to_mel(np.float64(f_max)), n_mels + 2))
    bins = np.linspace(0.0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    fb = np.clip(np.minimum(rising, falling), 0.0, None)
    return fb.astype(np.float32), edges[1:-1].astype(np.float64)


# ----------------------------------------------------------------------------------------------- builder


def build_audio_extractor(cfg: Mapping[str, Any]) -> AudioFeatureExtractor:
    """An extractor from a config mapping (``kind`` plus that kind's settings; see the package docstring)."""
    cfg = dict(cfg or {})
    kind = cfg.get("kind")
    device = cfg.get("device") or "cpu"
    if kind == "whisper":
        check_keys(cfg, "audio", ("model", "path", "device", "compute_type", "cpu_threads"))
        if cfg.get("model") and cfg.get("path"):
            raise MedtalkError("audio encoder (whisper): give the model folder as 'model' or 'path', not both")
        return WhisperExtractor(
            cfg.get("model") or cfg.get("path"), device, cfg.get("compute_type"), cfg.get("cpu_threads")
        )
    if kind == "hf":
        check_keys(cfg, "audio", ("path", "layer", "device", "chunk_s"))
        return HFAudioExtractor(cfg.get("path"), cfg.get("layer", "last"), device, float(cfg.get("chunk_s") or 20.0))
    if kind == "logmel":
        check_keys(cfg, "audio", ("n_mels", "hop_ms", "win_ms", "f_min", "f_max", "device"))
        defaults = {"n_mels": 80, "hop_ms": 10.0, "win_ms": 25.0, "f_min": 0.0, "f_max": 8000.0}
        params = {k: cfg[k] if cfg.get(k) is not None else v for k, v in defaults.items()}
        return LogMelExtractor(int(params.pop("n_mels")), **{k: float(v) for k, v in params.items()}, device=device)
    raise MedtalkError(f"audio encoder kind {kind!r} is unknown; valid kinds: {', '.join(AUDIO_KINDS)}")


__all__ = [
    "AUDIO_KINDS",
    "MODELS_EXTRA",
    "AudioFeatureExtractor",
    "HFAudioExtractor",
    "LogMelExtractor",
    "WhisperExtractor",
    "build_audio_extractor",
    "mel_filterbank",
]
