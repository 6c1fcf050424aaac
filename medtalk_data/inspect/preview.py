"""A PNG per extracted clip: a source frame with its landmarks, and the main curves over time.

For checking an extraction by eye: does the mesh sit on the face, does the jaw open with the
speech, where was the face lost, how did the head move.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ClipError
from ..extract.layout import AUDIO_FILE, FRAMES_FILE, STATUS_FILE, read_status
from ..face.frames import ClipFrames, read_frames
from ..io.files import atomic_path
from ..io.media import decode_at
from ..io.wav import energy_envelope

CURVES = (
    ("jawOpen",),
    ("mouthSmileLeft", "mouthSmileRight"),
    ("mouthFunnel",),
    ("browInnerUp",),
    ("eyeBlinkLeft", "eyeBlinkRight"),
)


ENVELOPE_FRAME_S = 0.01


def _loudness_db(wav: Path, times: np.ndarray, offset: float) -> np.ndarray:
    """dBFS of the audio's RMS envelope at each video time; NaN before the audio starts and after it ends."""
    envelope = energy_envelope(wav, ENVELOPE_FRAME_S)
    index = np.floor((times - offset) / ENVELOPE_FRAME_S).astype(np.int64)
    inside = (index >= 0) & (index < len(envelope))
    out = np.full(len(times), np.nan)
    out[inside] = 20 * np.log10(envelope[index[inside]] + 1e-5)
    return out


def render_clip_preview(clip_dir: Path, out_png: Path) -> Path:
    """Draw the preview of one extracted clip into ``out_png`` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    status = read_status(clip_dir)
    if status is None:
        raise ValueError(f"{clip_dir.name}: no readable {STATUS_FILE}; re-run extract to redo the clip")
    if not status.has("frames") or status.face is None:
        raise ValueError(f"{clip_dir.name}: no face data to preview ({status.error or 'audio-only clip'})")
    frames: ClipFrames = read_frames(clip_dir / FRAMES_FILE)
    t = frames.time_s
    found = np.flatnonzero(frames.face_found)
    mid = int(found[len(found) // 2]) if len(found) else 0

    fig = plt.figure(figsize=(13, 6.5), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, width_ratios=[1, 2.2])
    ax_img = fig.add_subplot(grid[:, 0])
    nominal_fps = status.media.nominal_fps if status.media is not None else frames.fps
    try:
        (image,) = decode_at(Path(status.source.path), [float(frames.source_time_s[mid])], nominal_fps)
    except ClipError:  # the source moved or broke since extraction: the curves are still worth drawing
        image = None
    if image is not None:
        h, w = image.shape[:2]
        ax_img.imshow(image)
        if frames.face_found[mid]:
            ax_img.scatter(frames.landmarks[mid, :, 0] * w, frames.landmarks[mid, :, 1] * h, s=0.6, c="#00e5ff")
    ax_img.set_title(f"frame {mid} at {t[mid]:.2f} s", fontsize=9)
    ax_img.axis("off")

    ax_curves = fig.add_subplot(grid[0, 1])
    for names in CURVES:
        values = np.mean([frames.blendshape(n) for n in names], axis=0)
        ax_curves.plot(t, values, lw=1, label=" / ".join(names) if len(names) == 1 else names[0][:-4] + " (L+R)/2")
    missing = ~frames.face_found
    if missing.any():
        ax_curves.fill_between(t, 0, 1, where=missing, color="red", alpha=0.12, step="mid", label="no face")
    ax_curves.set_ylim(0, 1)
    ax_curves.set_ylabel("blendshape")
    ax_curves.legend(fontsize=7, ncol=3, loc="upper right")

    ax_pose = fig.add_subplot(grid[1, 1], sharex=ax_curves)
    for i, name in enumerate(("pitch", "yaw", "roll")):
        ax_pose.plot(t, frames.head_rotation_deg[:, i], lw=1, label=name)
    ax_pose.set_ylabel("head (deg)")
    ax_pose.legend(fontsize=7, loc="upper right")

    ax_audio = fig.add_subplot(grid[2, 1], sharex=ax_curves)
    if status.has("audio") and status.audio is not None:
        ax_audio.plot(t, _loudness_db(clip_dir / AUDIO_FILE, t, status.audio.offset_s), lw=1, color="k")
        ax_audio.set_ylabel("audio (dBFS)")
    else:
        ax_audio.text(0.5, 0.5, "no audio", ha="center", va="center", transform=ax_audio.transAxes)
    ax_audio.set_xlabel("time (s)")
    face = status.face
    fig.suptitle(
        f"{status.clip_id} — {face.n_frames} frames at {face.fps:g} fps, "
        f"face found {face.face_found_ratio:.0%}, {face.n_interpolated} interpolated",
        fontsize=10,
    )
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out_png
