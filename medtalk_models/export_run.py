"""Write one animation in the formats asked for: curve files by channel name, a preview, a plot."""

from __future__ import annotations

from pathlib import Path

from medtalk_data.errors import MedtalkError
from medtalk_data.fsutil import display_path

from .animate import Animation
from .export.curves import Curves
from .export.formats import FORMATS, formats_for, write_all

EXTRA_FORMATS = ("mp4", "png")


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
) -> list[Path]:
    """Curves resampled explicitly to ``fps`` (default: the model's), then one file per format."""
    curves = Curves(result.values, list(result.names), result.fps)
    if fps is not None and abs(fps - result.fps) > 1e-9:
        if fps <= 0:
            raise MedtalkError(f"--fps {fps}: use a positive frame rate")
        curves = curves.resample(fps)
    fitting = formats_for(curves)
    renderable = "jawOpen" in curves.names
    if formats is None:
        formats = [*fitting, *(("mp4", "png") if renderable else ("png",))]
    unknown = [f for f in formats if f not in FORMATS and f not in EXTRA_FORMATS]
    if unknown:
        raise MedtalkError(f"--format {unknown[0]!r}: choose from {', '.join([*FORMATS, *EXTRA_FORMATS])}")
    if "mp4" in formats and not renderable:
        raise MedtalkError("mp4 previews render ARKit blendshape curves; this rig has none (use csv/npz/txt)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = {"mp4": out_dir / f"{stem}.mp4", "png": out_dir / f"{stem}.png"}
    for name in EXTRA_FORMATS:
        if name in formats and extra[name].exists() and not overwrite:
            raise MedtalkError(f"{display_path(extra[name])} exists; pass --overwrite to replace it")
    written = write_all(out_dir, stem, curves, [f for f in formats if f in FORMATS], overwrite=overwrite)
    if "png" in formats:
        from .render.plot import plot_curves_png

        written.append(plot_curves_png(extra["png"], curves.values, curves.names, curves.fps, words=result.words,
                                       title=f"{stem} ({result.info.get('emotion_source', '')})"))  # fmt: skip
    if "mp4" in formats:
        from .render.basis import BlendshapeBasis
        from .render.video import write_preview_mp4

        written.append(
            write_preview_mp4(
                extra["mp4"],
                curves.values,
                curves.fps,
                names=curves.names,
                basis=BlendshapeBasis.load(basis) if basis else None,
                audio_wav=audio,
                side_by_side_video=side_by_side,
            )
        )
    return written
