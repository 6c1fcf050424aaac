"""Frozen encoders (medtalk_models.encoders): real Whisper tiny.en, MiniLM and FaceLandmarker; tiny random HF models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.errors import MedtalkError
from medtalk_data.io.wav import read_wav
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES
from medtalk_models.encoders import (
    AudioFeatureExtractor,
    ImageEncoder,
    TextEncoder,
    build_audio_extractor,
    build_image_encoder,
    build_text_encoder,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: every model here is local
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RATE = 16_000


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_import_is_light() -> None:
    code = (
        "import sys, medtalk_models.encoders; "
        "print(sorted(m for m in ('torch', 'transformers', 'faster_whisper', 'ctranslate2', 'mediapipe') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_kinds_and_settings() -> None:
    with pytest.raises(MedtalkError, match="valid kinds: whisper, hf, logmel"):
        build_audio_extractor({"kind": "mfcc"})
    with pytest.raises(MedtalkError, match="valid kinds: minilm, hf, clip, none"):
        build_text_encoder({"kind": "bert"})
    with pytest.raises(MedtalkError, match="valid kinds: blendshapes, clip"):
        build_image_encoder({"kind": "dino"})
    with pytest.raises(MedtalkError, match=r"unknown setting.*n_mel"):
        build_audio_extractor({"kind": "logmel", "n_mel": 40})


# ------------------------------------------------------------------------------------------------ whisper


@pytest.fixture(scope="module")
def whisper() -> AudioFeatureExtractor:
    return build_audio_extractor({"kind": "whisper", "model": None, "device": "cpu"})


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> np.ndarray:
    wave, rate = read_wav(shared_data / "audio" / "emotalk_ravdess_angry1.wav")
    assert rate == RATE
    return wave


def test_whisper_real_speech(whisper: AudioFeatureExtractor, speech: np.ndarray) -> None:
    assert (whisper.kind, whisper.rate_hz, whisper.dim) == ("whisper", 50.0, 384)
    key = whisper.cache_key()
    assert key.startswith("whisper-1a5afae06a4d") and all(c.isalnum() or c in "-_." for c in key)
    feats = whisper.extract(speech)
    assert feats.dtype == np.float32
    assert feats.shape == (round(speech.size / RATE * 50), 384)  # 3.69 s → 185 frames, not 1500
    assert np.isfinite(feats).all() and feats.std() > 0.1
    np.testing.assert_array_equal(feats, whisper.extract(speech))  # deterministic
    # speech and silence give different features
    silence = whisper.extract(np.zeros_like(speech))
    assert _cos(feats, silence).mean() < 0.9


def test_whisper_long_audio_in_windows(whisper: AudioFeatureExtractor, speech: np.ndarray) -> None:
    short = whisper.extract(speech)
    long = np.tile(speech, 11)  # 40.6 s: two 30 s windows, cross-faded
    feats = whisper.extract(long)
    assert feats.shape == (whisper.n_frames(long.size), 384)
    assert abs(feats.shape[0] - long.size / RATE * 50) <= 1
    assert np.isfinite(feats).all()
    # same audio at the start of a window: close to the short input's features (Whisper attends to
    # the whole window, and here the rest of it is more speech instead of silence)
    head = _cos(short[:-25], feats[: short.shape[0] - 25])
    assert head.mean() > 0.85, head.mean()
    # no step at the window seam (the second window starts at 28 s; the fade spans 28..30 s)
    steps = np.linalg.norm(np.diff(feats, axis=0), axis=1)
    assert steps[1380:1520].max() < 4 * np.median(steps)


def test_whisper_tiny_inputs(whisper: AudioFeatureExtractor) -> None:
    assert whisper.extract(np.zeros(0, np.float32)).shape == (0, 384)
    assert whisper.extract(np.zeros(1600, np.float32)).shape == (5, 384)  # 0.1 s
    with pytest.raises(MedtalkError, match="mono"):
        whisper.extract(np.zeros((2, 1600), np.float32))
    with pytest.raises(MedtalkError, match="float"):
        whisper.extract(np.zeros(1600, np.int16))


def test_whisper_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match="no such folder"):
        build_audio_extractor({"kind": "whisper", "model": str(tmp_path / "nope")})
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(MedtalkError, match=r"missing model\.bin, tokenizer\.json"):
        build_audio_extractor({"kind": "whisper", "model": str(tmp_path / "half")})


# ---------------------------------------------------------------------------------------- hf (wav2vec2)


def test_hf_audio_plumbing(tiny_wav2vec2: Path) -> None:
    ex = build_audio_extractor({"kind": "hf", "path": str(tiny_wav2vec2), "layer": "last", "device": "cpu"})
    assert (ex.kind, ex.rate_hz, ex.dim) == ("hf", 50.0, 32)
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(2.5 * RATE))).astype(np.float32)
    last = ex.extract(wave)
    assert last.shape == (125, 32) and last.dtype == np.float32 and np.isfinite(last).all()
    np.testing.assert_array_equal(last, ex.extract(wave))
    # a louder copy gives the same features: input is normalised to zero mean, unit variance
    np.testing.assert_allclose(ex.extract(3 * wave), last, atol=1e-4)
    first = build_audio_extractor({"kind": "hf", "path": str(tiny_wav2vec2), "layer": 1})
    assert first.cache_key() != ex.cache_key()
    assert not np.allclose(first.extract(wave), last, atol=1e-3)
    # longer than one 20 s window: stitched, still 50 Hz
    long = np.tile(wave, 10)
    assert ex.extract(long).shape == (1250, 32)
    with pytest.raises(MedtalkError, match="layer 5 out of range"):
        build_audio_extractor({"kind": "hf", "path": str(tiny_wav2vec2), "layer": 5})


def test_hf_audio_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match="does not exist"):
        build_audio_extractor({"kind": "hf", "path": str(tmp_path / "missing")})
    with pytest.raises(MedtalkError, match=r"no config\.json"):
        build_audio_extractor({"kind": "hf", "path": str(tmp_path)})
    with pytest.raises(MedtalkError, match="set 'path'"):
        build_audio_extractor({"kind": "hf"})


# ------------------------------------------------------------------------------------------------ logmel


def test_logmel_sine_and_silence() -> None:
    ex = build_audio_extractor({"kind": "logmel", "n_mels": 80, "hop_ms": 10.0})
    assert (ex.kind, ex.rate_hz, ex.dim) == ("logmel", 100.0, 80)
    t = np.arange(int(1.234 * RATE)) / RATE
    sine = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    feats = ex.extract(sine)
    assert feats.shape == (123, 80) and feats.dtype == np.float32
    expected = int(np.argmin(np.abs(ex.center_hz - 440.0)))
    assert abs(int(np.argmax(feats[5:-5].mean(axis=0))) - expected) <= 1
    silence = ex.extract(np.zeros(RATE, np.float32))
    assert silence.shape == (100, 80) and np.isfinite(silence).all()
    # frame i is centred at (i + 0.5) / 100 s: a click at 0.505 s lights frame 50
    click = np.zeros(RATE, np.float32)
    click[int(0.505 * RATE)] = 1.0
    assert int(np.argmax(ex.extract(click).sum(axis=1))) == 50
    # long audio goes in pieces with the same result as one pass
    noise = (0.1 * np.random.default_rng(1).standard_normal(70 * RATE)).astype(np.float32)
    whole = ex.extract(noise)
    assert whole.shape == (7000, 80)
    np.testing.assert_allclose(whole[5990:6010], ex.extract(noise[59 * RATE : 61 * RATE])[90:110], atol=1e-4)


# -------------------------------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return build_text_encoder({"kind": "minilm", "path": None})


def test_minilm_tokens_and_sentences(minilm: TextEncoder) -> None:
    assert (minilm.kind, minilm.dim) == ("minilm", 384)
    tokens = minilm.tokens("an angry face")
    assert tokens.dtype == np.float32 and tokens.ndim == 2 and tokens.shape[1] == 384 and tokens.shape[0] >= 3
    assert minilm.tokens("").shape == (2, 384)  # [CLS] [SEP]
    assert minilm.tokens("word " * 1000).shape == (512, 384)
    # no label word ("angry", "happy") and none of "an angry face"'s words but "face": the meaning does the work
    furious, angry, happy = (
        minilm.sentence(s) for s in ("a face red with rage, shouting", "an angry face", "a happy smiling face")
    )
    assert furious.shape == (384,) and abs(float(np.linalg.norm(furious)) - 1.0) < 1e-5
    assert float(furious @ angry) > float(furious @ happy) + 0.2
    np.testing.assert_array_equal(minilm.sentence("an angry face"), angry)


def test_minilm_matches_sentence_transformers(minilm: TextEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm.path), device="cpu")
    for text in ("a furious angry face", "", "very " * 300 + "sad"):
        reference = model.encode([text], normalize_embeddings=True)[0]
        np.testing.assert_allclose(minilm.sentence(text), reference, atol=1e-5)


def test_text_none_and_errors(tmp_path: Path) -> None:
    none = build_text_encoder({"kind": "none"})
    assert none.dim == 1 and none.cache_key() == "none"
    assert none.tokens("anything").shape == (1, 1) and not none.tokens("x").any()
    assert none.sentence("anything").shape == (1,)
    with pytest.raises(MedtalkError, match="does not exist"):
        build_text_encoder({"kind": "hf", "path": str(tmp_path / "chinese-roberta-wwm-ext")})
    with pytest.raises(MedtalkError, match="set 'path'"):
        build_text_encoder({"kind": "clip"})


# -------------------------------------------------------------------------------------------------- clip


def test_clip_text_plumbing(tiny_clip: Path) -> None:
    enc = build_text_encoder({"kind": "clip", "path": str(tiny_clip), "device": "cpu"})
    assert (enc.kind, enc.dim, enc.token_dim) == ("clip", 16, 32)
    assert enc.tokens("an angry face").shape == (13, 32)  # bos + 11 letters (no merges) + eos
    assert enc.tokens("x" * 500).shape == (77, 32)  # truncated, not an error
    emb = enc.sentence("an angry face")
    assert emb.shape == (16,) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    assert not np.allclose(emb, enc.sentence("a happy face"))


def test_clip_image_plumbing(tiny_clip: Path, shared_data: Path) -> None:
    enc = build_image_encoder({"kind": "clip", "path": str(tiny_clip)})
    assert (enc.kind, enc.dim) == ("clip", 16)
    happy = enc.encode(shared_data / "image" / "sadtalker_happy.png")
    assert happy.shape == (16,) and happy.dtype == np.float32 and abs(float(np.linalg.norm(happy)) - 1.0) < 1e-5
    np.testing.assert_array_equal(enc.encode(str(shared_data / "image" / "sadtalker_happy.png")), happy)
    assert not np.allclose(enc.encode(shared_data / "image" / "sadtalker_sad.png"), happy)
    grey = enc.encode(np.full((40, 60, 3), 128, np.uint8))
    assert np.isfinite(grey).all()


# ------------------------------------------------------------------------------------------- blendshapes


@pytest.fixture(scope="module")
def blendshapes() -> Iterator[ImageEncoder]:
    enc = build_image_encoder({"kind": "blendshapes"})
    yield enc
    enc.close()


def test_blendshapes_smile(blendshapes: ImageEncoder, shared_data: Path) -> None:
    assert (blendshapes.kind, blendshapes.dim) == ("blendshapes", 52)
    happy = blendshapes.encode(shared_data / "image" / "sadtalker_happy.png")
    sad = blendshapes.encode(shared_data / "image" / "sadtalker_sad.png")
    assert happy.shape == (52,) and happy.dtype == np.float32
    smile = [MEDIAPIPE_BLENDSHAPES.index("mouthSmileLeft"), MEDIAPIPE_BLENDSHAPES.index("mouthSmileRight")]
    # measured: left 0.39, right 0.29 on the happy photo; ~0 on the sad one
    assert happy[smile].mean() > 0.3 and (happy[smile] > 0.2).all()
    assert (happy[smile] > sad[smile] + 0.2).all()
    np.testing.assert_array_equal(blendshapes.encode(shared_data / "image" / "sadtalker_happy.png"), happy)


def test_blendshapes_needs_one_face(blendshapes: ImageEncoder, shared_data: Path) -> None:
    with pytest.raises(MedtalkError, match="<array>: no face found; use a frontal photo with one visible face"):
        blendshapes.encode(np.full((256, 256, 3), 128, np.uint8))
    from medtalk_models.encoders import read_image

    face = read_image(shared_data / "image" / "sadtalker_happy.png")
    with pytest.raises(MedtalkError, match="2 faces found"):
        blendshapes.encode(np.concatenate([face, face], axis=1))
    with pytest.raises(MedtalkError, match="H×W×3 uint8"):
        blendshapes.encode(face.astype(np.float32))
    with pytest.raises(MedtalkError, match="cannot read it as an image"):
        blendshapes.encode(shared_data / "image" / "ravdess_01-01-03-02-01-01-24.txt")
