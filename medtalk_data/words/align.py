"""Forced alignment of a transcript with pocketsphinx (US English): word and phone boundaries.

Words the dictionary cannot spell (digits, symbols, rare names) are left out of the alignment and
come back as ``None``; :func:`fill_unaligned` then places them by the documented fill policy.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Protocol

import numpy as np

from ..errors import MedtalkError
from .types import Phone, Word

FRAME_S = 0.01  # pocketsphinx's frame period
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")
FILL_POLICY_NAME = "interpolate"
FILL_POLICY = (
    "interpolate: a word the aligner could not place keeps aligned=false and gets its ASR times when those fall "
    "between its aligned neighbours; otherwise the gap between the neighbours is shared among the unplaced words "
    "in proportion to their length in characters"
)


def dictionary_form(word: str) -> str:
    """Lower case without surrounding punctuation (``"Door."`` → ``door``, ``don’t`` → ``don't``)."""
    return _EDGE_PUNCT.sub("", word.lower().replace("’", "'"))


class Aligner(Protocol):
    """What the words stage asks of an aligner: :class:`ForcedAligner` here, or in a child process
    (:class:`~.align_process.AlignerProcess`)."""

    def spell(self, word: str) -> list[str]: ...

    def align(self, pcm: np.ndarray, words: list[str]) -> tuple[list[tuple[float, float] | None], list[Phone]]: ...


class ForcedAligner:
    """One pocketsphinx decoder, reused for every utterance of a stage (loading it costs ~0.2 s).

    The decoder adapts its cepstral mean to the audio it hears; each :meth:`align` starts again from
    a freshly initialised feature pipeline, so an utterance's timings never depend on what was
    aligned before it (in this clip or an earlier one).
    """

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise MedtalkError("forced alignment needs pocketsphinx: pip install 'medtalk[speech]'") from err
        self._new_decoder = lambda: Decoder(samprate=16000, bestpath=False, logfn=os.devnull)
        self._decoder = self._new_decoder()

    def knows(self, form: str) -> bool:
        return bool(form) and self._decoder.lookup_word(form) is not None

    def spell(self, word: str) -> list[str]:
        """Dictionary words that say ``word`` (a hyphenated word may need several); [] if it cannot be spelled."""
        form = dictionary_form(word)
        if self.knows(form):
            return [form]
        parts = [p for p in form.split("-") if p]
        if len(parts) > 1 and all(self.knows(p) for p in parts):
            return parts
        return []

    def align(self, pcm: np.ndarray, words: list[str]) -> tuple[list[tuple[float, float] | None], list[Phone]]:
        """Boundaries (seconds from the start of ``pcm``) for each word, None where it could not be placed.

        ``pcm``: 16 kHz mono, float in [-1, 1] or int16. Memory grows with its length (the search keeps
        every frame): callers pass pieces of at most ``words.chunk_s`` seconds.
        """
        pieces = [self.spell(w) for w in words]
        spans: list[tuple[float, float] | None] = [None] * len(words)
        flat = [p for ps in pieces for p in ps]
        if not flat or len(pcm) < 1600:
            return spans, []
        owner = [i for i, ps in enumerate(pieces) for _ in ps]  # word index of each dictionary word
        raw = (np.clip(pcm, -1, 1) * 32767).astype(np.int16) if pcm.dtype != np.int16 else pcm
        d = self._decoder
        d.reinit_feat()  # a fresh feature pipeline: cepstral mean and its running sums as a new decoder has them
        try:
            d.set_align_text(" ".join(flat))
            # The first pass adapts the cepstral mean to this audio; a fresh decoder's default mean
            # makes the strict alignment search fail on some voices, so a failed first pass is run again.
            for _attempt in range(2):
                d.start_utt()
                d.process_raw(raw.tobytes(), full_utt=True)
                d.end_utt()
                first_pass = d.seg()
                if first_pass:
                    break
        except RuntimeError:  # pocketsphinx could not build or run the alignment search: nothing placed
            self._decoder = self._new_decoder()  # a failed search can leave the decoder unusable
            return spans, []
        first_pass = first_pass or []  # None when the text could not be aligned to the audio
        words_only = [(seg.word, seg.start_frame, seg.end_frame - seg.start_frame + 1) for seg in first_pass]
        try:  # a second pass gives phone-level segmentation; pocketsphinx refuses it for some inputs
            d.set_alignment()
            d.start_utt()
            d.process_raw(raw.tobytes(), full_utt=True)
            d.end_utt()
            alignment = d.get_alignment()
        except RuntimeError:
            alignment = None
            self._decoder = self._new_decoder()
        if alignment is None:
            items = [(s0, dur, []) for name, s0, dur in words_only if not _is_filler(name)]
            return self._place(items, owner, spans)
        # Entries are views into pocketsphinx's iterator: copy each one out before advancing.
        items = []
        for entry in alignment:
            if _is_filler(entry.name):
                continue
            segs = [(p.name, p.start, p.duration) for p in entry]
            items.append((entry.start, entry.duration, segs))
        return self._place(items, owner, spans)

    @staticmethod
    def _place(
        items: list[tuple[int, int, list[tuple[str, int, int]]]],
        owner: list[int],
        spans: list[tuple[float, float] | None],
    ) -> tuple[list[tuple[float, float] | None], list[Phone]]:
        if len(items) != len(owner):
            return spans, []
        phones: list[Phone] = []
        for index, (start, duration, segs) in zip(owner, items, strict=True):
            lo, hi = start * FRAME_S, (start + duration) * FRAME_S
            previous = spans[index]
            spans[index] = (previous[0], hi) if previous else (lo, hi)  # pieces of one word merge
            phones += [Phone(name, s0 * FRAME_S, (s0 + dur) * FRAME_S, index) for name, s0, dur in segs]
        return spans, phones


def _is_filler(name: str) -> bool:
    return name.startswith(("<", "[", "+"))


def fill_unaligned(
    words: list[Word], total_s: float, asr_spans: list[tuple[float, float] | None] | None = None
) -> list[Word]:
    """Place every unaligned word by :data:`FILL_POLICY`; aligned words are returned unchanged.

    ``asr_spans[i]``: the ASR's own times for word ``i`` (None where there are none, e.g. a known transcript).
    """
    out = list(words)
    i = 0
    while i < len(out):
        if out[i].aligned:
            i += 1
            continue
        j = i
        while j < len(out) and not out[j].aligned:
            j += 1
        lo = out[i - 1].end_s if i > 0 else 0.0
        hi = out[j].start_s if j < len(out) else total_s
        hi = max(hi, lo)
        run = range(i, j)
        asr = [asr_spans[k] if asr_spans else None for k in run]
        if all(a is not None and lo - 1e-3 <= a[0] <= a[1] <= hi + 1e-3 for a in asr):
            for k, a in zip(run, asr, strict=True):
                out[k] = replace(out[k], start_s=a[0], end_s=a[1])  # type: ignore[index]
        else:
            lengths = np.array([max(1, len(out[k].text)) for k in run], dtype=float)
            edges = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum()])
            for n, k in enumerate(run):
                out[k] = replace(out[k], start_s=float(edges[n]), end_s=float(edges[n + 1]))
        i = j
    return out
