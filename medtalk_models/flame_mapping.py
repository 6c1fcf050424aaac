"""FLAME ↔ ARKit: linear maps between FLAME's expression + jaw and the ARKit blendshapes.

An extraction made with ``--face-backend flame`` holds both representations of the same frames
(MediaPipe's 51 ARKit-named scores and the FLAME fit), so the two ridge maps — ARKit → FLAME and
FLAME → ARKit — are fitted on them (:func:`fit_mapping`, the ridge of :mod:`.baselines`: standardised
inputs, the penalty chosen by leave-speakers-out folds). Their quality is measured on held-out
speakers first (Pearson r and RMSE per channel, next to predicting the training mean), then the
stored maps are refitted on every clip. :class:`FlameArkitMapping` converts any animation's curves,
and is saved as a small ``.npz`` (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.extract.layout import FRAMES_FILE, clip_dir, iter_statuses
from medtalk_data.face.frames import read_frames
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES, flame_channels

from .baselines import RidgeMap, fit_ridge
from .export.curves import NEUTRAL, Curves
from .metrics import pearson

ARKIT_NAMES = tuple(n for n in MEDIAPIPE_BLENDSHAPES if n != NEUTRAL)
MAPPING_FORMAT = 1


@dataclass
class ClipPair:
    """One clip's frames in both representations; ``valid``: a face was found and FLAME fitted."""

    clip_id: str
    speaker: str
    arkit: np.ndarray  # (T, 51)
    flame: np.ndarray  # (T, E + 3)
    valid: np.ndarray  # (T,)


@dataclass
class DirectionScore:
    """Held-out agreement of one direction's converted curves with the extracted ones, per channel."""

    r: list[float]
    rmse: list[float]
    rmse_mean_pose: list[float]  # predicting the training frames' mean, the floor to beat

    @property
    def mean_r(self) -> float:
        return float(np.nanmean(self.r))


@dataclass
class FlameArkitMapping:
    arkit_names: list[str]
    flame_names: list[str]
    to_flame: RidgeMap
    to_arkit: RidgeMap
    meta: dict[str, Any] = field(default_factory=dict)  # clips, frames, FLAME version, held-out scores

    def convert(self, curves: Curves, to: str) -> Curves:
        """``curves`` (either representation, matched by name) in the other one."""
        if to == "flame":
            source, ridge, names = self.arkit_names, self.to_flame, self.flame_names
        elif to == "arkit":
            source, ridge, names = self.flame_names, self.to_arkit, self.arkit_names
        else:
            raise MedtalkError(f"convert to {to!r}: choose arkit or flame")
        missing = [n for n in source if n not in curves.names]
        if len(missing) > len(source) // 2:
            have = "FLAME" if to == "arkit" else "ARKit"
            raise MedtalkError(
                f"these curves are not {have} curves of this mapping ({len(missing)} of its {len(source)} channels "
                f"missing, e.g. {missing[:3]})"
            )
        values = ridge.predict(curves.select(source).values)
        if to == "arkit":
            values = np.clip(values, 0.0, 1.0)  # blendshape weights
        meta = {k: v for k, v in curves.meta.items() if k == "global_pose"}
        return Curves(values, list(names), curves.fps, meta=meta)

    def save(self, path: Path) -> Path:
        arrays = {**self.to_flame.to_arrays("to_flame"), **self.to_arkit.to_arrays("to_arkit")}
        arrays["arkit_names"] = np.asarray(self.arkit_names, dtype=np.str_)
        arrays["flame_names"] = np.asarray(self.flame_names, dtype=np.str_)
        arrays["meta"] = np.asarray(json.dumps({"format": MAPPING_FORMAT, **self.meta}))
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> FlameArkitMapping:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays["meta"]))
            return cls(
                [str(n) for n in arrays["arkit_names"]],
                [str(n) for n in arrays["flame_names"]],
                RidgeMap.from_arrays(arrays, "to_flame"),
                RidgeMap.from_arrays(arrays, "to_arkit"),
                {k: v for k, v in meta.items() if k != "format"},
            )
        except (OSError, ValueError, KeyError) as err:
            raise MedtalkError(
                f"{display_path(path)}: not a FLAME ↔ ARKit mapping ({err}); "
                "make one with `medtalk-models flame-mapping`"
            ) from err


