"""Build a blendshape basis from extraction folders or a manifest (and rebuild the shipped default).

``python -m medtalk_models.render.build_basis OUT.npz SOURCE...`` where each SOURCE is an
extraction folder (holding ``clips/<id>/frames.parquet``) or a manifest folder built with
``--landmarks`` (read on its own: no extraction folder needed). With ``--held-out`` it also
reports leave-one-clip-out errors, the honest measure of how well the basis generalises.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.extract.layout import FRAMES_FILE, clips_dir
from medtalk_data.face.canonical_mesh import load_canonical_mesh
from medtalk_data.io.files import display_path
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

from .basis import (
    DEFAULT_RIDGE,
    BlendshapeBasis,
    FitFrames,
    collect_fit_frames,
    fit_from_frames,
    frame_size,
    solve_basis,
)

log = logging.getLogger(__name__)


@dataclass
class _ManifestFrames:
    """The per-frame arrays of one manifest clip that the basis fit reads (those of a ClipFrames)."""

    blendshape_names: tuple[str, ...]
    face_found: np.ndarray
    interpolated: np.ndarray
    landmarks: np.ndarray  # (T, 478, 3)
    blendshapes: np.ndarray  # (T, 52)


def _is_manifest(source: Path) -> bool:
    return (source / "manifest.json").is_file() or source.name == "manifest.json"


def manifest_fit_clips(path: Path) -> Iterator[tuple[str, Any, tuple[int, int]]]:
    """(clip id, frames, upright frame size) of a manifest's video clips, from the manifest alone."""
    from medtalk_data.io.arrow import fixed_size_numpy
    from medtalk_data.manifest import load_manifest

    manifest = load_manifest(path.parent if path.name == "manifest.json" else path)
    if not manifest.has_frame_column("landmarks"):
        raise MedtalkError(
            f"{display_path(manifest.path)}: built without landmarks; rebuild it with "
            f"{manifest.rebuild_command('--landmarks')}, or pass the extraction folder instead"
        )
    for row in manifest.rows():
        if row.kind == "audio" or not row.n_frames:
            continue
        table = manifest.frames(["face_found", "interpolated", "landmarks"], [row.clip_id])
        size = (row.frame_width or 0, row.frame_height or 0)
        if min(size) <= 0:
            log.warning("%s: no frame size in the manifest; assuming square frames", row.clip_id)
            size = (1, 1)
        frames = _ManifestFrames(
            MEDIAPIPE_BLENDSHAPES,
            table["face_found"].to_numpy(zero_copy_only=False),
            table["interpolated"].to_numpy(zero_copy_only=False),
            fixed_size_numpy(table["landmarks"]).reshape(table.num_rows, -1, 3),
            manifest.blendshapes(row.clip_id),
        )
        yield row.clip_id, frames, size


