"""The model package's building blocks on hand-made inputs: rig groups, configs, alignment, pairs, model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES
from medtalk_models.config import dump_config, load_config, preset
from medtalk_models.descriptions import WORDS, descriptions_for
from medtalk_models.features import align_to_frames
from medtalk_models.model import MEDTalk, ModelDims, rescale, trainable_parameters
from medtalk_models.pairs import warp_onto
from medtalk_models.rig import RigSpec, rig_spec_for, unique_names


def test_arkit_groups_by_name() -> None:
    rig = rig_spec_for("mediapipe52", list(MEDIAPIPE_BLENDSHAPES), 25.0)
    assert rig.dim == 52 and rig.value_range == (0.0, 1.0)
    assert len(rig.groups["intensity"]) == 13  # MEDTalk's 14 controllers, mapped to ARKit (spec §6.3)
    assert "jawOpen" in rig.groups["mouth"] and "jawOpen" not in rig.groups["upper"]
    assert "browInnerUp" in rig.groups["upper"] and not any(n.startswith("eyeLook") for n in rig.groups["upper"])
    assert "_neutral" not in sum(rig.groups.values(), ())
    again = RigSpec.from_dict(rig.to_dict())
    assert again == rig and again.indices("mouth") == rig.indices("mouth")


def test_metahuman_groups_and_the_official_intensity_channels(shared_data: Path) -> None:
    names = (shared_data / "emoface" / "metahuman_attr_names.txt").read_text().split()
    rig = rig_spec_for("metahuman174", names, 60.0)
    assert rig.dim == 174 and len(set(rig.channel_names)) == 174  # the two repeated tongue names made unique
    # the 0-based columns of the official get_intensity
    assert rig.indices("intensity") == [29, 30, 31, 32, 36, 43, 53, 98, 99, 100, 101, 105, 112, 122]
    assert all("pupil" not in n and "eye-translate" not in n for n in rig.groups["upper"])


def test_unique_names() -> None:
    assert unique_names(["a", "b", "a", "a"]) == ("a", "b", "a#2", "a#3")


def test_config_presets_load_and_round_trip(tmp_path: Path) -> None:
    for name in ("small", "paper"):
        cfg = load_config(base=name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(dump_config(cfg))
        assert load_config(path, base=name) == cfg
    assert preset("paper")["model"]["fusion_dim"] == 768 and preset("paper")["rig"]["fps"] == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data:\n  batch_sise: 4\n", "unknown config field data.batch_sise (did you mean data.batch_size?)"),
        ("data:\n  batch_size: four\n", "data.batch_size = 'four' should be a int"),
        ("stages:\n  intensity:\n    lr: [1]\n", "stages.intensity.lr"),
        (
            "audio:\n  content:\n    kind: wav2vec\n",
            "audio.content.kind = 'wav2vec'; choose one of whisper, hf, logmel",
        ),
        ("audio:\n  content:\n    kind: hf\n", "needs audio.content.path"),
        ("model:\n  emotions: [happy, bored]\n", "model.emotions"),
        ("data:\n  window_frames: null\n", "needs data.batch_size 1"),
        ("model:\n  audio_members: 0\n", "model.audio_members must be a whole number >= 1"),
        ("- a list\n", "a config is a YAML mapping"),
        ("data: [\n", "not valid YAML"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MedtalkError) as err:
        load_config(path)
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_align_to_frames_by_time() -> None:
    rate = 50.0
    feats = np.arange(100, dtype=np.float32)[:, None]  # frame i holds i, centred at (i + 0.5) / 50 s
    # 25 fps: rig frame t spans [t - 20 ms, t + 20 ms): exactly the two 20 ms frames 2t - 1 and 2t
    out = align_to_frames(feats, rate, np.arange(10) / 25.0, 25.0)
    np.testing.assert_allclose(out[1:, 0], np.arange(1, 10) * 2.0 - 0.5, atol=1e-5)
    assert out[0, 0] == 0.0  # the first frame's interval starts before the audio: only frame 0
    jittered = align_to_frames(feats, rate, np.arange(10) / 25.0 + 1e-12, 25.0)  # rounding noise in the times
    np.testing.assert_allclose(jittered, out, atol=1e-5)
    # 60 fps: interpolation at the frame time; outside the audio the nearest frame
    out = align_to_frames(feats, rate, np.array([0.5, 1.0, 5.0, -1.0]), 60.0)
    np.testing.assert_allclose(out[:, 0], [24.5, 49.5, 99.0, 0.0], atol=1e-5)


def test_dtw_recovers_a_time_warp() -> None:
    t = np.linspace(0, 1, 120)
    ref = np.stack([np.sin(6 * np.pi * t), np.cos(4 * np.pi * t)], 1).astype(np.float32)
    warped_t = t**1.4  # the same motion, spoken with another timing
    other = np.stack([np.sin(6 * np.pi * warped_t), np.cos(4 * np.pi * warped_t)], 1).astype(np.float32)
    aligned = warp_onto(ref, other, [0, 1], "dtw")
    stretched = warp_onto(ref, other, [0, 1], "resample")
    assert np.abs(aligned - ref).mean() < 0.5 * np.abs(stretched - ref).mean()
    assert aligned.shape == ref.shape


def test_descriptions_are_reproducible_and_name_the_emotion() -> None:
    a = descriptions_for("angry", 0.9, 6, seed=3)
    assert a == descriptions_for("angry", 0.9, 6, seed=3) and len(set(a)) == 6
    assert any(any(w in d.lower() for w in WORDS["angry"]) for d in a)
    assert any(w in " ".join(descriptions_for("sad", 0.1, 8, 0)).lower() for w in ("slightly", "a little", "mildly"))


def _model() -> MEDTalk:
    torch.manual_seed(0)
    return MEDTalk(ModelDims(rig_dim=52, content_feat_dim=384, emotion_feat_dim=384, text_token_dim=384,
                             sentence_dim=384, image_dim=52, fusion_dim=64, fusion_heads=4))  # fmt: skip


def test_rescale_is_right_for_batches() -> None:
    direction = torch.randn(3, 8)
    intensity = torch.rand(3, 5, 1)
    out = rescale(direction, intensity)
    assert out.shape == (3, 5, 8)
    torch.testing.assert_close(out.norm(dim=-1, keepdim=True), intensity, atol=1e-5, rtol=1e-5)
    # every sample keeps its own direction (the official broadcast mixes them for batch > 1)
    torch.testing.assert_close(out[1, 0] / out[1, 0].norm(), direction[1] / direction[1].norm())


def test_model_shapes_and_stage_freezing() -> None:
    m = _model()
    x = torch.rand(2, 16, 52)
    assert m.reconstruct(x).shape == (2, 16, 52)
    inten = m.intensity(torch.rand(2, 16, 384), torch.rand(2, 7, 384), torch.zeros(2, 7, dtype=torch.bool))
    assert inten.shape == (2, 16, 1)
    assert m.label_emotion(torch.tensor([0, 3]), inten).shape == (2, 16, 256)
    blend = torch.tensor([[0.5, 0, 0, 0.5, 0, 0, 0]])
    assert m.mixed_label_emotion(blend, inten[:1]).shape == (1, 16, 256)
    params = trainable_parameters(m, "audio_content")
    assert params and all(p.requires_grad for p in m.audio_content_map.parameters())
    assert not any(p.requires_grad for p in m.decoder.parameters())
    # official names, so that official state dicts map by name
    keys = set(m.state_dict())
    assert {"emo_encoder.fc1.weight", "decoder.fc2.bias", "emotion_embedding.0.weight", "emotion_embedding.3.weight",
            "fusion_predictor.cross_attn.in_proj_weight", "semantic_emotion_map.fc1.weight"} <= keys  # fmt: skip
    assert not any(k.startswith("lip_residual") for k in keys)  # the official layout has no residual


def test_lip_residual_adds_to_the_mouth_channels_only_and_trains_in_stage_2() -> None:
    torch.manual_seed(0)
    mouth = (3, 7, 20)
    dims = ModelDims(rig_dim=52, content_feat_dim=384, emotion_feat_dim=384, text_token_dim=384, sentence_dim=384,
                     image_dim=52, fusion_dim=64, fusion_heads=4, lip_residual=mouth)  # fmt: skip
    m = MEDTalk(dims)
    assert m.lip_residual is not None
    feats = torch.randn(2, 16, 384)
    base = torch.rand(2, 16, 52)
    out = m.eval().with_lips(base, feats)
    moved = (out - base).abs().amax(dim=(0, 1))
    assert set(torch.nonzero(moved).flatten().tolist()) == set(mouth)
    expected = base.clone()
    expected[..., list(mouth)] += m.lip_residual(feats)
    torch.testing.assert_close(out, expected)
    trainable_parameters(m, "audio_content")
    assert all(p.requires_grad for p in m.lip_residual.parameters())
    trainable_parameters(m, "intensity")
    assert not any(p.requires_grad for p in m.lip_residual.parameters())


def test_audio_members_average_their_codes_and_each_learns_on_its_own_loss() -> None:
    """model.audio_members > 1: the content code is the members' mean, and stage 2 gives every member the
    gradient of its own reconstruction (as if trained alone), not of the averaged prediction."""
    from medtalk_models.rig import rig_spec_for
    from medtalk_models.stages import StageLoss

    torch.manual_seed(0)
    rig = rig_spec_for("mediapipe52", list(MEDIAPIPE_BLENDSHAPES), 25.0)
    dims = ModelDims(rig_dim=52, content_feat_dim=24, emotion_feat_dim=24, text_token_dim=24, sentence_dim=24,
                     image_dim=52, fusion_dim=16, fusion_heads=4, audio_conv_kernel=3, audio_members=3)  # fmt: skip
    m = MEDTalk(dims).eval()
    feats, x = torch.randn(2, 12, 24), torch.rand(2, 12, 52)
    members = m.audio_content_map.members
    assert len(members) == 3 and not torch.equal(members[0].fc2.weight, members[1].fc2.weight)  # own initialisations
    torch.testing.assert_close(m.audio_content_map(feats), torch.stack([mb(feats) for mb in members]).mean(0))
    keys = set(m.state_dict())
    assert {"audio_content_map.members.2.fc1.weight", "audio_content_map.members.0.conv.0.weight"} <= keys

    cfg = preset("small")
    cfg["stages"]["audio_content"].update(feature_noise=0.0, concordance_weight=0.0)
    params = trainable_parameters(m, "audio_content")
    loss = StageLoss("audio_content", m, rig, cfg, torch.device("cpu")).audio_content({"x": x, "content": feats})[0]
    loss["loss"].backward()
    got = [p.grad.clone() for p in members[1].parameters()]
    # member 1 alone, through the same frozen decoder: its loss divided by the member count
    for p in params:
        p.grad = None
    with torch.no_grad():
        e_gt, c_gt = m.emotion_code(x), m.cont_encoder(x)
    z = members[1](feats)
    alone = ((m.decode(e_gt, z) - x) ** 2).mean() + cfg["stages"]["audio_content"]["cos_weight"] * (
        1 - torch.nn.functional.cosine_similarity(z.reshape(2, -1), c_gt.reshape(2, -1), dim=1).mean()
    )
    (alone / 3).backward()
    for g, p in zip(got, members[1].parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)
