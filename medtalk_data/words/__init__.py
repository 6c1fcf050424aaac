"""Transcripts with word and phone timings: ASR (faster-whisper), forced alignment (pocketsphinx),
an optional WhisperX backend, and the ``words`` stage of extract that ties them together."""

from .settings import WordsSettings
from .types import Phone, Word

__all__ = ["Phone", "Word", "WordsSettings"]
