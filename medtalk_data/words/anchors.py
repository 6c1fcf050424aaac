"""Cut a long known transcript into pieces that are aligned one by one, using ASR words as anchors.

Forced alignment keeps every frame of its search in memory, and one word too many or too few in a
piece makes pocketsphinx's strict search place none of them, so the known transcript of long audio
is aligned piece by piece, and the cuts are chosen carefully:

1. every known word gets a time (:func:`known_times`): the audio is recognised chunk by chunk and,
   left to right, the not yet placed known words (a window a little longer than what this chunk and
   the next one recognised) are matched to the words recognised there (longest common subsequence of
   dictionary forms, :func:`word_times`). Matching locally, in order, keeps a repetitive text (the
   same sentence many times) from being matched to the wrong repetition;
2. the audio is cut in the middle of the longest quiet run in the second half of each ``piece_s``
   stretch (:func:`plan_cuts`), and each piece takes the known words whose times fall in it; a
   recognised word's time is the energy-weighted centre of its span (:func:`voiced_centre`).

The words stay the known ones; recognition only decides where the transcript is cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .align import dictionary_form

WINDOW_FACTOR = 1.5  # known words considered per recognised word of this chunk and the next
WINDOW_MARGIN = 20  # … plus this many
FRAME_S = 0.01  # energy envelope frame
QUIET_RATIO = 0.1  # a frame quieter than this share of the speech level (-20 dB) is a pause
PAUSE_S = 0.3  # a quiet run at least this long inside a recognised word's span is a pause, not a stop consonant


@dataclass(frozen=True)
class ChunkWords:
    start_s: float
    end_s: float
    recognised: list[tuple[str, float]]  # (word, time in s) in time order


class VoicedClock:
    """Time measured in seconds of sound: unmatched words are interpolated on this clock, so they land
    where there is speech, not in a pause between two recognised words."""

    def __init__(self, envelope: np.ndarray, threshold: float) -> None:
        loud = (envelope >= threshold).astype(np.float64)
        # silence still ticks a little, so the clock is strictly increasing and can be inverted
        self._v = np.concatenate([[0.0], np.cumsum(loud + 1e-3)]) * FRAME_S
        self._t = np.arange(len(self._v)) * FRAME_S

    def to_voiced(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self._t, self._v)

    def to_time(self, v: np.ndarray | float) -> np.ndarray:
        return np.interp(v, self._v, self._t)


def lcs_pairs(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of a longest common subsequence of ``a`` and ``b``, earliest in ``a`` (O(len(a)·len(b)))."""
    if not a or not b:
        return []
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=np.int32)
    bb = np.array(b, dtype=object)
    for i, word in enumerate(a, 1):
        match = bb == word
        candidate = np.maximum(table[i - 1, 1:], np.where(match, table[i - 1, :-1] + 1, 0))
        table[i, 1:] = np.maximum.accumulate(candidate)
    # Walk back preferring to leave out trailing words of ``a``: matches sit as early in ``a`` as they can,
    # so a window of ``a`` longer than what ``b`` says is matched from its start.
    pairs = []
    i, j = len(a), len(b)
    while i and j:
        if table[i - 1, j] == table[i, j]:
            i -= 1
        elif a[i - 1] == b[j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        else:
            j -= 1
    return pairs[::-1]


def known_times(tokens: list[str], chunks: list[ChunkWords], clock: VoicedClock | None = None) -> np.ndarray:
    """A time (s, non-decreasing) for each known word, from what each chunk recognised (see the module doc)."""
    forms = [dictionary_form(t) for t in tokens]
    times = np.zeros(len(tokens))
    p = 0
    for k, chunk in enumerate(chunks):
        last = k == len(chunks) - 1
        following = chunk if last else chunks[k + 1]
        recognised = chunk.recognised + ([] if last else following.recognised)
        size = len(forms) if last else int(WINDOW_FACTOR * len(recognised)) + WINDOW_MARGIN
        window = word_times(forms[p : p + size], recognised, chunk.start_s, following.end_s, clock)
        end = p + (len(window) if last else int(np.searchsorted(window, chunk.end_s, side="left")))
        times[p:end] = window[: end - p]
        p = end
    times[p:] = chunks[-1].end_s if chunks else 0.0
    return np.maximum.accumulate(times) if len(times) else times


def split_known(tokens: list[str], chunks: list[ChunkWords]) -> list[range]:
    """The range of ``tokens`` each chunk says (consecutive, covering all tokens; the last takes the rest)."""
    times = known_times(tokens, chunks)
    edges = [0, *(int(np.searchsorted(times, c.end_s, side="left")) for c in chunks[:-1]), len(tokens)]
    return [range(edges[i], edges[i + 1]) for i in range(len(chunks))]


def plan_cuts(envelope: np.ndarray, duration_s: float, piece_s: float) -> list[float]:
    """Cut times that split ``duration_s`` into pieces of at most ``piece_s``, each at a pause.

    ``envelope``: RMS per :data:`FRAME_S` frame (:func:`medtalk_data.io.wav.energy_envelope`).
    Each cut lies in the second half of its stretch, in the middle of the longest run of quiet frames
    there (below :data:`QUIET_RATIO` of the stretch's 95th-percentile level); without one, in the
    quietest 100 ms. The audio, not the recogniser's word times, says where the pauses are: Whisper's
    word times often run on into the silence after a sentence.
    """
    cuts: list[float] = []
    start = 0.0
    while duration_s - start > piece_s:
        f0, lo, hi = (round(t / FRAME_S) for t in (start, start + piece_s / 2, start + piece_s))
        level = envelope[f0:hi]
        ref = float(np.percentile(level, 95)) if len(level) else 0.0
        half = envelope[lo:hi]
        if not len(half):
            cut = start + piece_s
        else:
            quiet = np.concatenate([[False], half <= QUIET_RATIO * ref, [False]])
            change = np.flatnonzero(np.diff(quiet.astype(np.int8)))
            runs = list(zip(change[::2], change[1::2], strict=True))  # [first, past-last) quiet frames
            if runs:
                a, b = max(runs, key=lambda r: r[1] - r[0])
                cut = (lo + (a + b) / 2) * FRAME_S
            else:
                width = min(len(half), round(0.1 / FRAME_S))
                smooth = np.convolve(half, np.ones(width) / width, mode="valid")
                cut = (lo + int(np.argmin(smooth)) + width / 2) * FRAME_S
        cut = float(min(max(cut, start + FRAME_S), start + piece_s))
        cuts.append(cut)
        start = cut
    return cuts


def voiced_centre(envelope: np.ndarray, start_s: float, end_s: float) -> float:
    """Energy-weighted centre of [start_s, end_s]: where a recognised word really is, even when its
    time span runs on into silence (the middle of the span where it carries no energy)."""
    f0 = int(start_s / FRAME_S)
    f1 = max(f0 + 1, int(np.ceil(end_s / FRAME_S)))
    weights = envelope[f0:f1].astype(np.float64) ** 2
    if not len(weights) or weights.sum() <= 0:
        return (start_s + end_s) / 2
    return float(((np.arange(f0, f0 + len(weights)) + 0.5) * FRAME_S * weights).sum() / weights.sum())


def segment_word_times(envelope: np.ndarray, spans: list[tuple[float, float]], speech_level: float) -> list[float]:
    """A time for each word of one recognised segment (``spans``: its words' (start, end) in s).

    Whisper's word times drift at sentence edges: a sentence's first word may start early, in the
    pause before it, and its last word may run on into the pause after it, or sit, zero-length, after
    that pause. So a word's span is first trimmed at a pause inside it (a run of at least
    :data:`PAUSE_S` below :data:`QUIET_RATIO` of ``speech_level``): a word in the first half of its
    segment keeps the part after the pause, one in the second half the part before. Its time is the
    energy-weighted centre of what is left (:func:`voiced_centre`); if no sound is left, it takes the
    time of the nearest sounding word of its segment (the previous one in the second half).
    """
    threshold = QUIET_RATIO * speech_level
    pause = max(1, round(PAUSE_S / FRAME_S))
    times: list[float | None] = []
    for i, (a, b) in enumerate(spans):
        f0 = int(a / FRAME_S)
        frames = envelope[f0 : max(f0 + 1, int(np.ceil(b / FRAME_S)))]
        loud = frames >= threshold
        if not loud.any():
            times.append(None)
            continue
        quiet = np.concatenate([[False], ~loud, [False]])
        change = np.flatnonzero(np.diff(quiet.astype(np.int8)))
        runs = [(r0, r1) for r0, r1 in zip(change[::2], change[1::2], strict=True) if r1 - r0 >= pause]
        lo, hi = 0, len(frames)
        if runs and i < len(spans) / 2:
            lo = runs[-1][1]
        elif runs:
            hi = runs[0][0]
        if not loud[lo:hi].any():
            times.append(None)
            continue
        times.append(voiced_centre(envelope, (f0 + lo) * FRAME_S, (f0 + hi) * FRAME_S))
    sounding = [i for i, t in enumerate(times) if t is not None]
    if not sounding:
        return [(a + b) / 2 for a, b in spans]
    out = []
    for i, t in enumerate(times):
        if t is None:
            before = [k for k in sounding if k < i]
            after = [k for k in sounding if k > i]
            t = times[before[-1]] if before and (i >= len(spans) / 2 or not after) else times[after[0]]
        out.append(float(t))  # type: ignore[arg-type]
    return out


def word_times(
    forms: list[str],
    recognised: list[tuple[str, float]],
    start_s: float,
    end_s: float,
    clock: VoicedClock | None = None,
) -> np.ndarray:
    """A time for each known word (dictionary ``forms``) from the recognised words of [start_s, end_s].

    Matched words (longest common subsequence) take their recognised time. Between two matches, the
    unmatched known words take, in order, the times of the unmatched recognised words there (a
    misrecognised word still says where speech was); any left over are interpolated by position, on
    ``clock`` when given (seconds of sound, so they land in the speech between the anchors) —
    except after the last match, where nothing recognised supports them: they get ``end_s`` (a later
    window places them), so a chunk never takes words its recognition does not account for.
    """
    pairs = lcs_pairs(forms, [dictionary_form(w) for w, _t in recognised])
    anchors = [(-1, -1, start_s), *((i, j, recognised[j][1]) for i, j in pairs), (len(forms), len(recognised), end_s)]
    times = np.zeros(len(forms))
    for (i0, j0, t0), (i1, j1, t1) in pairwise(anchors):
        if i0 >= 0:
            times[i0] = t0
        last_i, last_t = i0, t0
        for n in range(min(i1 - i0 - 1, j1 - j0 - 1)):  # substitutions: known word n of the run ↔ recognised word n
            last_i, last_t = i0 + 1 + n, recognised[j0 + 1 + n][1]
            times[last_i] = last_t
        rest = np.arange(last_i + 1, i1)
        if len(rest) and i1 == len(forms):
            times[rest] = end_s
        elif len(rest) and clock is not None:  # on the voiced clock: into the speech between the anchors
            v0, v1 = clock.to_voiced(last_t), clock.to_voiced(t1)
            times[rest] = clock.to_time(v0 + (v1 - v0) * (rest - last_i) / (i1 - last_i))
        elif len(rest):
            times[rest] = last_t + (t1 - last_t) * (rest - last_i) / (i1 - last_i)
    return np.maximum.accumulate(times) if len(times) else times
