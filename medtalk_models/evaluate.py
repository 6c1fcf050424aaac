"""`medtalk-models evaluate`: a trained model against the ground truth of a manifest, next to
baselines scored in the same run on the same clips.

For every clip of the split (``all``: every clip, e.g. a manifest of other speakers) that has audio
and curves, the model animates the clip's own audio with the clip's label (neutral when it has
none) and transcript; the prediction is put on the ground truth's frame times (audio offset
included) and scored (:mod:`medtalk_models.metrics`): agreement with the real face per channel
group (Pearson r at the best lag within ±3 frames, amplitude ratio), lip sync with the audio, and
the MEDTalk-style MLE/MEE/EIE/FRD/LVE/FDD.

The ladder of baselines, from the checkpoint (:mod:`medtalk_models.baselines`, fitted on the
model's own training frames): the mean pose; an audio-energy jaw heuristic (mean pose with the
mouth-opening channel following the clip's loudness between its training 5th and 95th
percentiles); ridge regression from the same audio features per frame and with ±k frames of
context. And the ground truth of another clip (shuffled), which keeps real motion but breaks its
link with this audio.

Emotions (:mod:`medtalk_models.recognise`): the checkpoint's emotion classifier, fitted on the real
labelled training clips, names the emotion of every label animated on the same held-out speech, next
to its accuracy on the split's real labelled clips (video-only ones included); the checkpoint's table
of the labels it trained closes the report.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.flame.model_file import FLAME_MODEL_ENV
from medtalk_data.io.files import atomic_write_text
from medtalk_data.io.wav import read_wav
from medtalk_data.manifest import load_manifest
from medtalk_data.rigs import is_flame

from .animate import Animator, EmotionControl, model_folder
from .baselines import RIDGE_NAMES, TrainingBaselines
from .checkpoint import load_extra
from .data import TrainingData
from .labels import LabelCoverage, coverage_of
from .metrics import agreement, audio_envelope, eie, fdd, frd, lip_sync, lve, mee, mle, upper_face_vertices
from .recognise import (
    EmotionClassifier,
    RealClip,
    SpeechClip,
    classifier_channels,
    fit_emotion_classifier,
    recognisability,
)
from .recognise import markdown_lines as recognition_lines

log = logging.getLogger(__name__)

METHODS = ("model", "ridge_context", "ridge", "energy_jaw", "mean_pose", "shuffled_gt")
AGREEMENT = ("r_mouth", "lag_mouth", "amp_mouth", "r_jaw", "amp_jaw", "r_upper", "amp_upper", "r_all", "amp_all")
METRICS = (*AGREEMENT, "MLE", "MEE", "EIE", "FRD", "FRD_abs", "LVE", "FDD", "lip_sync_r", "lip_sync_lag")
MAX_LAG = 3  # frames of lag allowed when comparing with the real face
CHANNEL_METHODS = ("model", "ridge_context")  # whose agreement is also reported channel by channel (mouth group)


class MeshScorer:
    """LVE and FDD on the canonical face mesh driven by the blendshape basis (ARKit-named rigs only)."""

    def __init__(self, names: list[str]) -> None:
        from .render.basis import default_basis

        self.basis = default_basis()
        self.names = names
        self.upper = upper_face_vertices(self.basis.neutral)

    def __call__(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        vp = self.basis.vertices(self.basis.weights_from(pred, self.names))
        vg = self.basis.vertices(self.basis.weights_from(gt, self.names))
        return {"LVE": lve(vp, vg), "FDD": fdd(vp, vg, self.basis.neutral, self.upper)}


def _scores(pred: np.ndarray, gt: np.ndarray, rig, envelope: np.ndarray, opening: int, mesh) -> dict[str, float]:
    mouth, emo, upper, inten = (rig.indices(g) for g in ("mouth", "emotion", "upper", "intensity"))
    r, lag = lip_sync(pred[:, opening], envelope) if opening >= 0 else (float("nan"), 0)
    vertex = mesh(pred, gt) if mesh is not None else {"LVE": float("nan"), "FDD": float("nan")}
    r_mouth, lag_mouth, amp_mouth = agreement(pred, gt, mouth, MAX_LAG)
    r_jaw, _, amp_jaw = agreement(pred, gt, [opening] if opening >= 0 else [], MAX_LAG)
    r_upper, _, amp_upper = agreement(pred, gt, upper, MAX_LAG)
    r_all, _, amp_all = agreement(pred, gt, list(range(rig.dim)), MAX_LAG)
    return {
        "r_mouth": r_mouth,
        "lag_mouth": float(lag_mouth),
        "amp_mouth": amp_mouth,
        "r_jaw": r_jaw,
        "amp_jaw": amp_jaw,
        "r_upper": r_upper,
        "amp_upper": amp_upper,
        "r_all": r_all,
        "amp_all": amp_all,
        **vertex,
        "MLE": mle(pred, gt, mouth) if mouth else float("nan"),
        "MEE": mee(pred, gt, emo) if emo else float("nan"),
        "EIE": eie(pred, gt, inten),
        "FRD": frd(pred, gt, upper) if upper else float("nan"),
        "FRD_abs": frd(pred, gt, upper, absolute=True) if upper else float("nan"),
        "lip_sync_r": r,
        "lip_sync_lag": float(lag),
    }


def _opening_channel(rig) -> int:
    names = list(rig.channel_names)
    for name in ("jawOpen", "CTRL_C_jaw-translateY"):
        if name in names:
            return names.index(name)
    mouth = rig.indices("mouth")
    return mouth[0] if mouth else -1


def evaluate(
    checkpoint: Path,
    manifest_path: Path,
    split: str = "test",
    device: str = "cpu",
    emotion_speech: int = 5,
    flame_files: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Score a checkpoint on the clips of ``split`` (``all``: every clip) of a manifest; see the module doc.
    ``emotion_speech``: how many of the split's speech clips every label is animated on (0: no recognisability).
    ``flame_files`` (``model_path``, ``masks_path``, ``embedding_path``): the user's FLAME files, for LVE/FDD on
    FLAME's mesh when the model's rig is FLAME (the model path also from ``$MEDTALK_FLAME_MODEL``)."""
    animator = Animator(checkpoint, device=device)
    try:
        return _evaluate(animator, manifest_path, split, emotion_speech, flame_files or {})
    finally:
        animator.close()


