"""The model zoo: presets, the official-weights import (on a state dict of the official shapes), the basis command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_data.errors import MedtalkError
from medtalk_models.checkpoint import load_meta, load_model_weights
from medtalk_models.model import MEDTalk, ModelDims
from medtalk_models.zoo import PRESETS, import_official


def _linear(prefix: str, d_in: int, d_hidden: int, d_out: int) -> dict[str, torch.Tensor]:
    return {f"{prefix}.fc1.weight": torch.randn(d_hidden, d_in), f"{prefix}.fc1.bias": torch.randn(d_hidden),
            f"{prefix}.fc2.weight": torch.randn(d_out, d_hidden), f"{prefix}.fc2.bias": torch.randn(d_out)}  # fmt: skip


def official_state_dicts() -> tuple[dict, dict]:
    """Random tensors with the names and shapes of the official checkpoints (medtalk-spec §1.2, §8)."""
    torch.manual_seed(0)
    shared = {**_linear("emo_encoder", 174, 256, 256), **_linear("cont_encoder", 174, 256, 256),
              **_linear("decoder", 512, 256, 174), **_linear("audio_content_map", 768, 256, 256),
              "audio_content_encoder.masked_spec_embed": torch.randn(768),
              "audio_content_encoder.feature_projection.projection.weight": torch.randn(768, 512)}  # fmt: skip
    semantic = {
        **shared,
        "text_encoder.embeddings.word_embeddings.weight": torch.randn(10, 768),
        "fusion_predictor.cross_attn.in_proj_weight": torch.randn(3 * 768, 768),
        "fusion_predictor.cross_attn.in_proj_bias": torch.randn(3 * 768),
        "fusion_predictor.cross_attn.out_proj.weight": torch.randn(768, 768),
        "fusion_predictor.cross_attn.out_proj.bias": torch.randn(768),
        "fusion_predictor.norm1.weight": torch.randn(768), "fusion_predictor.norm1.bias": torch.randn(768),
        "fusion_predictor.norm2.weight": torch.randn(768), "fusion_predictor.norm2.bias": torch.randn(768),
        "fusion_predictor.linear.weight": torch.randn(768, 768), "fusion_predictor.linear.bias": torch.randn(768),
        "fusion_predictor.predictor.weight": torch.randn(1, 768), "fusion_predictor.predictor.bias": torch.randn(1),
        "emotion_embedding.0.weight": torch.randn(7, 256),
        "emotion_embedding.1.weight": torch.randn(512, 256), "emotion_embedding.1.bias": torch.randn(512),
        "emotion_embedding.3.weight": torch.randn(256, 512), "emotion_embedding.3.bias": torch.randn(256),
        **_linear("semantic_emotion_map", 256, 256, 256),
    }  # fmt: skip
    clip = {**shared, **_linear("fusion_predictor", 768, 256, 1), "clip_encoder.logit_scale": torch.tensor(2.0),
            **_linear("clip_text_map", 512, 256, 256), **_linear("clip_image_map", 512, 256, 256),
            **_linear("semantic_emotion_map", 256, 256, 256)}  # fmt: skip
    return semantic, clip


def test_import_of_the_official_checkpoints(shared_data: Path, tmp_path: Path) -> None:
    semantic, clip = official_state_dicts()
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(semantic, weights / "audio_semantic.pth")
    torch.save(clip, weights / "clip_emotion.pth")
    names = shared_data / "emoface" / "metahuman_attr_names.txt"
    out = CliRunner().invoke(cli, ["zoo", "import-official", str(weights), "--names", str(names), "--out",
                                   str(tmp_path / "official")])  # fmt: skip
    assert out.exit_code == 0, out.output
    meta = load_meta(tmp_path / "official" / "model")
    assert meta["stages_done"][-1] == "emotion_control" and meta["dims"]["fusion_dim"] == 768
    assert set(meta["imported_from"]["files"]) == {"audio_semantic.pth", "clip_emotion.pth"}
    model = MEDTalk(ModelDims(**meta["dims"]))
    load_model_weights(tmp_path / "official" / "model", model)
    sd = model.state_dict()
    torch.testing.assert_close(sd["decoder.fc2.weight"], semantic["decoder.fc2.weight"])
    torch.testing.assert_close(sd["fusion_predictor.cross_attn.in_proj_weight"],
                               semantic["fusion_predictor.cross_attn.in_proj_weight"])  # fmt: skip
    torch.testing.assert_close(sd["semantic_emotion_map.fc1.weight"], semantic["semantic_emotion_map.fc1.weight"])
    torch.testing.assert_close(sd["control_emotion_map.fc1.weight"], clip["semantic_emotion_map.fc1.weight"])
    torch.testing.assert_close(sd["image_map.fc2.bias"], clip["clip_image_map.fc2.bias"])
    # the decoder of the imported model produces the official decoder's output
    z = torch.randn(1, 5, 512)
    expected = torch.relu(z @ semantic["decoder.fc1.weight"].T + semantic["decoder.fc1.bias"])
    expected = expected @ semantic["decoder.fc2.weight"].T + semantic["decoder.fc2.bias"]
    torch.testing.assert_close(model.decoder(z), expected, rtol=1e-4, atol=1e-3)
    assert meta["rig"]["channel_names"][0] == "CTRL_C_eye-translateX" and len(meta["rig"]["channel_names"]) == 174


def test_import_refuses_other_files(tmp_path: Path, shared_data: Path) -> None:
    names = shared_data / "emoface" / "metahuman_attr_names.txt"
    with pytest.raises(MedtalkError, match=r"audio_semantic\.pth not found"):
        import_official(tmp_path, names, tmp_path / "o")
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "audio_semantic.pth")
    with pytest.raises(MedtalkError):
        import_official(tmp_path, names, tmp_path / "o")
    (tmp_path / "audio_semantic.pth").write_bytes(b"garbage")
    with pytest.raises(MedtalkError, match="not a readable PyTorch state dict"):
        import_official(tmp_path, names, tmp_path / "o")


def test_zoo_list_and_info() -> None:
    out = CliRunner().invoke(cli, ["zoo", "list"])
    assert out.exit_code == 0 and all(name in out.output for name in PRESETS)
    out = CliRunner().invoke(cli, ["zoo", "info", "medtalk-official"])
    assert out.exit_code == 0 and "audio_semantic.pth" in out.output and "SJTU-Lucy/MEDTalk" in out.output
    out = CliRunner().invoke(cli, ["zoo", "info", "nope"])
    assert out.exit_code == 2 and "the zoo has: small-arkit52" in out.output


def test_basis_command_from_a_manifest(training_manifest: Path, tmp_path: Path) -> None:
    from medtalk_models.render.basis import BlendshapeBasis

    out = CliRunner().invoke(cli, ["basis", str(training_manifest), "-o", str(tmp_path / "b.npz")])
    assert out.exit_code == 2 and "built without landmarks; rebuild it with" in out.output  # the manifest alone
    extracted = json.loads((training_manifest / "manifest.json").read_text())["sources"][0]
    out = CliRunner().invoke(cli, ["basis", extracted, "-o", str(tmp_path / "b.npz")])
    assert out.exit_code == 0, out.output
    basis = BlendshapeBasis.load(tmp_path / "b.npz")
    weights = np.zeros(len(basis.names), np.float32)
    weights[list(basis.names).index("jawOpen")] = 1.0
    assert np.abs(basis.vertices(weights) - basis.neutral).max() > 0.1
