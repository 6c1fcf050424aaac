"""Checkpoints: exact resume, no unpickling, clear errors on damage or mismatch, and atomic replacement."""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from medtalk_data.errors import MedtalkError
from medtalk_data.io import files as medtalk_files
from medtalk_data.io.files import sha256_file
from medtalk_models.checkpoint import (
    CHECKPOINT_FORMAT_VERSION,
    TrainingState,
    capture_rng,
    load_meta,
    load_model_weights,
    load_training,
    restore_rng,
    save_checkpoint,
)

VOCAB, DIM, OUT = 11, 16, 5
Sched = torch.optim.lr_scheduler.LRScheduler


class TinyNet(nn.Module):
    """Embedding + attention (with dropout, so resume must restore the RNG) + LayerNorm + Linear."""

    def __init__(self, dim: int = DIM, out: int = OUT, tie: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.attn = nn.MultiheadAttention(dim, 2, dropout=0.1, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.ModuleDict({"fc2": nn.Linear(dim, out)})
        self.register_buffer("scale", torch.tensor(0.5, dtype=torch.bfloat16))
        self.tie = tie
        if tie:
            self.lm_head = nn.Linear(dim, VOCAB, bias=False)
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        attended, _ = self.attn(x, x, x)
        x = self.norm(x + attended)
        y = self.decoder["fc2"](x).mean(dim=1) * self.scale.float()
        if self.tie:
            y = y + self.lm_head(x).mean(dim=(1, 2), keepdim=True)
        return y


def make_training(kind: str, model: nn.Module) -> tuple[torch.optim.Optimizer, Sched, torch.amp.GradScaler | None]:
    if kind == "adam_steplr":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5), None
    if kind == "adamw_amsgrad_multistep":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, amsgrad=True, weight_decay=0.01)
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.3), None
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    return opt, plateau, torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2)


def train_steps(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Sched,
    scaler: torch.amp.GradScaler | None,
    gen: torch.Generator,
    n: int,
) -> None:
    for _ in range(n):
        tokens = torch.randint(0, VOCAB, (4, 6), generator=gen)
        target = torch.randn(4, OUT, generator=gen) + float(np.random.rand())
        opt.zero_grad()
        loss = F.mse_loss(model(tokens), target)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(1.0)
        else:
            sched.step()


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Deep equality where tensors must match bit for bit, in dtype and shape too."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}.{i}")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def save_small(directory: Path, model: nn.Module | None = None, **kwargs: Any) -> nn.Module:
    model = model or TinyNet()
    save_checkpoint(directory, model=model, meta={"rig": "arkit52"}, **kwargs)
    return model


