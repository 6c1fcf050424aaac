"""Words stage speed: real-time factors of ASR and of forced alignment, and the stage's overhead.

Baseline measured in the same run: the bare faster-whisper call (same model, same options) on the
same audio. Prints RTF (seconds of compute per second of audio) and ours/bare.

    python benchmarks/bench_words.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from medtalk_data.audio import extract_audio, read_wav
from medtalk_data.words.settings import WordsSettings
from medtalk_data.words.stage import WordsStage

REPO = Path(__file__).resolve().parents[1]
FILES = (
    "audio/emotalk_ravdess_happy.wav",
    "audio/emotalk_ravdess_angry1.wav",
    "audio/hdtf_RD_Radio31_000.wav",
    "video/pcavs_audio_source_741400104.mp4",
    "video/edtalk_uncrop_Obama.mp4",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    os.environ["MEDTALK_OFFLINE"] = "1"
    stage = WordsStage(WordsSettings())
    asr, aligner = stage.asr, stage.aligner  # load once, outside the timings
    total_audio = total_bare = total_ours = total_align = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for rel in FILES:
            wav = Path(tmp) / (Path(rel).stem + ".wav")
            extract_audio(args.data / rel, wav)
            audio, rate = read_wav(wav)
            seconds = len(audio) / rate
            t0 = time.perf_counter()
            segments, _ = asr.transcribe(audio, "en")
            bare = time.perf_counter() - t0
            t0 = time.perf_counter()
            for seg in segments:
                lo, hi = max(0, int((seg.start_s - 0.3) * rate)), int((seg.end_s + 0.3) * rate)
                aligner.align(audio[lo:hi], [w.text for w in seg.words])
            align = time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = stage.run(wav, Path(tmp) / "words.json")
            ours = time.perf_counter() - t0
            total_audio += seconds
            total_bare += bare
            total_ours += ours
            total_align += align
            print(
                f"  {rel:42s} {seconds:5.1f} s audio  ASR RTF {bare / seconds:.3f}  align RTF {align / seconds:.3f}  "
                f"stage RTF {ours / seconds:.3f}  ({summary['n_aligned']}/{summary['n_words']} words aligned)"
            )
    print(f"ASR (bare faster-whisper): RTF {total_bare / total_audio:.3f}")
    print(f"forced alignment:          RTF {total_align / total_audio:.3f}")
    ratio = total_ours / total_bare
    print(f"words stage (ours):        RTF {total_ours / total_audio:.3f}   ours / bare ASR = {ratio:.2f}")
    print(f"(numpy {np.__version__}; 1 CPU thread for ASR)")


if __name__ == "__main__":
    main()
