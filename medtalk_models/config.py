"""Training configs: YAML files whose every key exists in the bundled default, checked on load.

A user's file is merged over ``configs/small.yaml`` (or any preset) by the same reader as the
extract settings (:mod:`medtalk_data.config_tree`): a key the default does not have, or a value of
the wrong type, is an error that names the key — a typo never silently falls back to a default.
Here the choices and ranges of each field are checked; the resolved mapping is what a
checkpoint stores.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medtalk_data.config_tree import merge_checked, read_yaml_mapping
from medtalk_data.emotions import CANONICAL_EMOTIONS
from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path

PRESETS = ("small", "paper")
STAGES = ("disentangle", "audio_content", "intensity", "emotion_control")
PHASES = ("self", "content", "emotion", "cycle")
AUDIO_KINDS = ("whisper", "hf", "logmel")
TEXT_KINDS = ("minilm", "hf", "clip", "none")
IMAGE_KINDS = ("blendshapes", "clip")
AMP_MODES = ("auto", "off", "bf16", "fp16")


def preset_text(name: str) -> str:
    if name not in PRESETS:
        raise MedtalkError(f"unknown config preset {name!r}; presets: {', '.join(PRESETS)}")
    return resources.files("medtalk_models").joinpath(f"configs/{name}.yaml").read_text(encoding="utf-8")


def preset(name: str = "small") -> dict[str, Any]:
    return yaml.safe_load(preset_text(name))


def _check_values(cfg: dict[str, Any], where: str) -> None:
    def choice(dotted: str, value: Any, options: tuple[str, ...]) -> None:
        if value not in options:
            raise MedtalkError(f"{where}: {dotted} = {value!r}; choose one of {', '.join(options)}")

    for part in ("content", "emotion"):
        choice(f"audio.{part}.kind", cfg["audio"][part]["kind"], AUDIO_KINDS)
    choice("text.kind", cfg["text"]["kind"], TEXT_KINDS)
    choice("image.kind", cfg["image"]["kind"], IMAGE_KINDS)
    choice("train.amp", cfg["train"]["amp"], AMP_MODES)
    choice("data.pair_alignment", cfg["data"]["pair_alignment"], ("dtw", "resample"))
    choice("data.video_only_content", cfg["data"]["video_only_content"], ("own", "neutralised"))
    choice("model.emotion_pooling", cfg["model"]["emotion_pooling"], ("frame", "window"))
    for stage in ("disentangle", "audio_content"):
        choice(f"stages.{stage}.channel_weighting", cfg["stages"][stage]["channel_weighting"], ("none", "variance"))
    choice("stages.disentangle.schedule", cfg["stages"]["disentangle"]["schedule"], ("mixed", "sequential"))
    for phase in cfg["stages"]["disentangle"]["phases"]:
        choice("stages.disentangle.phases[]", phase, PHASES)
    emotions = cfg["model"]["emotions"]
    unknown = [e for e in emotions if e not in CANONICAL_EMOTIONS]
    if unknown or len(set(emotions)) != len(emotions) or not emotions:
        raise MedtalkError(
            f"{where}: model.emotions {emotions!r}: use distinct labels from {', '.join(CANONICAL_EMOTIONS)}"
        )
    default = cfg["data"]["default_emotion"]
    if default is not None:
        choice("data.default_emotion", default, tuple(emotions))
    data = cfg["data"]
    if data["window_frames"] is None and data["batch_size"] != 1:
        raise MedtalkError(f"{where}: data.window_frames null (whole clips) needs data.batch_size 1")
    if data["window_frames"] is not None and data["window_frames"] < 4:
        raise MedtalkError(f"{where}: data.window_frames must be at least 4 frames")
    if data["batch_size"] < 1:
        raise MedtalkError(f"{where}: data.batch_size must be >= 1")
    if not 0 <= cfg["baselines"]["context_frames"] <= 25:
        raise MedtalkError(f"{where}: baselines.context_frames must be 0..25 frames")
    if not isinstance(cfg["model"]["audio_members"], int) or cfg["model"]["audio_members"] < 1:
        raise MedtalkError(f"{where}: model.audio_members must be a whole number >= 1 (1 = one map, as official)")
    if not isinstance(cfg["train"]["output_offset"], bool):
        raise MedtalkError(f"{where}: train.output_offset must be true or false (false = official)")
    if cfg["model"]["fusion_dim"] % cfg["model"]["fusion_heads"]:
        raise MedtalkError(f"{where}: model.fusion_dim must be divisible by model.fusion_heads")
    for kind in ("content", "emotion"):
        a = cfg["audio"][kind]
        if a["kind"] == "hf" and not a["path"]:
            raise MedtalkError(f"{where}: audio.{kind}.kind hf needs audio.{kind}.path (a local Hugging Face folder)")
    for part in ("text", "image"):
        if cfg[part]["kind"] in ("hf", "clip") and not cfg[part]["path"]:
            raise MedtalkError(f"{where}: {part}.kind {cfg[part]['kind']} needs {part}.path (a local model folder)")


def load_config(path: Path | None = None, *, base: str = "small", overrides: dict[str, Any] | None = None) -> dict:
    """The resolved config: preset ``base`` ← file at ``path`` ← ``overrides`` (all checked)."""
    cfg = preset(base)
    where = "config"
    if path is not None:
        where = display_path(Path(path))
        cfg = merge_checked(cfg, read_yaml_mapping(Path(path), "medtalk-models train --print-config"), where)
    if overrides:
        cfg = merge_checked(cfg, overrides, "command line")
    _check_values(cfg, where)
    return cfg


def dump_config(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
