"""Training configs: YAML files whose every key exists in the bundled default, checked on load.

A user's file is merged over ``configs/small.yaml`` (or any preset); a key the default does not
have, or a value of the wrong type, is an error that names the key — a typo never silently
falls back to a default.
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

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


def _merge(base: dict[str, Any], override: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; valid: {', '.join(map(str, base))}"
            raise MedtalkError(f"{where}: unknown config field {dotted}{hint}")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise MedtalkError(f"{where}: {dotted} must be a mapping, got {value!r}")
            out[key] = _merge(default, value, where, f"{dotted}.")
        else:
            out[key] = _check_type(dotted, default, value, where)
    return out


def _check_type(dotted: str, default: Any, value: Any, where: str) -> Any:
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(default, float):
            value = float(value)
    elif isinstance(default, str):
        # "last" or a layer index both fit a layer field
        ok = isinstance(value, str) or (dotted.endswith(".layer") and isinstance(value, int))
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = True
    if not ok:
        raise MedtalkError(f"{where}: {dotted} = {value!r} should be a {type(default).__name__} like {default!r}")
    return value


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
        path = Path(path)
        where = display_path(path)
        try:
            user = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise MedtalkError(f"{where}: cannot read config ({err.strerror})") from err
        except yaml.YAMLError as err:
            raise MedtalkError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from err
        if not isinstance(user, dict):
            raise MedtalkError(f"{where}: a config is a YAML mapping; see `medtalk-models train --print-config`")
        cfg = _merge(cfg, user, where)
    if overrides:
        cfg = _merge(cfg, overrides, "command line")
    _check_values(cfg, where)
    return cfg


def dump_config(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