# ------------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("kind", ["adam_steplr", "adamw_amsgrad_multistep", "sgd_plateau_scaler"])
def test_resume_is_bit_identical(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    model = TinyNet()
    opt, sched, scaler = make_training(kind, model)
    gen = torch.Generator().manual_seed(1)
    train_steps(model, opt, sched, scaler, gen, 4)

    saved_weights = copy.deepcopy(model.state_dict())
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    saved_scaler = scaler.state_dict() if scaler else None
    state = TrainingState("disentangle", epoch=1, step=4, batch_in_epoch=2, phase="warmup", extra={"best": (0.5, 3)})
    meta = {"rig": {"name": "arkit52", "channels": 52}, "stages": ["disentangle", "fuse"], "medtalk": "0.1.0"}
    directory = save_checkpoint(
        tmp_path / "ckpt",
        model=model,
        meta=meta,
        optimizer=opt,
        scheduler=sched,
        scaler=scaler,
        state=state,
        rng=capture_rng({"data": gen}),
    )
    assert directory == (tmp_path / "ckpt").absolute()
    train_steps(model, opt, sched, scaler, gen, 3)  # the uninterrupted run goes on

    torch.manual_seed(99)  # the resumed process starts with other weights and other RNG states
    np.random.seed(99)
    model2 = TinyNet()
    opt2, sched2, scaler2 = make_training(kind, model2)
    gen2 = torch.Generator().manual_seed(5)
    load_model_weights(directory, model2)
    assert_same(saved_weights, model2.state_dict(), "weights")
    state2, rng = load_training(directory, optimizer=opt2, scheduler=sched2, scaler=scaler2)
    assert state2 == state
    assert_same(saved_opt, opt2.state_dict(), "optimizer")
    assert_same(saved_sched, sched2.state_dict(), "scheduler")
    if scaler2 is not None:
        assert scaler2.state_dict() == saved_scaler
    restore_rng(rng, {"data": gen2})
    train_steps(model2, opt2, sched2, scaler2, gen2, 3)

    assert_same(model.state_dict(), model2.state_dict(), "after resume")
    assert_same(opt.state_dict(), opt2.state_dict(), "optimizer after resume")

    read = load_meta(directory)
    assert {k: read[k] for k in meta} == meta
    assert read["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert read["files"]["model.safetensors"]["sha256"] == sha256_file(directory / "model.safetensors")
    assert load_meta(directory / "meta.json") == read == load_meta(directory / "model.safetensors")


def test_file_layout(tmp_path: Path) -> None:
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 3, dtype=torch.long)).sum().backward()
    opt.step()
    directory = save_checkpoint(
        tmp_path / "c", model=model, meta={}, optimizer=opt, state=TrainingState("s", 0, 1, 0), rng=capture_rng()
    )
    assert sorted(p.name for p in directory.iterdir()) == [
        "meta.json",
        "model.safetensors",
        "optim.safetensors",
        "rng.safetensors",
        "training.json",
    ]
    with safe_open(directory / "optim.safetensors", framework="pt") as fh:
        assert {"state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"} <= set(fh.keys())
    with safe_open(directory / "rng.safetensors", framework="pt") as fh:
        assert "torch" in set(fh.keys())
    training = json.loads((directory / "training.json").read_text())
    assert training["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert training["optimizer"]["param_groups"][0]["lr"] == 1e-3
    assert training["state"]["stage"] == "s"


def test_tied_weights_are_stored_once_and_restored(tmp_path: Path) -> None:
    model = TinyNet(tie=True)
    save_small(tmp_path / "c", model)
    with safe_open(tmp_path / "c" / "model.safetensors", framework="pt") as fh:
        keys = set(fh.keys())
    assert ("embed.weight" in keys) != ("lm_head.weight" in keys)
    model2 = TinyNet(tie=True)
    load_model_weights(tmp_path / "c", model2)
    assert_same(model.state_dict(), model2.state_dict())
    assert model2.lm_head.weight is model2.embed.weight


def test_rng_capture_and_restore() -> None:
    gen = torch.Generator().manual_seed(7)

    def draw() -> tuple[torch.Tensor, np.ndarray, float, torch.Tensor]:
        return torch.rand(5), np.random.rand(5), random.random(), torch.rand(5, generator=gen)

    rng = capture_rng({"data": gen})
    first = draw()
    restore_rng(rng, {"data": gen})
    second = draw()
    assert torch.equal(first[0], second[0]) and torch.equal(first[3], second[3])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_rng_survives_the_checkpoint(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    model = TinyNet()  # built first: initialising weights draws from the torch RNG
    rng = capture_rng({"data": gen})
    save_small(tmp_path / "c", model, rng=rng, state=TrainingState("s", 0, 0, 0))
    first = (torch.rand(4), np.random.rand(4), random.random(), torch.rand(4, generator=gen))
    _, rng = load_training(tmp_path / "c")
    with pytest.warns(UserWarning, match="other"):
        restore_rng(rng, {"data": gen, "other": torch.Generator()})
    second = (torch.rand(4), np.random.rand(4), random.random(), torch.rand(4, generator=gen))
    assert torch.equal(first[0], second[0]) and torch.equal(first[3], second[3])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = TinyNet()
    opt, sched, _ = make_training("adam_steplr", model)
    train_steps(model, opt, sched, None, torch.Generator().manual_seed(0), 2)
    save_small(
        tmp_path / "c", model, optimizer=opt, scheduler=sched, state=TrainingState("s", 0, 2, 2), rng=capture_rng()
    )

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("checkpoint loading must not unpickle")

    for target, name in [(torch, "load"), (torch.serialization, "load"), (pickle, "load"), (pickle, "loads")]:
        monkeypatch.setattr(target, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    model2 = TinyNet()
    opt2, sched2, _ = make_training("adam_steplr", model2)
    load_meta(tmp_path / "c")
    load_model_weights(tmp_path / "c", model2)
    _, rng = load_training(tmp_path / "c", optimizer=opt2, scheduler=sched2)
    restore_rng(rng)
    assert_same(model.state_dict(), model2.state_dict())


# ------------------------------------------------------------------------------------------ errors


def test_flipped_bytes_are_reported_damaged(tmp_path: Path) -> None:
    save_small(tmp_path / "c")
    path = tmp_path / "c" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(MedtalkError, match=r"model\.safetensors: checkpoint is damaged \(sha256 mismatch\)"):
        load_model_weights(tmp_path / "c", TinyNet())


def test_truncated_file_is_reported_damaged(tmp_path: Path) -> None:
    save_small(tmp_path / "c")
    path = tmp_path / "c" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(MedtalkError, match=r"damaged \(truncated.*re-download or re-train"):
        load_model_weights(tmp_path / "c", TinyNet())


def test_damaged_optimizer_file(tmp_path: Path) -> None:
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 3, dtype=torch.long)).sum().backward()
    opt.step()
    save_small(tmp_path / "c", model, optimizer=opt, state=TrainingState("s", 0, 1, 1))
    path = tmp_path / "c" / "optim.safetensors"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(MedtalkError, match=r"optim\.safetensors: checkpoint is damaged"):
        load_training(tmp_path / "c", optimizer=torch.optim.Adam(TinyNet().parameters()))


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match="checkpoint not found; check the path"):
        load_meta(tmp_path / "nowhere")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(MedtalkError, match=r"run: not a medtalk checkpoint \(no meta\.json\)"):
        load_model_weights(tmp_path / "run", TinyNet())
    torch.save({"w": torch.zeros(1)}, tmp_path / "old.pt")
    with pytest.raises(MedtalkError, match="never loaded"):
        load_meta(tmp_path / "old.pt")
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "meta.json").write_text('{"rig": "x"}')
    with pytest.raises(MedtalkError, match="not a medtalk checkpoint"):
        load_meta(tmp_path / "json")


