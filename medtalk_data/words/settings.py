"""Settings of the words stage (nested under ``words:`` in the extract YAML).

Kept equal to ``medtalk_data/configs/extract.yaml`` by a test: a new field needs a line there too.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("auto", "faster-whisper", "whisperx", "known-only")
ASR_WINDOWS = ("auto", "full")


@dataclass
class WordsSettings:
    # auto / faster-whisper: a known transcript is aligned, else faster-whisper ASR + pocketsphinx alignment;
    # known-only: align known transcripts, never recognise; whisperx: WhisperX in its own environment
    backend: str = "auto"
    # auto: the clip's language from its dataset recipe or labels CSV where known, else detected by Whisper
    # (per 60 s chunk); an ISO code ("en", "zh"…) for every clip. Only English gets forced alignment.
    language: str = "auto"
    # base (multilingual, the default: see the README's table) | tiny.en (English only, faster) | a CTranslate2
    # Whisper folder; None: $MEDTALK_WHISPER_MODEL if set, else base
    asr_model: str | None = None
    # CPU threads of Whisper (CTranslate2); 0: the machine's cores shared among extract's workers, less the one
    # the face stage holds beside it (all of them when the stage is used alone). Output is the same whatever the
    # count (checked on 13 real clips), so it is not part of the words settings hash.
    asr_threads: int = 0
    # auto: audio up to 9 s long (a clip or a chunk) is read in a 10 s Whisper window, not 30 s, to detect its language
    # and to transcribe English (a short window changed Mandarin characters); full: always Whisper's 30 s window.
    # auto: the same words on the 24 real clips compared, 4.5x faster on 3 s clips (README, "Whisper's window").
    asr_window: str = "auto"
    beam_size: int = 1  # Whisper beam width; 1 (greedy) measured WER 0 on the RAVDESS test clips, and is fastest
    vad: bool = True  # Silero VAD (bundled with faster-whisper) skips silence and most music
    # long audio is read and recognised in chunks this long, cut at the quietest 100 ms of the last 5 s;
    # bounds memory (a 60 s chunk is two Whisper windows) and the length of each alignment search
    chunk_s: float = 60.0
    # drop ASR segments whose no-speech probability is above 1 - this and whose text is unlikely (Whisper's rule)
    min_speech_prob: float = 0.4
    whisperx_model: str | None = None  # whisperx backend: local CTranslate2 Whisper folder (required)
    whisperx_align_model: str | None = None  # whisperx backend: local wav2vec2 CTC folder for the language

    def problems(self) -> list[str]:
        found = []
        if self.backend not in BACKENDS:
            found.append(f"words.backend: unknown {self.backend!r}; choose from {list(BACKENDS)}")
        if not isinstance(self.language, str) or not self.language:
            found.append(f"words.language: must be an ISO code such as 'en', or 'auto', got {self.language!r}")
        if self.chunk_s < 5:
            found.append(f"words.chunk_s: must be >= 5 s, got {self.chunk_s}")
        if not isinstance(self.asr_threads, int) or self.asr_threads < 0:
            found.append(f"words.asr_threads: must be 0 (automatic) or a number of threads, got {self.asr_threads!r}")
        if self.asr_window not in ASR_WINDOWS:
            found.append(f"words.asr_window: unknown {self.asr_window!r}; choose from {list(ASR_WINDOWS)}")
        if self.beam_size < 1:
            found.append(f"words.beam_size: must be >= 1, got {self.beam_size}")
        if not 0.0 <= self.min_speech_prob <= 1.0:
            found.append(f"words.min_speech_prob: must be in [0, 1], got {self.min_speech_prob}")
        return found