def _emotion_classifier(
    animator: Animator, manifest, rig, cfg, split: str, notes: list[str]
) -> EmotionClassifier | None:
    """The checkpoint's classifier. An older checkpoint has none: one is fitted on the evaluated manifest's train
    split when another split is evaluated (never on the clips being judged)."""
    arrays = load_extra(model_folder(animator.checkpoint), "emotion_classifier")
    if arrays is not None:
        return EmotionClassifier.from_arrays({k: v.numpy() for k, v in arrays.items()})
    if not animator.meta.get("label_coverage"):  # trained before classifiers were kept
        if split in ("all", "train"):
            notes.append(
                "this checkpoint stores no emotion classifier (trained before it was kept): no recognisability"
            )
            return None
        channels = classifier_channels(rig)
        fitted = fit_emotion_classifier(TrainingData(manifest, rig, cfg, "train", set()), channels)
        notes.append(
            "this checkpoint stores no emotion classifier (trained before it was kept)"
            + ("; fitted on this manifest's train split" if fitted else "; no recognisability")
        )
        return fitted
    notes.append(
        "no emotion recognisability: the training clips hold fewer than two labels among speakers with a neutral "
        "clip (the classifier judges displacements from each speaker's neutral)"
    )
    return None


def _real_labelled(data: TrainingData, classifier: EmotionClassifier, image_kind: str) -> list[RealClip]:
    """The split's clips with a label from the manifest (with or without audio), for the reference accuracy
    and image control (the stored blendshape scores of the manifest's reference frame; other image encoders: none)."""
    out = []
    for clip in data.clips:
        if not clip.labelled:
            continue
        rows = slice(clip.start, clip.start + clip.length)
        image = None
        if image_kind == "blendshapes" and clip.row.reference_frame is not None and clip.row.face_found_ratio:
            image = data.manifest.reference_blendshapes(clip.row)
        feature = classifier.feature(data.curves[rows][data.valid[rows]])
        out.append(RealClip(clip.clip_id, clip.speaker, data.emotions[clip.emotion], feature, image))
    return out


