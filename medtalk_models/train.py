"""`medtalk-models train`: the stage loop, checkpoints, resume, logs, devices, AMP and torchrun.

A run folder holds ``config.yaml`` (resolved), ``rig.json``, ``log.csv``, ``tb/`` (TensorBoard),
one checkpoint folder per stage (weights, optimizer, RNG, position) and ``model/``: the weights of
the last finished stage, which ``animate``/``evaluate`` load. Data order is a pure function of
(seed, stage, phase, epoch, batch), so a resumed run repeats exactly what an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medtalk_data import __version__ as medtalk_version
from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_write_json, atomic_write_text, display_path
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

from .backbones import Backbones, build_backbones
from .checkpoint import (
    TrainingState,
    capture_rng,
    load_extra,
    load_meta,
    load_model_weights,
    load_training,
    restore_rng,
    save_checkpoint,
)
from .config import dump_config
from .data import PairSampler, TrainingData, manifest_rig, open_manifest
from .labels import LABEL_STAGES, LabelCoverage
from .model import MEDTalk, ModelDims, trainable_parameters
from .rig import RigSpec
from .stages import STAGE_ORDER, STAGES, StageLoss, disentangle_tensors, stage_phases

log = logging.getLogger(__name__)

LOG_FIELDS = ("stage", "phase", "epoch", "step", "split", "loss", "terms", "lr", "mouth_mae", "upper_mae", "secs")


@dataclass
class Dist:
    """torchrun environment (a single process when WORLD_SIZE is unset)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Destroy the process group before the interpreter exits: a gloo group left to the exit handlers can
        abort a rank ("terminate called without an active exception", seen once in a CI run of the torchrun
        test), and torchrun then reports the whole run failed."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def average(self, tensors: list[torch.Tensor]) -> None:
        """Average logged values over the ranks (gradients are DistributedDataParallel's job)."""
        if self.world > 1:
            for t in tensors:
                torch.distributed.all_reduce(t)
                t.div_(self.world)


class StepModule(torch.nn.Module):
    """The model with one training step's losses as its forward.

    DistributedDataParallel synchronises gradients of what runs inside its wrapped module's forward;
    a step calls several parts of the model (all four exchanges under the mixed schedule), so the
    whole step is the forward and DDP sees every parameter it touches exactly once per backward."""

    def __init__(self, model: torch.nn.Module, compute: Any) -> None:
        super().__init__()
        self.model = model
        self.compute = compute

    def forward(self, *args: Any) -> dict[str, torch.Tensor]:
        return self.compute(*args)


