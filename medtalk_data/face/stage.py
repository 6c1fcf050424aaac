"""The face stage of one clip: decode → fit → follow one face → constant-fps grid → Parquet.

Other per-frame work that needs the picture (the expression classifier) rides along as an
observer of this loop, so a clip's video is decoded once."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ClipError
from ..io.media import DecodedFrame, MediaInfo, iter_frames
from ..settings import ExtractSettings
from ..stopping import check_stop
from . import create_fitter
from .base import FaceObservation
from .framerate import choose_grid_fps
from .frames import FramesWriter
from .grid import FrameSample, GapFiller, GridResampler
from .tracking import FaceTracker

if TYPE_CHECKING:
    from .deca.encoder import DecaEncoder, DecaSummary
    from .fan.landmarker import FanLandmarker, FanSummary
    from .flame.fitter import ClipFlameFit, FlameSetup
    from .flame.types import FlameSummary


class FrameObserver(Protocol):
    """Sees each decoded frame with the face the tracker follows in it (None: no face); ``finish`` is
    called once after the last frame, and on failure, to end work it does beside the loop."""

    def observe(self, frame: DecodedFrame, face: FaceObservation | None) -> None: ...

    def finish(self) -> None: ...


@dataclass
class IntervalStats:
    """Running statistics of frame-to-frame intervals (Welford), to tell constant from variable rate."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = 0.0

    def add(self, dt: float) -> None:
        self.n += 1
        delta = dt - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (dt - self.mean)
        self.lo, self.hi = min(self.lo, dt), max(self.hi, dt)

    @property
    def cv(self) -> float:
        return math.sqrt(self.m2 / self.n) / self.mean if self.n > 1 and self.mean > 0 else 0.0


@dataclass
class VideoSummary:
    """What decoding the video showed (status.json ``video``)."""

    n_decoded: int = 0
    width: int = 0  # upright picture
    height: int = 0
    rotation_deg: int = 0
    nominal_fps: float = 0.0
    measured_fps: float = 0.0
    vfr: bool = False
    interval_cv: float = 0.0
    first_pts_time_s: float = 0.0
    timestamp_repairs: int = 0


@dataclass
class FaceSummary:
    """What the face stage wrote (status.json ``face``)."""

    fps: float = 0.0
    n_frames: int = 0
    duration_s: float = 0.0
    n_found: int = 0
    face_found_ratio: float = 0.0
    n_interpolated: int = 0
    max_faces: int = 0
    multi_face_frames: int = 0
    several_faces: bool = False
    fitter: str = ""
    fitter_version: str = ""
    model_path: str = ""
    backends: list[str] = field(default_factory=lambda: ["mediapipe"])


@dataclass
class FaceStageResult:
    video: VideoSummary
    face: FaceSummary
    warnings: list[str]
    flame: FlameSummary | None = None
    deca: DecaSummary | None = None
    fan: FanSummary | None = None


@dataclass
class FaceBackends:
    """The loaded backends beside MediaPipe (None: not asked for)."""

    flame: FlameSetup | None = None  # fits FLAME to the grid frames as they stream past, a window at a time
    deca: DecaEncoder | None = None  # encodes the followed face of every decoded frame
    fan: FanLandmarker | None = None  # locates FAN's 68 points on the followed face of every decoded frame

    def names(self) -> list[str]:
        return ["mediapipe"] + [name for name in ("fan", "flame", "deca") if getattr(self, name) is not None]


def grid_fps_for(info: MediaInfo, settings: ExtractSettings) -> tuple[float, list[str]]:
    """The constant output rate: ``settings.fps`` if given, else chosen from the container's rates."""
    if settings.fps:
        return float(settings.fps), []
    fps, why = choose_grid_fps(info.nominal_fps, info.guessed_fps)
    return fps, [] if why == "source rate" else [why]


