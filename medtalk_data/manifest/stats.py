"""Summary numbers of a manifest: what users check before training on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .read import load_manifest


def manifest_stats(path: Path) -> dict[str, Any]:
    m = load_manifest(path)
    rows = m.clips.select(
        ["split", "speaker", "emotion", "duration_s", "face_found_ratio", "n_frames", "words", "kind", "has_audio"]
    ).to_pylist()
    hours = sum(r["duration_s"] for r in rows) / 3600
    video = [r for r in rows if r["kind"] == "video" and r["n_frames"] > 0]
    frames = sum(r["n_frames"] for r in video)
    words = [w for r in rows for w in r["words"]]
    table: dict[str, Counter[str]] = {}
    for r in rows:
        table.setdefault(r["emotion"] or "unlabelled", Counter())[r["split"]] += 1
    return {
        "clips": len(rows),
        "hours": round(hours, 4),
        "frames": frames,
        "speakers": len({r["speaker"] for r in rows}),
        "speakers_per_split": {
            s: len({r["speaker"] for r in rows if r["split"] == s}) for s in ("train", "val", "test")
        },
        "clips_per_split": dict(Counter(r["split"] for r in rows)),
        "emotions_by_split": {e: dict(c) for e, c in sorted(table.items())},
        "face_found_ratio": (sum(r["face_found_ratio"] * r["n_frames"] for r in video) / frames) if frames else None,
        "with_audio": sum(r["has_audio"] for r in rows),
        "words": len(words),
        "aligned_word_ratio": (sum(w["aligned"] for w in words) / len(words)) if words else None,
        "excluded": m.meta.get("n_excluded", 0),
    }
