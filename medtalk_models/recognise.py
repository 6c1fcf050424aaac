"""Can a viewer tell which emotion an animation shows? Recognisability of generated emotions.

Faces differ more between people than between one person's emotions, so every face is judged
relative to its own neutral: a real clip by its mean minus the mean of the same speaker's neutral
clip, an animation by its mean minus the neutral animation of the same speech. On those
displacements from neutral (per-clip means of the emotion-region channels: brows, lids, cheeks,
nose, mouth corners; each channel in units of its spread) a nearest-centroid classifier is fitted
at training time on the model's real labelled training clips of speakers with a neutral clip, and
kept in the checkpoint. `evaluate` animates the same held-out speech with every label and asks the
classifier which emotion each animation shows (accuracy over the non-neutral labels the model
trained, confusion matrix), next to the same classifier's accuracy on held-out *real* labelled
clips (the reference). How far each label moves the face: the displacement ratio
‖gen(e) − gen(neutral)‖ / ‖real(e) − real(neutral)‖ (real: the classifier's centroids; 1 = as
far as real faces move) and the cosine between the two directions (1 = the same direction). Image
and text control are judged the same way: held-out real faces (each labelled clip's most intense
frame) and descriptions that avoid the label word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INTENSITY = 0.8  # the user intensity every label is animated with
# A channel's spread is floored at this share of the median channel's: channels that hardly move in the fitting
# clips (MediaPipe's cheekSquint and noseSneer on MEAD: a spread of 0) would otherwise turn a 0.001 flicker of an
# animation into a distance of 10^6 that outweighs every other channel.
SPREAD_FLOOR_SHARE = 0.1
NEUTRAL = "neutral"

# Held-out descriptions for text control: none uses the label word or its training synonyms' exact wording.
CONTROL_DESCRIPTIONS: dict[str, str] = {
    "angry": "a face full of rage, scowling",
    "disgust": "a face recoiling from a foul smell",
    "fear": "a face in terror, dreading what comes next",
    "happy": "a face beaming with joy",
    "neutral": "a blank, unmoved face",
    "sad": "a face full of grief, on the verge of tears",
    "surprise": "a face struck with amazement at sudden news",
}


def clip_feature(curves: np.ndarray, channels: Any) -> np.ndarray:
    """The classifier's input for a clip: the mean over its (valid) frames of the classifier's channels."""
    return np.asarray(curves, np.float64)[:, channels].mean(0)


@dataclass
class EmotionClassifier:
    """Nearest centroid over per-clip mean curves of some channels, each channel scaled by its spread."""

    classes: np.ndarray  # (K,) label ids
    centroids: np.ndarray  # (K, D) per-class mean of the clip features
    scale: np.ndarray  # (D,) std of the clip features over the fitting clips
    channels: np.ndarray  # (D,) rig channel indices

    @classmethod
    def fit(cls, feats: np.ndarray, labels: np.ndarray, channels: list[int]) -> EmotionClassifier:
        classes = np.unique(labels)
        centroids = np.stack([feats[labels == c].mean(0) for c in classes])
        return cls(classes, centroids, floored_spread(feats.std(0)), np.asarray(channels, np.int64))

    def feature(self, curves: np.ndarray) -> np.ndarray:
        return clip_feature(curves, self.channels)

    def predict(self, feat: np.ndarray) -> int:
        d = (((self.centroids - feat) / self.scale) ** 2).sum(1)
        return int(self.classes[int(np.argmin(d))])

    def centroid(self, label: int) -> np.ndarray | None:
        hit = np.flatnonzero(self.classes == label)
        return self.centroids[int(hit[0])] if len(hit) else None

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"classes": self.classes, "centroids": self.centroids, "scale": self.scale, "channels": self.channels}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EmotionClassifier:
        return cls(
            np.asarray(arrays["classes"], np.int64),
            np.asarray(arrays["centroids"], np.float64),
            floored_spread(np.asarray(arrays["scale"], np.float64)),  # checkpoints from before the floor too
            np.asarray(arrays["channels"], np.int64),
        )


def classifier_channels(rig: Any) -> list[int]:
    """The channels emotions are judged on (and the displacement term of training counts): the rig's
    emotion region, or every channel of a rig without one."""
    return rig.indices("emotion") or list(range(rig.dim))


def floored_spread(spread: np.ndarray, share: float = SPREAD_FLOOR_SHARE) -> np.ndarray:
    """Per-channel spreads, none below ``share`` of the median channel's (nor below 1e-6)."""
    spread = np.asarray(spread, np.float64)
    return np.maximum(spread, max(share * float(np.median(spread)), 1e-6)) if spread.size else spread


