"""One self-contained HTML page about a manifest: overview plots, then a close look at a few clips.

For checking a data set by eye before training on it: are emotions and speakers spread over the
splits, were faces and words found, do the curves move with the speech, does the mesh sit on the
face. Plots are PNGs drawn on matplotlib's Agg canvas and inlined as base64 together with the CSS,
so the file opens offline, can be attached to a review, and loads nothing from anywhere (its
Content-Security-Policy forbids it). Only the chosen clips' frames are read, one clip at a time,
so a manifest of thousands of clips costs one pass over the clip table plus N clip sections.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ClipError, MedtalkError
from ..extract.layout import FRAMES_FILE, clip_dir, read_status
from ..face.frames import FRAMES_SCHEMA_VERSION
from ..io.arrow import fixed_size_numpy
from ..io.files import atomic_write_text, display_path
from ..io.media import decode_at
from ..manifest.read import Manifest, load_manifest
from ..rigs import N_LANDMARKS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_MAX_CLIPS = 12
DEFAULT_FRAMES_PER_CLIP = 3
OVERVIEW_PLOTS = ("emotions_by_split", "durations", "speakers", "face_found_ratio", "aligned_word_ratio")
CLIP_PLOTS = ("clip_timeline", "clip_frames")
SPLITS = ("train", "val", "test")
UNLABELLED = "unlabelled"
TOP_SPEAKERS = 30
MAX_STILL_PX = 480  # decoded frames are strided down to about this height before plotting
DPI = 80
# The channels worth watching, by rig: MediaPipe's blendshape name first, then the MetaHuman control.
MAIN_CHANNELS = (
    ("jawOpen", "CTRL_C_jaw-translateY"),
    ("mouthSmileLeft", "CTRL_L_mouth_cornerPull-translateY"),
    ("mouthFunnel", "CTRL_L_mouth_funnelU-translateY"),
    ("mouthPucker", "CTRL_L_mouth_purseU-translateY"),
    ("browInnerUp", "CTRL_L_brow_raiseIn-translateY"),
    ("eyeBlinkLeft", "CTRL_L_eye_blink-translateY"),
)
POSE_NAMES = ("pitch", "yaw", "roll")  # head_rotation_deg order

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1120px;
padding:0 20px 40px;color:#1d2329;background:#fff}
h1{margin:24px 0 4px}h2{border-bottom:1px solid #d5dbe1;padding-bottom:4px;margin-top:36px}
h3{margin:28px 0 6px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:15px}
.muted{color:#5f6b76}.note{background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px;margin:8px 0}
nav ol{margin:4px 0;padding-left:22px}nav li{margin:1px 0}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d5dbe1;padding:3px 10px;text-align:left}
th{background:#f3f5f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}
figure{margin:8px 0}img{max-width:100%;height:auto;border:1px solid #e5e9ed}
figcaption{font-size:12px;color:#5f6b76}.transcript{font-style:italic}
"""


@dataclass
class ReportResult:
    """What was written, for the command's summary line."""

    path: Path
    clip_ids: list[str]
    n_manifest_clips: int
    size_bytes: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)


# -- drawing helpers ---------------------------------------------------------------------------------


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A pyplot-free Figure: Agg canvas, no global state, nothing to close.

    The big per-clip figures pass ``layout=None`` and set fixed margins: constrained layout draws
    everything twice, which doubled the time of a report.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _png_b64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(name: str, fig: Figure, alt: str, caption: str = "", clip_id: str | None = None) -> str:
    clip_attr = f' data-clip="{html.escape(clip_id)}"' if clip_id is not None else ""
    w, h = (round(v * DPI) for v in fig.get_size_inches())
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img data-plot="{name}"{clip_attr} width="{w}" height="{h}" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{_png_b64(fig)}">{cap}</figure>'
    )


def _no_data(ax: Any, text: str, shared_x: bool = False) -> None:
    """Say why a panel is empty; a panel that shares its time axis keeps the ticks (they are everyone's)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#5f6b76")
    if not shared_x:
        ax.set_xticks([])
    ax.set_yticks([])


def _short(name: str) -> str:
    """A legend-sized channel name: MetaHuman's ``CTRL_L_mouth_cornerPull-translateY`` → ``L_mouth_cornerPull``."""
    name = name.removeprefix("CTRL_")
    return name.removesuffix("-translateY") if name.count("-") == 1 else name