def run_face_stage(
    path: Path,
    info: MediaInfo,
    settings: ExtractSettings,
    out_path: Path,
    metadata: dict[str, Any],
    observers: Sequence[FrameObserver] = (),
    backends: FaceBackends | None = None,
) -> FaceStageResult:
    """Write ``out_path`` (frames Parquet) and return the stage's summary for the status record.

    ``observers`` see every decoded frame inside the same loop (one decode for every stage that needs
    pixels); ``backends`` run on the face MediaPipe follows (FAN and DECA per decoded frame, FLAME on the
    grid frames before they are written)."""
    backends = backends or FaceBackends()
    flame, deca, fan = backends.flame, backends.deca, backends.fan
    fps, warnings = grid_fps_for(info, settings)
    fs = settings.face
    fitter = create_fitter(
        fs.fitter,
        model_path=fs.model_path,
        max_faces=fs.max_faces,
        min_detection_confidence=fs.min_detection_confidence,
        min_presence_confidence=fs.min_presence_confidence,
        min_tracking_confidence=fs.min_tracking_confidence,
    )
    meta = {
        **metadata,
        "fps": fps,
        "blendshape_names": list(fitter.blendshape_names),
        "landmarks": "478 points; x, y normalised to the upright frame's width/height, z relative depth",
        "transform": "canonical face model (cm) to camera space, row-major 4x4",
        "fitter": fitter.name,
        "fitter_version": fitter.version,
    }
    flame_fit = _flame_fit(flame)
    writer = FramesWriter(
        out_path,
        meta,
        row_group_frames=settings.row_group_frames,
        flame_expression=flame.settings.n_expression if flame else 0,
        deca=deca is not None,
        fan=fan is not None,
    )
    for backend in (deca, fan):
        if backend is not None:
            backend.start_clip()

    def write(samples: list[FrameSample]) -> None:
        writer.write(flame_fit.push(samples) if flame_fit is not None else samples)

    tracker = FaceTracker()
    grid = GridResampler(fps)
    gaps = GapFiller(round(fs.max_gap_s * fps))
    intervals = IntervalStats()
    n_decoded = 0
    last_ms = -1
    prev_t: float | None = None
    first_pts: float | None = None
    repairs = 0
    width = height = 0
    try:
        for frame in iter_frames(path, info.nominal_fps):
            check_stop()
            if first_pts is None:
                first_pts = frame.pts_time_s
            if not math.isclose(frame.pts_time_s - (first_pts or 0.0), frame.time_s, abs_tol=1e-9):
                repairs += 1
            if prev_t is not None:
                intervals.add(frame.time_s - prev_t)
            prev_t = frame.time_s
            height, width = frame.rgb.shape[:2]
            if flame_fit is not None:
                flame_fit.aspect = width / height
            ts_ms = max(round(frame.time_s * 1000), last_ms + 1)
            last_ms = ts_ms
            faces = fitter.detect(frame.rgb, ts_ms)
            chosen = tracker.choose(faces)
            if fan is not None and chosen is not None:
                chosen = replace(chosen, fan=fan.locate(frame.rgb, chosen.landmarks))
            if deca is not None and chosen is not None:
                chosen = replace(chosen, deca=deca.encode(frame.rgb, chosen.landmarks))
            for observer in observers:
                observer.observe(frame, chosen)
            sample = FrameSample(frame.time_s, frame.index, frame.time_s, chosen, len(faces), chosen is not None)
            for s in grid.push(sample):
                write(gaps.push(s))
            n_decoded += 1
        for observer in observers:
            observer.finish()
        for s in grid.finish():
            write(gaps.push(s))
        write(gaps.finish())
        if flame_fit is not None:
            writer.write(flame_fit.finish())
            writer.set_flame_metadata(flame_fit.metadata())
        if n_decoded == 0:
            raise ClipError("no_frames", "video stream holds no decodable frames", "re-encode or remove the file")
        if writer.n_found == 0:
            raise ClipError(
                "no_face",
                f"no face found in any of {n_decoded} frames",
                "check that the video shows a face (not too small, not occluded) or remove it from the folder",
            )
        decoded_s = (prev_t or 0.0) + (intervals.mean or 1.0 / fps)
        if info.duration_s > 1.0 and decoded_s < 0.9 * info.duration_s - 2.0 / fps:
            raise ClipError(
                "truncated",
                f"only {decoded_s:.2f} s of {info.duration_s:.2f} s decoded (file truncated?)",
                "re-download the file or re-encode it",
            )
        writer.close()
    except BaseException:
        writer.abort()
        for observer in observers:
            with contextlib.suppress(Exception):  # the first error is the one raised
                observer.finish()
        raise
    finally:
        fitter.close()
    measured = 1.0 / intervals.mean if intervals.mean > 0 else fps
    vfr = intervals.cv > 0.1 or (intervals.n > 0 and intervals.hi > 1.5 * intervals.lo)
    if writer.max_faces > 1:
        warnings.append(
            f"several faces seen in {writer.n_multi_face} frames (up to {writer.max_faces}); "
            "followed the largest/most central one"
        )
    if vfr:
        warnings.append(f"variable frame rate (measured {measured:.2f} fps); mapped onto a constant {fps:g} fps grid")
    video = VideoSummary(
        n_decoded=n_decoded,
        width=width,
        height=height,
        rotation_deg=info.rotation_deg,
        nominal_fps=info.nominal_fps,
        measured_fps=measured,
        vfr=vfr,
        interval_cv=intervals.cv,
        first_pts_time_s=first_pts if first_pts is not None and math.isfinite(first_pts) else 0.0,
        timestamp_repairs=repairs,
    )
    face = FaceSummary(
        fps=fps,
        n_frames=writer.n_frames,
        duration_s=writer.n_frames / fps,
        n_found=writer.n_found,
        face_found_ratio=writer.n_found / max(1, writer.n_frames),
        n_interpolated=writer.n_interpolated,
        max_faces=writer.max_faces,
        multi_face_frames=writer.n_multi_face,
        several_faces=writer.max_faces > 1,
        fitter=fitter.name,
        fitter_version=fitter.version,
        model_path=str(getattr(fitter, "model_path", "")),
        backends=backends.names(),
    )
    flame_summary = flame_fit.summary() if flame_fit is not None else None
    if flame_summary is not None and flame_summary.n_fitted:
        warnings.extend(_flame_warnings(flame_summary))
    return FaceStageResult(
        video,
        face,
        warnings,
        flame_summary,
        deca.summary if deca is not None else None,
        fan.summary if fan is not None else None,
    )


FLAME_RESIDUAL_WARN_MM = 5.0  # a median landmark error above this means the fit did not follow the face


def _flame_fit(setup: FlameSetup | None) -> ClipFlameFit | None:
    if setup is None:
        return None
    from .flame.fitter import ClipFlameFit

    return ClipFlameFit(setup)


def _flame_warnings(summary: FlameSummary) -> list[str]:
    if summary.residual_mm_median > FLAME_RESIDUAL_WARN_MM:
        return [
            f"FLAME fit: median landmark error {summary.residual_mm_median:.1f} mm "
            f"(p95 {summary.residual_mm_p95:.1f}); check that the model and embedding belong together, "
            "or raise face.flame.iterations"
        ]
    return []
