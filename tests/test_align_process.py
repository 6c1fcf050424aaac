"""The forced aligner in its own process: the same answers as in this one, without holding the lock.

Real speech: a RAVDESS statement from ../shared/data/audio.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.audio.stage import extract_audio
from medtalk_data.extract.models import words_stage
from medtalk_data.io.wav import read_wav
from medtalk_data.settings import ExtractSettings
from medtalk_data.words.align import ForcedAligner
from medtalk_data.words.align_process import AlignerDied, AlignerProcess

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.realdata

STATEMENT = ["Kids", "are", "talking", "by", "the", "door"]


@pytest.fixture(scope="module")
def speech(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    wav = tmp_path_factory.mktemp("speech") / "angry.wav"
    extract_audio(shared_data / "audio" / "emotalk_ravdess_angry1.wav", wav)
    return read_wav(wav)[0]


@pytest.fixture()
def apart() -> AlignerProcess:
    aligner = AlignerProcess()
    yield aligner
    aligner.close()


def test_the_child_answers_as_the_aligner_in_this_process(speech: np.ndarray, apart: AlignerProcess) -> None:
    here = ForcedAligner()
    words = [*STATEMENT, "2012"]  # digits cannot be spelled: left out of the alignment
    for pcm in (speech, speech.astype(np.float64), (speech * 32767).astype(np.int16)):
        expected = here.align(pcm, words)
        assert sum(span is not None for span in expected[0]) >= 5 and expected[1]  # a real alignment
        assert apart.align(pcm, words) == expected  # bit for bit: floats cross the pipe as JSON
    for word in ("door", "well-known", "2012", "Door."):
        assert apart.spell(word) == here.spell(word)
    assert apart.align(speech[:100], words) == here.align(speech[:100], words)  # too short: nothing placed


def test_a_child_that_dies_is_named_and_the_next_call_starts_a_new_one(
    speech: np.ndarray, apart: AlignerProcess
) -> None:
    first = apart.align(speech, STATEMENT)
    apart._child.kill()  # a native crash in pocketsphinx looks like this from here
    apart._child.wait()
    with pytest.raises(AlignerDied, match=r"forced-alignment process ended .* \(exit code -9\)") as died:
        apart.align(speech, STATEMENT)
    assert died.value.reason == "worker_crashed"  # a failed clip that a re-run retries
    assert apart.align(speech, STATEMENT) == first


def test_aligning_in_the_child_leaves_this_process_its_interpreter_lock(
    speech: np.ndarray, apart: AlignerProcess
) -> None:
    """The reason for the child: pocketsphinx holds the lock while it aligns, so a thread of this
    process stalls for as long as an alignment lasts (this stalled extract's face stage). Measured as
    the longest pause of a Python loop beside the aligner, which CPU load lengthens far less."""
    long = np.tile(speech, 6)  # ~20 s of speech: an alignment lasts a good fraction of a second
    words = STATEMENT * 6

    def longest_pause_beside(aligner: object) -> float:
        done = threading.Event()

        def align() -> None:
            while not done.is_set():
                aligner.align(long, words)

        thread = threading.Thread(target=align)
        thread.start()
        time.sleep(0.1)  # the aligner is busy
        longest, last, end = 0.0, time.perf_counter(), time.perf_counter() + 1.5
        while (now := time.perf_counter()) < end:
            longest, last = max(longest, now - last), now
        done.set()
        thread.join()
        return longest

    here, there = longest_pause_beside(ForcedAligner()), longest_pause_beside(apart)
    assert here > 0.1 and there < here / 3, (here, there)


def test_extract_runs_the_aligner_apart_only_beside_the_face_stage() -> None:
    beside = words_stage(ExtractSettings(stages=["face", "audio", "words"]))
    alone = words_stage(ExtractSettings(stages=["audio", "words"]))
    assert beside.aligner_apart and not alone.aligner_apart
    assert isinstance(alone.aligner, ForcedAligner)
