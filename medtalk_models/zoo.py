"""The model zoo: named presets, and the import of the official MEDTalk weights into our format.

A preset names a config, the rig it expects, and where its weights come from with the sha256 they
must have. medtalk publishes no weights of its own yet (train them: ``make demo`` or
``medtalk-models train``); the official MEDTalk checkpoints (MIT, SJTU-Lucy/MEDTalk) are
downloaded by the user from the links in that repository's README and converted here, offline.

Conversion maps the official module names onto ours (ours keep the official names where the
modules are the same: spec §8) and writes a normal checkpoint folder (safetensors + meta.json), so
`animate` treats it like any trained run. The official ``.pth`` files are plain state dicts; they
are read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers, so no code from the file runs. The frozen backbones (wav2vec2-base-960h, emotion2vec,
chinese-roberta-wwm-ext, CLIP ViT-B/32) are not in those files: point the config at your local
copies (``audio.content.kind: hf`` + ``path``, ``layer: 0`` for the official ``hidden_states[0]``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtalk_data.errors import MedtalkError, brief
from medtalk_data.io.files import display_path, sha256_file

from .config import load_config
from .rig import rig_spec_for


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: str  # a built-in config preset
    rig: str
    weights: dict[str, str] = field(default_factory=dict)  # file name -> sha256 ("" = not published)
    source: str = ""
    licence: str = ""


PRESETS: dict[str, Preset] = {
    "small-arkit52": Preset(
        "small-arkit52",
        "ARKit-52 blendshapes at the clips' fps, all four stages, trains in minutes on CPU (what `make demo` trains)",
        "small",
        "mediapipe52",
        source="train it: make demo, or medtalk-models train --manifest M --preset small",
        licence="yours (MIT code)",
    ),
    "paper-metahuman174": Preset(
        "paper-metahuman174",
        "MEDTalk's official hyper-parameters on the 174 MetaHuman controllers at 60 fps",
        "paper",
        "metahuman174",
        source="train it on a --rig metahuman174 manifest: medtalk-models train --preset paper",
        licence="yours (MIT code)",
    ),
    "medtalk-official": Preset(
        "medtalk-official",
        "the authors' released checkpoints (174 controllers, 60 fps, Chinese speech), converted to our format",
        "paper",
        "metahuman174",
        weights={"audio_semantic.pth": "", "clip_emotion.pth": ""},
        source="download from the links in https://github.com/SJTU-Lucy/MEDTalk (README), then: "
        "medtalk-models zoo import-official DIR --names metahuman_attr_names.txt --out runs/official",
        licence="MIT (MEDTalk repository); the backbones keep their own licences",
    ),
}

# official module → ours, where the names differ (everything else keeps its official name)
OFFICIAL_RENAMES = {
    "clip_emotion.pth": {
        "clip_image_map.": "image_map.",
        "clip_text_map.": "text_map.",
        "semantic_emotion_map.": "control_emotion_map.",
    },
}
OFFICIAL_SKIP = ("audio_content_encoder.", "text_encoder.", "clip_encoder.")  # frozen backbones
OFFICIAL_SKIP_PER_FILE = {"clip_emotion.pth": ("fusion_predictor.",)}  # CLIPNet's untrained Fa (spec gap G6)


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise MedtalkError(f"unknown preset {name!r}; the zoo has: {', '.join(PRESETS)}")
    return PRESETS[name]


def _blocked_object(err: BaseException) -> str:
    """What torch's weights-only unpickler refused, without its advice to load the file unsafely."""
    lines = [line.strip().rstrip(".") for line in str(err).splitlines() if "GLOBAL" in line]
    return lines[0][:200] if lines else "an object that is not a tensor"


