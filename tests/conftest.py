"""Shared fixtures. Real media comes from ../shared/data (CI has it beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never download anything: asset resolution must find local files or fail loudly.
os.environ["MEDTALK_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDTALK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test media; tests that need it fail clearly on CI if it is missing, skip elsewhere."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real test data missing at {SHARED_DATA}; CI must have ../shared beside the checkout")
        pytest.skip(f"real test data not found at {SHARED_DATA} (set MEDTALK_SHARED_DATA)")
    return SHARED_DATA


# -- real data for the model tests ---------------------------------------------------------------
# Same sentence (MEAD 001) in several emotions by two speakers (stage-1 content pairs; video only)
# plus short talking clips with audio (stages 2-4). Built once per test session.
TRAINING_SOURCES = (
    *(f"video_noaudio/mead_{spk}_front_{emo}_001.mp4" for spk in ("W009", "W011")
      for emo in ("angry_level3", "happy_level3", "sad_level3", "surprised_level3", "neutral_level1")),
    "video/pcavs_input_00002.mp4",
    "video/pcavs_input_00010.mp4",
    "video/pcavs_pose_source_517600055.mp4",
    "video/pcavs_audio_source_00086.mp4",
    "video/pcavs_audio_source_00373.mp4",
)  # fmt: skip


@pytest.fixture(scope="session")
def training_extraction(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TRAINING_SOURCES extracted by the local engine (2 workers, default settings, recipe auto)."""
    from medtalk_data.extract.batch import extract_videos
    from medtalk_pipelines import labels_for_path

    videos = tmp_path_factory.mktemp("train_videos")
    for rel in TRAINING_SOURCES:
        (videos / Path(rel).name).symlink_to(shared_data / rel)
    out = tmp_path_factory.mktemp("train_extracted")
    labels = labels_for_path("auto", root=videos)
    report = extract_videos(videos, out, workers=2, progress=False, labels_for=lambda clip: labels(clip.relpath))
    assert not report.failed
    return out


@pytest.fixture(scope="session")
def training_manifest(training_extraction: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real manifest (mediapipe52): 10 MEAD clips + 5 talking clips with words."""
    from medtalk_data.manifest import build_manifest
    from medtalk_data.manifest.build import BuildOptions

    manifest = tmp_path_factory.mktemp("train_manifests") / "small"
    build_manifest([training_extraction], manifest, options=BuildOptions(val=0.2, test=0.0, seed=3))
    return manifest


@pytest.fixture(scope="session")
def emoface_manifest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The EmoFace actor clip with its ground-truth 174-channel MetaHuman rig (60 fps)."""
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.manifest import build_manifest
    from medtalk_data.manifest.build import BuildOptions
    from medtalk_pipelines import labels_for_path

    videos = tmp_path_factory.mktemp("emoface_videos")
    for name in ("angry_gd04_001_021.wav", "angry_gd04_001_021_rig174.txt", "metahuman_attr_names.txt"):
        (videos / name).symlink_to(shared_data / "emoface" / name)
    out = tmp_path_factory.mktemp("emoface_extracted")
    labels = labels_for_path("auto", root=videos)
    extract_videos(videos, out, workers=1, progress=False, labels_for=lambda clip: labels(clip.relpath))
    manifest = tmp_path_factory.mktemp("emoface_manifests") / "emoface"
    build_manifest([out], manifest, options=BuildOptions(val=0.0, test=0.0, rig="metahuman174"))
    return manifest


# -- tiny randomly initialised Hugging Face models (plumbing of the optional backbones) --------------


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 3),
        conv_stride=(5, 8, 8),  # 320 samples per frame: 50 Hz like the real models
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_wav2vec2")
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIP (text + vision towers, 32-d) with a byte-level BPE vocabulary, saved like a real one."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers.pre_tokenizers import ByteLevel

    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": len(chars) + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = tower | {"vocab_size": len(vocab), "max_position_embeddings": 77}
    text |= {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}
    text |= {"pad_token_id": vocab["<|endoftext|>"]}
    config = transformers.CLIPConfig(
        text_config=text, vision_config=tower | {"image_size": 32, "patch_size": 8}, projection_dim=16
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_clip")
    transformers.CLIPModel(config).save_pretrained(folder)
    transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def edited_manifest(src: Path, dst: Path, clips=None, frames=None) -> Path:
    """A copy of a manifest with its clips and/or frames tables passed through ``clips(table)``/``frames(table)``."""
    import shutil

    import pyarrow.parquet as pq

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
    for name, edit in (("clips.parquet", clips), ("frames.parquet", frames)):
        if edit is not None:
            table = pq.read_table(dst / name)
            pq.write_table(edit(table).replace_schema_metadata(table.schema.metadata), dst / name)
    return dst


def small_cfg(epochs_per_phase: int = 10, epochs: int = 30, label_epochs: int | None = None) -> dict:
    """The small preset shortened for tests: ``epochs`` for stage 2, ``label_epochs`` (default ``epochs``)
    for stages 3-4."""
    from medtalk_models.config import load_config

    cfg = load_config()
    cfg["stages"]["disentangle"]["epochs_per_phase"] = epochs_per_phase
    cfg["stages"]["audio_content"]["epochs"] = epochs
    for stage in ("intensity", "emotion_control"):
        cfg["stages"][stage]["epochs"] = epochs if label_epochs is None else label_epochs
    cfg["train"]["save_every"] = 25
    return cfg


@pytest.fixture(scope="session")
def run_dir(training_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All four stages trained once per session on the small real manifest (about a minute)."""
    from medtalk_models.train import train

    out = tmp_path_factory.mktemp("runs") / "all"
    # stages 3-4 learn from the video-only clips too (more steps per epoch): half of stage 2's epochs
    result = train(training_manifest, small_cfg(label_epochs=15), out, "all", progress=False)
    assert result.stages_done == ["disentangle", "audio_content", "intensity", "emotion_control"]
    return out
