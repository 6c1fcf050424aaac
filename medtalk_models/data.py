"""Training data over a manifest: rig curves at the rig fps, aligned frozen features, windows, pairs.

Everything a stage reads is gathered once into contiguous arrays (curves, features) so that a
batch is one fancy-indexing gather — loading is never the bottleneck of these small networks
(``benchmarks/bench_dataloader.py`` measures it). Clips that cannot serve are left out with a
reason (no face, NaN-only, shorter than a window, no audio for audio stages, no label).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medtalk_data.errors import MedtalkError
from medtalk_data.io.arrow import fixed_size_numpy
from medtalk_data.io.files import sha256_cached
from medtalk_data.manifest import load_manifest
from medtalk_data.manifest.read import Manifest
from medtalk_data.manifest.schema import ClipRow
from medtalk_data.resample import frame_times, interpolate_rows

from .descriptions import descriptions_for
from .features import FeatureCache, TextCache, align_to_frames
from .pairs import warp_onto
from .rig import RigSpec, rig_spec_for

log = logging.getLogger(__name__)

NEEDS = ("audio", "label", "text", "image", "descriptions")


@dataclass
class Clip:
    """One usable clip: where its frames sit in the shared arrays, and its labels."""

    clip_id: str
    speaker: str
    emotion: int  # index into model.emotions, -1 = none
    intensity: float | None
    content_id: str | None
    start: int  # first row in TrainingData arrays
    length: int
    runs: list[tuple[int, int]]  # valid frame runs, relative [a, b)
    audio_offset_s: float
    transcript: str
    row: ClipRow  # the manifest's record (its audio, reference frame)
    has_audio: bool = False
    labelled: bool = False  # the manifest gives its emotion (not: data.default_emotion, none, data.labels_left_out)
    extra: dict[str, Any] = field(default_factory=dict)


def open_manifest(path: Path) -> Manifest:
    return load_manifest(Path(path))


def manifest_rig(manifest: Manifest, cfg: dict[str, Any]) -> RigSpec:
    """The rig spec of a manifest: names from manifest.json, fps from the config or the clips."""
    rig_name = manifest.meta.get("rig")
    expect = cfg["rig"]["expect"]
    if expect and rig_name != expect:
        raise MedtalkError(
            f"{manifest.path}: manifest rig is {rig_name!r} ({len(manifest.channel_names)} channels), the config "
            f"expects {expect!r}; build the manifest with `--rig {expect}` or set rig.expect: null"
        )
    fps = cfg["rig"]["fps"]
    if fps is None:
        rates = [round(f, 3) for f in manifest.clips["fps"].to_pylist() if f]
        if not rates:
            raise MedtalkError(f"{manifest.path}: no clip has frames (fps); nothing to train on")
        values, counts = np.unique(rates, return_counts=True)
        fps = float(values[np.argmax(counts)])
    return rig_spec_for(rig_name, manifest.channel_names, float(fps))


def _valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _resample(curves: np.ndarray, valid: np.ndarray, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Curves onto ``fps_out`` by the one linear resampling of :meth:`Curves.resample` (same span, same
    frame count rule); a new frame is valid when both of its neighbours are."""
    if abs(fps_in - fps_out) < 1e-6:
        return curves, valid
    t_in, t_out = frame_times(len(curves), fps_in, fps_out)
    out = interpolate_rows(t_in, np.where(valid[:, None], curves, 0.0), t_out)
    left = np.clip(np.searchsorted(t_in, t_out + 1e-9, side="right") - 1, 0, len(curves) - 1)
    right = np.minimum(left + 1, len(curves) - 1)
    return out, valid[left] & valid[right]