def _training_baselines(animator: Animator, manifest, rig, cfg) -> tuple[TrainingBaselines | None, list[str]]:
    """The checkpoint's baselines; for an older checkpoint without them, the mean pose and channel ranges of
    the evaluated manifest's train split (and no ridge rows), said in a note."""
    arrays = load_extra(model_folder(animator.checkpoint), "baselines")
    if arrays is not None:
        return TrainingBaselines.from_arrays({k: v.numpy() for k, v in arrays.items()}), []
    note = "this checkpoint stores no training baselines (trained before they were added): ridge rows are missing"
    train = TrainingData(manifest, rig, cfg, "train", set())
    if not len(train.clips):
        return None, [note + "; the mean pose cannot be computed either (the manifest has no train split)"]
    frames = train.curves[train.valid].astype(np.float64)
    low, high = np.percentile(frames, [5, 95], axis=0)
    return TrainingBaselines(frames.mean(0), low, high, None, None), [
        note + "; mean pose and ranges from this manifest's train split"
    ]


def _empty_split_message(manifest_path: Path, manifest, split: str) -> str:
    speakers = len(set(manifest.clips["speaker"].to_pylist()))
    splits = sorted(set(manifest.clips["split"].to_pylist()))
    hint = (
        f"its {speakers} speaker{'s' * (speakers != 1)} fill only the split(s) {', '.join(splits)} (splits are "
        "speaker-disjoint); evaluate on a manifest of other speakers with --split all"
    )
    return f"{manifest_path}: no clip of split {split!r} has audio and curves to evaluate on; {hint}"


def _mesh_scorer(rig, flame_files: dict[str, str | None], notes: list[str]):
    """LVE/FDD's mesh: the canonical face for ARKit rigs, the user's FLAME for FLAME rigs (where given)."""
    names = list(rig.channel_names)
    if "jawOpen" in names:
        return MeshScorer(names)
    if not is_flame(names):
        return None
    if not (flame_files.get("model_path") or os.environ.get(FLAME_MODEL_ENV)):
        notes.append(f"LVE/FDD on FLAME's mesh need your FLAME model: --flame-model (or ${FLAME_MODEL_ENV})")
        return None
    from .flame_mesh import FlameMeshScorer

    scorer = FlameMeshScorer(names, **flame_files)
    notes.append(f"LVE (mm²) and FDD (mm) on FLAME's mesh; lip and upper-face vertices from {scorer.regions_from}")
    return scorer