def fit_emotion_classifier(data: Any, channels: list[int]) -> EmotionClassifier | None:
    """Fitted on the displacements from neutral of the clips of ``data`` (a TrainingData) whose label the
    manifest gives (a defaulted label of an unlabelled talking clip is no evidence of an emotion) and whose
    speaker has a neutral clip; None with fewer than two labels left."""
    clips = [c for c in data.clips if c.labelled and c.emotion >= 0]
    names = data.emotions
    feats = {}
    for c in clips:
        rows = slice(c.start, c.start + c.length)
        feats[c.clip_id] = clip_feature(data.curves[rows][data.valid[rows]], channels)
    moved = from_neutral([(c.speaker, names[c.emotion], feats[c.clip_id]) for c in clips])
    if len({label for label, _ in moved}) < 2:
        return None
    labels = np.array([names.index(label) for label, _ in moved])
    return EmotionClassifier.fit(np.stack([f for _, f in moved]), labels, channels)


def from_neutral(clips: list[tuple[str, str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """(speaker, label, feature) → (label, feature − the mean feature of that speaker's neutral clips), for
    the speakers that have a neutral clip (the others cannot be referenced and are left out)."""
    neutral: dict[str, list[np.ndarray]] = {}
    for speaker, label, feat in clips:
        if label == NEUTRAL:
            neutral.setdefault(speaker, []).append(feat)
    means = {speaker: np.mean(f, axis=0) for speaker, f in neutral.items()}
    return [(label, feat - means[speaker]) for speaker, label, feat in clips if speaker in means]


def displacement(gen: np.ndarray, gen_neutral: np.ndarray, real: np.ndarray, real_neutral: np.ndarray) -> dict:
    """How far (ratio of norms) and in which direction (cosine) a generated emotion moves the face from the
    generated neutral, against the real emotion's move from the real neutral."""
    g, r = np.asarray(gen) - np.asarray(gen_neutral), np.asarray(real) - np.asarray(real_neutral)
    ng, nr = float(np.linalg.norm(g)), float(np.linalg.norm(r))
    return {
        "ratio": ng / nr if nr > 0 else float("nan"),
        "cosine": float(g @ r / (ng * nr)) if ng > 0 and nr > 0 else float("nan"),
    }


def confusion(asked: list[str], named: list[str], labels: list[str]) -> list[list[int]]:
    """Rows: the emotion asked for (or shown, for real clips); columns: the emotion the classifier named."""
    at = {name: i for i, name in enumerate(labels)}
    table = [[0] * len(labels) for _ in labels]
    for a, n in zip(asked, named, strict=True):
        table[at[a]][at[n]] += 1
    return table


@dataclass
class SpeechClip:
    """Held-out speech the generated emotions are judged on."""

    clip_id: str
    audio_path: str
    transcript: str | None


@dataclass
class RealClip:
    """A held-out real labelled clip: its classifier feature, label and reference-image features."""

    clip_id: str
    speaker: str
    label: str
    feature: np.ndarray
    image: np.ndarray | None


class Judge:
    """Animates held-out speech under an emotion control and names the emotion the classifier sees in its
    displacement from the neutral animation of the same speech (mean features over the speech clips)."""

    def __init__(self, animator: Any, classifier: EmotionClassifier, speech: list[SpeechClip]) -> None:
        from .animate import EmotionControl

        self.animator, self.classifier, self.speech = animator, classifier, speech
        self.emotions: list[str] = list(animator.emotions)
        self.neutral = self.feature(EmotionControl(NEUTRAL, intensity=INTENSITY))

    def feature(self, control: Any) -> np.ndarray:
        """The mean classifier feature of the animations of every speech clip under ``control``."""
        feats = [
            self.classifier.feature(self.animator.animate(Path(s.audio_path), control, transcript=s.transcript).values)
            for s in self.speech
        ]
        return np.mean(feats, axis=0)

    def moved(self, control: Any) -> np.ndarray:
        """Displacement from the neutral animation."""
        return self.feature(control) - self.neutral

    def named(self, moved: np.ndarray) -> str:
        return self.emotions[self.classifier.predict(moved)]

    def controls(self, cases: list[tuple[str, Any, str]]) -> dict[str, Any]:
        """``cases``: (what drives it, EmotionControl, the emotion it should show) → what was named, accuracy."""
        rows = [{"control": what, "expected": expected, "named": self.named(self.moved(control))}
                for what, control, expected in cases]  # fmt: skip
        hits = [r["named"] == r["expected"] for r in rows]
        return {"cases": rows, "correct": f"{sum(hits)} of {len(hits)}", "accuracy": _share(hits)}


def recognisability(
    animator: Any,
    classifier: EmotionClassifier,
    speech: list[SpeechClip],
    real: list[RealClip],
    untrained: list[str],
) -> dict[str, Any] | None:
    """Generated labels, images and descriptions on held-out speech, scored by the training classifier; None
    when the model never trained neutral (nothing to measure displacements from)."""
    from .animate import EmotionControl

    if NEUTRAL in untrained or NEUTRAL not in animator.emotions:
        return None
    judge = Judge(animator, classifier, speech)
    emotions = judge.emotions
    known = [emotions[int(c)] for c in classifier.classes]
    asked = [label for label in known if label not in untrained and label != NEUTRAL]
    generated = {label: judge.moved(EmotionControl(label, intensity=INTENSITY)) for label in asked}
    gen_named = {label: judge.named(f) for label, f in generated.items()}
    out: dict[str, Any] = {
        "classifier": "nearest centroid on displacements from neutral (per-clip means of the emotion-region "
        "channels minus the same speaker's neutral clip, or the same speech's neutral animation), fitted at "
        "training time on the real labelled training clips",
        "speech_clips": [s.clip_id for s in speech],
        "intensity": INTENSITY,
        "labels_known_to_classifier": known,
        "untrained_labels": list(untrained),
        "generated": gen_named,
        "generated_accuracy": _share([gen_named[label] == label for label in asked]),
        "generated_correct": f"{sum(gen_named[label] == label for label in asked)} of {len(asked)}",
        "generated_confusion": {"labels": known, "rows": confusion(asked, [gen_named[a] for a in asked], known)},
    }
    known_real = [r for r in real if r.label in known]
    moved = from_neutral([(r.speaker, r.label, r.feature) for r in known_real])
    shown = [(label, f) for label, f in moved if label != NEUTRAL]
    real_named = [judge.named(f) for _, f in shown]
    real_hits = [n == label for n, (label, _) in zip(real_named, shown, strict=True)]
    out["real_clips"] = len(shown)
    out["real_accuracy"] = _share(real_hits)
    out["real_correct"] = f"{sum(real_hits)} of {len(real_hits)}"
    out["real_confusion"] = {"labels": known, "rows": confusion([label for label, _ in shown], real_named, known)}
    ids = {emotions[int(c)]: int(c) for c in classifier.classes}
    if NEUTRAL in ids:
        real_neutral = classifier.centroid(ids[NEUTRAL])
        out["displacement"] = {
            label: displacement(generated[label], np.zeros_like(real_neutral), classifier.centroid(ids[label]),
                                real_neutral)
            for label in asked
        }  # fmt: skip
    if "emotion_control" in animator.stages_done:
        out["text_control"] = judge.controls(
            [(f"--text {text!r}", EmotionControl(text=text, intensity=INTENSITY), e)
             for e, text in CONTROL_DESCRIPTIONS.items() if e in asked]
        )  # fmt: skip
        out["image_control"] = judge.controls(
            [(f"{r.clip_id} (most intense frame)", EmotionControl(image_features=r.image, intensity=INTENSITY), r.label)
             for r in known_real if r.image is not None and r.label in asked]
        )  # fmt: skip
    return out


def _share(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def markdown_lines(rec: dict[str, Any]) -> list[str]:
    """The recognisability section of the evaluate report."""
    lines = [
        "",
        f"Emotion recognisability (labels at intensity {rec['intensity']} on {len(rec['speech_clips'])} held-out "
        f"speech clips; {rec['classifier']}):",
        "",
        f"- generated labels named correctly: {rec['generated_correct']}"
        + (f" ({rec['generated_accuracy']:.2f})" if rec["generated_accuracy"] is not None else ""),
        f"- real held-out labelled clips named correctly (reference): {rec['real_correct']}"
        + (f" ({rec['real_accuracy']:.2f})" if rec["real_accuracy"] is not None else ""),
    ]
    if rec["untrained_labels"]:
        lines.append(
            f"- labels the model never trained (left out of the accuracy): {', '.join(rec['untrained_labels'])}"
        )
    for key, what in (("text_control", "text control (descriptions without the label word)"),
                      ("image_control", "image control (held-out real faces)"),
                      ("reference_images", "reference images")):  # fmt: skip
        if rec.get(key):
            lines.append(f"- {what} named correctly: {rec[key]['correct']}")
    lines += ["", "| label | named as | displacement ratio | cosine |", "|---|---|---:|---:|"]
    disp = rec.get("displacement", {})
    for label, name in rec["generated"].items():
        d = disp.get(label, {})
        ratio, cos = d.get("ratio", float("nan")), d.get("cosine", float("nan"))
        lines.append(f"| {label} | {name} | {_num(ratio)} | {_num(cos)} |")
    return lines


def _num(value: float) -> str:
    return f"{value:.2f}" if value is not None and np.isfinite(value) else "–"
