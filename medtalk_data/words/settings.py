"""Settings of the words stage (nested under ``words:`` in the extract YAML)."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("auto", "faster-whisper", "whisperx", "known-only")


@dataclass
class WordsSettings:
    backend: str = "auto"  # auto: a known transcript is aligned, else faster-whisper ASR + pocketsphinx alignment
    language: str = "en"  # "en", another ISO code (ASR timings kept, flagged unaligned), or "auto"
    asr_model: str | None = None  # CTranslate2 Whisper folder; None resolves the packaged tiny.en
    beam_size: int = 1
    vad: bool = True  # Silero VAD (bundled with faster-whisper) skips silence and most music
    chunk_s: float = 60.0  # long audio is cut into chunks this long, at the quietest nearby moment
    min_speech_prob: float = 0.4  # drop ASR segments whose no-speech probability is above 1 - this
    whisperx_model: str | None = None  # local model folders for the whisperx backend
    whisperx_align_model: str | None = None

    def problems(self) -> list[str]:
        found = []
        if self.backend not in BACKENDS:
            found.append(f"words.backend: unknown {self.backend!r}; choose from {list(BACKENDS)}")
        if self.chunk_s < 5:
            found.append(f"words.chunk_s: must be >= 5 s, got {self.chunk_s}")
        if self.beam_size < 1:
            found.append(f"words.beam_size: must be >= 1, got {self.beam_size}")
        if not 0.0 <= self.min_speech_prob <= 1.0:
            found.append(f"words.min_speech_prob: must be in [0, 1], got {self.min_speech_prob}")
        return found
