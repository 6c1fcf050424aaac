"""Speech in, emotional rig curves out: inference with a trained run's ``model/`` checkpoint.

Emotion control (one of): a label with a user intensity, a frame-wise intensity curve, a blend of
labels, a reference image or a free-text description. The model's own frame-wise intensity (stage
3 predictor, from audio + transcript) is kept and scaled by the user's intensity: 0.5 = as
predicted, 0 = no emotion, 1 = twice the predicted strength (an extension; the official demos have
no intensity control, spec gap G16).

Long audio is processed in windows (60 s, 4 s overlap, linear cross-fade), each with the words that
fall inside it, so memory is bounded by the window, not the file. In silence (energy-based voice
activity) the articulation channels (jaw and mouth, not smiles) ease to a rest pose, so the mouth
rests: the training faces' median pose while nobody spoke (stored in the checkpoint at stage 2),
or, for a checkpoint without one, the model's own output for digital silence.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path
from medtalk_data.io.wav import read_wav_span, wav_format
from medtalk_data.resample import interpolate_rows

from .backbones import build_backbones
from .checkpoint import load_meta, load_model_weights
from .features import SAMPLE_RATE, align_to_frames, speech_found, voice_activity
from .labels import coverage_of, untrained_warning
from .model import MEDTalk, ModelDims
from .rig import RigSpec

log = logging.getLogger(__name__)

WINDOW_S = 60.0
FEATURE_CACHE = 32  # windows whose backbone features an Animator keeps
OVERLAP_S = 4.0


@dataclass
class EmotionControl:
    """What drives the emotion code; exactly one of label/blend/image/text (label defaults to neutral)."""

    label: str | None = None
    intensity: float = 0.5
    intensity_curve: np.ndarray | None = None  # (K, 2): time_s, multiplier in 0..1
    blend: dict[str, float] | None = None
    image: Path | np.ndarray | None = None
    text: str | None = None
    image_features: np.ndarray | None = None  # a reference image already through the image encoder

    @property
    def by_reference(self) -> bool:
        """Driven by a reference image or a description (stage 4), not by labels (stage 3)."""
        return self.image is not None or self.image_features is not None or bool(self.text)


@dataclass
class Animation:
    values: np.ndarray  # (T, C) at fps
    names: list[str]
    fps: float
    words: list[dict[str, Any]] = field(default_factory=list)
    transcript: str = ""
    speech: np.ndarray | None = None  # (T,) bool voice activity
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # one line each: what the user should know about the result

    def _positions(self, count: int, fps: float, audio_offset_s: float) -> np.ndarray:
        """Where a clip's own ``count`` frames at ``fps`` fall in this animation (fractional frame indices, held
        at its ends), the clip's audio starting ``audio_offset_s`` after its first frame."""
        return np.clip((np.arange(count) / fps - audio_offset_s) * self.fps, 0, len(self.values) - 1)

    def on_frames(self, count: int, fps: float, audio_offset_s: float = 0.0) -> np.ndarray:
        """The curves on a clip's own frames (linear): how evaluate and calibration compare an animation with
        the real face."""
        at = np.arange(len(self.values), dtype=np.float64)
        return interpolate_rows(at, self.values, self._positions(count, fps, audio_offset_s))

    def speech_on_frames(self, count: int, fps: float, audio_offset_s: float = 0.0) -> np.ndarray:
        """The voice-activity mask on a clip's own frames (nearest animation frame)."""
        assert self.speech is not None
        return self.speech[np.round(self._positions(count, fps, audio_offset_s)).astype(int)]


def decode_audio(path: Path, workdir: Path) -> Path:
    """Any audio PyAV reads → 16 kHz mono 16-bit WAV in ``workdir`` (one-line errors for bad input)."""
    from medtalk_data.audio.stage import extract_audio
    from medtalk_data.errors import ClipError

    path = Path(path)
    if not path.is_file():
        raise MedtalkError(f"{display_path(path)}: no such audio file")
    out = workdir / "audio16k.wav"
    try:
        extract_audio(path, out, video_start_s=0.0)
    except ClipError as err:
        raise MedtalkError(f"{display_path(path)}: {err}") from err
    except Exception as err:  # PyAV raises many types for unreadable input
        raise MedtalkError(f"{display_path(path)}: cannot decode audio ({type(err).__name__}: {err})") from err
    if wav_format(out)[3] < SAMPLE_RATE // 10:  # the file extract_audio just wrote: (rate, channels, width, frames)
        raise MedtalkError(f"{display_path(path)}: audio is empty or shorter than 0.1 s")
    return out


