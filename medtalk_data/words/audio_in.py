"""The words stage's input: a 16 kHz mono 16-bit WAV, or anything else PyAV decodes (converted, with a warning).

Within extract the audio stage already writes that format; this lets :func:`run_words_stage` take any
audio file (48 kHz, stereo, float WAV, FLAC…) without losing it, and names the problem when it cannot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..audio.stage import TARGET_RATE, extract_audio
from ..errors import ClipError
from ..io.files import display_path
from ..io.wav import wav_format

RUN_AUDIO_STAGE = "extract the clip's audio first (the audio stage writes 16 kHz mono audio.wav)"


@contextmanager
def words_audio(path: Path, warnings: list[str]) -> Iterator[tuple[Path, float]]:
    """Yield (16 kHz mono 16-bit WAV, duration s) for ``path``; a converted copy lives until the block ends."""
    if not path.is_file():
        raise ClipError("words_no_audio", f"{display_path(path)}: no such audio file", RUN_AUDIO_STAGE)
    try:
        fmt = wav_format(path)
    except OSError as err:
        raise ClipError("words_no_audio", f"{display_path(path)}: cannot read it ({err.strerror or err})") from err
    if fmt is not None and fmt[:3] == (TARGET_RATE, 1, 2):
        yield path, fmt[3] / TARGET_RATE
        return
    found = f"{fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]}-bit" if fmt else "not a 16-bit PCM WAV"
    with tempfile.TemporaryDirectory(prefix="medtalk-words-") as tmp:
        converted = Path(tmp) / "audio16k.wav"
        try:
            info = extract_audio(path, converted, video_start_s=0.0)
        except ClipError as err:
            raise ClipError(
                "words_bad_audio", f"{display_path(path)}: the words stage cannot read it ({err.message})", err.fix
            ) from err
        warnings.append(f"words stage input was {found}: converted to 16 kHz mono 16-bit for recognition")
        yield converted, info.duration_s