def wrap_ddp(model: torch.nn.Module, compute: Any, device: torch.device) -> torch.nn.Module:
    """DDP over the parameters that train in this stage (built after the stage froze the others)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    # find_unused_parameters: a phase may leave some of the stage's trainable modules out of its loss
    return DistributedDataParallel(StepModule(model, compute), device_ids=ids, find_unused_parameters=True)


def _init_dist(device_kind: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not td.is_initialized():
        td.init_process_group(backend)
    return Dist(td.get_rank(), td.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, dist: Dist | None = None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MedtalkError("--device cuda: no CUDA device is visible to torch (use --device cpu or auto)")
        if dist is not None and dist.world > 1:
            return torch.device("cuda", dist.local_rank)
    elif name != "cpu":
        raise MedtalkError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or mode == "off":
        if mode in ("bf16", "fp16") and device.type != "cuda":
            log.warning("train.amp=%s applies to CUDA only; training in float32 on %s", mode, device)
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16 if mode == "auto" else None


def image_dim_of(cfg: dict[str, Any]) -> int:
    """Reference-image feature size without loading the encoder (only CLIP needs loading to know)."""
    if cfg["image"]["kind"] == "blendshapes":
        return len(MEDIAPIPE_BLENDSHAPES)
    from .encoders import build_image_encoder

    with build_image_encoder({"kind": "clip", "path": cfg["image"]["path"]}) as encoder:
        return int(encoder.dim)


def model_dims(cfg: dict[str, Any], rig: RigSpec, backbones: Backbones) -> ModelDims:
    m = cfg["model"]
    return ModelDims(
        rig_dim=rig.dim,
        content_feat_dim=backbones.audio["content"].dim,
        emotion_feat_dim=backbones.audio["emotion"].dim,
        text_token_dim=getattr(backbones.text, "token_dim", backbones.text.dim),
        sentence_dim=backbones.text.dim,
        image_dim=backbones.image.dim if backbones.image is not None else image_dim_of(cfg),
        hidden_dim=m["hidden_dim"],
        latent_dim=m["latent_dim"],
        n_emotions=len(m["emotions"]),
        label_hidden=m["label_hidden"],
        fusion_dim=m["fusion_dim"],
        fusion_heads=m["fusion_heads"],
        fusion_dropout=m["fusion_dropout"],
        audio_conv_kernel=m["audio_conv_kernel"],
        emotion_pooling=m["emotion_pooling"],
        audio_hidden_dim=m["audio_hidden_dim"],
        audio_input_norm=m["audio_input_norm"],
        audio_dropout=m["audio_dropout"],
        lip_residual=tuple(rig.indices("mouth")) if m.get("lip_residual", False) else (),
        audio_members=int(m.get("audio_members", 1)),
    )


def checkpoint_meta(cfg: dict[str, Any], rig: RigSpec, dims: ModelDims, stages_done: list[str]) -> dict[str, Any]:
    return {
        "medtalk_version": medtalk_version,
        "config": cfg,
        "rig": rig.to_dict(),
        "dims": dims.to_dict(),
        "emotions": list(cfg["model"]["emotions"]),
        "stages_done": stages_done,
    }


def rest_pose(data: TrainingData, min_frames: int = 10) -> list[float] | None:
    """Median curves over the training frames where nobody speaks (energy-based voice activity):
    the pose `animate` eases the mouth to in silence. None when the clips have too little silence."""
    from medtalk_data.io.wav import read_wav

    from .features import REST_HANGOVER_S, voice_activity

    quiet = []
    for clip in data.clips:
        if not clip.has_audio:
            continue
        wave_16k, _ = read_wav(data.audio_file(clip))
        times = np.arange(clip.length) / data.rig.fps - clip.audio_offset_s
        speech = voice_activity(wave_16k, times, data.rig.fps, REST_HANGOVER_S)
        silent = ~speech & data.valid[clip.start : clip.start + clip.length]
        quiet.append(data.curves[clip.start : clip.start + clip.length][silent])
    frames = np.concatenate(quiet) if quiet else np.zeros((0, data.rig.dim))
    if len(frames) < min_frames:
        log.info("only %d silent training frames: animate rests the mouth on the model's silence output", len(frames))
        return None
    return [round(float(v), 6) for v in np.median(frames, axis=0)]


def fit_baselines(data: TrainingData, context: int) -> dict[str, torch.Tensor]:
    """The mean pose and ridge maps of :mod:`medtalk_models.baselines`, fitted on the stage-2 training frames
    (the same audio-content features and curves the model learns from), as tensors for the checkpoint."""
    from .baselines import fit_training_baselines

    feats, curves, valid, groups = [], [], [], []
    for clip in data.clips:
        rows = slice(clip.start, clip.start + clip.length)
        feats.append(np.asarray(data.feats["content"][rows], np.float32))
        curves.append(data.curves[rows])
        valid.append(data.valid[rows])
        groups.append(clip.speaker)
    started = time.perf_counter()
    fitted = fit_training_baselines(feats, curves, valid, groups, context)
    log.info(
        "baselines fitted on %d training frames in %.1f s (ridge penalty %g, ±%d frames: %g)",
        int(sum(v.sum() for v in valid)), time.perf_counter() - started, fitted.ridge.lam, context,
        fitted.ridge_context.lam,
    )  # fmt: skip
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in fitted.to_arrays().items()}


def fit_classifier(data: TrainingData) -> dict[str, torch.Tensor] | None:
    """evaluate's emotion classifier (:mod:`medtalk_models.recognise`), fitted on the real labelled training
    clips (with or without audio) of speakers with a neutral clip, as tensors for the checkpoint; None with fewer
    than two labels among them."""
    from .recognise import classifier_channels, fit_emotion_classifier

    channels = classifier_channels(data.rig)
    fitted = fit_emotion_classifier(data, channels)
    if fitted is None:
        log.info(
            "fewer than two emotion labels among training speakers with a neutral clip: no emotion classifier for "
            "evaluate"
        )
        return None
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in fitted.to_arrays().items()}


class CsvLog:
    """Append-only CSV of losses; on resume, rows past the checkpoint are dropped first."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if enabled and not path.exists():
            atomic_write_text(path, ",".join(LOG_FIELDS) + "\n")

    def truncate_after(self, stage: str, step: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        keep = [r for r in rows if not (r["stage"] == stage and int(r["step"]) > step)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, **row: Any) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, LOG_FIELDS, lineterminator="\n").writerow({k: row.get(k, "") for k in LOG_FIELDS})


