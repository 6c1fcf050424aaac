"""Which emotion labels a model was trained on, per stage: counted at training time, kept in the
checkpoint, shown by `train`, `evaluate` and `zoo info RUN`, and repeated by `animate` when a label
that never trained is asked for.

A label's embedding (stage ``intensity``) and its descriptions (stage ``emotion_control``) only
learn from clips carrying that label; a label without clips keeps its random initialisation, and
asking for it gives an arbitrary face rather than the emotion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LABEL_STAGES = ("intensity", "emotion_control")  # the stages whose modules learn from labels


@dataclass
class LabelCount:
    """How much of one label a stage trained on."""

    clips: int = 0
    frames: int = 0  # valid rig frames
    with_audio: int = 0  # clips that also have audio (they train the audio + text intensity predictor)
    defaulted: int = 0  # clips without a label, trained as this one through data.default_emotion


@dataclass
class LabelCoverage:
    """Per stage, per label: the clips and frames it trained on."""

    emotions: list[str]
    stages: dict[str, dict[str, LabelCount]] = field(default_factory=dict)

    def count(self, stage: str, clips: list[Any], valid_frames: list[int]) -> None:
        """Record a stage's training clips (objects with ``emotion``, ``has_audio``, ``labelled``)."""
        counts = {name: LabelCount() for name in self.emotions}
        for clip, frames in zip(clips, valid_frames, strict=True):
            if clip.emotion < 0:
                continue
            c = counts[self.emotions[clip.emotion]]
            c.clips += 1
            c.frames += int(frames)
            c.with_audio += int(bool(clip.has_audio))
            c.defaulted += int(not clip.labelled)
        self.stages[stage] = counts

    def untrained(self) -> list[str]:
        """Labels no label stage saw a clip of (all labels when no label stage has run)."""
        seen = {name for counts in self.stages.values() for name, c in counts.items() if c.clips}
        return [name for name in self.emotions if name not in seen]

    def to_dict(self) -> dict[str, Any]:
        return {
            "emotions": list(self.emotions),
            "stages": {s: {k: asdict(v) for k, v in counts.items()} for s, counts in self.stages.items()},
            "untrained": self.untrained() if self.stages else [],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LabelCoverage | None:
        if not data:
            return None
        stages = {s: {k: LabelCount(**v) for k, v in counts.items()} for s, counts in data["stages"].items()}
        return cls(list(data["emotions"]), stages)

    def table(self) -> list[str]:
        """One line per label: clips (with audio) and frames per label stage, and what was never seen."""
        stages = [s for s in LABEL_STAGES if s in self.stages]
        if not stages:
            return []
        head = f"{'label':<10}" + "".join(f" {s + ': clips (audio) frames':>38}" for s in stages)
        lines = [head]
        for name in self.emotions:
            cells = []
            for s in stages:
                c = self.stages[s][name]
                note = f", {c.defaulted} unlabelled" if c.defaulted else ""
                cells.append(f" {f'{c.clips} ({c.with_audio} with audio{note}) {c.frames}':>38}")
            lines.append(f"{name:<10}" + "".join(cells))
        return lines

    def summary(self) -> str:
        """One line: the labels learned, and those never seen (which animate cannot show)."""
        untrained = self.untrained()
        learned = [name for name in self.emotions if name not in untrained]
        line = f"labels learned: {', '.join(learned) or 'none'}"
        if untrained:
            line += f"; never seen (animate cannot show them): {', '.join(untrained)}"
        return line

    def warnings(self) -> list[str]:
        return [untrained_warning(name) for name in self.untrained()]


def untrained_warning(label: str) -> str:
    return (
        f"label {label!r} was never seen in training: `animate --emotion {label}` will not show {label} "
        f"(add clips labelled {label!r} and retrain stages intensity and emotion_control)"
    )


def coverage_of(meta: dict[str, Any]) -> LabelCoverage | None:
    """The label coverage a checkpoint's meta.json records (None for checkpoints from before it was kept)."""
    return LabelCoverage.from_dict(meta.get("label_coverage"))
