"""Words stage on real speech: WER of the offline ASR, boundaries vs forced alignment, hard audio."""

from __future__ import annotations

import json
import math
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.audio import extract_audio, read_wav
from medtalk_data.words.align import fill_unaligned
from medtalk_data.words.chunks import chunk_bounds
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import WordsStage
from medtalk_data.words.types import Word
from medtalk_data.words.whisperx_backend import convert_result

pytest.importorskip("faster_whisper")
pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.realdata

# RAVDESS statements in ../shared/data (SOURCES.md): which one each file says.
KNOWN = {
    "emotalk_ravdess_angry1": "Kids are talking by the door",
    "emotalk_ravdess_disgust": "Dogs are sitting by the door",
    "emotalk_ravdess_happy": "Dogs are sitting by the door",
    "emotalk_ravdess_sad": "Kids are talking by the door",
}


@pytest.fixture(scope="module")
def stage() -> WordsStage:
    return WordsStage(WordsSettings())


@pytest.fixture(scope="module")
def wavs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wavs")
    result = {}
    for name in [*KNOWN, "hdtf_RD_Radio31_000"]:
        extract_audio(shared_data / "audio" / f"{name}.wav", out / f"{name}.wav")
        result[name] = out / f"{name}.wav"
    return result


def _norm(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def _wer(ref: list[str], hyp: list[str]) -> float:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return d[-1] / len(ref)


def _run(stage: WordsStage, wav: Path, tmp: Path, **kw: object) -> tuple[dict, dict]:
    out = tmp / f"{wav.stem}.{len(list(tmp.iterdir()))}.json"
    summary = stage.run(wav, out, **kw)  # type: ignore[arg-type]
    return summary, json.loads(out.read_text())


def test_asr_word_error_rate_on_ravdess(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    """Offline tiny.en on the four RAVDESS statements. Measured when written: WER 0.0 on each.
    Threshold 0.2 overall (at most ~1 word in 6 per sentence), room for other CPUs' int8 kernels."""
    errors = words = 0
    for name, text in KNOWN.items():
        _, doc = _run(stage, wavs[name], tmp_path)
        errors += _wer(_norm(text), _norm(doc["transcript"])) * len(_norm(text))
        words += len(_norm(text))
        assert doc["source"] == "asr" and doc["language"] == "en"
    assert errors / words <= 0.2


def test_asr_boundaries_match_forced_alignment_of_the_known_text(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    """ASR + alignment vs alignment of the known transcript: same words, close boundaries.

    Both place words with pocketsphinx (10 ms frames) but on different audio spans (an ASR segment
    ± 0.3 s vs the whole clip), which moves the edges of a sentence most. Measured on the 48
    boundaries: median 0 ms, worst 100 ms (the end of a sentence-final "door" running into the
    breath after it). Tolerances: median ≤ 20 ms, every boundary ≤ 150 ms.
    """
    diffs = []
    for name, text in KNOWN.items():
        _, asr = _run(stage, wavs[name], tmp_path)
        known_summary, known = _run(stage, wavs[name], tmp_path, known_transcript=text)
        assert known["source"] == "known" and known_summary["n_aligned"] == 6
        assert all(w["aligned"] for w in known["words"]) and len(known["phones"]) >= 12
        assert [w["text"].lower().strip(".!,") for w in asr["words"]] == [w.lower() for w in text.split()]
        for a, k in zip(asr["words"], known["words"], strict=True):
            assert a["aligned"]
            diffs += [abs(a["start_s"] - k["start_s"]), abs(a["end_s"] - k["end_s"])]
    assert np.median(diffs) <= 0.02 and max(diffs) <= 0.15, np.round(diffs, 3)


def test_words_and_phones_are_ordered_and_inside_the_audio(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    summary, doc = _run(stage, wavs["hdtf_RD_Radio31_000"], tmp_path, offset_s=0.25)
    duration = len(read_wav(wavs["hdtf_RD_Radio31_000"])[0]) / 16000
    assert summary["n_words"] >= 15 and summary["n_aligned"] / summary["n_words"] >= 0.8
    starts = [w["start_s"] for w in doc["words"]]
    assert starts == sorted(starts)
    for w in doc["words"]:
        assert 0.25 <= w["start_s"] <= w["end_s"] <= duration + 0.25 + 1e-6  # shifted to video time
    for p in doc["phones"]:
        word = doc["words"][p["word_index"]]
        assert word["start_s"] - 1e-6 <= p["start_s"] <= p["end_s"] <= word["end_s"] + 1e-6


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def test_silence_and_music_give_an_empty_transcript(stage: WordsStage, tmp_path: Path) -> None:
    silence = _write_wav(tmp_path / "silence.wav", np.zeros(16000 * 3))
    summary, doc = _run(stage, silence, tmp_path)
    assert doc["words"] == [] and any("no speech" in w for w in summary["warnings"])
    t = np.arange(16000 * 6) / 16000
    chords = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    summary, doc = _run(stage, _write_wav(tmp_path / "music.wav", chords), tmp_path)
    assert len(doc["words"]) <= 2  # no sentence invented from pure tones


def test_clipped_48k_stereo_source_is_handled(stage: WordsStage, shared_data: Path, tmp_path: Path) -> None:
    import av

    src = shared_data / "audio" / "emotalk_ravdess_happy.wav"
    with av.open(str(src)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float32) / 32768
    loud = np.repeat(np.clip(pcm * 12, -1, 1), 3)  # heavy clipping, 48 kHz by sample repetition
    stereo48 = tmp_path / "loud48.wav"
    with av.open(str(stereo48), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48000)
        stream.layout = "stereo"
        packed = np.repeat((loud * 32767).astype(np.int16), 2)[None, :]  # L R L R …, both channels clipped
        frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
        frame.sample_rate = 48000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    wav16 = tmp_path / "loud16.wav"
    info = extract_audio(stereo48, wav16)
    assert info.source_sample_rate == 48000 and info.source_channels == 2 and info.sample_rate == 16000
    assert info.clipped_fraction > 0.01  # measured on the source, before the downmix lowers the peaks
    _summary, doc = _run(stage, wav16, tmp_path)
    assert _wer(_norm("Dogs are sitting by the door"), _norm(doc["transcript"])) <= 0.34


def test_digits_and_symbols_stay_unaligned_and_are_filled(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    _summary, doc = _run(
        stage, wavs["emotalk_ravdess_angry1"], tmp_path, known_transcript="Kids are talking by the door 101 $5"
    )
    words = doc["words"]
    assert [w["text"] for w in words][-2:] == ["101", "$5"]
    assert [w["aligned"] for w in words] == [True] * 6 + [False] * 2
    assert words[5]["end_s"] <= words[6]["start_s"] <= words[6]["end_s"] <= words[7]["start_s"]
    assert "interpolate" in doc["fill_policy"]


def test_fill_policy_on_hand_made_words() -> None:
    words = [Word("a", 0.0, 0.5, aligned=True), Word("12", 0, 0), Word("xyz", 0, 0), Word("b", 2.0, 2.5, aligned=True)]
    filled = fill_unaligned(words, 3.0)
    assert (filled[1].start_s, filled[1].end_s) == (0.5, 0.5 + 1.5 * 2 / 5)  # shared by character length
    assert (filled[2].start_s, filled[2].end_s) == (0.5 + 1.5 * 2 / 5, 2.0)
    asr = [None, (0.6, 0.9), (1.0, 1.8), None]
    with_asr = fill_unaligned(words, 3.0, asr)
    assert (with_asr[1].start_s, with_asr[2].end_s) == (0.6, 1.8) and not with_asr[1].aligned
    trailing = fill_unaligned([Word("a", 0.0, 1.0, aligned=True), Word("%", 0, 0)], 4.0)
    assert (trailing[1].start_s, trailing[1].end_s) == (1.0, 4.0)


def test_long_audio_is_chunked_at_quiet_points(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    pieces = [read_wav(wavs[name])[0] for name in KNOWN]
    gap = np.zeros(int(0.8 * 16000), dtype=np.float32)
    long = np.concatenate([x for p in pieces * 4 for x in (p, gap)])  # ~70 s, 16 sentences
    bounds = chunk_bounds(long, 16000, 20.0)
    assert len(bounds) >= 4 and bounds[0][0] == 0 and bounds[-1][1] == len(long)
    assert all(b - a <= 20 * 16000 for a, b in bounds) and all(
        bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1)
    )
    small = WordsStage(WordsSettings(chunk_s=20.0))
    small._asr, small._aligner = stage.asr, stage.aligner  # same models, smaller chunks
    summary, doc = _run(small, _write_wav(tmp_path / "long.wav", long), tmp_path)
    assert _wer(_norm(" ".join(list(KNOWN.values()) * 4)), _norm(doc["transcript"])) <= 0.2
    assert summary["n_aligned"] / summary["n_words"] >= 0.9


def test_whisperx_shaped_result_converts_with_unaligned_digits() -> None:
    result = {
        "segments": [
            {
                "words": [
                    {"word": "Room", "start": 0.5, "end": 0.8, "score": 0.9},
                    {"word": "101", "score": 0.4},
                    {"word": "is", "start": 1.4, "end": 1.5, "score": 0.95},
                ]
            }
        ]
    }
    words = convert_result(result, 2.0)
    assert [w.aligned for w in words] == [True, False, True]
    assert words[1].start_s == 0.8 and words[1].end_s == 1.4 and math.isclose(words[0].score, 0.9)


def test_whisperx_backend_says_how_to_install_it(tmp_path: Path) -> None:
    from medtalk_data.errors import MedtalkError
    from medtalk_data.words.whisperx_backend import WhisperXBackend

    with pytest.raises(MedtalkError, match="own environment"):
        WhisperXBackend(None, None, "en")


def test_english_only_model_refuses_other_languages(stage: WordsStage) -> None:
    from medtalk_data.errors import MedtalkError

    with pytest.raises(MedtalkError, match="English-only"):
        stage.asr.transcribe(np.zeros(16000, dtype=np.float32), "zh")


@pytest.mark.slow
def test_eleven_minutes_of_audio_are_transcribed_in_bounded_chunks(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    """> 10-minute audio: real sentences every ~14 s over 11 minutes, default 60 s chunks."""
    pieces = [read_wav(wavs[name])[0] for name in KNOWN]
    gap = np.zeros(10 * 16000, dtype=np.float32)
    audio = np.concatenate([x for i in range(48) for x in (pieces[i % 4], gap)])
    assert len(audio) / 16000 > 660
    assert len(chunk_bounds(audio, 16000, 60.0)) >= 11
    summary, doc = _run(stage, _write_wav(tmp_path / "eleven.wav", audio), tmp_path)
    texts = [" ".join(list(KNOWN.values())[i % 4] for i in range(48))]
    assert _wer(_norm(texts[0]), _norm(doc["transcript"])) <= 0.2
    assert doc["words"][-1]["end_s"] > 640 and summary["n_aligned"] / summary["n_words"] >= 0.9