def savgol(values: np.ndarray, fps: float, window_s: float = 5 / 60) -> np.ndarray:
    """Savitzky–Golay smoothing with the window given in seconds (official: 5 taps at 60 fps)."""
    from scipy.signal import savgol_filter

    taps = max(round(window_s * fps) | 1, 3)
    if len(values) < taps:
        return values
    return savgol_filter(values, taps, min(2, taps - 2), axis=0, mode="nearest").astype(np.float32)


def model_folder(checkpoint: Path) -> Path:
    """The ``model/`` folder of a run folder, or the checkpoint folder itself."""
    checkpoint = Path(checkpoint)
    return checkpoint / "model" if (checkpoint / "model" / "meta.json").exists() else checkpoint


def check_control(control: EmotionControl, emotions: list[str], stages_done: list[str]) -> None:
    """Refuse an emotion request this model cannot serve (one line naming the fix)."""
    if not 0.0 <= control.intensity <= 1.0:
        raise MedtalkError(f"--intensity {control.intensity}: use a value from 0 (none) to 1 (strongest)")
    labels = [control.label] if control.label else []
    labels += list(control.blend or {})
    bad = [e for e in labels if e not in emotions]
    if bad:
        raise MedtalkError(f"unknown emotion {bad[0]!r}; this model knows: {', '.join(emotions)}")
    if control.blend is not None:
        weights = np.array(list(control.blend.values()), np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise MedtalkError("--blend weights must be >= 0 with a positive sum, e.g. happy:0.7,surprise:0.3")
    if isinstance(control.image, Path) and not control.image.is_file():
        raise MedtalkError(f"{display_path(control.image)}: no such reference image")
    need = "emotion_control" if control.by_reference else "intensity"
    if need not in stages_done:
        raise MedtalkError(
            f"this checkpoint has no {need} stage (trained: {', '.join(stages_done)}); train it with "
            f"`medtalk-models train --stage {need}`"
        )


def check_audio(path: Path) -> None:
    """A readable file with an audio stream, checked from its header (no decoding)."""
    from medtalk_data.errors import ClipError
    from medtalk_data.io.media import probe

    path = Path(path)
    if not path.is_file():
        raise MedtalkError(f"{display_path(path)}: no such audio file")
    try:
        info = probe(path)
    except ClipError as err:
        raise MedtalkError(f"{display_path(path)}: {err}") from err
    if not info.has_audio:
        raise MedtalkError(
            f"{display_path(path)}: no audio stream; give a speech recording (wav, mp3, m4a, a video with sound)"
        )


def _animatable_stages(folder: Path, meta: dict[str, Any]) -> list[str]:
    stages = list(meta.get("stages_done") or [])
    if "audio_content" not in stages:
        raise MedtalkError(
            f"{display_path(folder)}: trained stages {stages or 'none'}; animate needs at least "
            f"disentangle + audio_content (and intensity for emotion labels)"
        )
    return stages


def check_request(checkpoint: Path, audio: Path, control: EmotionControl) -> dict[str, Any]:
    """Everything about an animate request that can be checked without loading the model (which takes
    seconds): the checkpoint's metadata and stages, the emotion request, the audio file. Returns the meta."""
    folder = model_folder(checkpoint)
    meta = load_meta(folder)
    stages = _animatable_stages(folder, meta)
    check_control(control, list(meta["emotions"]), stages)
    check_audio(audio)
    return meta


class Animator:
    """A trained model with its backbones, ready to animate any number of audio files."""

    def __init__(self, checkpoint: Path, device: str = "cpu") -> None:
        checkpoint = model_folder(checkpoint)
        self.checkpoint = checkpoint
        self.meta = load_meta(checkpoint)
        self.cfg = self.meta["config"]
        self.rig = RigSpec.from_dict(self.meta["rig"])
        self.stages_done = _animatable_stages(checkpoint, self.meta)
        self.device = torch.device(device)
        self.model = MEDTalk(ModelDims(**self.meta["dims"]))
        load_model_weights(checkpoint, self.model, map_location=str(self.device))
        self.model.to(self.device).eval()
        self.emotions: list[str] = list(self.meta["emotions"])
        self.backbones = build_backbones(self.cfg, "cpu", needs={"audio", "text"})
        dims = self.meta["dims"]
        found = {
            "audio.content": (self.backbones.audio["content"].dim, dims["content_feat_dim"]),
            "audio.emotion": (self.backbones.audio["emotion"].dim, dims["emotion_feat_dim"]),
        }
        for part, (have, need) in found.items():
            if have != need:
                raise MedtalkError(
                    f"{display_path(checkpoint)}: the model reads {need}-d {part} features, the configured backbone "
                    f"gives {have}-d; set {part} in the checkpoint's config (meta.json) to the backbone it was "
                    f"trained with"
                )
        self._words_stage: Any = None
        self._silence: torch.Tensor | None = None
        self._feature_cache: dict[tuple[str, bytes], np.ndarray] = {}
        # train.output_offset: each channel's mean error on the training speech, added back (see calibrate.py)
        offset = self.meta.get("output_offset")
        self.output_offset = np.asarray(offset if offset else np.zeros(self.rig.dim), np.float32)

    def _silence_features(self) -> torch.Tensor:
        """The content backbone's features of digital silence (1, 1, D): the model's resting input."""
        if self._silence is None:
            raw = self.backbones.audio["content"].extract(np.zeros(SAMPLE_RATE, np.float32))
            self._silence = torch.tensor(raw.mean(0)[None, None], dtype=torch.float32, device=self.device)
        return self._silence

    def close(self) -> None:
        self.backbones.close()

    # -- controls -----------------------------------------------------------------------------
    def _check_control(self, control: EmotionControl) -> None:
        check_control(control, self.emotions, self.stages_done)

    def _emotion_vector(self, control: EmotionControl) -> tuple[str, torch.Tensor]:
        """The static emotion direction (1, latent) before rescaling, and how it was chosen."""
        m = self.model
        if control.image_features is not None:
            feat = np.asarray(control.image_features, np.float32)
            return "image", m.image_map(torch.tensor(feat[None], dtype=torch.float32, device=self.device))
        if control.image is not None:
            from .encoders import build_image_encoder

            with build_image_encoder({"kind": self.cfg["image"]["kind"], "path": self.cfg["image"]["path"]}) as enc:
                feat = enc.encode(control.image)
            return "image", m.image_map(torch.tensor(feat[None], dtype=torch.float32, device=self.device))
        if control.text:
            feat = self.backbones.text.sentence(control.text)
            return "text", m.text_map(torch.tensor(feat[None], dtype=torch.float32, device=self.device))
        if control.blend:
            w = torch.zeros(1, len(self.emotions), device=self.device)
            for name, value in control.blend.items():
                w[0, self.emotions.index(name)] = float(value)
            w = w / w.sum()
            table = m.emotion_embedding(torch.arange(len(self.emotions), device=self.device))
            return "blend", w @ table
        label = control.label or "neutral"
        ids = torch.tensor([self.emotions.index(label)], device=self.device)
        return "label", m.emotion_embedding(ids)

    def _multiplier(self, control: EmotionControl, times_s: np.ndarray) -> np.ndarray:
        if control.intensity_curve is not None:
            curve = np.asarray(control.intensity_curve, np.float64)
            if (curve[:, 1] < 0).any() or (curve[:, 1] > 1).any():
                raise MedtalkError("intensity curve values must lie in 0..1")
            return 2.0 * np.interp(times_s, curve[:, 0], curve[:, 1])
        return np.full(len(times_s), 2.0 * control.intensity)

    # -- transcript ---------------------------------------------------------------------------
    def _words(
        self, wav: Path, duration: float, transcript: str | None, workdir: Path
    ) -> tuple[str, list[dict[str, Any]]]:
        """The transcript the intensity predictor reads, with word times where they are needed.

        A given transcript is spread evenly over the audio; otherwise Whisper's own word timestamps
        (no forced alignment: only which words fall in which window matters)."""
        if self.cfg["text"]["kind"] == "none":
            return transcript or "", []
        if transcript:
            # which words fall in which window: spread evenly over the audio (an alignment of minutes of
            # speech would cost more than the animation, and a few words at a window's edge do not matter)
            tokens = transcript.split()
            step = duration / max(len(tokens), 1)
            return transcript, [
                {"text": t, "start_s": i * step, "end_s": (i + 1) * step, "aligned": False}
                for i, t in enumerate(tokens)
            ]
        from medtalk_data.settings import load_settings
        from medtalk_data.words.stage import WordsStage

        if self._words_stage is None:  # the ASR model stays loaded across calls
            self._words_stage = WordsStage(load_settings(None).words)
        from medtalk_data.words.chunks import iter_wav_chunks

        words: list[dict[str, Any]] = []
        language = self._words_stage.settings.language
        try:
            for start, chunk in iter_wav_chunks(wav, WINDOW_S):
                heard = self._words_stage.asr.transcribe(chunk, language)
                segments, language = heard.segments, heard.language
                offset = start / SAMPLE_RATE
                words += [w.shifted(offset).to_dict() for seg in segments for w in seg.words]
        except Exception as err:
            why = f"{type(err).__name__}: {err}"
            raise MedtalkError(f"speech recognition failed ({why}); pass --transcript TEXT") from err
        return " ".join(w["text"] for w in words).strip(), words

    # -- the run ------------------------------------------------------------------------------
    @torch.no_grad()
    def animate(
        self,
        audio: Path,
        control: EmotionControl | None = None,
        *,
        transcript: str | None = None,
        smooth: bool = True,
        rest_in_silence: bool = True,
        clip_to_range: bool = True,
    ) -> Animation:
        control = control or EmotionControl()
        self._check_control(control)
        fps = self.rig.fps
        with tempfile.TemporaryDirectory(prefix="medtalk_animate_") as tmp:
            wav = decode_audio(audio, Path(tmp))
            duration = wav_format(wav)[3] / SAMPLE_RATE
            text, words = self._words(wav, duration, transcript, Path(tmp))
            n = max(round(duration * fps), 1)
            times = np.arange(n) / fps
            values = np.zeros((n, self.rig.dim), np.float32)
            weight = np.zeros(n, np.float32)
            speech = np.zeros(n, bool)
            how, direction = self._emotion_vector(control)
            multiplier = self._multiplier(control, times)
            heard: bool | None = False  # speech detector over the windows; None: no detector installed
            start = 0.0
            while True:
                end = min(start + WINDOW_S, duration)
                a, b = round(start * fps), min(round(end * fps), n)
                if b > a:
                    wave_16k = read_wav_span(wav, start, end)
                    if heard is False:
                        heard = speech_found(wave_16k)
                    out, active = self._window(wave_16k, start, end, times[a:b], text, words, direction,
                                               multiplier[a:b], how, rest_in_silence)  # fmt: skip
                    ramp = np.ones(b - a, np.float32)
                    fade = int(OVERLAP_S * fps)
                    if start > 0:
                        ramp[:fade] = np.linspace(0, 1, min(fade, b - a), dtype=np.float32)[: b - a][:fade]
                    if end < duration:
                        ramp[-fade:] = np.minimum(ramp[-fade:], np.linspace(1, 0, min(fade, b - a), dtype=np.float32))
                    values[a:b] += out * ramp[:, None]
                    weight[a:b] += ramp
                    speech[a:b] |= active
                if end >= duration:
                    break
                start = end - OVERLAP_S
            values /= np.maximum(weight, 1e-6)[:, None]
        if smooth:
            values = savgol(values, fps)
        if clip_to_range and self.rig.value_range is not None:
            values = np.clip(values, *self.rig.value_range)
        info = {"emotion_source": how, "duration_s": duration, "frames": n, "stages": self.stages_done}
        warnings = self._warnings(audio, control, heard, text, transcript)
        return Animation(values, list(self.rig.channel_names), fps, words, text, speech, info, warnings)

    def _warnings(
        self, audio: Path, control: EmotionControl, heard: bool | None, text: str, transcript: str | None
    ) -> list[str]:
        """What the user should know about this animation: no speech in the audio, a description the
        text encoder cannot read."""
        warnings = []
        where = display_path(audio)
        coverage = coverage_of(self.meta)
        if coverage is not None and not control.by_reference:
            asked = [control.label or "neutral"] if not control.blend else list(control.blend)
            warnings += [untrained_warning(label) for label in asked if label in coverage.untrained()]
        no_words = not transcript and not text.strip() and self.cfg["text"]["kind"] != "none"
        if heard is False or (heard is None and no_words):
            detector = "the speech detector" if heard is False else "speech recognition"
            warnings.append(
                f"{where}: {detector} found no speech (silence, noise or music?): the mouth follows the sound's "
                "loudness, not words; give a speech recording"
            )
        elif no_words:
            warnings.append(f"{where}: speech recognition found no words; pass --transcript TEXT if it is speech")
        if control.text:
            encoder = self.backbones.text
            foreign = encoder.unreadable_scripts(control.text)
            if foreign:
                warnings.append(
                    f"--text is written in {' and '.join(s.title() for s in foreign)} script and "
                    f"{encoder.language_note or 'the text encoder was not trained on it'}, so the emotion read from "
                    "it is unreliable; describe the expression in English, or configure a text encoder for that "
                    "language (text.kind: hf, text.path: a local multilingual model) and retrain"
                )
        return warnings

    def _features(self, part: str, extractor: Any, wave_16k: np.ndarray) -> np.ndarray:
        """Backbone features of a window; the last few are kept, so animating one recording with several
        emotions (evaluate's recognisability) runs the backbone once."""
        key = (part, hashlib.sha1(wave_16k.tobytes()).digest())
        if key not in self._feature_cache:
            if len(self._feature_cache) >= FEATURE_CACHE:
                self._feature_cache.pop(next(iter(self._feature_cache)))
            self._feature_cache[key] = extractor.extract(wave_16k)
        return self._feature_cache[key]

    def _predictor_heard_audio(self) -> bool:
        """False when stage 3 trained on video-only clips only: its audio + text predictor never learned."""
        return bool(self.meta.get("intensity_predictor", {}).get("trained_from_audio", True))

    def _window(self, wave_16k, start, end, times, text, words, direction, multiplier, how, rest_in_silence):
        m, fps = self.model, self.rig.fps
        local_t = times - start
        feats: dict[str, torch.Tensor] = {}
        for part, extractor in self.backbones.audio.items():
            shared = [p for p, e in self.backbones.audio.items() if e is extractor and p in feats]
            if shared:  # one backbone for content and emotion: extract once
                feats[part] = feats[shared[0]]
                continue
            raw = self._features(part, extractor, wave_16k)
            feats[part] = torch.tensor(align_to_frames(raw, extractor.rate_hz, local_t, fps)[None], device=self.device)
        z_c = m.audio_content_map(feats["content"])
        if "intensity" in self.stages_done and self._predictor_heard_audio():
            local_words = [w["text"] for w in words if w["end_s"] > start and w["start_s"] < end]
            window_text = " ".join(local_words) if words else text
            tokens = torch.tensor(self.backbones.text.tokens(window_text)[None], device=self.device)
            inten = m.intensity(feats["emotion"], tokens)
        else:  # no trained intensity predictor: a constant norm (the training clips' mean Int(x) where known)
            level = float(self.meta.get("intensity_predictor", {}).get("mean_true_intensity", 1.0))
            inten = torch.full((1, len(times), 1), level, device=self.device)
        inten = inten * torch.tensor(multiplier, dtype=torch.float32, device=self.device)[None, :, None]
        from .model import rescale

        scaled = rescale(direction, inten)
        z_e = m.control_emotion_map(scaled) if how in ("image", "text") else m.semantic_emotion_map(scaled)
        out = m.with_lips(m.decode(z_e, z_c), feats["content"])[0].float().cpu().numpy() + self.output_offset
        active = voice_activity(wave_16k, local_t, fps)
        if rest_in_silence and (~active).any():
            if self.meta.get("rest_pose"):  # the training faces' median pose while not speaking
                rest = np.broadcast_to(np.asarray(self.meta["rest_pose"], np.float32), out.shape)
            else:  # the model's own output for digital silence
                silent = self._silence_features().expand(1, len(times), -1)
                rest = m.with_lips(m.decode(z_e, m.audio_content_map(silent)), silent)[0].float().cpu().numpy()
                rest = rest + self.output_offset
            articulation = [i for i in self.rig.indices("mouth") if i not in set(self.rig.indices("emotion"))]
            gate = savgol(active.astype(np.float32)[:, None], fps, 0.2)[:, 0].clip(0, 1)
            out[:, articulation] = gate[:, None] * out[:, articulation] + (1 - gate[:, None]) * rest[:, articulation]
        return out, active
