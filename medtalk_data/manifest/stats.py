"""Summary numbers of a manifest: what users check before training on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .read import load_manifest


def manifest_stats(path: Path) -> dict[str, Any]:
    m = load_manifest(path)
    rows = m.clips.select(
        ["split", "speaker", "emotion", "duration_s", "face_found_ratio", "n_frames", "words", "kind", "has_audio",
         "dataset"]
    ).to_pylist()  # fmt: skip
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
        "warnings": _speaker_warnings(rows),
    }


def _speaker_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """A speaker holding clips of several datasets is most likely a folder of different people."""
    datasets: dict[str, set[str]] = {}
    for r in rows:
        datasets.setdefault(r["speaker"], set()).add(r["dataset"])
    return [
        f"speaker {speaker!r} holds clips of {len(names)} datasets ({', '.join(sorted(names))}): probably several "
        "people under one folder name; re-extract with --speaker-from none|file or name speakers in a labels CSV, "
        "else the speaker-disjoint splits are not"
        for speaker, names in sorted(datasets.items())
        if len(names) > 1
    ]
