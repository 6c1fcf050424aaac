"""Transcripts with word and phone timings: the ``words`` stage of extract.

Modules, one job each:

- :mod:`.settings` — :class:`WordsSettings` (``words:`` in the extract YAML);
- :mod:`.stage` — :func:`~.stage.run_words_stage` / :class:`~.stage.WordsStage`: picks the backend, writes words.json;
- :mod:`.audio_in` — the stage's input audio (16 kHz mono, other formats converted);
- :mod:`.chunks` — long audio read in chunks cut at quiet moments; energy envelope;
- :mod:`.asr` — faster-whisper over the pinned Whisper base or tiny.en (or a user model), word timestamps, language;
- :mod:`.align` — pocketsphinx forced alignment (words + ARPAbet phones) and the fill policy;
- :mod:`.align_process` — the same aligner in a child process, so that aligning leaves other threads running;
- :mod:`.known` — a known transcript aligned in one pass, or piece by piece on long audio;
- :mod:`.anchors` — where each known word lies in long audio, and where to cut it;
- :mod:`.whisperx_backend` — WhisperX, in its own environment;
- :mod:`.types` — :class:`Word`, :class:`Phone`, :class:`WordsSummary`, :class:`WordsDoc`.
"""

from .settings import WordsSettings
from .types import Phone, Word

__all__ = ["Phone", "Word", "WordsSettings"]