class StageSkipped(Exception):
    """A stage with nothing to learn from that the run can go on without (said in a warning)."""


@dataclass
class RunResult:
    out: Path
    stages_done: list[str] = field(default_factory=list)
    stopped_early: bool = False
    skipped: list[str] = field(default_factory=list)
    labels: LabelCoverage | None = None  # which labels the label stages trained on
    final_losses: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Trains the requested stages of one run folder."""

    def __init__(
        self,
        manifest: Path,
        cfg: dict[str, Any],
        out: Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        device: str = "auto",
        max_steps: int | None = None,
        progress: bool = True,
        stages: list[str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.max_steps = max_steps
        self.steps_this_run = 0
        self._step_module: torch.nn.Module | None = None  # the DDP-wrapped step under torchrun
        self.progress = progress
        self.stages = stages
        kind = "cuda" if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "cpu"
        self.dist = _init_dist(kind)
        self.device = resolve_device(device, self.dist)
        self.amp = amp_dtype(cfg["train"]["amp"], self.device)
        self.seed = int(cfg["train"]["seed"])
        self.manifest = open_manifest(manifest)
        self.rig = manifest_rig(self.manifest, cfg)
        self._prepare_out(overwrite)
        self.backbones = build_backbones(cfg, "cpu", needs=self._backbone_needs(stages))
        self.dims = model_dims(cfg, self.rig, self.backbones)
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        self.model = MEDTalk(self.dims).to(self.device)
        self.csv = CsvLog(self.out / "log.csv", self.dist.main)
        self.rest_pose: list[float] | None = None
        self.output_offset: list[float] | None = None  # train.output_offset: see calibrate.py
        self.baselines: dict[str, torch.Tensor] | None = None  # fitted with stage 2 (see medtalk_models.baselines)
        self.coverage = LabelCoverage(list(cfg["model"]["emotions"]))  # which labels trained, per label stage
        self.intensity_info: dict[str, Any] = {}  # stage 3: whether the audio predictor trained, mean Int(x)
        self.classifier: dict[str, torch.Tensor] | None = None  # evaluate's emotion classifier: recognise.py
        self.tb = self._tensorboard()
        self.cache_dir = Path(cfg["data"]["cache_dir"]) if cfg["data"]["cache_dir"] else self.manifest.path / "cache"

    # -- run folder ---------------------------------------------------------------------------
    def _prepare_out(self, overwrite: bool) -> None:
        rig_file = self.out / "rig.json"
        trained = [s for s in (self.stages or STAGE_ORDER) if (self.out / s / "meta.json").exists()]
        if trained and not (self.resume or overwrite):
            raise MedtalkError(
                f"{display_path(self.out)}: a run is already there; pass --resume to continue it, --overwrite to "
                f"start again, or choose another --out"
            )
        if rig_file.exists() and not overwrite:
            import json

            old = RigSpec.from_dict(json.loads(rig_file.read_text(encoding="utf-8")))
            if not old.same_channels(self.rig):
                raise MedtalkError(
                    f"{display_path(self.out)}: this run was trained on rig {old.name!r} ({old.dim} channels); the "
                    f"manifest has {self.rig.name!r} ({self.rig.dim}); resume with the run's own manifest or start a "
                    f"new --out"
                )
        self.dist.barrier()  # every rank has checked the folder before rank 0 writes into it
        if overwrite and self.out.exists() and self.dist.main:
            import shutil

            for child in self.out.iterdir():
                if child.name in (*STAGE_ORDER, "model", "tb", "log.csv", "rig.json", "config.yaml"):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(rig_file, self.rig.to_dict())
            atomic_write_text(self.out / "config.yaml", dump_config(self.cfg))
        self.dist.barrier()

    def _tensorboard(self) -> Any:
        if not self.dist.main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed: losses go to log.csv only (pip install 'medtalk[models]')")
            return None
        return SummaryWriter(str(self.out / "tb"))

    @staticmethod
    def _backbone_needs(stages: list[str] | None) -> set[str]:
        """Audio and text backbones size the model; the image encoder is loaded only for stage 4."""
        needs = {"audio", "text"}
        if stages is None or "emotion_control" in stages:
            needs.add("image")
        return needs

    def _extra(self) -> dict[str, dict[str, torch.Tensor]] | None:
        extra = {"baselines": self.baselines, "emotion_classifier": self.classifier}
        return {k: v for k, v in extra.items() if v is not None} or None

    def _restore_extras(self, meta: dict[str, Any], where: Path) -> None:
        """What a checkpoint carries besides weights and optimizer: the rest pose, the output offset, the training
        baselines, the emotion classifier, the label table and what stage 3's intensity predictor learned from."""
        self.rest_pose = meta.get("rest_pose", self.rest_pose)
        self.output_offset = meta.get("output_offset", self.output_offset)
        self.baselines = load_extra(where, "baselines") or self.baselines
        self.classifier = load_extra(where, "emotion_classifier") or self.classifier
        self.coverage = LabelCoverage.from_dict(meta.get("label_coverage")) or self.coverage
        self.intensity_info = meta.get("intensity_predictor", self.intensity_info)

    def _meta(self, done: list[str]) -> dict[str, Any]:
        meta = checkpoint_meta(self.cfg, self.rig, self.dims, done)
        if self.rest_pose is not None:
            meta["rest_pose"] = self.rest_pose
        if self.output_offset is not None:
            meta["output_offset"] = self.output_offset
        if self.coverage.stages:
            meta["label_coverage"] = self.coverage.to_dict()
        if self.intensity_info:
            meta["intensity_predictor"] = self.intensity_info
        return meta

    # -- the run ------------------------------------------------------------------------------
    def run(self, stages: list[str]) -> RunResult:
        result = RunResult(self.out)
        first = STAGE_ORDER.index(stages[0])
        done = self._load_previous(first)
        for name in stages:
            try:
                finished, losses = self._train_stage(name, done)
            except StageSkipped as why:
                log.warning("%s", why)
                result.skipped.append(name)
                continue
            result.final_losses.update({f"{name}.{k}": v for k, v in losses.items()})
            if not finished:
                result.stopped_early = True
                break
            done.append(name)
            if self.dist.main:
                save_checkpoint(self.out / "model", model=self.model, meta=self._meta(done), extra=self._extra())
        result.stages_done = done
        result.labels = self.coverage if self.coverage.stages else None
        if self.tb is not None:
            self.tb.close()
        return result

    def _load_previous(self, first: int) -> list[str]:
        """Weights of the stage before the first requested one (stages run in order)."""
        if first == 0:
            return []
        previous = STAGE_ORDER[first - 1]
        where = self.out / previous
        try:
            meta = load_meta(where)
        except MedtalkError as err:
            raise MedtalkError(
                f"stage {STAGE_ORDER[first]} starts from stage {previous}, which has no checkpoint in "
                f"{display_path(self.out)}; train it first (--stage {previous} or --stage all)"
            ) from err
        self._check_meta(meta, where)
        load_model_weights(where, self.model, map_location=str(self.device))
        self._restore_extras(meta, where)
        return list(meta["stages_done"]) if meta.get("stages_done") else list(STAGE_ORDER[:first])

    def _check_meta(self, meta: dict[str, Any], where: Path) -> None:
        rig = RigSpec.from_dict(meta["rig"])
        if not rig.same_channels(self.rig):
            raise MedtalkError(
                f"{display_path(where)}: checkpoint for rig {rig.name!r} ({rig.dim} channels), the manifest has "
                f"{self.rig.name!r} ({self.rig.dim}); train a new run for this rig"
            )

    def _data(self, stage: str, split: str) -> TrainingData:
        needs = set(STAGES[stage].needs)
        optional = stage in LABEL_STAGES and bool(self.cfg["data"]["labels_without_audio"])
        if self.dist.main:
            data = TrainingData(
                self.manifest, self.rig, self.cfg, split, needs, self.backbones, self.cache_dir, self.progress,
                optional_audio=optional,
            )  # fmt: skip
        self.dist.barrier()  # rank 0 filled the feature cache; the others read it
        if not self.dist.main:
            data = TrainingData(
                self.manifest, self.rig, self.cfg, split, needs, self.backbones, self.cache_dir, optional_audio=optional
            )
        return data

    def _count_labels(self, name: str, train: TrainingData) -> None:
        """The label table of a label stage: logged, with a warning per label no stage has trained."""
        self.coverage.count(name, train.clips, train.valid_frames())
        if name == "intensity":
            heard = [c for c in train.clips if c.has_audio]
            frames = train.curves[train.valid]
            idx = self.rig.indices("intensity")
            scale = float(self.cfg["stages"]["intensity"]["intensity_scale"])
            mean = float(scale * np.abs(frames[:, idx]).sum(1).mean()) if len(frames) and idx else 0.0
            self.intensity_info = {"trained_from_audio": bool(heard), "mean_true_intensity": round(mean, 6)}
            if not heard:
                log.warning(
                    "stage intensity: no training clip has audio: the audio + text intensity predictor is not "
                    "trained; labels learn from video-only clips and animate uses their mean intensity %.3g", mean
                )  # fmt: skip
        if not self.dist.main:
            return
        log.info("stage %s: clips and frames per label\n%s", name, "\n".join(self.coverage.table()))
        if name == "intensity" or "intensity" not in self.coverage.stages:  # once per run, not per stage
            for line in self.coverage.warnings():
                log.warning("%s", line)

    def _plan(self, data: TrainingData, stage_i: int, phase_i: int, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, stage_i, phase_i, epoch])
        windows = data.windows(rng)
        bs = self.cfg["data"]["batch_size"]
        batches = [windows[i : i + bs] for i in range(0, len(windows), bs)]
        if self.dist.world > 1:  # every rank gets the same number of batches
            per_rank = len(batches) // self.dist.world
            batches = batches[self.dist.rank :: self.dist.world][:per_rank]
        return batches

    def _train_stage(self, name: str, done: list[str]) -> tuple[bool, dict[str, float]]:
        stage_i = STAGE_ORDER.index(name)
        where = self.out / name
        section = self.cfg["stages"][name]
        tune = float(section.get("tune_decoder", 0.0)) if name == "audio_content" else 0.0
        params = trainable_parameters(self.model, name, ("decoder",) if tune > 0 else ())
        groups: list[dict[str, Any]] = [{"params": params}]
        if tune > 0:  # stage 2 also fine-tunes the decoder, at a fraction of the learning rate
            decoder = {id(p) for p in self.model.decoder.parameters()}
            groups = [
                {"params": [p for p in params if id(p) not in decoder]},
                {"params": [p for p in params if id(p) in decoder], "lr": section["lr"] * tune},
            ]
        optimizer = torch.optim.Adam(groups, lr=section["lr"])
        gamma = section.get("lr_gamma", 1.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma)
        scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        state = TrainingState(stage=name, epoch=0, step=0, batch_in_epoch=0, phase=None)
        if self.resume and (where / "meta.json").exists():
            meta = load_meta(where)
            self._check_meta(meta, where)
            load_model_weights(where, self.model, map_location=str(self.device))
            self._restore_extras(meta, where)
            state, rng = load_training(where, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
            restore_rng(rng)
            self._rescale_position(state)
            self.csv.truncate_after(name, state.step)
            if state.finished:
                log.info("stage %s: already finished in %s", name, display_path(where))
                if self.dist.main:  # stopped between the end of stage 3 and its calibration
                    self._calibrate(name, where, done, (optimizer, scheduler, scaler, state))
                return True, {}
            log.info("stage %s: resuming at epoch %d, step %d", name, state.epoch, state.step)
        elif self.dist.main:
            self.csv.truncate_after(name, -1)

        train = self._data(name, "train")
        if not train.clips:
            if name == "audio_content" and self._label_stages_follow() and self._no_audio_anywhere():
                raise StageSkipped(
                    "stage audio_content: skipped: no clip of the manifest has audio, so lips cannot learn from "
                    "sound; the label path of the later stages still trains, but `animate` needs this stage: "
                    "train again with clips that have audio"
                )
            raise MedtalkError(self._no_data_message(name, train))
        val = self._data(name, "val")
        if name in LABEL_STAGES:
            self._count_labels(name, train)
        if name == "intensity":
            self.classifier = fit_classifier(TrainingData(self.manifest, self.rig, self.cfg, "train", set()))
        if name == "audio_content":
            self.rest_pose = rest_pose(train)
            self.baselines = fit_baselines(train, int(self.cfg["baselines"]["context_frames"]))
        phases = list(stage_phases(name, self.cfg))
        pairs = PairSampler(train, self.cfg["data"]["pair_alignment"]) if name == "disentangle" else None
        if pairs is not None and "content" in phases and not pairs.content_pairs:
            if self.cfg["data"]["require_pairs"]:
                raise MedtalkError(
                    "stage disentangle: no content pairs (the same content_id said in two emotions by one speaker); "
                    "add such clips (MEAD, RAVDESS, CREMA-D recipes give content_id), or set data.require_pairs: false"
                )
            log.warning(
                "stage disentangle: no content pairs (same content_id in two emotions) in the training split; the "
                "content-overlap phase is skipped (documented fallback; set data.require_pairs: true to stop instead)"
            )
            phases.remove("content")
        self._mixed_phases = list(phases)
        channel_std = train.curves[train.valid].std(0) if len(train.curves) else None
        spread = train.displacement_spread()
        losses_fn = StageLoss(name, self.model, self.rig, self.cfg, self.device, channel_std, spread)
        self._step_module = wrap_ddp(self.model, self._terms, self.device) if self.dist.world > 1 else None
        epochs = STAGES[name].epochs(self.cfg)
        accum = int(section.get("grad_accum", 1))
        total_epochs = epochs * len(phases)
        mixed = name == "disentangle" and section["schedule"] == "mixed"
        last: dict[str, float] = {}
        while state.epoch < total_epochs:
            phase_i = 0 if mixed else state.epoch // epochs
            phase = "mixed" if mixed else phases[phase_i]
            state.phase = phase
            plan_phase = STAGES[name].phases.index(phase) if phase in STAGES[name].phases else 0
            plan = self._plan(train, stage_i, plan_phase, state.epoch)
            self.model.train()
            bar = self._bar(len(plan), f"{name}:{phase} epoch {state.epoch + 1}/{total_epochs}", state.batch_in_epoch)
            t0 = time.perf_counter()
            for b in range(state.batch_in_epoch, len(plan)):
                # keyed by the batch's place in the whole epoch (rank r of W takes batches r, r + W, …), so
                # W processes draw what one process with grad_accum W draws: the same global batches
                global_b = b * self.dist.world + self.dist.rank
                batch_rng = np.random.default_rng([self.seed, stage_i, 1000 + phase_i, state.epoch, global_b])
                terms = self._step(
                    losses_fn,
                    name,
                    phase,
                    train,
                    pairs,
                    plan[b],
                    batch_rng,
                    optimizer,
                    scaler,
                    params,
                    accumulate=(b + 1) % accum != 0 and b + 1 < len(plan),
                    scale=1.0 / accum,
                )
                state.batch_in_epoch = b + 1
                if terms is not None:
                    state.step += 1
                    self.steps_this_run += 1
                    last = terms
                    if state.step % self.cfg["train"]["log_every"] == 0:
                        self._log(name, phase, state, "train", terms, optimizer, time.perf_counter() - t0)
                    if self.dist.main and state.step % self.cfg["train"]["save_every"] == 0:
                        self._save(where, optimizer, scheduler, scaler, state, done)
                    if self.max_steps is not None and self.steps_this_run >= self.max_steps:
                        if bar is not None:
                            bar.close()
                        if self.dist.main:
                            self._save(where, optimizer, scheduler, scaler, state, done)
                        log.info("stopped after --max-steps %d; continue with --resume", self.max_steps)
                        return False, last
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4g}")
            if bar is not None:
                bar.close()
            state.epoch += 1
            state.batch_in_epoch = 0
            if name != "disentangle":
                scheduler.step()
            if val.clips and self.dist.main:
                self._validate(losses_fn, name, phase, state, val)
            if self.dist.main:
                self._save(where, optimizer, scheduler, scaler, state, done)
        state.finished = True
        if self.dist.main:
            self._save(where, optimizer, scheduler, scaler, state, done)
            self._calibrate(name, where, done, (optimizer, scheduler, scaler, state), again=True)
        self.dist.barrier()
        return True, last

    def _calibrate(self, name: str, where: Path, done: list[str], saved: tuple, again: bool = False) -> None:
        """``train.output_offset`` once stage 3 has finished (calibrate.py), then its checkpoint saved again with
        it; ``again``: also when a resumed checkpoint already holds one (stage 3 just trained anew). Not without
        stage 2 (a manifest without audio): nothing animates speech then."""
        if name != "intensity" or not self.cfg["train"]["output_offset"] or "audio_content" not in done:
            return
        if self.output_offset is not None and not again:
            return
        from .calibrate import output_offset

        before = capture_rng()  # building the animator draws random initial weights: stage 4 must not see it
        self.output_offset = output_offset(where, self.manifest)
        restore_rng(before)
        self._save(where, *saved, done)

    def _label_stages_follow(self) -> bool:
        return any(s in LABEL_STAGES for s in (self.stages or STAGE_ORDER))

    def _no_audio_anywhere(self) -> bool:
        return not any(r.has_audio and r.audio_path for r in self.manifest.rows())

    def _no_data_message(self, name: str, data: TrainingData) -> str:
        why = sorted(set(data.excluded.values()))
        hint = {
            "audio_content": "it needs clips with audio and faces (talking videos)",
            "intensity": "it needs clips with an emotion label (or data.default_emotion), with audio unless "
            "data.labels_without_audio is true",
            "emotion_control": "it needs clips with an emotion label, with audio unless data.labels_without_audio is "
            "true",
        }.get(name, "it needs clips with rig curves")
        return f"stage {name}: no usable training clip in the manifest ({hint}); left out because: {'; '.join(why)}"

    def _bar(self, total: int, desc: str, initial: int) -> Any:
        if not (self.progress and self.dist.main):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)

    def _autocast(self) -> Any:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _disentangle_terms(self, losses_fn, phase, data, pairs, plan, rng) -> dict[str, torch.Tensor]:
        """One phase's losses, or under the mixed schedule the sum of every phase's losses."""
        if phase != "mixed":
            return losses_fn.disentangle(phase, disentangle_tensors(phase, data, pairs, plan, rng, self.device))
        total: dict[str, torch.Tensor] = {}
        for sub in self._mixed_phases:
            terms = losses_fn.disentangle(sub, disentangle_tensors(sub, data, pairs, plan, rng, self.device))
            total["loss"] = total.get("loss", 0) + terms["loss"]
            total[sub] = terms["loss"]
        return total

    def _terms(self, losses_fn, name, phase, data, pairs, plan, rng) -> dict[str, torch.Tensor]:
        """One batch's loss terms (under DDP, the forward of :class:`StepModule`)."""
        if name == "disentangle":
            return self._disentangle_terms(losses_fn, phase, data, pairs, plan, rng)
        terms, _ = losses_fn.batch_loss(data.to_batch(plan, self.device, rng))
        return terms

    def _step(self, losses_fn, name, phase, data, pairs, plan, rng, optimizer, scaler, params, accumulate, scale):
        ddp = self._step_module
        try:
            # accumulating under DDP: no gradient exchange until the batch that steps
            sync = ddp.no_sync() if ddp is not None and accumulate else contextlib.nullcontext()
            with sync:
                with self._autocast():
                    args = (losses_fn, name, phase, data, pairs, plan, rng)
                    terms = ddp(*args) if ddp is not None else self._terms(*args)
                loss = terms["loss"] * scale
                if not torch.isfinite(loss):
                    raise MedtalkError(
                        f"stage {name}: loss became {float(loss)} (check the manifest for extreme values with "
                        f"`medtalk-data validate`, or lower stages.{name}.lr)"
                    )
                (scaler.scale(loss) if scaler is not None else loss).backward()
            if accumulate:
                return None
            if scaler is not None:
                scaler.unscale_(optimizer)
            clip = self.cfg["train"]["grad_clip"]
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        except torch.cuda.OutOfMemoryError as err:
            raise MedtalkError(
                f"CUDA out of memory in stage {name} (batch_size {self.cfg['data']['batch_size']}, window_frames "
                f"{self.cfg['data']['window_frames']}); lower data.batch_size or data.window_frames, or --device cpu"
            ) from err
        values = {k: float(v.detach()) for k, v in terms.items()}
        if self.dist.world > 1:
            t = torch.tensor([values[k] for k in values], device=self.device)
            self.dist.average([t])
            values = dict(zip(values, t.tolist(), strict=True))
        return values

    def _log(self, name, phase, state, split, terms, optimizer, secs, metrics=None):
        if not self.dist.main:
            return
        lr = optimizer.param_groups[0]["lr"] if optimizer is not None else ""
        extra = {k: v for k, v in terms.items() if k != "loss"}
        self.csv.write(
            stage=name,
            phase=phase,
            epoch=state.epoch,
            step=state.step,
            split=split,
            loss=f"{terms['loss']:.6g}",
            terms=";".join(f"{k}={v:.6g}" for k, v in extra.items()),
            lr=lr,
            mouth_mae=f"{metrics['mouth_mae']:.6g}" if metrics else "",
            upper_mae=f"{metrics['upper_mae']:.6g}" if metrics else "",
            secs=f"{secs:.3f}",
        )
        if self.tb is not None:
            for k, v in terms.items():
                self.tb.add_scalar(f"{name}/{split}/{k}", v, state.step)
            for k, v in (metrics or {}).items():
                if not math.isnan(v):
                    self.tb.add_scalar(f"{name}/{split}/{k}", v, state.step)

    @torch.no_grad()
    def _validate(self, losses_fn: StageLoss, name: str, phase: str, state: TrainingState, val: TrainingData) -> None:
        self.model.eval()
        sums: dict[str, float] = {}
        errs = {"mouth_mae": 0.0, "upper_mae": 0.0}
        n = 0
        bs = self.cfg["data"]["batch_size"]
        windows = val.windows(None)
        t0 = time.perf_counter()
        for i in range(0, len(windows), bs):
            batch = val.to_batch(windows[i : i + bs], self.device)
            with self._autocast():
                terms, pred = losses_fn.batch_loss(batch)
            k = len(windows[i : i + bs])
            for key, v in terms.items():
                sums[key] = sums.get(key, 0.0) + float(v) * k
            for key, v in losses_fn.region_errors(pred, batch["x"]).items():
                errs[key] += v * k
            n += k
        if n:
            terms = {k: v / n for k, v in sums.items()}
            metrics = {k: v / n for k, v in errs.items()}
            self._log(name, phase, state, "val", terms, None, time.perf_counter() - t0, metrics)
        self.model.train()

    def _rescale_position(self, state: TrainingState) -> None:
        """Resume mid-epoch with another number of ranks: rank r of W takes global batches r, r + W, …,
        so b batches done by each of W ranks are b·W global batches, which W' ranks take up at b·W // W'."""
        saved = int(state.extra.get("world", 1))
        if saved != self.dist.world and state.batch_in_epoch:
            done = state.batch_in_epoch * saved
            state.batch_in_epoch = done // self.dist.world
            log.info(
                "resuming with %d ranks a run saved with %d: at global batch %d of the epoch",
                self.dist.world,
                saved,
                state.batch_in_epoch * self.dist.world,
            )

    def _save(self, where, optimizer, scheduler, scaler, state, done) -> None:
        state.extra["world"] = self.dist.world
        save_checkpoint(
            where,
            model=self.model,
            meta=self._meta([*done, state.stage] if state.finished else done),
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            state=state,
            rng=capture_rng(),
            extra=self._extra(),
        )


