"""Word and phone records. Times are seconds; the stage converts them to clip video time."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace


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
