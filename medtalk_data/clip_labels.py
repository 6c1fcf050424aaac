"""A clip's labels: what its dataset's file names (a recipe) and a user's labels CSV say about it.

One typed record read by extraction (the words stage reads the transcript and language), written
into each clip's status.json, and turned into manifest columns by ``build-manifest``. Recipes may
add keys of their own (``modality``, ``repetition``…): they travel in :attr:`ClipLabels.extra`
and come back out in :meth:`ClipLabels.to_dict`, so status.json keeps the recipe's whole answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# Every recipe gives these (None where the dataset does not say); pipelines.registry fills them.
LABEL_KEYS = (
    "dataset",  # recipe's dataset name
    "speaker",  # "<dataset>:<id>" so speakers of different datasets never collide
    "sex",  # "M" / "F" / None
    "emotion",  # canonical (medtalk_data.emotions.CANONICAL_EMOTIONS) or None
    "emotion_raw",  # the dataset's own label, always kept
    "emotion_level_raw",  # the dataset's own intensity level ("strong", "level_3", "HI"…)
    "intensity",  # 0–1 float (per-dataset rule in each recipe) or None
    "content_id",  # same string ⇔ same sentence (across emotions, levels, takes); None if unknown
    "transcript",  # known sentence text, or None
    "language",  # ISO 639-1 code ("en", "zh") or None
    "view",  # camera / view angle where the dataset has several ("front", "left_30"…)
    "pair_key",  # same string ⇔ same take (video, its separate audio, its rig file)
    "rig_curves_path",  # absolute path of a ground-truth rig file beside the clip (EmoFace/MEDTalk)
)


@dataclass
class ClipLabels:
    dataset: str | None = None
    speaker: str | None = None
    sex: str | None = None
    emotion: str | None = None
    emotion_raw: str | None = None
    emotion_level_raw: Any = None
    intensity: float | None = None
    content_id: str | None = None
    transcript: str | None = None
    language: str | None = None
    view: str | None = None
    pair_key: str | None = None
    rig_curves_path: str | None = None
    recipe: str | None = None  # the recipe that read them
    variant: str | None = None  # EmoFace: actor | render | audio
    rig_names_path: str | None = None  # EmoFace: the rig's channel-name file
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a recipe's own

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ClipLabels:
        known = {f.name for f in fields(cls)} - {"extra"}
        data = data or {}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            extra={k: v for k, v in data.items() if k not in known and not k.startswith("_")},
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping status.json stores (the recipe's own keys beside the common ones)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}

    def words_inputs(self) -> tuple[str | None, str | None]:
        """(transcript, language): the labels the words stage reads; a change makes its output stale."""
        return self.transcript or None, self.language or None