# -- overview ----------------------------------------------------------------------------------------


def _aligned_ratio_per_clip(words: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per clip: (aligned share, word count); plus totals — vectorised, so thousands of clips stay cheap."""
    arr = words.combine_chunks() if isinstance(words, pa.ChunkedArray) else words
    n = len(arr)
    counts = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(arr)
    if len(flat) == 0:
        return np.full(n, np.nan), counts, 0, 0
    aligned = pc.fill_null(pc.struct_field(flat, "aligned"), False).to_numpy(zero_copy_only=False).astype(float)
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    per_clip = np.bincount(parents, weights=aligned, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(counts > 0, per_clip / np.maximum(counts, 1), np.nan)
    return ratio, counts, int(counts.sum()), int(aligned.sum())


def _overview(m: Manifest) -> tuple[list[tuple[str, str]], list[str]]:
    """(summary rows, overview <figure>s) from the clip table alone."""
    rows = m.clips.select(
        ["speaker", "emotion", "split", "kind", "duration_s", "n_frames", "face_found_ratio", "has_audio"]
    ).to_pydict()
    n = m.clips.num_rows
    emotions = [e or UNLABELLED for e in rows["emotion"]]
    durations = np.asarray(rows["duration_s"], dtype=float)
    n_frames = np.asarray(rows["n_frames"], dtype=np.int64)
    face_ratio = np.asarray([math.nan if v is None else v for v in rows["face_found_ratio"]], dtype=float)
    video = np.asarray([k == "video" for k in rows["kind"]]) & (n_frames > 0)
    aligned_ratio, word_counts, n_words, n_aligned = _aligned_ratio_per_clip(m.clips["words"])
    speakers = Counter(rows["speaker"])
    splits = Counter(rows["split"])
    frames_video = int(n_frames[video].sum())
    face_weighted = float((face_ratio[video] * n_frames[video]).sum() / frames_video) if frames_video else None

    summary = [
        ("clips", f"{n}"),
        ("hours", f"{durations.sum() / 3600:.3f}"),
        ("speakers", f"{len(speakers)}"),
        ("frames", f"{int(n_frames.sum())}"),
        ("rig", str(m.meta.get("rig") or "mediapipe52")),
        ("channels", f"{len(m.channel_names)}"),
        ("clips per split", ", ".join(f"{s} {splits.get(s, 0)}" for s in SPLITS)),
        ("with audio", f"{sum(bool(v) for v in rows['has_audio'])}"),
        ("video clips", f"{int(video.sum())}"),
        ("face found", "—" if face_weighted is None else f"{face_weighted:.1%} of video frames"),
        ("words", f"{n_words}" + (f" ({n_aligned / n_words:.1%} aligned)" if n_words else "")),
        ("excluded at build", f"{m.meta.get('n_excluded', 0)}"),
        ("built", f"{m.meta.get('created_at', '?')} by medtalk {m.meta.get('medtalk_version', '?')}"),
    ]

    figures = []
    # emotions × splits
    fig = _figure(6.2, 3.6)
    ax = fig.add_subplot()
    labels = sorted(set(emotions) - {UNLABELLED}) + ([UNLABELLED] if UNLABELLED in emotions else [])
    table = Counter(zip(emotions, rows["split"], strict=True))
    bottom = np.zeros(len(labels))
    for split, colour in zip(SPLITS, ("#4c78a8", "#f58518", "#54a24b"), strict=True):
        values = np.array([table.get((e, split), 0) for e in labels], dtype=float)
        ax.bar(labels, values, bottom=bottom, label=split, color=colour)
        bottom += values
    ax.set_ylabel("clips")
    ax.set_title("clips per emotion and split")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    alt = "Stacked bars: clips per emotion, split into " + ", ".join(
        f"{e} {int(b)}" for e, b in zip(labels, bottom, strict=True)
    )
    figures.append(_img("emotions_by_split", fig, alt[:600]))

    # durations
    fig = _figure(5.4, 3.6)
    ax = fig.add_subplot()
    ax.hist(durations, bins=min(40, max(5, int(math.sqrt(n)) + 1)), color="#4c78a8")
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("clips")
    ax.set_title(f"clip durations (median {np.median(durations):.2f} s)" if n else "clip durations")
    figures.append(_img("durations", fig, f"Histogram of {n} clip durations, {durations.sum() / 3600:.3f} h in all"))

    # clips per speaker
    top = speakers.most_common(TOP_SPEAKERS)
    fig = _figure(6.2, max(2.6, 0.9 + 0.2 * len(top)))
    ax = fig.add_subplot()
    names = [s if len(s) <= 36 else s[:35] + "…" for s, _ in top][::-1]
    ax.barh(names, [c for _, c in top][::-1], color="#72b7b2")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("clips")
    ax.set_title(f"clips per speaker (top {len(top)} of {len(speakers)})")
    figures.append(_img("speakers", fig, f"Bars: clips of the {len(top)} largest of {len(speakers)} speakers"))

    figures.append(
        _ratio_histogram(
            "face_found_ratio",
            face_ratio[video],
            "#54a24b",
            "share of frames with a face",
            "video clips",
            "no video clips",
            "face found, per video clip",
            f"Histogram of the face-found ratio of {int(video.sum())} video clips",
        )
    )
    with_words = word_counts > 0
    figures.append(
        _ratio_histogram(
            "aligned_word_ratio",
            aligned_ratio[with_words],
            "#e45756",
            "share of words aligned",
            "clips with words",
            "no words in this manifest",
            "aligned words, per clip",
            f"Histogram of the aligned-word ratio of {int(with_words.sum())} clips",
        )
    )
    return summary, figures


def _ratio_histogram(
    name: str, values: np.ndarray, color: str, xlabel: str, ylabel: str, empty: str, title: str, alt: str
) -> str:
    """A histogram of per-clip ratios in 0..1 (or a "no data" panel when there are none)."""
    fig = _figure(5.4, 3.6)
    ax = fig.add_subplot()
    if len(values):
        ax.hist(values, bins=np.linspace(0, 1, 21), color=color)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        _no_data(ax, empty)
    ax.set_title(title)
    return _img(name, fig, alt)


# -- choosing clips ----------------------------------------------------------------------------------


def pick_clips(clips: pa.Table, max_clips: int, wanted: Sequence[str] | None = None) -> list[str]:
    """The clips to show: ``wanted`` as given, else up to ``max_clips`` spread round-robin over emotions.

    Within an emotion, speakers take turns too, so a few prolific speakers do not fill the page.
    """
    ids = clips["clip_id"].to_pylist()
    if wanted:
        unknown = [c for c in wanted if c not in set(ids)]
        if unknown:
            raise MedtalkError(f"clip(s) not in the manifest: {', '.join(unknown[:10])}")
        return list(dict.fromkeys(wanted))
    groups: dict[str, dict[str, list[str]]] = {}
    for cid, emotion, speaker in zip(ids, clips["emotion"].to_pylist(), clips["speaker"].to_pylist(), strict=True):
        groups.setdefault(emotion or UNLABELLED, {}).setdefault(speaker, []).append(cid)
    queues = []
    for emotion in sorted(groups, key=lambda e: (e == UNLABELLED, e)):
        by_speaker = [sorted(v) for _, v in sorted(groups[emotion].items())]
        longest = max(len(v) for v in by_speaker)
        queues.append([v[i] for i in range(longest) for v in by_speaker if i < len(v)])
    chosen: list[str] = []
    depth = 0
    while len(chosen) < max_clips and any(depth < len(q) for q in queues):
        chosen += [q[depth] for q in queues if depth < len(q)][: max_clips - len(chosen)]
        depth += 1
    return chosen


# -- one clip ----------------------------------------------------------------------------------------


def _main_channels(names: list[str], curves: np.ndarray) -> list[int]:
    """Indices of the channels to plot: the known main ones that exist, topped up by the liveliest others."""
    lower = {n.lower(): i for i, n in enumerate(names)}
    chosen = []
    for options in MAIN_CHANNELS:
        hit = next((lower[o.lower()] for o in options if o.lower() in lower), None)
        if hit is not None:
            chosen.append(hit)
    if len(chosen) < 3 and curves.size:
        with np.errstate(invalid="ignore"):
            spread = np.nan_to_num(np.nanstd(curves, axis=0), nan=-1.0)
        for i in np.argsort(-spread):
            if len(chosen) >= 6:
                break
            if int(i) not in chosen and not names[i].startswith("_"):
                chosen.append(int(i))
    return chosen


def _word_rows(words: list[dict[str, Any]]) -> list[int]:
    """A row per word so that neighbouring labels do not overlap (three rows, taken in turn)."""
    return [i % 3 for i in range(len(words))]


def _timeline(m: Manifest, row: dict[str, Any], names: list[str]) -> str:
    """Curves, head pose and words of one clip on one time axis."""
    table = m.frames(["time_s", "face_found", "curves", "head_rotation_deg"], [row["clip_id"]])
    t = table["time_s"].to_numpy()
    curves = fixed_size_numpy(table["curves"], (len(names),)) if len(t) else np.zeros((0, len(names)))
    pose = fixed_size_numpy(table["head_rotation_deg"], (3,)) if len(t) else np.zeros((0, 3))
    found = table["face_found"].to_numpy(zero_copy_only=False) if len(t) else np.zeros(0, dtype=bool)
    words = [w for w in row["words"] or [] if math.isfinite(w["start_s"]) and math.isfinite(w["end_s"])]
    end = max([float(t[-1]) if len(t) else 0.0, float(row["duration_s"] or 0.0)] + [w["end_s"] for w in words])

    fig = _figure(11.5, 6.2, layout=None)
    fig.subplots_adjust(left=0.065, right=0.84, top=0.98, bottom=0.08, hspace=0.08)
    ax_c, ax_p, ax_w = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2.3, 1.3, 1.1]})
    picked = _main_channels(names, curves)
    if len(t):
        for i in picked:
            ax_c.plot(t, curves[:, i], lw=1.1, label=_short(names[i]))
        if row["kind"] == "video" and (~found).any():
            band = ax_c.get_xaxis_transform()
            ax_c.fill_between(
                t, 0, 1, where=~found, color="red", alpha=0.12, step="mid", label="no face", transform=band
            )
        ax_c.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1))
    else:
        _no_data(ax_c, "no frames in the manifest", shared_x=True)
    ax_c.set_ylabel(f"{row['rig'] or 'curves'}")
    if len(t) and np.isfinite(pose).any():
        for i, name in enumerate(POSE_NAMES):
            ax_p.plot(t, pose[:, i], lw=1.1, label=name)
        ax_p.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1))
        ax_p.set_ylabel("head (deg)")
    else:
        _no_data(ax_p, "no head pose (no face data for this clip)", shared_x=True)
    for w, level in zip(words, _word_rows(words), strict=True):
        start, stop = float(w["start_s"]), float(w["end_s"])
        colour = "#4c78a8" if w["aligned"] else "#bab0ac"
        ax_w.broken_barh([(start, max(stop - start, 1e-3))], (level, 0.8), color=colour, alpha=0.85)
        ax_w.text((start + stop) / 2, level + 0.4, w["text"], ha="center", va="center", fontsize=7, clip_on=True)
    if not words:
        ax_w.text(0.5, 0.5, "no words", ha="center", va="center", transform=ax_w.transAxes, color="#5f6b76")
    ax_w.set_ylim(-0.1, 3)
    ax_w.set_yticks([])
    ax_w.set_ylabel("words")
    ax_w.set_xlabel("time (s)")
    ax_w.set_xlim(0, max(end, 1e-3))
    shown = ", ".join(names[i] for i in picked) or "none"
    alt = (
        f"Timeline of {row['clip_id']}: {len(t)} frames, curves ({shown}), head pitch/yaw/roll, "
        f"{len(words)} words over {end:.2f} s"
    )
    unaligned = sum(not w["aligned"] for w in words)
    caption = f"Grey words were not aligned ({unaligned} of {len(words)})." if unaligned else ""
    return _img("clip_timeline", fig, alt, caption, row["clip_id"])


@dataclass
class _Still:
    frame_index: int
    time_s: float
    source_time_s: float
    landmarks: np.ndarray | None  # (478, 3) normalised image coordinates
    rgb: np.ndarray | None = None


def _pick_stills(frames_file: Path, k: int) -> list[_Still]:
    """``k`` frames with a detected (not interpolated) face, spread over the clip; landmarks of those only."""
    meta = (pq.read_schema(frames_file).metadata or {}).get(b"medtalk")
    version = json.loads(meta).get("medtalk_frames_schema_version") if meta else None
    if version != FRAMES_SCHEMA_VERSION:
        raise ClipError("frames_version", f"{display_path(frames_file)}: frames schema version {version!r}")
    small = pq.read_table(frames_file, columns=["frame_index", "time_s", "source_time_s", "face_found", "interpolated"])
    good = np.flatnonzero(
        small["face_found"].to_numpy(zero_copy_only=False) & ~small["interpolated"].to_numpy(zero_copy_only=False)
    )
    pool = good if len(good) else np.arange(small.num_rows)
    if not len(pool) or k <= 0:
        return []
    rows = sorted({int(pool[round(q * (len(pool) - 1))]) for q in np.linspace(0.15, 0.85, k)})
    idx = small["frame_index"].to_numpy()[rows].tolist()
    times = small["time_s"].to_numpy()[rows]
    source_times = small["source_time_s"].to_numpy(zero_copy_only=False)[rows]
    stills = [
        _Still(i, float(t), float(st) if math.isfinite(st) else float(t), None)
        for i, t, st in zip(idx, times, source_times, strict=True)
    ]
    marks = pq.read_table(frames_file, columns=["frame_index", "landmarks"], filters=[("frame_index", "in", idx)])
    points = fixed_size_numpy(marks["landmarks"], (N_LANDMARKS, 3))
    by_index = dict(zip(marks["frame_index"].to_pylist(), points, strict=True))
    for s in stills:
        lm = by_index.get(s.frame_index)
        s.landmarks = lm if lm is not None and np.isfinite(lm).all() else None
    return stills


def _stills_figure(row: dict[str, Any], frames_per_clip: int) -> tuple[str | None, str | None]:
    """(frames <figure>, note): a few source frames with the landmarks drawn, or why there are none."""
    if frames_per_clip <= 0:
        return None, None
    if row["kind"] != "video":
        return None, "Audio-only clip: there is no video to show frames of."
    folder = clip_dir(Path(row["extraction_dir"]), row["clip_id"])
    frames_file = folder / FRAMES_FILE
    if not frames_file.is_file():
        return None, f"No per-frame face data at {display_path(frames_file)} (extraction folder moved or deleted?)."
    status = read_status(folder)
    source = Path(status.source.path if status is not None else row["source_path"])
    if not source.is_file():
        return None, f"Source video missing: {display_path(source)} — no frames shown."
    try:
        stills = _pick_stills(frames_file, frames_per_clip)
        media = status.media if status is not None else None
        fps = float((media.nominal_fps if media is not None else 0.0) or row["fps"] or 0.0)
        pictures = decode_at(source, [s.source_time_s for s in stills], fps, max_px=MAX_STILL_PX)
        for still, rgb in zip(stills, pictures, strict=True):
            still.rgb = rgb
    except ClipError as err:
        return None, f"Frames not shown: {err.message} ({display_path(source)})."
    except (OSError, pa.ArrowException) as err:  # a damaged frames file must not sink the whole report
        return None, f"Frames not shown: cannot read {display_path(frames_file)} ({err})."
    if not any(s.rgb is not None for s in stills):
        return None, f"No frame could be decoded from {display_path(source)}."
    fig = _figure(3.6 * len(stills), 3.9, layout=None)
    fig.subplots_adjust(left=0.005, right=0.995, top=0.93, bottom=0.005, wspace=0.02)
    for ax, still in zip(np.atleast_1d(fig.subplots(1, len(stills))), stills, strict=True):
        ax.axis("off")
        ax.set_title(f"frame {still.frame_index} · {still.time_s:.2f} s", fontsize=9)
        if still.rgb is None:
            _no_data(ax, "not decoded")
            continue
        h, w = still.rgb.shape[:2]
        ax.imshow(still.rgb)
        if still.landmarks is not None:
            ax.scatter(
                still.landmarks[:, 0] * w, still.landmarks[:, 1] * h, s=1.6, c="#00ffc8", alpha=0.85, linewidths=0
            )
    times = ", ".join(f"{s.time_s:.2f} s" for s in stills)
    alt = f"{len(stills)} frames of {row['clip_id']} at {times}, with the 478 face landmarks drawn"
    return _img("clip_frames", fig, alt, "Source frames with the fitted landmarks.", row["clip_id"]), None


def _clip_section(m: Manifest, row: dict[str, Any], anchor: str, frames_per_clip: int) -> tuple[str, list[str]]:
    names = m.channel_names
    labels = [
        ("emotion", row["emotion"] or UNLABELLED),
        ("speaker", row["speaker"]),
        ("split", row["split"]),
        ("kind", row["kind"]),
        ("duration", f"{row['duration_s']:.2f} s"),
        ("frames", f"{row['n_frames']} at {row['fps']:g} fps" if row["fps"] else f"{row['n_frames']}"),
        ("face found", f"{row['face_found_ratio']:.0%}" if row["kind"] == "video" else "—"),
        ("audio", "yes" if row["has_audio"] else "no"),
        ("words", f"{len(row['words'] or [])}"),
    ]
    parts = [
        f'<section class="clip" id="{anchor}" data-clip="{html.escape(row["clip_id"])}">',
        f"<h3>{html.escape(row['clip_id'])}</h3>",
        "<table><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k, _ in labels) + "</tr><tr>",
        "".join(f"<td>{html.escape(str(v))}</td>" for _, v in labels) + "</tr></table>",
        f'<p class="muted">source: {html.escape(display_path(row["source_path"]))}</p>',
    ]
    if row["transcript"]:
        parts.append(f'<p class="transcript">“{html.escape(row["transcript"])}”</p>')
    notes = []
    parts.append(_timeline(m, row, names))
    stills, note = _stills_figure(row, frames_per_clip)
    if stills:
        parts.append(stills)
    if note:
        notes.append(f"{row['clip_id']}: {note}")
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("</section>")
    return "\n".join(parts), notes


# -- the page ----------------------------------------------------------------------------------------


def render_report(
    manifest_dir: Path,
    out: Path,
    *,
    max_clips: int = DEFAULT_MAX_CLIPS,
    clip_ids: Sequence[str] | None = None,
    frames_per_clip: int = DEFAULT_FRAMES_PER_CLIP,
    title: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ReportResult:
    """Write the HTML report of ``manifest_dir`` to ``out`` (atomically) and say what it holds."""
    started = time.perf_counter()
    m = load_manifest(Path(manifest_dir))
    chosen = pick_clips(m.clips, max_clips, clip_ids)
    summary, overview = _overview(m)
    name = title or f"medtalk report — {Path(manifest_dir).resolve().name}"

    index = {cid: i for i, cid in enumerate(m.clips["clip_id"].to_pylist())}
    sections, notes, toc = [], [], []
    for n, cid in enumerate(chosen):
        if progress is not None:
            progress(n, len(chosen), cid)
        row = m.clips.slice(index[cid], 1).to_pylist()[0]
        anchor = f"clip-{n + 1}"
        section, clip_notes = _clip_section(m, row, anchor, frames_per_clip)
        sections.append(section)
        notes += clip_notes
        emotion = html.escape(row["emotion"] or UNLABELLED)
        toc.append(f'<li><a href="#{anchor}">{html.escape(cid)}</a> <span class="muted">{emotion}</span></li>')

    how = "as asked (--clips)" if clip_ids else f"spread over emotions and speakers (at most {max_clips})"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(name)}</title>\n<style>{CSS}</style>\n</head>\n<body>",
        f"<header><h1>{html.escape(name)}</h1>",
        f'<p class="muted">{html.escape(display_path(Path(manifest_dir).resolve()))} · generated {generated}</p>'
        "</header>",
        '<nav id="toc"><h2>Contents</h2><ol><li><a href="#overview">Overview</a></li>',
        f'<li><a href="#clips">Clips</a> <span class="muted">({len(chosen)} of {m.clips.num_rows})</span>',
        f"<ol>{''.join(toc)}</ol></li></ol></nav>",
        '<section id="overview" data-section="overview"><h2>Overview</h2>',
        '<table class="summary">'
        + "".join(f'<tr><th>{html.escape(k)}</th><td class="num">{html.escape(v)}</td></tr>' for k, v in summary)
        + "</table>",
        f'<div class="plots">{"".join(overview)}</div></section>',
        '<section id="clips" data-section="clips"><h2>Clips</h2>',
        f'<p class="muted">{len(chosen)} of {m.clips.num_rows} clips, {how}. Curves are the manifest\'s '
        f"{html.escape(str(m.meta.get('rig') or 'mediapipe52'))} channels; red shading marks frames without a "
        "face.</p>",
        *(sections or ['<p class="muted">No clips chosen.</p>']),
        "</section>\n</body>\n</html>\n",
    ]
    text = "\n".join(page)
    out = Path(out)
    atomic_write_text(out, text)
    return ReportResult(
        path=out,
        clip_ids=chosen,
        n_manifest_clips=m.clips.num_rows,
        size_bytes=len(text.encode("utf-8")),
        elapsed_s=time.perf_counter() - started,
        notes=notes,
    )
