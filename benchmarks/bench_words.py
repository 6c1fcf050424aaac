"""Words stage speed: real-time factors of ASR and of forced alignment, against audio duration.

RTF = seconds of compute per second of audio (lower is faster), one CPU thread, tiny.en int8.

1. Per real clip: bare faster-whisper (``WhisperModel.transcribe`` with the stage's options, no
   medtalk code), pocketsphinx alignment of the recognised segments, alignment of the known
   transcript (RAVDESS), and the whole stage; ours / bare = stage time over bare ASR time.
2. Against duration: real speech (the clips above, one after another, looped) cut to 30 s, 2 min
   and 5 min (``--durations``): the stage with recognition, and with the known transcript (long
   audio: recognition only cuts the transcript, then alignment chunk by chunk).

    python benchmarks/bench_words.py [--data ../shared/data] [--durations 30 120 300]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from medtalk_data.audio.stage import extract_audio
from medtalk_data.io.wav import read_wav, write_wav
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import ALIGN_PAD_S, WordsStage

REPO = Path(__file__).resolve().parents[1]
FILES = {  # file → known transcript (None: not known)
    "audio/emotalk_ravdess_happy.wav": "Dogs are sitting by the door",
    "audio/emotalk_ravdess_angry1.wav": "Kids are talking by the door",
    "audio/hdtf_RD_Radio31_000.wav": None,
    "video/pcavs_audio_source_741400104.mp4": None,
    "video/edtalk_uncrop_Obama.mp4": None,
}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--durations", type=float, nargs="*", default=[30.0, 120.0, 300.0])
    args = parser.parse_args()
    os.environ["MEDTALK_OFFLINE"] = "1"
    settings = WordsSettings(asr_model="tiny.en", asr_threads=1)  # the README's figures (base: bench_asr.py)
    stage = WordsStage(settings)
    asr, aligner = stage.asr, stage.aligner  # load once, outside the timings
    model = asr._model  # the faster-whisper WhisperModel itself, for the bare baseline
    totals = dict.fromkeys(("audio", "bare", "align", "stage"), 0.0)
    pieces = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"per clip ({asr.choice.describe()}):")
        for rel, known in FILES.items():
            wav = tmp / (Path(rel).stem + ".wav")
            extract_audio(args.data / rel, wav)
            audio, rate = read_wav(wav)
            pieces.append(audio)
            seconds = len(audio) / rate

            def bare(audio: np.ndarray = audio) -> list:
                segments, _info = model.transcribe(
                    audio, language="en", beam_size=settings.beam_size, word_timestamps=True,
                    vad_filter=settings.vad, condition_on_previous_text=False,
                )  # fmt: skip
                return list(segments)

            _, bare_s = _timed(bare)
            segments, _ = asr.transcribe(audio, "en")

            def align(audio: np.ndarray = audio, segments: list = segments) -> None:
                for seg in segments:
                    lo, hi = max(0, int((seg.start_s - ALIGN_PAD_S) * 16000)), int((seg.end_s + ALIGN_PAD_S) * 16000)
                    aligner.align(audio[lo:hi], [w.text for w in seg.words])

            _, align_s = _timed(align)
            summary, stage_s = _timed(lambda wav=wav: stage.run(wav, tmp / "words.json"))
            known_txt = ""
            if known:
                _, known_s = _timed(lambda wav=wav, known=known: stage.run(wav, tmp / "k.json", known_transcript=known))
                known_txt = f"  known-text align RTF {known_s / seconds:.3f}"
            for key, value in (("audio", seconds), ("bare", bare_s), ("align", align_s), ("stage", stage_s)):
                totals[key] += value
            print(
                f"  {rel:42s} {seconds:5.1f} s  ASR RTF {bare_s / seconds:.3f}  align RTF {align_s / seconds:.3f}  "
                f"stage RTF {stage_s / seconds:.3f}{known_txt}  ({summary.n_aligned}/{summary.n_words} aligned)"
            )
        audio_s = totals["audio"]
        print(f"ASR (bare faster-whisper): RTF {totals['bare'] / audio_s:.3f}")
        print(f"forced alignment:          RTF {totals['align'] / audio_s:.3f}")
        print(
            f"words stage (ours):        RTF {totals['stage'] / audio_s:.3f}   "
            f"ours / bare ASR = {totals['stage'] / totals['bare']:.2f}"
        )

        if args.durations:
            print("against duration (real speech looped; stage RTF, and with a known transcript):")
            gap = np.zeros(8000, dtype=np.float32)
            joined = np.concatenate([x for p in pieces for x in (p, gap)])
            for seconds in args.durations:
                n = int(seconds * 16000)
                audio = np.tile(joined, n // len(joined) + 1)[:n]
                wav = write_wav(tmp / f"long{int(seconds)}.wav", audio)
                summary, stage_s = _timed(lambda wav=wav: stage.run(wav, tmp / "long.json"))
                # its own ASR transcript stands in for a known one (the clips have none of their own)
                transcript = json.loads((tmp / "long.json").read_text())["transcript"]
                known, known_s = _timed(
                    lambda wav=wav, t=transcript: stage.run(wav, tmp / "longk.json", known_transcript=t)
                )
                print(
                    f"  {seconds:6.0f} s  ASR+align RTF {stage_s / seconds:.3f} ({summary.n_aligned}/"
                    f"{summary.n_words} aligned)   known-text RTF {known_s / seconds:.3f} "
                    f"({known['n_aligned']}/{known['n_words']} aligned)"
                )
    print(f"(numpy {np.__version__}; 1 CPU thread for ASR; chunk_s {settings.chunk_s:g})")


if __name__ == "__main__":
    main()
