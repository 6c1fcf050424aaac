"""Write one animation in the formats asked for: curve files by channel name, a preview, a plot.

:func:`plan_export` checks a request from the rig's channel names alone (format names, rig fit,
frame rate, files that exist), so ``animate`` refuses a bad request before it loads the model;
:func:`export_animation` runs the same check again and writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path
from medtalk_data.rigs import is_flame

from .animate import Animation
from .export.curves import Curves
from .export.formats import FORMATS, formats_for, plan_files, write_all

EXTRA_FORMATS = ("mp4", "glb", "usd", "png", "vertices")  # vertices: FLAME rigs, with the user's FLAME model
DEFAULT_EXTRAS = ("mp4", "png")  # glb/usd on request (--format ...,glb,usd)
MESH_FORMATS = ("mp4", "glb", "usd")  # drive the face mesh with ARKit curves
SCENE_FORMATS = ("glb", "usd")  # files a studio opens; the speech goes beside them
AUDIO_SUFFIX = ".audio.wav"  # beside <stem>.glb / <stem>.usd; never the input's own name
RENDER_CHANNEL = "jawOpen"  # previews render ARKit blendshape curves


@dataclass(frozen=True)
class ExportPlan:
    formats: list[str]  # curve formats first, then mp4/png
    paths: list[Path]  # every file that will be written, in ``formats`` order
    fps: float | None  # the frame rate to resample to (None: the model's)


def plan_export(
    out_dir: Path,
    stem: str,
    names: Sequence[str],
    formats: list[str] | None,
    *,
    fps: float | None = None,
    overwrite: bool = False,
    audio_beside: bool = False,
) -> ExportPlan:
    """What ``export_animation`` will write for curves with these channel names; MedtalkError if it cannot."""
    if fps is not None and not fps > 0:
        raise MedtalkError(f"--fps {fps}: use a positive frame rate")
    renderable = RENDER_CHANNEL in names
    flame = is_flame(names)
    if formats is None:
        formats = [*formats_for(names), *(DEFAULT_EXTRAS if renderable else ("png",))]
    unknown = [f for f in formats if f not in FORMATS and f not in EXTRA_FORMATS]
    if unknown:
        raise MedtalkError(f"--format {unknown[0]!r}: choose from {', '.join([*FORMATS, *EXTRA_FORMATS])}")
    for mesh_format in MESH_FORMATS:
        if mesh_format in formats and not renderable and not (flame and mesh_format == "mp4"):
            raise MedtalkError(
                f"{mesh_format} drives the face mesh with ARKit blendshape curves; this rig has none "
                f"(its formats: {', '.join(formats_for(names))}, png)"
            )
    if "vertices" in formats and not is_flame(names):
        raise MedtalkError(
            "vertices poses FLAME's mesh with FLAME curves; this rig is not FLAME (train on --rig flame)"
        )
    if "usd" in formats:
        import importlib.util

        if importlib.util.find_spec("pxr") is None:
            raise MedtalkError("--format usd needs Pixar's USD library: pip install 'medtalk[usd]'")
    curve_formats = [f for f in formats if f in FORMATS]
    paths = [path for _fmt, path in plan_files(Path(out_dir), stem, names, curve_formats, overwrite)]
    extras = [f for f in EXTRA_FORMATS if f in formats]
    for name in extras:
        path = Path(out_dir) / f"{stem}.{name}{'.npy' if name == 'vertices' else ''}"
        if path.exists() and not overwrite:
            raise MedtalkError(f"{display_path(path)} exists; pass --overwrite to replace it")
        paths.append(path)
    if audio_beside and any(f in extras for f in SCENE_FORMATS):
        paths.append(Path(out_dir) / f"{stem}{AUDIO_SUFFIX}")
    return ExportPlan([*dict.fromkeys(curve_formats), *extras], paths, fps)


def export_animation(
    result: Animation,
    out_dir: Path,
    stem: str,
    formats: list[str] | None,
    *,
    fps: float | None = None,
    audio: Path | None = None,
    side_by_side: Path | None = None,
    basis: Path | None = None,
    overwrite: bool = False,
    flame_model: Path | None = None,
) -> list[Path]:
    """Curves resampled explicitly to ``fps`` (default: the model's), then one file per format (``vertices``:
    FLAME's mesh posed by the curves, (T, 5023, 3) float32 metres, with ``flame_model`` or $MEDTALK_FLAME_MODEL)."""
    plan = plan_export(
        out_dir, stem, result.names, formats, fps=fps, overwrite=overwrite, audio_beside=audio is not None
    )
    curves = Curves(result.values, list(result.names), result.fps)
    if fps is not None and abs(fps - result.fps) > 1e-9:
        curves = curves.resample(fps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_all(out_dir, stem, curves, [f for f in plan.formats if f in FORMATS], overwrite=overwrite)
    if "png" in plan.formats:
        from .render.plot import plot_curves_png

        written.append(plot_curves_png(out_dir / f"{stem}.png", curves.values, curves.names, curves.fps,
                                       words=result.words,
                                       title=f"{stem} ({result.info.get('emotion_source', '')})"))  # fmt: skip
    written += _write_scenes(plan, out_dir, stem, curves, basis, audio)
    if "vertices" in plan.formats:
        from medtalk_data.io.files import atomic_path

        from .flame_mesh import FlameMesh

        vertices = FlameMesh(flame_model).vertices(curves.values, curves.names) / 1000.0
        path = out_dir / f"{stem}.vertices.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vertices.astype(np.float32), allow_pickle=False)
        written.append(path)
    if "mp4" in plan.formats:
        from .render.basis import BlendshapeBasis
        from .render.video import write_preview_mp4

        frames = curves.values
        if is_flame(curves.names):  # FLAME's own mesh, posed by the curves (the user's FLAME model)
            from .flame_mesh import FlameMesh

            frames = FlameMesh(flame_model).preview(curves.values, curves.names)
        written.append(
            write_preview_mp4(
                out_dir / f"{stem}.mp4",
                frames,
                curves.fps,
                names=curves.names,
                basis=BlendshapeBasis.load(basis) if basis else None,
                audio_wav=audio,
                side_by_side_video=side_by_side,
            )
        )
    return written


def _write_scenes(
    plan: ExportPlan, out_dir: Path, stem: str, curves: Curves, basis: Path | None, audio: Path | None
) -> list[Path]:
    """The glTF/USD files asked for, and the speech beside them (16 kHz mono, under the same stem):
    glTF has no audio, the USD file points at it."""
    scenes = [f for f in SCENE_FORMATS if f in plan.formats]
    if not scenes:
        return []
    from .render.basis import BlendshapeBasis

    shapes = BlendshapeBasis.load(basis) if basis else None
    written = []
    speech = out_dir / f"{stem}{AUDIO_SUFFIX}" if audio is not None else None
    if speech is not None:
        from medtalk_data.audio.stage import extract_audio

        extract_audio(audio, speech)
        written.append(speech)
    if "glb" in scenes:
        from .render.gltf import write_glb

        written.append(write_glb(out_dir / f"{stem}.glb", curves, basis=shapes))
    if "usd" in scenes:
        from .render.usd import write_usd

        written.append(write_usd(out_dir / f"{stem}.usd", curves, basis=shapes, audio=speech))
    return written