@pytest.mark.parametrize(("version", "fix"), [(999, "upgrade medtalk"), (0, "re-train")])
def test_format_version_mismatch(tmp_path: Path, version: int, fix: str) -> None:
    save_small(tmp_path / "c")
    meta_path = tmp_path / "c" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = version
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MedtalkError, match=f"checkpoint format {version} .*; {fix}"):
        load_model_weights(tmp_path / "c", TinyNet())


def test_damaged_meta_json(tmp_path: Path) -> None:
    save_small(tmp_path / "c")
    (tmp_path / "c" / "meta.json").write_text('{"format_version": 1, "fil')
    with pytest.raises(MedtalkError, match=r"meta\.json: checkpoint is damaged \(invalid JSON"):
        load_meta(tmp_path / "c")


def test_checkpoint_for_another_rig(tmp_path: Path) -> None:
    save_small(tmp_path / "c", TinyNet(dim=256, out=174))
    with pytest.raises(MedtalkError) as info:
        load_model_weights(tmp_path / "c", TinyNet(dim=256, out=52))
    message = str(info.value)
    assert "decoder.fc2.weight: checkpoint (174, 256) vs model (52, 256)" in message
    assert "decoder.fc2.bias: checkpoint (174,) vs model (52,)" in message
    assert "\n" not in message


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    source = TinyNet(tie=True)
    save_small(tmp_path / "c", source)
    with pytest.raises(MedtalkError, match=r"unexpected: lm_head\.weight"):
        load_model_weights(tmp_path / "c", TinyNet())
    model = TinyNet()
    load_model_weights(tmp_path / "c", model, strict=False)
    assert torch.equal(model.embed.weight, source.embed.weight)


def test_optimizer_class_mismatch_and_missing_sections(tmp_path: Path) -> None:
    model = TinyNet()
    save_small(tmp_path / "c", model, optimizer=torch.optim.Adam(model.parameters()), state=TrainingState("s", 0, 0, 0))
    with pytest.raises(MedtalkError, match="optimizer is Adam, this run uses SGD"):
        load_training(tmp_path / "c", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(MedtalkError, match="no scheduler state"):
        load_training(tmp_path / "c", optimizer=opt, scheduler=torch.optim.lr_scheduler.StepLR(opt, 1))
    save_small(tmp_path / "weights_only", model)
    with pytest.raises(MedtalkError, match="no training state"):
        load_training(tmp_path / "weights_only")


# ------------------------------------------------------------------------------------------ atomic save


def failing_on_call(n: int, real: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def save_file(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return save_file


def test_failed_save_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = save_small(tmp_path / "c", state=TrainingState("s", 0, 0, 0))
    other = TinyNet()
    monkeypatch.setattr(safetensors.torch, "save_file", failing_on_call(2, safetensors.torch.save_file))
    with pytest.raises(OSError, match="No space left"):
        save_small(tmp_path / "c", other, optimizer=torch.optim.Adam(other.parameters()))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c"]  # no temp folders left behind
    model = TinyNet()
    load_model_weights(tmp_path / "c", model)
    assert_same(first.state_dict(), model.state_dict())


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_save_replaces_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(medtalk_files, "_exchange", lambda a, b: False)
    save_small(tmp_path / "c")
    (tmp_path / ".c.deadbeef.ckpt-tmp").mkdir()  # left by a killed save
    (tmp_path / ".c.backup").mkdir()  # not ours
    second = save_small(tmp_path / "c")
    assert sorted(os.listdir(tmp_path)) == [".c.backup", "c"]
    model = TinyNet()
    load_model_weights(tmp_path / "c", model)
    assert_same(second.state_dict(), model.state_dict())


def test_crash_between_renames_points_to_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = save_small(tmp_path / "c")
    monkeypatch.setattr(medtalk_files, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if Path(dst) == tmp_path / "c":
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        save_small(tmp_path / "c")
    monkeypatch.setattr(os, "rename", real_rename)
    with pytest.raises(MedtalkError, match=r"save was interrupted; the previous checkpoint is intact at .*ckpt-old"):
        load_meta(tmp_path / "c")
    (aside,) = tmp_path.iterdir()
    model = TinyNet()
    load_model_weights(aside, model)
    assert_same(first.state_dict(), model.state_dict())
    save_small(tmp_path / "c")  # the next save succeeds and clears the leftover
    assert os.listdir(tmp_path) == ["c"]


def test_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    with pytest.raises(MedtalkError, match=r"not a medtalk checkpoint.*refusing to replace it"):
        save_small(tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep me"


def test_meta_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON-able"):
        save_checkpoint(tmp_path / "c", model=TinyNet(), meta={"path": tmp_path})
    assert not (tmp_path / "c").exists()