def clip_dirs(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every clip folder with a frames.parquet under extraction folders, in a stable order."""
    found: list[Path] = []
    for source in map(Path, sources):
        if clips_dir(source).is_dir():
            candidates = sorted(p.parent for p in clips_dir(source).glob(f"*/{FRAMES_FILE}"))
        elif (source / FRAMES_FILE).is_file():
            candidates = [source]
        else:
            raise MedtalkError(
                f"{display_path(source)}: neither an extraction folder (clips/*/frames.parquet) nor a manifest"
            )
        found.extend(c for c in candidates if (c / FRAMES_FILE).is_file() and c not in found)
    if not found:
        raise MedtalkError("no clips with frames.parquet found; run `medtalk-data extract` with the face stage first")
    return found


def load_fit_frames(sources: Sequence[str | os.PathLike[str]]) -> FitFrames:
    """Read every clip's frames and bring its landmarks into the canonical head frame."""
    from medtalk_data.face.frames import read_frames

    manifests = [Path(s) for s in sources if _is_manifest(Path(s))]
    folders = [Path(s) for s in sources if not _is_manifest(Path(s))]

    def clips() -> Iterable[tuple[str, Any, tuple[int, int]]]:
        for manifest in manifests:
            yield from manifest_fit_clips(manifest)
        for clip in clip_dirs(folders) if folders else []:
            yield clip.name, read_frames(clip / FRAMES_FILE), frame_size(clip)

    return collect_fit_frames(clips(), load_canonical_mesh())


def build_basis_from_extractions(
    dirs: Sequence[str | os.PathLike[str]], ridge: float = DEFAULT_RIDGE, held_out: bool = False
) -> BlendshapeBasis:
    """Fit a basis from extraction folders and/or manifests; ``held_out`` adds leave-one-clip-out errors."""
    data = load_fit_frames(dirs)
    basis = fit_from_frames(data, ridge)
    if held_out and len(data.clip_ids) > 1:
        basis.provenance["held_out"] = held_out_errors(data, ridge)
    return basis


def held_out_errors(data: FitFrames, ridge: float = DEFAULT_RIDGE) -> dict[str, Any]:
    """Fit on all clips but one, measure on that one; mean over clips, in cm.

    ``basis_cm``: the basis driven by the clip's blendshapes; ``neutral_cm``: its neutral alone.
    ``*_same_identity_cm``: after moving the prediction by the clip's mean offset (the face shape of
    a person the basis never saw is not the blendshapes' job), so the neutral becomes the clip's own
    mean shape and what is left is expression. ``lower_face_*``: the same on the lips, chin and jaw,
    where speech moves the mesh; ``lower_face_motion_explained``: share of the held-out clip's own
    lower-face motion (variance about its mean shape) that the basis reproduces.
    """
    mesh = load_canonical_mesh()
    lower = (mesh.vertices[:, 1] < -2.5) & (np.abs(mesh.vertices[:, 0]) < 4.0)
    rows = []
    for k, clip_id in enumerate(data.clip_ids):
        test = data.clip_of_frame == k
        train = ~test
        basis = solve_basis(
            data.shapes[train], data.weights[train], MEDIAPIPE_BLENDSHAPES, ridge, data.clip_of_frame[train]
        )
        shapes, weights = data.shapes[test], data.weights[test]
        predicted = basis.vertices(weights)
        same_identity = predicted + (shapes - predicted).mean(axis=0)
        own_mean = np.broadcast_to(shapes.mean(axis=0), shapes.shape)

        def err(a: np.ndarray, where: np.ndarray | slice = slice(None), s: np.ndarray = shapes) -> float:
            return float(np.linalg.norm(a - s, axis=-1)[:, where].mean())

        motion = float(((own_mean - shapes)[:, lower] ** 2).sum())
        left = float(((same_identity - shapes)[:, lower] ** 2).sum())
        rows.append(
            {
                "clip": clip_id,
                "frames": int(test.sum()),
                "basis_cm": err(predicted),
                "neutral_cm": err(np.broadcast_to(basis.neutral, shapes.shape)),
                "basis_same_identity_cm": err(same_identity),
                "neutral_same_identity_cm": err(own_mean),
                "lower_face_basis_same_identity_cm": err(same_identity, lower),
                "lower_face_neutral_same_identity_cm": err(own_mean, lower),
                "lower_face_motion_explained": 1.0 - left / motion if motion > 0 else 0.0,
            }
        )
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    summary: dict[str, Any] = {k: round(float(np.mean([r[k] for r in rows])), 5) for k in keys}
    summary["per_clip"] = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fit, report and save a basis."""
    parser = argparse.ArgumentParser(prog="python -m medtalk_models.render.build_basis", description=__doc__)
    parser.add_argument("out", type=Path, help="the .npz to write")
    parser.add_argument("sources", nargs="+", help="extraction folders and/or manifest folders")
    parser.add_argument("--ridge", type=float, default=DEFAULT_RIDGE, help="ridge weight per frame on the deltas")
    parser.add_argument("--held-out", action="store_true", help="also measure leave-one-clip-out errors")
    args = parser.parse_args(argv)
    try:
        basis = build_basis_from_extractions(args.sources, ridge=args.ridge, held_out=args.held_out)
        basis.save(args.out)
    except MedtalkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(basis.provenance, indent=2))
    print(f"wrote {display_path(args.out)} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