def collect_pairs(extraction_dirs: list[Path]) -> tuple[list[ClipPair], dict[str, Any]]:
    """Every finished clip with a FLAME fit, from the extraction folders; and the FLAME facts they share."""
    pairs: list[ClipPair] = []
    facts: dict[str, Any] = {}
    for folder in extraction_dirs:
        for status in iter_statuses(folder):
            if not status.done or status.flame is None or not status.has("frames"):
                continue
            frames = read_frames(clip_dir(folder, status.clip_id) / FRAMES_FILE)
            if frames.flame is None:
                continue
            flame = np.concatenate([frames.flame.expression, frames.flame.jaw_pose], axis=1)
            index = [frames.blendshape_names.index(n) for n in ARKIT_NAMES]
            valid = frames.face_found & frames.flame.fitted
            this = {"version": status.flame.version, "model_sha256": status.flame.model_sha256,
                    "n_expression": flame.shape[1] - 3}  # fmt: skip
            if facts and this != facts:
                raise MedtalkError(
                    f"{status.clip_id}: fitted with another FLAME model or size ({this}) than earlier clips ({facts}); "
                    "fit a mapping per model"
                )
            facts = this
            speaker = status.labels.speaker or status.clip_id
            pairs.append(ClipPair(status.clip_id, speaker, frames.blendshapes[:, index], flame, valid))
    return pairs, facts


def _split(pairs: list[ClipPair], heldout_share: float, seed: int) -> tuple[list[ClipPair], list[ClipPair]]:
    """Held-out speakers (about ``heldout_share`` of them, at least one) and the rest."""
    speakers = sorted({p.speaker for p in pairs})
    if len(speakers) < 2:
        raise MedtalkError(f"only {len(speakers)} speaker with FLAME fits: held-out scores need at least two")
    rng = np.random.default_rng(seed)
    n_out = min(len(speakers) - 1, max(1, round(heldout_share * len(speakers))))
    out = set(rng.permutation(speakers)[:n_out].tolist())
    return [p for p in pairs if p.speaker not in out], [p for p in pairs if p.speaker in out]


def _fit(pairs: list[ClipPair], forward: bool) -> RidgeMap:
    x = [p.arkit if forward else p.flame for p in pairs]
    y = [p.flame if forward else p.arkit for p in pairs]
    return fit_ridge(x, y, [p.valid for p in pairs], [p.speaker for p in pairs], context=0)


def _score(ridge: RidgeMap, train: list[ClipPair], test: list[ClipPair], forward: bool) -> DirectionScore:
    def get(p: ClipPair, inputs: bool) -> np.ndarray:
        return (p.arkit if forward == inputs else p.flame)[p.valid]

    pred = np.concatenate([ridge.predict(get(p, True)) for p in test])
    if not forward:
        pred = np.clip(pred, 0.0, 1.0)
    truth = np.concatenate([get(p, False) for p in test])
    mean = np.concatenate([get(p, False) for p in train]).mean(axis=0)
    return DirectionScore(
        r=[pearson(pred[:, c], truth[:, c]) for c in range(truth.shape[1])],
        rmse=np.sqrt(((pred - truth) ** 2).mean(axis=0)).tolist(),
        rmse_mean_pose=np.sqrt(((mean - truth) ** 2).mean(axis=0)).tolist(),
    )


def fit_mapping(extraction_dirs: list[Path], heldout_share: float = 0.25, seed: int = 0) -> FlameArkitMapping:
    """Measure both maps on held-out speakers, then fit them on every clip (see the module docstring)."""
    pairs, facts = collect_pairs(extraction_dirs)
    if not pairs:
        shown = ", ".join(display_path(d) for d in extraction_dirs)
        raise MedtalkError(
            f"{shown}: no finished clip with a FLAME fit; "
            "extract with `medtalk-data extract VIDEOS --face-backend flame`"
        )
    train, test = _split(pairs, heldout_share, seed)
    scores = {
        "arkit_to_flame": _score(_fit(train, True), train, test, True),
        "flame_to_arkit": _score(_fit(train, False), train, test, False),
    }
    meta = {
        **facts,
        "clips": len(pairs),
        "frames": int(sum(p.valid.sum() for p in pairs)),
        "heldout_speakers": sorted({p.speaker for p in test}),
        "heldout_frames": int(sum(p.valid.sum() for p in test)),
        "heldout": {k: vars(v) for k, v in scores.items()},
    }
    names = list(flame_channels(int(facts["n_expression"])))
    return FlameArkitMapping(list(ARKIT_NAMES), names, _fit(pairs, True), _fit(pairs, False), meta)


def heldout_scores(mapping: FlameArkitMapping) -> dict[str, DirectionScore]:
    return {k: DirectionScore(**v) for k, v in mapping.meta.get("heldout", {}).items()}
