"""Which offline ASR model: word error rate and real-time factor of Whisper tiny.en and base.

Every clip of ``../shared/data`` whose words are known is run through the whole words stage
(recognition + forced alignment; one CPU thread, as each of ``extract``'s two workers runs it on two
cores — ``--threads 2`` for one worker alone), once per model:

- English, known text: the RAVDESS statements (the statement is coded in the file name of the
  eight audio-visual files; the four EmoTalk copies were identified against the two RAVDESS
  statements by the data's curators); WER after lower-casing and dropping punctuation (jiwer).
- English, text unknown: the talking clips; no WER can be computed, so the two models' transcripts
  are compared with each other (a disagreement rate, not an error rate).
- Mandarin (EmoFace/MEDTalk): the detected language and its probability, and the transcript.

RTF = words-stage seconds per second of audio (lower is faster), measured in the same run.

    python benchmarks/bench_asr.py [--data ../shared/data] [--models tiny.en base]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import jiwer

from medtalk_data.audio.stage import extract_audio
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
)
MANDARIN = (
    "emoface/angry_gd04_001_021.wav",
    "audio/medtalk_angry_gd01_001_006.wav",
    "audio/medtalk_happy_gd01_001_014.wav",
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
    parser.add_argument("--threads", type=int, default=1, help="Whisper's CPU threads (extract: cores / workers)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wavs = {rel: _wav(args.data, rel, tmp) for rel in (*KNOWN, *UNKNOWN_ENGLISH, *MANDARIN)}
        heard: dict[str, dict[str, str]] = {m: {} for m in args.models}
        print(f"known English transcripts (WER; RTF of the whole words stage, {args.threads} thread(s))")
        print(f"{'clip':44s} " + " ".join(f"{m + ' WER':>12s} {m + ' RTF':>12s}" for m in args.models))
        totals = {m: [] for m in args.models}
        rtfs = {m: [] for m in args.models}
        threads = args.threads
        stages = {m: WordsStage(WordsSettings(asr_model=m, language="en", asr_threads=threads)) for m in args.models}
        for rel, (text, _source) in KNOWN.items():
            cells = []
            for m in args.models:
                got, rtf, _ = _run(stages[m], wavs[rel], tmp)
                wer = jiwer.wer(_norm(text), _norm(got) or "<empty>")
                totals[m].append(wer)
                rtfs[m].append(rtf)
                heard[m][rel] = got
                cells.append(f"{wer:12.2f} {rtf:12.3f}")
            print(f"{Path(rel).name:44s} " + " ".join(cells))
        for m in args.models:
            print(
                f"  {m}: mean WER {sum(totals[m]) / len(totals[m]):.3f}, worst {max(totals[m]):.2f}, "
                f"RTF mean {sum(rtfs[m]) / len(rtfs[m]):.3f} max {max(rtfs[m]):.3f}"
            )
        print("\nEnglish, transcript unknown: the models compared with each other, and RTF")
        for rel in UNKNOWN_ENGLISH:
            got = {}
            cells = []
            for m in args.models:
                got[m], rtf, _ = _run(stages[m], wavs[rel], tmp)
                rtfs[m].append(rtf)
                cells.append(f"{m} RTF {rtf:.3f}")
            first, *others = args.models
            disagree = " ".join(
                f"{first}≠{o} {jiwer.wer(_norm(got[first]) or '<empty>', _norm(got[o]) or '<empty>'):.2f}"
                for o in others
            )
            print(f"{Path(rel).name:44s} {'  '.join(cells)}  {disagree}")
            for m in args.models:
                print(f"    {m}: {got[m][:150]}")
        for m in args.models:
            print(f"  {m}: RTF over every English clip: mean {sum(rtfs[m]) / len(rtfs[m]):.3f}, max {max(rtfs[m]):.3f}")
        multilingual = [m for m in args.models if m != "tiny.en"]
        if multilingual:
            print("\nMandarin (language detected: words.language auto)")
            for m in multilingual:
                stage = WordsStage(WordsSettings(asr_model=m, language="auto", asr_threads=threads))
                for rel in MANDARIN:
                    got, rtf, info = _run(stage, wavs[rel], tmp)
                    prob = info["doc"].get("language_probability")
                    print(f"  {m} {Path(rel).name:36s} {info['language']} (p={prob}) RTF {rtf:.3f}: {got}")


if __name__ == "__main__":
    main()