def train(
    manifest: Path,
    cfg: dict[str, Any],
    out: Path,
    stage: str = "all",
    *,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Train ``stage`` (a stage name or "all") of MEDTalk on a manifest into the run folder ``out``."""
    if stage != "all" and stage not in STAGES:
        raise MedtalkError(f"--stage {stage!r}: use one of {', '.join(STAGE_ORDER)} or all")
    stages = list(STAGE_ORDER) if stage == "all" else [stage]
    if cfg["train"]["device"] != "auto" and device == "auto":
        device = cfg["train"]["device"]
    new_folder = not Path(out).exists()
    try:
        trainer = Trainer(
            manifest,
            cfg,
            out,
            resume=resume,
            overwrite=overwrite,
            device=device,
            max_steps=max_steps,
            progress=progress,
            stages=stages,
        )
        try:
            return trainer.run(stages)
        finally:
            trainer.backbones.close()
            trainer.dist.close()
    except MedtalkError:
        if new_folder and os.environ.get("RANK", "0") == "0":
            _remove_untrained_run(Path(out))
        raise


def _remove_untrained_run(out: Path) -> None:
    """A run folder this call created and that holds no finished checkpoint is removed after a refusal, so a
    bad manifest or config leaves nothing behind that a later ``--resume`` would trip over."""
    import shutil

    if out.is_dir() and not any((out / stage / "meta.json").exists() for stage in STAGE_ORDER):
        shutil.rmtree(out, ignore_errors=True)