def _evaluate(
    animator: Animator, manifest_path: Path, split: str, emotion_speech: int, flame_files: dict[str, str | None]
) -> dict[str, Any]:
    manifest = load_manifest(manifest_path)
    rig = animator.rig
    if list(manifest.channel_names) != [n.split("#")[0] for n in rig.channel_names]:
        raise MedtalkError(
            f"{manifest_path}: manifest rig {manifest.meta.get('rig')!r} ({len(manifest.channel_names)} channels) "
            f"is not the model's {rig.name!r} ({rig.dim}); evaluate on a manifest of the model's rig"
        )
    cfg = dict(animator.cfg)
    cfg["data"] = {**cfg["data"], "window_frames": None}  # whole clips
    data = TrainingData(manifest, rig, cfg, None if split == "all" else split, {"audio"}, animator.backbones)
    clips = list(data.clips)
    if not clips:
        raise MedtalkError(_empty_split_message(manifest_path, manifest, split))
    baselines, notes = _training_baselines(animator, manifest, rig, cfg)
    opening = _opening_channel(rig)
    mouth = rig.indices("mouth")
    mesh = _mesh_scorer(rig, flame_files, notes)
    donors = None  # one clip: another clip's truth comes from the manifest's other clips
    if len(clips) == 1:
        donors = TrainingData(manifest, rig, cfg, None, set())
        donors.clips = [c for c in donors.clips if c.clip_id != clips[0].clip_id]
    per_clip = []
    for i, clip in enumerate(clips):
        rows = slice(clip.start, clip.start + clip.length)
        gt, valid = data.curves[rows], data.valid[rows]
        label = animator.emotions[clip.emotion] if clip.emotion >= 0 else "neutral"
        wav = data.audio_file(clip)
        result = animator.animate(wav, EmotionControl(label), transcript=clip.transcript or None)
        audio_t = np.arange(clip.length) / rig.fps - clip.audio_offset_s
        pred = result.on_frames(clip.length, rig.fps, clip.audio_offset_s)
        wave_16k, _ = read_wav(wav)
        envelope = audio_envelope(wave_16k, audio_t)
        methods = {"model": pred, **_baseline_predictions(baselines, data.feats["content"][rows], envelope, opening)}
        other = _other_truth(clips, i, data, donors)
        if other is not None:
            methods["shuffled_gt"] = np.resize(other, gt.shape)
        row: dict[str, Any] = {"clip_id": clip.clip_id, "speaker": clip.speaker, "label": label,
                               "frames": int(valid.sum())}  # fmt: skip
        for name, values in methods.items():
            row[name] = _scores(values[valid], gt[valid], rig, envelope[valid], opening, mesh)
        row["mouth_channel_r"] = {
            name: [agreement(methods[name][valid], gt[valid], [c], MAX_LAG)[0] for c in mouth]
            for name in CHANNEL_METHODS
            if name in methods
        }
        row["ground_truth_lip_sync_r"] = lip_sync(gt[valid][:, opening], envelope[valid])[0] if opening >= 0 else None
        per_clip.append(row)
    methods_seen = [m for m in METHODS if all(m in r for r in per_clip)]
    summary = {m: {k: _nanmean([r[m][k] for r in per_clip]) for k in METRICS} for m in methods_seen}
    coverage = coverage_of(animator.meta)
    recognition = None
    classifier = None
    if emotion_speech > 0 and "intensity" in animator.stages_done:
        classifier = _emotion_classifier(animator, manifest, rig, cfg, split, notes)
    if classifier is not None:
        labelled = TrainingData(manifest, rig, cfg, None if split == "all" else split, set())
        speech = [SpeechClip(c.clip_id, str(data.audio_file(c)), c.transcript or None) for c in clips[:emotion_speech]]
        real = _real_labelled(labelled, classifier, cfg["image"]["kind"])
        recognition = recognisability(animator, classifier, speech, real, coverage.untrained() if coverage else [])
        if recognition is None:
            notes.append("no emotion recognisability: the model never trained the neutral label it is measured from")
    if "shuffled_gt" not in methods_seen:
        notes.append("one clip and no other clip in the manifest: no shuffled-truth baseline")
    beaten = _clips_beaten(per_clip, "r_mouth") if "ridge_context" in methods_seen else None
    return {
        "checkpoint_rig": rig.name,
        "manifest": str(manifest_path),
        "split": split,
        "clips": len(per_clip),
        "speakers": len({c.speaker for c in clips}),
        "metrics_note": "r_*: mean Pearson r over the group's moving channels at the best lag within ±3 frames "
        "(lag_mouth > 0: the prediction is late); amp_*: sqrt(sum var(pred) / sum var(truth)) over the same channels; "
        "MEDTalk-style (medtalk-spec §4.1) MLE/MEE/EIE/FRD; EIE unscaled (Σ|x| over the intensity channels); "
        "FRD signed as printed in the paper, FRD_abs ours; LVE (max squared lip-vertex error, cm²) and FDD (cm) on "
        "the canonical mesh driven by the shipped blendshape basis; lip_sync_r: best Pearson r of the mouth-opening "
        "channel with the log-RMS audio envelope within ±8 frames",
        "summary": summary,
        "model_beats_ridge_context_on_r_mouth": beaten,
        "label_coverage": coverage.to_dict() if coverage else None,
        "recognisability": recognition,
        "ground_truth_lip_sync_r": _nanmean([r["ground_truth_lip_sync_r"] for r in per_clip]),
        "notes": notes,
        "mouth_channel_r": mouth_channel_summary(per_clip, [rig.channel_names[c] for c in mouth]),
        "per_clip": per_clip,
    }


def mouth_channel_summary(per_clip: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, float]]:
    """Mean over clips of each mouth channel's r (its own best lag within ±MAX_LAG), per method: where a
    group figure hides which channels a model loses on."""
    methods = [m for m in CHANNEL_METHODS if per_clip and all(m in r.get("mouth_channel_r", {}) for r in per_clip)]
    return {
        name: {m: _nanmean([r["mouth_channel_r"][m][i] for r in per_clip]) for m in methods}
        for i, name in enumerate(names)
    }


def channel_gap_lines(channels: dict[str, dict[str, float]], count: int = 5) -> list[str]:
    """The mouth channels where the model trails ridge ±k most, and those where it leads most."""
    gaps = {n: v["model"] - v["ridge_context"] for n, v in channels.items()
            if "model" in v and "ridge_context" in v and np.isfinite(v["model"] - v["ridge_context"])}  # fmt: skip
    trails = sorted((n for n in gaps if gaps[n] < 0), key=gaps.get)[:count]
    leads = sorted((n for n in gaps if gaps[n] > 0), key=gaps.get, reverse=True)[:count]

    def said(names: list[str]) -> str:
        return ", ".join(f"{n} {channels[n]['model']:.2f} vs {channels[n]['ridge_context']:.2f}" for n in names)

    parts = [f"{how}: {said(names)}" for how, names in (("trails most", trails), ("leads most", leads)) if names]
    return ["", f"Mouth channels, model r vs ridge ±k r — {'; '.join(parts)}."] if parts else []


