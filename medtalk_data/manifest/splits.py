"""Speaker-disjoint, deterministic train/val/test splits.

Speakers are ordered by a seeded hash of their name (so the order does not depend on the order
clips were found), then test and val are filled, speaker by speaker, until each holds at least
its share of the clips; every other speaker is train. The same speakers, seed and ratios always
give the same split, and no speaker is ever in two splits.
"""

from __future__ import annotations

import hashlib
from collections import Counter


def _rank(speaker: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{speaker}".encode()).hexdigest()


def assign_splits(clip_speakers: dict[str, str], *, val: float, test: float, seed: int) -> dict[str, str]:
    """Map clip_id → "train" | "val" | "test" from clip_id → speaker."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"split ratios must be in [0, 1) and leave room for train: val={val}, test={test}")
    per_speaker = Counter(clip_speakers.values())
    total = sum(per_speaker.values())
    order = sorted(per_speaker, key=lambda s: _rank(s, seed))
    speaker_split: dict[str, str] = {}
    filled = {"test": 0, "val": 0}
    targets = {"test": test * total, "val": val * total}
    remaining = len(order)
    for speaker in order:
        chosen = "train"
        for name in ("test", "val"):
            # leave at least one speaker for train; stop a split once it reached its share
            if targets[name] > 0 and filled[name] < targets[name] and remaining > 1:
                chosen = name
                break
        if chosen != "train":
            filled[chosen] += per_speaker[speaker]
        speaker_split[speaker] = chosen
        remaining -= 1
    return {clip: speaker_split[spk] for clip, spk in clip_speakers.items()}
