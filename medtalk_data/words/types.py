"""Word and phone records. Times are seconds; the stage converts them to clip video time."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    score: float = math.nan  # ASR word probability in [0, 1]; NaN where there is none (known transcript)
    aligned: bool = False  # True: boundaries from the forced aligner; False: filled (see fill policy)

    def shifted(self, offset: float) -> Word:
        return replace(self, start_s=self.start_s + offset, end_s=self.end_s + offset)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["start_s"], d["end_s"] = round(self.start_s, 6), round(self.end_s, 6)
        d["score"] = None if math.isnan(self.score) else round(self.score, 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        """Inverse of :meth:`to_dict`: a null score (known transcript, no ASR) becomes NaN."""
        score = d.get("score")
        return cls(str(d["text"]), float(d["start_s"]), float(d["end_s"]),
                   math.nan if score is None else float(score), bool(d.get("aligned", False)))  # fmt: skip


@dataclass
class WordsSummary:
    """What the words stage made of one clip (status.json ``words``; the warnings go to the clip's list)."""

    n_words: int = 0
    n_aligned: int = 0
    n_phones: int = 0
    source: str = "none"  # "asr", "known" or "none"
    backend: str = ""
    language: str = ""
    language_probability: float | None = None  # where the language was detected, Whisper's confidence
    seconds: float = 0.0
    rtf: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "warnings"}


@dataclass(frozen=True)
class Phone:
    phone: str  # ARPAbet, stress-free (pocketsphinx's US English model)
    start_s: float
    end_s: float
    word_index: int

    def shifted(self, offset: float) -> Phone:
        return replace(self, start_s=self.start_s + offset, end_s=self.end_s + offset)

    def to_dict(self) -> dict[str, object]:
        return {"phone": self.phone, "start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6),
                "word_index": self.word_index}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Phone:
        return cls(str(d["phone"]), float(d["start_s"]), float(d["end_s"]), int(d["word_index"]))


def untangle(words: list[Word], phones: list[Phone]) -> tuple[list[Word], list[Phone]]:
    """Make word times non-decreasing where two separately aligned ASR segments overlap.

    Each segment is aligned with some audio padding, so the last word of one segment can end after
    the first word of the next begins. The later segment's timing is trusted: the earlier word is cut
    where the later one starts (if the later one even starts first, both meet at the earlier one's
    start); phones are then clipped into their word's span."""
    out = list(words)
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if cur.start_s >= prev.end_s:
            continue
        cut = max(prev.start_s, cur.start_s)
        out[i - 1] = replace(prev, end_s=cut)
        if cur.start_s < cut:
            out[i] = replace(cur, start_s=cut, end_s=max(cur.end_s, cut))
    clipped = []
    for p in phones:
        if 0 <= p.word_index < len(out):
            w = out[p.word_index]
            start = min(max(p.start_s, w.start_s), w.end_s)
            p = replace(p, start_s=start, end_s=min(max(p.end_s, start), w.end_s))
        clipped.append(p)
    return out, clipped


@dataclass(frozen=True)
class WordsDoc:
    """What a clip's ``words.json`` holds for the consumers downstream (the manifest build)."""

    language: str | None
    transcript: str
    source: str  # "asr", "known" or "none"
    words: list[Word]
    phones: list[Phone]
    backend: str = ""  # "faster-whisper+pocketsphinx", "pocketsphinx" (known text), "faster-whisper", "whisperx"…
    language_probability: float | None = None

    @property
    def aligner(self) -> str | None:
        """What timed the words: the forced aligner, else the recogniser itself ("none": spread by length)."""
        return self.backend.split("+")[-1] if self.backend else None


def read_words_json(path: Path) -> WordsDoc:
    """Read a ``words.json`` written by the words stage; ValueError (naming nothing: the caller names the
    file) when it is not valid JSON of that shape."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    try:
        words = [Word.from_dict(w) for w in doc.get("words", [])]
        phones = [Phone.from_dict(p) for p in doc.get("phones", [])]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"a word or phone entry is malformed ({type(err).__name__}: {err})") from err
    probability = doc.get("language_probability")
    return WordsDoc(
        doc.get("language"),
        str(doc.get("transcript") or ""),
        str(doc.get("source", "")),
        words,
        phones,
        str(doc.get("backend") or ""),
        None if probability is None else float(probability),
    )
