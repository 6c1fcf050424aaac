"""Which offline ASR model: word error rate and real-time factor of Whisper tiny.en and base.

Every clip of ``../shared/data`` whose words are known is run through the whole words stage
(language detection + recognition + forced alignment, ``words.language: auto`` as for a clip whose
recipe names no language; one CPU thread, as each of ``extract``'s two workers runs it on two cores —
``--threads 2`` for one worker alone), once per model and Whisper encoder window (``words.asr_window``:
``auto``, audio up to 9 s read in a 10 s window for English and detection, against ``full``, Whisper's
30 s window):

- English, known text: the RAVDESS statements (the statement is coded in the file name of the
  eight audio-visual files; the four EmoTalk copies were identified against the two RAVDESS
  statements by the data's curators); WER after lower-casing and dropping punctuation (jiwer).
- English, text unknown: the talking clips; no WER can be computed, so each system's transcript is
  compared with the first one's (a disagreement rate, not an error rate).
- Two statements in one clip (every ordered pair of six RAVDESS takes, 0.3 s and 1 s apart): how
  many transcripts are wrong (WER > 0).
- Mandarin (EmoFace/MEDTalk): the detected language and its probability, and the transcript.

RTF = words-stage seconds per second of audio (lower is faster), measured in the same run.

    python benchmarks/bench_asr.py [--data ../shared/data] [--models tiny.en base] [--windows auto full]
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np

from medtalk_data.audio.stage import extract_audio
from medtalk_data.errors import MedtalkError
from medtalk_data.io.wav import read_wav, write_wav
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import WordsStage

REPO = Path(__file__).resolve().parents[1]
KIDS, DOGS = "Kids are talking by the door", "Dogs are sitting by the door"
KNOWN = {  # file → transcript, and where the transcript comes from
    "video_emotional/01-01-01-01-02-01-05.mp4": (DOGS, "RAVDESS file name"),
    "video_emotional/01-01-03-01-01-02-05.mp4": (KIDS, "RAVDESS file name"),
    "video_emotional/01-01-06-01-01-01-05.mp4": (KIDS, "RAVDESS file name"),
    "video_emotional/01-01-06-01-02-02-05.mp4": (DOGS, "RAVDESS file name"),
    "video_emotional/01-01-06-02-01-01-05.mp4": (KIDS, "RAVDESS file name"),
    "video_emotional/01-01-06-02-02-01-05.mp4": (DOGS, "RAVDESS file name"),
    "video_emotional/01-01-06-02-02-02-05.mp4": (DOGS, "RAVDESS file name"),
    "video_emotional/01-01-08-01-02-01-05.mp4": (DOGS, "RAVDESS file name"),
    "audio/emotalk_ravdess_angry1.wav": (KIDS, "curators' 2-statement grammar"),
    "audio/emotalk_ravdess_disgust.wav": (DOGS, "curators' 2-statement grammar"),
    "audio/emotalk_ravdess_happy.wav": (DOGS, "curators' 2-statement grammar"),
    "audio/emotalk_ravdess_sad.wav": (KIDS, "curators' 2-statement grammar (low confidence)"),
}
UNKNOWN_ENGLISH = (
    "audio/hdtf_RD_Radio31_000.wav",
    "video/pcavs_audio_source_00015.mp4",
    "video/pcavs_audio_source_741400104.mp4",
    "video/pcavs_input_00010.mp4",
    "video/edtalk_uncrop_Obama.mp4",
    "video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4",
    "video/latentsync_demo1.mp4",
    "video_emotional/cremad_speakerA_angry.mp4",
    "video/styletalk_andrew_clip_1.mp4",
    "video/styletalk_KristiNoem.mp4",
    "video/retalking_face1.mp4",
    "video/pcavs_pose_source_741400163.mp4",
)
MANDARIN = (
    "emoface/angry_gd04_001_021.wav",
    "audio/medtalk_angry_gd01_001_006.wav",
    "audio/medtalk_happy_gd01_001_014.wav",
    "audio/medtalk_disg_sp03_001_031.wav",
    "audio/medtalk_surp_gd07_001_017.wav",
)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def _wav(data: Path, rel: str, tmp: Path) -> Path:
    out = tmp / (Path(rel).stem + ".wav")
    if not out.exists():
        extract_audio(data / rel, out)
    return out


def _run(stage: WordsStage, wav: Path, tmp: Path) -> tuple[str, float, dict]:
    start = time.perf_counter()
    summary = stage.run(wav, tmp / "words.json")
    seconds = time.perf_counter() - start
    import json

    doc = json.loads((tmp / "words.json").read_text(encoding="utf-8"))
    duration = doc["duration_s"] or 1.0
    return doc["transcript"], seconds / duration, {"language": summary.language, "doc": doc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--models", nargs="*", default=["tiny.en", "base"])
    parser.add_argument("--windows", nargs="*", default=["auto", "full"], help="words.asr_window values to compare")
    parser.add_argument("--threads", type=int, default=1, help="Whisper's CPU threads (extract: cores / workers)")
    args = parser.parse_args()
    systems = [(m, w) for m in args.models for w in args.windows]
    names = [f"{m}/{w}" for m, w in systems]
    stages = {
        name: WordsStage(WordsSettings(asr_model=m, asr_window=w, language="auto", asr_threads=args.threads))
        for name, (m, w) in zip(names, systems, strict=True)
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wavs = {rel: _wav(args.data, rel, tmp) for rel in (*KNOWN, *UNKNOWN_ENGLISH, *MANDARIN)}
        for stage in stages.values():  # load every model before the clock starts (reported apart by the CLI)
            _run(stage, wavs[next(iter(KNOWN))], tmp)
        print(f"known English transcripts (WER; RTF of the whole words stage, {args.threads} thread(s), language auto)")
        print(f"{'clip':30s} " + " ".join(f"{n + ' WER':>15s} {'RTF':>5s}" for n in names))
        words_of: dict[tuple[str, str], list[dict]] = {}
        wers: dict[str, list[float]] = {n: [] for n in names}
        rtfs: dict[str, list[float]] = {n: [] for n in names}
        for rel, (text, _source) in KNOWN.items():
            cells = []
            for n in names:
                got, rtf, info = _run(stages[n], wavs[rel], tmp)
                words_of[n, rel] = info["doc"]["words"]
                wers[n].append(jiwer.wer(_norm(text), _norm(got) or "<empty>"))
                rtfs[n].append(rtf)
                cells.append(f"{wers[n][-1]:15.2f} {rtf:5.2f}")
            print(f"{Path(rel).name[:30]:30s} " + " ".join(cells))
        for n in names:
            print(
                f"  {n}: mean WER {sum(wers[n]) / len(wers[n]):.3f}, worst {max(wers[n]):.2f}, "
                f"RTF mean {sum(rtfs[n]) / len(rtfs[n]):.3f} max {max(rtfs[n]):.3f}"
            )
        print("\nEnglish, transcript unknown: RTF, and each system's transcript against the first one's")
        long_rtfs: dict[str, list[float]] = {n: [] for n in names}
        for rel in UNKNOWN_ENGLISH:
            got, cells = {}, []
            for n in names:
                got[n], rtf, info = _run(stages[n], wavs[rel], tmp)
                words_of[n, rel] = info["doc"]["words"]
                long_rtfs[n].append(rtf)
                differs = jiwer.wer(_norm(got[names[0]]) or "<empty>", _norm(got[n]) or "<empty>")
                cells.append(f"{n} RTF {rtf:.2f}" + (f" ≠{differs:.2f}" if n != names[0] else ""))
            print(f"{Path(rel).name[:36]:36s} {'  '.join(cells)}")
            for n in names:
                if n == names[0] or got[n] != got[names[0]]:
                    print(f"    {n}: {got[n][:150]}")
        for n in names:
            mean = sum(long_rtfs[n]) / len(long_rtfs[n])
            print(f"  {n}: RTF on these clips: mean {mean:.3f}, max {max(long_rtfs[n]):.3f}")
        _windows_compared(words_of, args.models, [*KNOWN, *UNKNOWN_ENGLISH])
        _pairs(stages, wavs, tmp)
        _detection_compared(args, tmp)
        multilingual = [n for n, (m, _w) in zip(names, systems, strict=True) if m != "tiny.en"]
        if multilingual:
            print("\nMandarin (language detected: words.language auto)")
            for n in multilingual:
                for rel in MANDARIN:
                    got, rtf, info = _run(stages[n], wavs[rel], tmp)
                    prob = info["doc"].get("language_probability")
                    print(f"  {n} {Path(rel).name:36s} {info['language']} (p={prob:.3f}) RTF {rtf:.2f}: {got}")


def _windows_compared(words_of: dict[tuple[str, str], list[dict]], models: list[str], clips: list[str]) -> None:
    """Per model, the short window (auto) against the full one: same words (punctuation aside), and how far
    apart the final (aligned) word starts are on those clips."""
    for m in models:
        if (f"{m}/auto", clips[0]) not in words_of or (f"{m}/full", clips[0]) not in words_of:
            continue
        same, shifts, differ = 0, [], []
        for rel in clips:
            auto, full = words_of[f"{m}/auto", rel], words_of[f"{m}/full", rel]
            if [_norm(w["text"]) for w in auto] == [_norm(w["text"]) for w in full]:
                same += 1
                shifts += [abs(a["start_s"] - f["start_s"]) for a, f in zip(auto, full, strict=True)]
            else:
                differ.append(Path(rel).stem)
        print(
            f"  {m}: auto and full windows give the same words on {same} of {len(clips)} clips "
            f"(largest word-start difference there {1000 * max(shifts, default=0):.0f} ms); differ on {differ}"
        )


def _detection_compared(args: argparse.Namespace, tmp: Path) -> None:
    """The language Whisper detects in every clip with audio in the data folder, short window against full."""
    from medtalk_data.words.asr import WhisperASR

    multilingual = [m for m in args.models if m != "tiny.en"]
    if not multilingual:
        return
    asr = {w: WhisperASR(multilingual[0], cpu_threads=args.threads, window=w) for w in ("auto", "full")}
    print(f"\nLanguage detection ({multilingual[0]}), every clip with audio: short window (auto) against full")
    same = total = 0
    for sub in ("audio", "video", "video_emotional", "emoface"):
        for path in sorted((args.data / sub).glob("*")):
            if path.suffix.lower() not in (".wav", ".mp4", ".mov"):
                continue
            try:
                audio = read_wav(_wav(args.data, f"{sub}/{path.name}", tmp))[0]
            except MedtalkError as err:  # a clip without an audio stream is not in this table
                print(f"    {sub}/{path.name}: no audio ({type(err).__name__})")
                continue
            heard = {w: a.detect_language(audio[: 30 * 16000]) for w, a in asr.items()}
            total += 1
            same += heard["auto"][0] == heard["full"][0]
            flag = "" if heard["auto"][0] == heard["full"][0] else "  <- differs"
            print(f"    {sub}/{path.name[:44]:44s} auto {heard['auto'][0]} {heard['auto'][1]:.2f}  "
                  f"full {heard['full'][0]} {heard['full'][1]:.2f}{flag}")  # fmt: skip
    print(f"  the same language on {same} of {total} clips")


def _pairs(stages: dict[str, WordsStage], wavs: dict[str, Path], tmp: Path) -> None:
    """Two known statements in one clip: wrong transcripts per system, and which pairs went wrong."""
    takes = [  # the four EmoTalk copies and one audio-visual take of each statement
        *(rel for rel in KNOWN if "emotalk" in rel),
        "video_emotional/01-01-01-01-02-01-05.mp4",
        "video_emotional/01-01-03-01-01-02-05.mp4",
    ]
    wrong: dict[str, int] = dict.fromkeys(stages, 0)
    cases = 0
    print("\nTwo statements in one clip (ordered pairs of six takes, 0.3 s / 1 s apart): wrong transcripts")
    for a, b in itertools.permutations(takes, 2):
        for pause_s in (0.3, 1.0):
            gap = np.zeros(round(16000 * pause_s), np.float32)
            wav = write_wav(tmp / "pair.wav", np.concatenate([read_wav(wavs[a])[0], gap, read_wav(wavs[b])[0]]))
            said = _norm(f"{KNOWN[a][0]} {KNOWN[b][0]}")
            cases += 1
            for n, stage in stages.items():
                got, _rtf, _ = _run(stage, wav, tmp)
                if _norm(got) != said:
                    wrong[n] += 1
                    same = "same statement twice" if KNOWN[a][0] == KNOWN[b][0] else "two statements"
                    print(f"    {n} ({same}, {pause_s} s): {got}")
    print("  " + ", ".join(f"{n}: {k} of {cases} wrong" for n, k in wrong.items()))


if __name__ == "__main__":
    main()
