"""animate: real-time factor for 10 s of speech (model loading reported apart) and memory for 5 min.

Uses a trained run folder (``make demo`` leaves one in demo_out/run). The speech is a real clip
looped to the length asked for. Prints, measured in this run:

* loading the checkpoint and its backbones (seconds);
* RTF = animate seconds / audio seconds for 10 s, with a given transcript (alignment only) and with
  speech recognition, and the share of the frozen backbones (a bare Whisper-encoder pass over the
  same audio, the baseline) in it;
* peak RSS after 10 s, 60 s and 300 s of speech in one process (flat = bounded by the window).

    python benchmarks/bench_animate.py --run demo_out/run [--speech path.wav]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from medtalk_data.io.wav import read_wav, write_wav
from medtalk_models.animate import Animator, EmotionControl, decode_audio

DEFAULT_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "emotalk_ravdess_angry1.wav"
BUNDLED = Path(__file__).resolve().parents[1] / "examples" / "held_out" / "pcavs_audio_source_00015.mp4"


def looped(speech: np.ndarray, seconds: float, folder: Path) -> Path:
    n = int(seconds * 16000)
    data = np.tile(speech, n // len(speech) + 1)[:n]
    path = folder / f"speech_{int(seconds)}s.wav"
    return write_wav(path, data)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("demo_out/run"))
    ap.add_argument("--speech", type=Path, default=DEFAULT_SPEECH)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.speech if args.speech.is_file() else BUNDLED  # a fresh clone has no ../shared/data
        speech, _ = read_wav(decode_audio(source, folder))
        t0 = time.perf_counter()
        animator = Animator(args.run)
        load_s = time.perf_counter() - t0
        print(f"load: {load_s:.2f} s (checkpoint + backbones)")
        ten = looped(speech, 10.0, folder)
        animator.animate(ten, EmotionControl("happy"), transcript="warm up")  # first call loads the ASR/aligner
        encoder = animator.backbones.audio["content"]
        wave10 = read_wav(ten)[0]
        t0 = time.perf_counter()
        encoder.extract(wave10)
        bare = time.perf_counter() - t0
        text = "kids are talking by the door " * 3
        for label, transcript in (("known transcript", text), ("speech recognition", None)):
            t0 = time.perf_counter()
            animator.animate(ten, EmotionControl("happy"), transcript=transcript)
            secs = time.perf_counter() - t0
            print(f"10 s of speech, {label}: {secs:.2f} s, RTF {secs / 10:.3f} (target 0.1); a bare "
                  f"{encoder.kind} encoder pass over it takes {bare:.2f} s = {bare / secs:.0%} of that")  # fmt: skip
        for seconds in (10, 60, 300):
            path = looped(speech, seconds, folder)
            t0 = time.perf_counter()
            animator.animate(path, EmotionControl("sad"), transcript=text)
            secs = time.perf_counter() - t0
            print(f"{seconds:>4} s of speech: RTF {secs / seconds:.3f}, peak RSS so far {peak_mb():.0f} MB")
        animator.close()


if __name__ == "__main__":
    main()