def _read_official(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" not in str(err):  # not a pickle at all, or a damaged one
            raise MedtalkError(f"{display_path(path)}: not a readable PyTorch state dict ({brief(err)})") from err
        raise MedtalkError(
            f"{display_path(path)}: refused: it holds Python objects besides tensors ({_blocked_object(err)}), which "
            "could run code when loaded; medtalk loads weights only. Get the file again from the official source "
            "(`medtalk-models zoo info medtalk-official`)"
        ) from err
    except Exception as err:
        raise MedtalkError(f"{display_path(path)}: not a readable PyTorch state dict ({brief(err)})") from err
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise MedtalkError(f"{display_path(path)}: expected a plain state dict of tensors (the official checkpoints)")
    return state


def official_state_dict(folder: Path) -> dict[str, Any]:
    """Our state dict from the official ``audio_semantic.pth`` (+ ``clip_emotion.pth`` when present)."""
    folder = Path(folder)
    main = folder / "audio_semantic.pth"
    if not main.is_file():
        raise MedtalkError(
            f"{display_path(folder)}: audio_semantic.pth not found; download the official weights (see "
            f"`medtalk-models zoo info medtalk-official`) into this folder"
        )
    ours: dict[str, Any] = {}
    for name in ("audio_semantic.pth", "clip_emotion.pth"):
        path = folder / name
        if not path.is_file():
            continue
        renames = OFFICIAL_RENAMES.get(name, {})
        skip = OFFICIAL_SKIP + OFFICIAL_SKIP_PER_FILE.get(name, ())
        for key, tensor in _read_official(path).items():
            if key.startswith(skip):
                continue
            for old, new in renames.items():
                if key.startswith(old):
                    key = new + key[len(old) :]
                    break
            if name == "clip_emotion.pth" and key in ours:
                continue  # shared parts (encoders, decoder, audio map) come from audio_semantic.pth
            ours[key] = tensor
    return ours


def import_official(folder: Path, names_file: Path, out: Path) -> Path:
    """Convert the official checkpoints in ``folder`` to a checkpoint folder ``out/model``."""
    import torch

    from .checkpoint import save_checkpoint
    from .model import MEDTalk, ModelDims
    from .train import checkpoint_meta

    state = official_state_dict(folder)
    required = ("decoder.fc2.weight", "audio_content_map.fc1.weight", "fusion_predictor.cross_attn.in_proj_weight",
                "emo_encoder.fc2.weight", "emotion_embedding.0.weight", "emotion_embedding.1.weight")  # fmt: skip
    absent = [k for k in required if k not in state]
    if absent:
        raise MedtalkError(
            f"{display_path(folder)}: audio_semantic.pth lacks {', '.join(absent[:3])}: "
            "not MEDTalk's official checkpoint"
        )
    names = [line.strip() for line in Path(names_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    rig = rig_spec_for("metahuman174", names, 60.0)
    d_rig = state["decoder.fc2.weight"].shape[0]
    if d_rig != rig.dim:
        raise MedtalkError(f"{display_path(names_file)}: {rig.dim} names, the checkpoint's decoder has {d_rig}")
    has_clip = "image_map.fc1.weight" in state
    dims = ModelDims(
        rig_dim=d_rig,
        content_feat_dim=state["audio_content_map.fc1.weight"].shape[1],
        emotion_feat_dim=state["fusion_predictor.cross_attn.in_proj_weight"].shape[1],
        text_token_dim=state["fusion_predictor.cross_attn.in_proj_weight"].shape[1],
        sentence_dim=state["text_map.fc1.weight"].shape[1] if has_clip else 512,
        image_dim=state["image_map.fc1.weight"].shape[1] if has_clip else 512,
        hidden_dim=state["decoder.fc1.weight"].shape[0],
        latent_dim=state["emo_encoder.fc2.weight"].shape[0],
        n_emotions=state["emotion_embedding.0.weight"].shape[0],
        label_hidden=state["emotion_embedding.1.weight"].shape[0],
        fusion_dim=state["fusion_predictor.cross_attn.in_proj_weight"].shape[1],
        fusion_heads=8,
        fusion_dropout=0.1,
        emotion_pooling="frame",
    )
    model = MEDTalk(dims)
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected_missing = {k for k in missing if not has_clip and k.startswith(("image_map.", "text_map.", "control_"))}
    if set(missing) - expected_missing or unexpected:
        raise MedtalkError(
            f"{display_path(folder)}: the checkpoint does not match MEDTalk's official layout "
            f"(missing {sorted(set(missing) - expected_missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    cfg = load_config(base="paper")
    stages = ["disentangle", "audio_content", "intensity", *(["emotion_control"] if has_clip else [])]
    meta = checkpoint_meta(cfg, rig, dims, stages)
    meta["imported_from"] = {
        "preset": "medtalk-official",
        "files": {p.name: sha256_file(p) for p in sorted(Path(folder).glob("*.pth"))},
        "note": "backbones not included: configure audio/text/image paths to your local copies",
    }
    with torch.no_grad():
        return save_checkpoint(Path(out) / "model", model=model, meta=meta)


def describe_run(folder: Path) -> list[str]:
    """What `zoo info RUN` prints for a trained run folder: rig, stages, and the labels it trained on."""
    from .animate import model_folder
    from .checkpoint import load_meta
    from .labels import coverage_of

    meta = load_meta(model_folder(folder))
    rig = meta["rig"]
    lines = [
        f"run:         {folder}",
        f"rig:         {rig.get('name')} ({len(rig['channel_names'])} channels, {rig['fps']:g} fps)",
        f"stages:      {', '.join(meta.get('stages_done') or []) or 'none'}",
        f"medtalk:     {meta.get('medtalk_version', '?')}",
    ]
    coverage = coverage_of(meta)
    if coverage is None:
        lines.append("labels:      not recorded (trained before label tables were kept, or no label stage yet)")
        return lines
    lines.append("labels:      clips (with audio) and frames per label stage")
    lines += [f"  {line}" for line in coverage.table()]
    lines.append(coverage.summary())
    return lines