class TrainingData:
    """The clips of one split that a stage can use, with everything gathered into arrays."""

    def __init__(
        self,
        manifest: Manifest,
        rig: RigSpec,
        cfg: dict[str, Any],
        split: str | None,
        needs: set[str],
        backbones: Any | None = None,
        cache_dir: Path | None = None,
        progress: bool = False,
        optional_audio: bool = False,
    ) -> None:
        self.rig = rig
        self.cfg = cfg
        self.split = split
        self.needs = set(needs)
        # optional_audio: clips without audio stay in (their audio features are zeros and batch["has_audio"]
        # says so), for stages whose label path learns from video-only clips (data.labels_without_audio)
        self.optional_audio = optional_audio
        self.window = cfg["data"]["window_frames"]
        self.emotions: list[str] = list(cfg["model"]["emotions"])
        # data.labels_left_out: the datasets' own labels (emotion_raw) whose clips do not count as labelled
        self.labels_left_out = {str(raw).strip().lower() for raw in cfg["data"].get("labels_left_out") or ()}
        self.excluded: dict[str, str] = {}
        self.backbones = backbones
        self.cache_dir = Path(cache_dir) if cache_dir else manifest.path / "cache"
        self.progress = progress
        self.manifest = manifest
        self._load_curves(manifest)
        self.emotion_offset: np.ndarray | None = None
        if optional_audio and cfg["data"]["video_only_content"] == "neutralised":
            self.emotion_offset = self._emotion_offsets()
        self.displacement: tuple[np.ndarray, np.ndarray] | None = None  # label stages: see _displacements
        if "label" in self.needs:
            self.displacement = self._displacements()
        self.feats: dict[str, np.ndarray] = {}
        self.text_tokens: list[np.ndarray] = []
        self.image_feats: np.ndarray | None = None
        self.sentences: list[np.ndarray] = []
        if "audio" in self.needs:
            self._load_audio()
        if "text" in self.needs:
            self._load_text()
        if "image" in self.needs:
            self._load_images()
        if "descriptions" in self.needs:
            self._load_descriptions()
        if self.excluded:
            reasons = defaultdict(list)
            for clip_id, why in self.excluded.items():
                reasons[why].append(clip_id)
            for why, ids in reasons.items():
                shown = ", ".join(ids[:4]) + (f" (+{len(ids) - 4} more)" if len(ids) > 4 else "")
                log.warning("%s split: %d clip(s) left out: %s: %s", split or "all", len(ids), why, shown)

    # -- loading ----------------------------------------------------------------------------
    def _label(self, emotion: str | None) -> int:
        if emotion is None:
            emotion = self.cfg["data"]["default_emotion"]
        return self.emotions.index(emotion) if emotion in self.emotions else -1

    def _left_out(self, emotion_raw: str | None) -> bool:
        return bool(emotion_raw) and str(emotion_raw).strip().lower() in self.labels_left_out

    def _load_curves(self, manifest: Manifest) -> None:
        min_face = self.cfg["data"]["min_face_ratio"]
        keep: list[ClipRow] = []
        for r in manifest.rows(self.split):
            if not r.n_frames or not r.rig:
                self.excluded[r.clip_id] = "no rig curves (audio-only or no face)"
            elif (r.face_found_ratio or 0.0) < min_face and not r.rig_curves_path:
                self.excluded[r.clip_id] = f"face found in fewer than {min_face:.0%} of frames"
            elif "audio" in self.needs and not self.optional_audio and not (r.has_audio and r.audio_path):
                self.excluded[r.clip_id] = "no audio (needed by this stage)" + (
                    "" if r.audio_path or not r.has_audio else ": the manifest was built with --audio none"
                )
            elif "label" in self.needs and self._left_out(r.emotion_raw):
                self.excluded[r.clip_id] = (
                    f"its dataset label {r.emotion_raw!r} is left out of the label stages (data.labels_left_out)"
                )
            elif "label" in self.needs and self._label(r.emotion) < 0:
                self.excluded[r.clip_id] = "no emotion label (set data.default_emotion to use it)"
            elif "image" in self.needs and not r.face_found_ratio:
                self.excluded[r.clip_id] = "no face fitted (audio-only): no reference image"
            elif "image" in self.needs and self._needs_pixels() and manifest.reference_image(r) is None:
                self.excluded[r.clip_id] = "no reference image in the manifest (its source video was missing at build)"
            else:
                keep.append(r)
        table = manifest.frames(["clip_id", "face_found", "interpolated", "curves"], [r.clip_id for r in keep])
        ids = np.asarray(table["clip_id"].to_numpy(zero_copy_only=False))
        all_curves = fixed_size_numpy(table["curves"]).astype(np.float32, copy=False)
        usable = (
            table["face_found"].to_numpy(zero_copy_only=False) | table["interpolated"].to_numpy(zero_copy_only=False)
        ) & np.isfinite(all_curves).all(axis=1)
        bounds = {}
        if len(ids):
            change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(ids)]])
            bounds = {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
        need = self.window or 4
        curves_parts, valid_parts, self.clips = [], [], []
        offset = 0
        for r in keep:
            if r.clip_id not in bounds:
                self.excluded[r.clip_id] = "no frames in frames.parquet"
                continue
            a, b = bounds[r.clip_id]
            ok = np.isfinite(all_curves[a:b]).all(axis=1) if r.rig_curves_path else usable[a:b]  # captured rig
            curves, valid = _resample(all_curves[a:b], ok, float(r.fps), self.rig.fps)
            curves = np.where(valid[:, None], curves, 0.0).astype(np.float32)  # NaN never reaches a batch
            runs = [run for run in _valid_runs(valid) if run[1] - run[0] >= need]
            if not runs:
                nan = int((~valid).sum())
                why = (
                    f"shorter than a window (data.window_frames={need} at {self.rig.fps:g} fps)"
                    if nan == 0
                    else f"no run of {need} frames without NaN/missing face"
                )
                self.excluded[r.clip_id] = why
                continue
            self.clips.append(
                Clip(
                    clip_id=r.clip_id,
                    speaker=r.speaker or r.clip_id,
                    emotion=self._label(r.emotion),
                    intensity=r.intensity,
                    content_id=r.content_id,
                    start=offset,
                    length=len(curves),
                    runs=runs,
                    audio_offset_s=float(r.audio_offset_s or 0.0),
                    transcript=r.transcript or "",
                    row=r,
                    has_audio=bool(r.has_audio and r.audio_path),
                    labelled=r.emotion in self.emotions and not self._left_out(r.emotion_raw),
                )
            )
            curves_parts.append(curves)
            valid_parts.append(valid)
            offset += len(curves)
        c = self.rig.dim
        self.curves = np.concatenate(curves_parts) if curves_parts else np.zeros((0, c), np.float32)
        self.valid = np.concatenate(valid_parts) if valid_parts else np.zeros(0, bool)
        self.clip_of_row = np.repeat(np.arange(len(self.clips)), [cl.length for cl in self.clips]).astype(np.int64)

    def _load_audio(self) -> None:
        from tqdm import tqdm

        for part in ("content", "emotion"):
            extractor = self.backbones.audio[part]
            if part == "emotion" and extractor is self.backbones.audio["content"]:
                self.feats["emotion"] = self.feats["content"]
                continue
            cache = FeatureCache(self.cache_dir, extractor)
            out = np.zeros((len(self.curves), extractor.dim), np.float16)
            for clip in tqdm(self.clips, desc=f"audio features ({part})", disable=not self.progress, leave=False):
                if not clip.has_audio:  # optional_audio: rows stay zero, batch["has_audio"] marks them
                    continue
                wav = self.audio_file(clip)
                digest = sha256_cached(wav)
                self.manifest.check_audio(clip.row, digest)
                raw = cache.get(clip.clip_id, wav, digest)
                times = np.arange(clip.length) / self.rig.fps - clip.audio_offset_s
                out[clip.start : clip.start + clip.length] = align_to_frames(
                    np.asarray(raw), extractor.rate_hz, times, self.rig.fps
                )
            self.feats[part] = out

    def _load_text(self) -> None:
        cache = TextCache(self.cache_dir, self.backbones.text)
        missing = [c.clip_id for c in self.clips if c.has_audio and not c.transcript.strip()]
        if missing:
            log.warning(
                "%d clip(s) have no transcript (e.g. %s): their intensity is predicted from audio with an empty text "
                "(run the words stage of `medtalk-data extract`, or give transcripts in a labels CSV)",
                len(missing),
                missing[0],
            )
        encoder = self.backbones.text
        foreign: dict[str, list[str]] = {}  # script → clips whose transcript this encoder cannot read
        texts = []
        for clip in self.clips:
            text = clip.transcript.strip()
            scripts = encoder.unreadable_scripts(text) if text else []
            for script in scripts:
                foreign.setdefault(script, []).append(clip.clip_id)
            texts.append("" if scripts else text)
        for script, ids in foreign.items():
            log.warning(
                "%d clip(s) have %s transcripts (e.g. %s) that the text encoder cannot read (%s): they train with an "
                "empty text, as clips without a transcript; for their language set text.kind: hf with text.path a "
                "local encoder that reads it (e.g. a Chinese RoBERTa, as the official code), or text.kind: none",
                len(ids),
                script,
                ids[0],
                encoder.language_note or encoder.kind,
            )
        self.text_tokens = [cache.tokens(text) for text in texts]

    def audio_file(self, clip: Clip) -> Path:
        """The clip's wav inside the manifest (one line naming it and the fix when it is gone)."""
        return self.manifest.audio_file(clip.row)

    def _needs_pixels(self) -> bool:
        image = self.backbones.image if self.backbones is not None else None
        return image is not None and image.kind != "blendshapes"

    def _load_images(self) -> None:
        """The reference image of a clip is its most intense frame (as the paper picks RAVDESS frames), chosen
        and stored by `build-manifest` (``reference_frame``, ``reference_image``)."""
        encoder = self.backbones.image
        feats = [self.backbones.reference_features(self.manifest, clip.row) for clip in self.clips]
        self.image_feats = np.stack(feats).astype(np.float32) if feats else np.zeros((0, encoder.dim), np.float32)

    def _load_descriptions(self) -> None:
        cache = TextCache(self.cache_dir, self.backbones.text)
        count = self.cfg["stages"]["emotion_control"]["descriptions_per_clip"]
        seed = self.cfg["train"]["seed"]
        self.sentences = []
        for i, clip in enumerate(self.clips):
            texts = descriptions_for(self.emotions[clip.emotion], clip.intensity, count, seed * 100_003 + i)
            clip.extra["descriptions"] = texts
            self.sentences.append(np.stack([cache.sentence(t) for t in texts]))

    # -- windows and batches ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.clips)

    def _clip_means(self) -> tuple[list[np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
        """Each clip's mean pose, each speaker's mean pose over its labelled neutral clips, and the mean of every
        neutral training frame (None without any)."""
        neutral = self.emotions.index("neutral") if "neutral" in self.emotions else -1
        means, speaker_neutral, all_neutral = [], {}, []
        for clip in self.clips:
            rows = slice(clip.start, clip.start + clip.length)
            frames = self.curves[rows][self.valid[rows]]
            means.append(frames.mean(0))
            if clip.emotion == neutral:
                all_neutral.append(frames)
                if clip.labelled:
                    speaker_neutral.setdefault(clip.speaker, []).append(frames)
        reference = {k: np.concatenate(v).mean(0) for k, v in speaker_neutral.items()}
        return means, reference, np.concatenate(all_neutral).mean(0) if all_neutral else None

    def _emotion_offsets(self) -> np.ndarray:
        """Per clip without audio: its mean pose minus its speaker's neutral mean pose (the mean of every
        neutral training frame where the speaker has no neutral clip): the static part of its expression.
        Stage 3 takes it out of what the content encoder sees, so that the label's code has to carry it
        (at animate time the content comes from speech, which carries no expression). Zero for clips with
        audio, whose content comes from the audio."""
        out = np.zeros((len(self.clips), self.rig.dim), np.float32)
        means, reference, fallback = self._clip_means()
        if fallback is None:
            return out
        for i, clip in enumerate(self.clips):
            if not clip.has_audio:
                out[i] = means[i] - reference.get(clip.speaker, fallback)
        return out

    def _displacements(self) -> tuple[np.ndarray, np.ndarray]:
        """Per labelled clip whose speaker has a labelled neutral clip: its mean pose minus that speaker's neutral
        mean, i.e. how far this person's face moves for the clip's emotion (the label's own effect, free of the
        person's resting face); and which clips have one. The label path learns to reproduce it
        (``stages.intensity.displacement_weight``)."""
        out = np.zeros((len(self.clips), self.rig.dim), np.float32)
        known = np.zeros(len(self.clips), bool)
        means, reference, _ = self._clip_means()
        for i, clip in enumerate(self.clips):
            if clip.labelled and clip.speaker in reference:
                out[i], known[i] = means[i] - reference[clip.speaker], True
        return out, known

    def displacement_spread(self) -> np.ndarray | None:
        """Each channel's spread (std) of the displacements over the clips that have one (None without two such
        clips): the units the displacement term counts each channel in, as the emotion classifier of
        :mod:`medtalk_models.recognise` does, so the brows do not drown the nose and cheeks."""
        if self.displacement is None or int(self.displacement[1].sum()) < 2:
            return None
        return self.displacement[0][self.displacement[1]].std(0)

    def valid_frames(self) -> list[int]:
        """Valid rig frames per clip, in clip order."""
        return [int(self.valid[c.start : c.start + c.length].sum()) for c in self.clips]

    @property
    def n_frames(self) -> int:
        return len(self.curves)

    def windows(self, rng: np.random.Generator | None) -> np.ndarray:
        """(n, 2) [clip index, absolute start row]: non-overlapping windows tiling each valid run,
        at a random phase when ``rng`` is given (training) or from the run start (validation).
        Whole-clip mode (window null) gives one sample per run, length in column 2."""
        out = []
        for ci, clip in enumerate(self.clips):
            for a, b in clip.runs:
                if self.window is None:
                    out.append((ci, clip.start + a, b - a))
                    continue
                n = (b - a) // self.window
                slack = (b - a) - n * self.window
                phase = int(rng.integers(0, slack + 1)) if rng is not None else 0
                for k in range(n):
                    out.append((ci, clip.start + a + phase + k * self.window, self.window))
        arr = np.array(out, dtype=np.int64).reshape(-1, 3)
        if rng is not None:
            arr = arr[rng.permutation(len(arr))]
        return arr

    def gather(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays for a batch of windows (all of one length)."""
        length = int(windows[0, 2])
        rows = windows[:, 1:2] + np.arange(length)[None, :]
        out = {"x": self.curves[rows], "clip": windows[:, 0]}
        for name, arr in self.feats.items():
            out[name] = arr[rows]
        out["label"] = np.array([self.clips[c].emotion for c in windows[:, 0]], np.int64)
        out["has_audio"] = np.array([self.clips[c].has_audio for c in windows[:, 0]], bool)
        if self.emotion_offset is not None:
            out["emotion_offset"] = self.emotion_offset[windows[:, 0]]
        if self.displacement is not None:
            out["displacement"] = self.displacement[0][windows[:, 0]]
            out["displaced"] = self.displacement[1][windows[:, 0]]
        return out

    def to_batch(
        self, windows: np.ndarray, device: torch.device, rng: np.random.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        g = self.gather(windows)
        batch = {
            "x": torch.from_numpy(g["x"]).to(device),
            "label": torch.from_numpy(g["label"]).to(device),
            "has_audio": torch.from_numpy(g["has_audio"]).to(device),
        }
        if "emotion_offset" in g:
            batch["emotion_offset"] = torch.from_numpy(g["emotion_offset"]).to(device)
        for name in ("displacement", "displaced"):
            if name in g:
                batch[name] = torch.from_numpy(g[name]).to(device)
        for name in self.feats:
            batch[name] = torch.from_numpy(g[name].astype(np.float32)).to(device)
        clips = windows[:, 0]
        if self.text_tokens:
            toks = [self.text_tokens[c] for c in clips]
            lmax = max(len(t) for t in toks)
            pad = np.zeros((len(toks), lmax, toks[0].shape[1]), np.float32)
            mask = np.ones((len(toks), lmax), bool)
            for i, t in enumerate(toks):
                pad[i, : len(t)] = t
                mask[i, : len(t)] = False
            batch["text"] = torch.from_numpy(pad).to(device)
            batch["text_pad"] = torch.from_numpy(mask).to(device)
        if self.image_feats is not None:
            batch["image"] = torch.from_numpy(self.image_feats[clips]).to(device)
        if self.sentences:
            pick = [
                self.sentences[c][int(rng.integers(len(self.sentences[c]))) if rng is not None else 0] for c in clips
            ]
            batch["sentence"] = torch.from_numpy(np.stack(pick).astype(np.float32)).to(device)
        return batch


class PairSampler:
    """Stage-1 pairs: same sentence in two emotions (content), same emotion in two sentences
    (emotion), and different emotion and sentence (cycle)."""

    def __init__(self, data: TrainingData, method: str) -> None:
        self.data = data
        self.pool = data.windows(None)  # fixed windows to draw emotion/cycle pairs from
        mouth = data.rig.indices("mouth")
        self.content_pairs: list[tuple[int, int, np.ndarray]] = []
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for ci, clip in enumerate(data.clips):
            full = clip.runs == [(0, clip.length)]
            if clip.content_id and clip.emotion >= 0 and full:
                groups[(clip.speaker, clip.content_id)].append(ci)
        by_content: dict[str, list[int]] = defaultdict(list)
        for (_, content), members in groups.items():
            by_content[content].extend(members)
        for members in groups.values():
            self._add_pairs(members, mouth, method)
        if not self.content_pairs:  # no speaker said a sentence twice: pair across speakers
            for members in by_content.values():
                self._add_pairs(members, mouth, method)

    def _add_pairs(self, members: list[int], mouth: list[int], method: str) -> None:
        d = self.data
        for p in members:
            for q in members:
                if p != q and d.clips[p].emotion != d.clips[q].emotion:
                    cp, cq = d.clips[p], d.clips[q]
                    ref = d.curves[cp.start : cp.start + cp.length]
                    other = d.curves[cq.start : cq.start + cq.length]
                    self.content_pairs.append((p, q, warp_onto(ref, other, mouth, method)))

    def content_batch(self, rng: np.random.Generator, batch: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for k in rng.integers(0, len(self.content_pairs), size=batch):
            p, _, warped = self.content_pairs[int(k)]
            clip = self.data.clips[p]
            length = min(window, clip.length)
            s = int(rng.integers(0, clip.length - length + 1))
            xs.append(self.data.curves[clip.start + s : clip.start + s + length])
            ys.append(warped[s : s + length])
        return np.stack(xs), np.stack(ys)

    def _pool_groups(self) -> None:
        clips = self.data.clips
        self._emotion = np.array([clips[c].emotion for c in self.pool[:, 0]])
        self._speaker = np.array([clips[c].speaker for c in self.pool[:, 0]], dtype=object)
        self._by_speaker_emotion: dict[tuple[str, int], np.ndarray] = {}
        self._by_speaker: dict[str, np.ndarray] = {}
        for i, (spk, emo) in enumerate(zip(self._speaker, self._emotion, strict=True)):
            self._by_speaker_emotion.setdefault((spk, int(emo)), []).append(i)
            self._by_speaker.setdefault(spk, []).append(i)

    def two_windows(self, rng: np.random.Generator, batch: int, same_emotion: bool) -> tuple[np.ndarray, np.ndarray]:
        """Two windows per sample, both from one speaker where the data allows (so that what the
        pair shares is the emotion, or the lack of it, and not a face shape):

        * emotion exchange: same emotion, not overlapping (another sentence, or another moment of
          the same clip — the mouth differs, the emotional expression does not);
        * cycle exchange: different emotion, different content."""
        if not hasattr(self, "_emotion"):
            self._pool_groups()
        pool, firsts, seconds = self.pool, [], []
        for _ in range(batch):
            i = int(rng.integers(len(pool)))
            a = pool[i]
            if same_emotion:
                cands = self._by_speaker_emotion[(self._speaker[i], int(self._emotion[i]))]
                cands = [j for j in cands if not (pool[j][0] == a[0] and abs(pool[j][1] - a[1]) < a[2])]
                if not cands:
                    cands = np.flatnonzero(self._emotion == self._emotion[i]).tolist()
                    cands = [j for j in cands if not (pool[j][0] == a[0] and abs(pool[j][1] - a[1]) < a[2])]
            else:
                ca = self.data.clips[a[0]]

                def different(j: int, ca: Clip = ca) -> bool:
                    cb = self.data.clips[pool[j][0]]
                    return cb.emotion != ca.emotion and (ca.content_id is None or cb.content_id != ca.content_id)

                cands = [j for j in self._by_speaker[self._speaker[i]] if different(j)]
                if not cands:
                    cands = [j for j in range(len(pool)) if different(j)]
            j = int(cands[int(rng.integers(len(cands)))]) if cands else int(rng.integers(len(pool)))
            firsts.append(a)
            seconds.append(pool[j])
        x1 = self.data.gather(np.array(firsts))["x"]
        x2 = self.data.gather(np.array(seconds))["x"]
        return x1, x2