def _other_truth(clips: list, i: int, data: TrainingData, donors: TrainingData | None) -> np.ndarray | None:
    """Real curves of another clip (the next one; with one clip, the manifest's first other clip)."""
    if len(clips) > 1:
        other = clips[(i + 1) % len(clips)]
        return data.curves[other.start : other.start + other.length]
    if donors is not None and donors.clips:
        other = donors.clips[0]
        return donors.curves[other.start : other.start + other.length]
    return None


def _baseline_predictions(
    baselines: TrainingBaselines | None, feats: np.ndarray, envelope: np.ndarray, opening: int
) -> dict[str, np.ndarray]:
    """Every baseline's curves for one clip, on the ground truth's frames."""
    if baselines is None:
        return {}
    n = len(envelope)
    mean_pose = np.tile(baselines.mean_pose, (n, 1))
    energy = mean_pose.copy()
    if opening >= 0:
        lo, hi = np.percentile(envelope, [5, 95])
        env01 = np.clip((envelope - lo) / (hi - lo + 1e-9), 0, 1)
        energy[:, opening] = baselines.low[opening] + (baselines.high[opening] - baselines.low[opening]) * env01
    out = {"mean_pose": mean_pose, "energy_jaw": energy}
    for name in RIDGE_NAMES:
        fitted = getattr(baselines, name)
        if fitted is not None:
            out[name] = fitted.predict(feats)
    return out


def _clips_beaten(per_clip: list[dict[str, Any]], metric: str) -> str:
    """ "k of n": clips on which the model's figure is above the ridge-with-context baseline's."""
    pairs = [(r["model"][metric], r["ridge_context"][metric]) for r in per_clip]
    pairs = [(a, b) for a, b in pairs if np.isfinite(a) and np.isfinite(b)]
    return f"{sum(a > b for a, b in pairs)} of {len(pairs)}"


def _nanmean(values: list[float | None]) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) when there are none."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def markdown_table(report: dict[str, Any]) -> str:
    """The ladder (agreement with the real face) and the MEDTalk metrics, one row per method."""
    lines = [
        f"Evaluation on {report['clips']} clips ({report['speakers']} speakers) of split `{report['split']}` "
        f"({report['checkpoint_rig']}). Agreement with the real face: r higher is better, amp 1 = the real amount "
        "of motion.",
        "",
        "| method | " + " | ".join(AGREEMENT) + " |",
        "|---|" + "---:|" * len(AGREEMENT),
    ]
    for method, values in report["summary"].items():
        lines.append(f"| {method} | " + " | ".join(_cell(values[k], k) for k in AGREEMENT) + " |")
    rest = [k for k in METRICS if k not in AGREEMENT]
    lines += ["", "MEDTalk-style metrics (lower is better except lip_sync_r):", "",
              "| method | " + " | ".join(rest) + " |", "|---|" + "---:|" * len(rest)]  # fmt: skip
    for method, values in report["summary"].items():
        lines.append(f"| {method} | " + " | ".join(_cell(values[k], k) for k in rest) + " |")
    if report.get("model_beats_ridge_context_on_r_mouth"):
        lines += ["", f"Model above ridge ±k on mouth r: {report['model_beats_ridge_context_on_r_mouth']} clips."]
    lines += channel_gap_lines(report.get("mouth_channel_r") or {})
    if report.get("recognisability"):
        lines += recognition_lines(report["recognisability"])
    coverage = LabelCoverage.from_dict(report.get("label_coverage"))
    if coverage is not None:
        lines += ["", "Labels the model trained on (clips (with audio) and frames per label stage):", "", "```",
                  *coverage.table(), "```"]  # fmt: skip
    lines += ["", f"Ground-truth lip sync r: {report['ground_truth_lip_sync_r']:.3f}."]
    lines += [f"Note: {note}." for note in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def _cell(value: float, metric: str) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:+.1f}" if metric.startswith("lag") else f"{value:.3f}" if metric in AGREEMENT else f"{value:.5g}"


def write_report(report: dict[str, Any], json_path: Path | None, markdown_path: Path | None) -> None:
    if json_path is not None:
        atomic_write_text(Path(json_path), json.dumps(report, indent=1, default=float) + "\n")
    if markdown_path is not None:
        atomic_write_text(Path(markdown_path), markdown_table(report))
