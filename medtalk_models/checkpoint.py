"""Training checkpoints that load without unpickling: tensors in safetensors files, the rest in JSON.

A checkpoint is one folder::

    model.safetensors   model.state_dict() (CPU, contiguous; tied tensors stored once)
    optim.safetensors   tensors of the optimizer, scheduler, scaler and training state
    rng.safetensors     tensors of the RNG states (torch CPU/CUDA, named torch.Generators)
    training.json       everything else resume needs: TrainingState, optimizer param_groups, scheduler, scaler, RNG
    meta.json           the caller's metadata plus ``format_version`` and the sha256 and size of every file above

``torch.load`` runs arbitrary code from a pickle, so a checkpoint downloaded from someone else would be a
program; nothing here ever unpickles. The folder is written beside its final place and swapped in at the
end, so an interrupted save leaves the previous checkpoint whole and never a half-written one.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import secrets
import shutil
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError, safe_open

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_write_json, display_path, ensure_writable_dir, sha256_file, swap_into_place

CHECKPOINT_FORMAT_VERSION = 1

MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optim.safetensors"
RNG_FILE = "rng.safetensors"
TRAINING_FILE = "training.json"
META_FILE = "meta.json"
_DATA_FILES = (MODEL_FILE, OPTIM_FILE, RNG_FILE, TRAINING_FILE)
_RESERVED_META_KEYS = ("format_version", "files")
_ALIASES_KEY = "medtalk_aliases"  # safetensors header metadata: {"dropped name": "stored name"} for tied tensors
_TAGS = ("__tensor__", "__tuple__", "__dict__", "__counter__", "__float__")
_MAX_LISTED = 5


@dataclass
class TrainingState:
    """Where training stood when the checkpoint was written: what resume needs besides the weights."""

    stage: str  # e.g. "disentangle"
    epoch: int  # epochs completed in this stage (or current epoch index)
    step: int  # optimizer steps done in this stage
    batch_in_epoch: int  # batches already consumed in the current epoch (mid-epoch resume)
    phase: str | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able


# --------------------------------------------------------------------------------------------------- save


def save_checkpoint(
    directory: Path,
    *,
    model: torch.nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    state: TrainingState | None = None,
    rng: dict[str, Any] | None = None,
    extra: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint folder atomically and return its (absolute) path.

    ``meta`` must be JSON-able; its ``format_version`` and ``files`` keys are overwritten, so a dict from
    :func:`load_meta` can be passed back. An existing checkpoint at ``directory`` is replaced only once the new
    one is complete; a folder there that is not a checkpoint is never touched. ``extra`` adds named
    tensor files (``<name>.safetensors``, checked like the others), read back with :func:`load_extra`.
    """
    final = Path(os.path.abspath(directory))
    _check_replaceable(final)
    try:
        meta_out = json.loads(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint meta must be JSON-able (no NaN/inf): {err}") from err
    if not isinstance(meta_out, dict):
        raise TypeError(f"checkpoint meta must be a dict, not {type(meta).__name__}")
    ensure_writable_dir(final.parent)

    tmp = _make_sibling(final, "tmp")
    try:
        model_tensors: dict[str, torch.Tensor] = {}
        for key, value in model.state_dict().items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"model.state_dict()[{key!r}] is a {type(value).__name__}; only tensors can be saved")
            model_tensors[key] = value
        _write_tensors(tmp / MODEL_FILE, model_tensors)

        train_tensors: dict[str, torch.Tensor] = {}
        training: dict[str, Any] = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "state": None if state is None else _encode(asdict(state), "training_state", train_tensors),
            "optimizer": None,
            "scheduler": None,
            "scaler": None,
            "rng": None,
        }
        if optimizer is not None:
            osd = optimizer.state_dict()
            training["optimizer"] = {
                "class": type(optimizer).__name__,
                "state": _encode(osd["state"], "state", train_tensors),
                "param_groups": _encode(osd["param_groups"], "param_groups", train_tensors),
            }
        if scheduler is not None:
            training["scheduler"] = {
                "class": type(scheduler).__name__,
                "state_dict": _encode(scheduler.state_dict(), "scheduler", train_tensors),
            }
        if scaler is not None:
            training["scaler"] = _encode(scaler.state_dict(), "scaler", train_tensors)
        _write_tensors(tmp / OPTIM_FILE, train_tensors)

        rng_tensors: dict[str, torch.Tensor] = {}
        if rng is not None:
            training["rng"] = _encode(rng, "", rng_tensors)
        _write_tensors(tmp / RNG_FILE, rng_tensors)
        atomic_write_json(tmp / TRAINING_FILE, training)
        extra_files = []
        for name, tensors in (extra or {}).items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or f"{name}.safetensors" in _DATA_FILES:
                raise ValueError(f"extra checkpoint file name {name!r}: use lower-case letters, digits and _")
            _write_tensors(tmp / f"{name}.safetensors", tensors)
            extra_files.append(f"{name}.safetensors")

        meta_out["format_version"] = CHECKPOINT_FORMAT_VERSION
        meta_out["files"] = {
            name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in (*_DATA_FILES, *extra_files)
        }
        atomic_write_json(tmp / META_FILE, meta_out)
        _fsync_dir(tmp)
        _swap_into_place(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(final.parent)
    _remove_stale_siblings(final)
    return final


def _check_replaceable(final: Path) -> None:
    """Refuse to replace anything that save_checkpoint did not write: a file, or a folder of other data."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise MedtalkError(f"{display_path(final)}: exists and is not a folder; choose another checkpoint folder")
    if final.is_dir() and any(final.iterdir()) and not (final / META_FILE).is_file():
        raise MedtalkError(
            f"{display_path(final)}: folder exists and is not a medtalk checkpoint (no {META_FILE}); "
            "refusing to replace it, choose a new or empty checkpoint folder"
        )


def _make_sibling(final: Path, kind: str) -> Path:
    """Create an empty hidden folder beside ``final`` (same file system, so the final rename is atomic)."""
    while True:
        path = final.parent / f".{final.name}.{secrets.token_hex(4)}.ckpt-{kind}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _sibling_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(final.name)}\.[0-9a-f]{{8}}\.ckpt-(?:tmp|old)$")


def _remove_stale_siblings(final: Path) -> None:
    """Remove temp/old folders that a killed save left beside ``final`` (only called after a save succeeded)."""
    pattern = _sibling_pattern(final)
    for entry in final.parent.iterdir():
        if pattern.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Make ``tmp`` appear at ``final`` (see :func:`~medtalk_data.io.files.swap_into_place`). Without an
    atomic exchange, a crash between the two renames leaves the old checkpoint whole under the aside
    name, which load_meta points to."""
    aside = _make_sibling(final, "old")
    aside.rmdir()
    swap_into_place(tmp, final, aside)


def _fsync_dir(path: Path) -> None:
    """Persist a folder's entries (renames) as well as the files in it; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors as CPU, contiguous safetensors; tied tensors are stored once and recorded as aliases."""
    aliases: dict[str, str] = {}
    first_of: dict[tuple[Any, ...], str] = {}
    unique: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach()
        if tensor.numel() > 0:
            key = (tensor.device, tensor.dtype, tensor.data_ptr(), tuple(tensor.shape), tensor.stride())
            if key in first_of:
                aliases[name] = first_of[key]
                continue
            first_of[key] = name
        unique[name] = tensor
    out: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, tensor in unique.items():
        tensor = tensor.to("cpu").contiguous()
        if tensor.numel() > 0:
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in storages:  # overlapping views of one storage: safetensors wants each stored on its own
                tensor = tensor.clone()
            else:
                storages.add(ptr)
        out[name] = tensor
    metadata = {"format": "pt"}
    if aliases:
        metadata[_ALIASES_KEY] = json.dumps(aliases, sort_keys=True)
    safetensors.torch.save_file(out, os.fspath(path), metadata=metadata)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------------------------------- load


def load_meta(directory_or_file: Path) -> dict[str, Any]:
    """Read and check ``meta.json`` of a checkpoint folder (or of the folder holding the given file)."""
    meta_path = _meta_path(Path(directory_or_file))
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except OSError as err:
        raise MedtalkError(
            f"{display_path(meta_path)}: cannot read checkpoint metadata ({err.strerror or err})"
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(meta_path, f"invalid JSON: {err}") from err
    if not isinstance(data, dict) or "format_version" not in data:
        raise MedtalkError(
            f"{display_path(meta_path)}: not a medtalk checkpoint (no format_version); "
            "pass a folder written by save_checkpoint"
        )
    version = data["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise _damaged(meta_path, f"format_version is {version!r}")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise MedtalkError(
            f"{display_path(meta_path)}: checkpoint format {version} is newer than this medtalk reads "
            f"({CHECKPOINT_FORMAT_VERSION}); upgrade medtalk, or re-train with this version"
        )
    if version < CHECKPOINT_FORMAT_VERSION:
        raise MedtalkError(
            f"{display_path(meta_path)}: checkpoint format {version} is older than this medtalk reads "
            f"({CHECKPOINT_FORMAT_VERSION}); re-train, or load it with the medtalk release that wrote it"
        )
    files = data.get("files")
    if not isinstance(files, dict) or not all(_valid_entry(files.get(name)) for name in _DATA_FILES):
        raise _damaged(meta_path, "file list missing or incomplete")
    return data


def load_model_weights(
    directory: Path, model: torch.nn.Module, *, strict: bool = True, map_location: str | torch.device = "cpu"
) -> None:
    """Check the weights file against meta.json, then copy it into ``model`` with readable mismatch errors."""
    directory = _checkpoint_dir(Path(directory))
    meta = load_meta(directory)
    path = directory / MODEL_FILE
    loaded = _read_tensors(path, meta, map_location)
    expected = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}

    differ = [
        f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[key].shape)}"
        for key, tensor in loaded.items()
        if key in expected and tensor.shape != expected[key].shape
    ]
    if differ:
        raise MedtalkError(
            f"{display_path(path)}: checkpoint does not fit this model, {len(differ)} tensor(s) differ in shape "
            f"({_listing(differ)}); it was trained for another rig or config: use the matching one or re-train"
        )
    missing = [key for key in expected if key not in loaded]
    unexpected = [key for key in loaded if key not in expected]
    if strict and (missing or unexpected):
        parts = [
            f"{label}: {_listing(keys)}" for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys
        ]
        raise MedtalkError(
            f"{display_path(path)}: checkpoint does not match this model's layers ({'; '.join(parts)}); "
            "use the config it was trained with, or load with strict=False to take only the matching tensors"
        )
    model.load_state_dict({k: v for k, v in loaded.items() if k in expected}, strict=strict)


def load_training(
    directory: Path,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[TrainingState, dict[str, Any]]:
    """Restore optimizer, scheduler and scaler in place; return the TrainingState and the RNG dict for restore_rng.

    Optimizer tensors land on the device (and dtype) of the parameters the optimizer holds, as
    ``Optimizer.load_state_dict`` places them. A saved GradScaler state is skipped when none was saved (a run
    without AMP): the scaler then starts from its initial scale.
    """
    directory = _checkpoint_dir(Path(directory))
    meta = load_meta(directory)
    training_path = directory / TRAINING_FILE
    _verify(training_path, meta)
    try:
        training = json.loads(training_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(training_path, f"invalid JSON: {err}") from err
    if not isinstance(training, dict):
        raise _damaged(training_path, "not a JSON object")
    optim_tensors = _read_tensors(directory / OPTIM_FILE, meta, "cpu")
    rng_tensors = _read_tensors(directory / RNG_FILE, meta, "cpu")

    if training.get("state") is None:
        raise MedtalkError(
            f"{display_path(training_path)}: checkpoint holds no training state (saved for inference only); "
            "it cannot be resumed, start the stage afresh from its weights"
        )
    state = _state_from_dict(_decode(training["state"], optim_tensors, training_path), training_path)

    if optimizer is not None:
        saved = _section(training, "optimizer", type(optimizer).__name__, training_path)
        state_dict = {
            "state": _decode(saved.get("state"), optim_tensors, training_path),
            "param_groups": _decode(saved.get("param_groups"), optim_tensors, training_path),
        }
        try:
            optimizer.load_state_dict(state_dict)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise MedtalkError(
                f"{display_path(training_path)}: optimizer state does not fit this optimizer ({err}); "
                "resume with the same model and optimizer settings, or start the stage afresh"
            ) from err
    if scheduler is not None:
        saved = _section(training, "scheduler", type(scheduler).__name__, training_path)
        try:
            scheduler.load_state_dict(_decode(saved.get("state_dict"), optim_tensors, training_path))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise MedtalkError(
                f"{display_path(training_path)}: scheduler state does not fit this scheduler ({err}); "
                "resume with the same schedule settings, or start the stage afresh"
            ) from err
    if scaler is not None and training.get("scaler"):
        scaler.load_state_dict(_decode(training["scaler"], optim_tensors, training_path))

    rng = _decode(training.get("rng"), rng_tensors, training_path)
    return state, rng if isinstance(rng, dict) else {}


def _meta_path(path: Path) -> Path:
    """meta.json for a checkpoint folder, its meta.json, or one of its data files; clear errors otherwise."""
    if path.is_dir():
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise MedtalkError(
                f"{display_path(path)}: not a medtalk checkpoint (no {META_FILE}); "
                "pass a folder written by save_checkpoint"
            )
        return meta_path
    if path.is_file():
        if path.name == META_FILE:
            return path
        if path.name in _DATA_FILES and (path.parent / META_FILE).is_file():
            return path.parent / META_FILE
        hint = (
            " (pickled .pt/.pth/.ckpt files are never loaded: they can run code)"
            if path.suffix in {".pt", ".pth", ".ckpt", ".bin", ".pkl"}
            else ""
        )
        raise MedtalkError(
            f"{display_path(path)}: not a medtalk checkpoint{hint}; pass a folder written by save_checkpoint"
        )
    aside = _interrupted_save(Path(os.path.abspath(path)))
    if aside is not None:
        raise MedtalkError(
            f"{display_path(path)}: checkpoint not found, a save was interrupted; "
            f"the previous checkpoint is intact at {display_path(aside)}, rename it back to {display_path(path)}"
        )
    raise MedtalkError(f"{display_path(path)}: checkpoint not found; check the path")


def _interrupted_save(final: Path) -> Path | None:
    """The previous checkpoint a save moved aside before being killed, if one is beside ``final``."""
    if not final.parent.is_dir():
        return None
    pattern = _sibling_pattern(final)
    for entry in sorted(final.parent.iterdir()):
        if pattern.match(entry.name) and entry.name.endswith(".ckpt-old") and (entry / META_FILE).is_file():
            return entry
    return None


def _checkpoint_dir(path: Path) -> Path:
    """The checkpoint folder for a folder, or for its meta.json / data file."""
    return _meta_path(path).parent


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("bytes"), int)
        and not isinstance(entry.get("bytes"), bool)
    )


def _damaged(path: Path, why: str) -> MedtalkError:
    return MedtalkError(f"{display_path(path)}: checkpoint is damaged ({why}); re-download or re-train")


def _verify(path: Path, meta: dict[str, Any]) -> None:
    """Compare a file's size and sha256 with meta.json, so damage is reported before anything parses it."""
    entry = meta["files"][path.name]
    if not path.is_file():
        raise MedtalkError(f"{display_path(path)}: missing from the checkpoint; re-download or re-train")
    size = path.stat().st_size
    if size < entry["bytes"]:
        raise _damaged(path, f"truncated: {size} of {entry['bytes']} bytes")
    if size > entry["bytes"]:
        raise _damaged(path, f"{size} bytes, expected {entry['bytes']}")
    if sha256_file(path) != entry["sha256"]:
        raise _damaged(path, "sha256 mismatch")


def load_extra(directory: Path, name: str) -> dict[str, torch.Tensor] | None:
    """The tensors of an ``extra`` file saved with the checkpoint (verified), or None if it has none."""
    directory = _checkpoint_dir(Path(directory))
    meta = load_meta(directory)
    file = f"{name}.safetensors"
    if file not in (meta.get("files") or {}):
        return None
    return _read_tensors(directory / file, meta, "cpu")


def _read_tensors(path: Path, meta: dict[str, Any], device: str | torch.device) -> dict[str, torch.Tensor]:
    """Verify, then read a safetensors file, re-creating tied tensors from the alias list in its header."""
    _verify(path, meta)
    try:
        with safe_open(os.fspath(path), framework="pt", device=str(device)) as fh:
            header = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (safe_open is not a Mapping)
        aliases = json.loads(header.get(_ALIASES_KEY, "{}"))
        for alias, stored in aliases.items():
            tensors[alias] = tensors[stored]
    except (SafetensorError, json.JSONDecodeError, KeyError, AttributeError) as err:
        raise _damaged(path, f"unreadable: {err}") from err
    return tensors


def _section(training: dict[str, Any], name: str, cls: str, path: Path) -> dict[str, Any]:
    """The saved optimizer/scheduler section, checked to come from the same class as the live object."""
    saved = training.get(name)
    if saved is None:
        raise MedtalkError(
            f"{display_path(path)}: checkpoint has no {name} state; resume without passing a {name}, "
            "or start the stage afresh"
        )
    if not isinstance(saved, dict):
        raise _damaged(path, f"{name} section is not an object")
    if saved.get("class") != cls:
        raise MedtalkError(
            f"{display_path(path)}: checkpoint {name} is {saved.get('class')}, this run uses {cls}; "
            f"resume with the same {name}, or start the stage afresh"
        )
    return saved


def _state_from_dict(data: Any, path: Path) -> TrainingState:
    if not isinstance(data, dict):
        raise _damaged(path, "training state is not an object")
    known = {f.name for f in fields(TrainingState)}
    try:
        state = TrainingState(**{k: v for k, v in data.items() if k in known})
    except TypeError as err:
        raise _damaged(path, f"training state incomplete: {err}") from err
    ints_ok = all(
        isinstance(v, int) and not isinstance(v, bool) for v in (state.epoch, state.step, state.batch_in_epoch)
    )
    if not (isinstance(state.stage, str) and ints_ok and isinstance(state.extra, dict)):
        raise _damaged(path, "training state has wrong types")
    return state


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return f"{shown} (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else shown


# --------------------------------------------------------------------------------------------------- JSON


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Turn a state dict into JSON, moving tensors into ``tensors`` under their dotted path.

    Tuples, non-string dict keys (optimizer param ids), Counters (MultiStepLR milestones) and inf/nan
    (ReduceLROnPlateau's ``best``) are tagged so that they come back as they were.
    """
    if isinstance(obj, torch.Tensor):
        name, n = path, 1
        while name in tensors:
            name, n = f"{path}#{n}", n + 1
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _join(path, i), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _join(path, i), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, Counter):
        return {"__counter__": [[_encode(k, path, tensors), _encode(v, path, tensors)] for k, v in obj.items()]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not (len(obj) == 1 and next(iter(obj)) in _TAGS):
            return {k: _encode(v, _join(path, k), tensors) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, path, tensors), _encode(v, _join(path, k), tensors)] for k, v in obj.items()]}
    raise TypeError(
        f"cannot store {path or 'value'} ({type(obj).__name__}) in a checkpoint; "
        "only tensors, numbers, strings, None, lists, tuples and dicts are kept"
    )


def _decode(obj: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    """Inverse of :func:`_encode`; a placeholder whose tensor is missing means the checkpoint is damaged."""
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "__tensor__":
            if value not in tensors:
                raise _damaged(path, f"tensor {value!r} is missing")
            return tensors[value]
        if tag == "__tuple__":
            return tuple(_decode(v, tensors, path) for v in value)
        if tag == "__float__":
            return float(value)
        if tag == "__dict__":
            return {_decode(k, tensors, path): _decode(v, tensors, path) for k, v in value}
        if tag == "__counter__":
            return Counter({_decode(k, tensors, path): _decode(v, tensors, path) for k, v in value})
    return {k: _decode(v, tensors, path) for k, v in obj.items()}


# --------------------------------------------------------------------------------------------------- RNG


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot every RNG a training step may draw from, so a resumed run draws the same numbers.

    CUDA states are captured only when CUDA is already initialised (capturing must not start it).
    """
    cuda: list[torch.Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "torch_cuda": cuda,
        "numpy": _numpy_jsonable(np.random.get_state(legacy=False)),
        "python": [version, list(internal), gauss_next],
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }


def restore_rng(rng: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Put back the RNG states from :func:`capture_rng`; warns where a state cannot be restored here."""
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    cuda = rng.get("torch_cuda") or []
    if cuda:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        for index in range(min(len(cuda), count)):
            torch.cuda.set_rng_state(cuda[index], index)
        if count != len(cuda):
            warnings.warn(
                f"checkpoint has CUDA RNG states for {len(cuda)} device(s), this machine has {count}; "
                "resumed random draws on the GPU will differ from an uninterrupted run",
                stacklevel=2,
            )
    if "numpy" in rng:
        np.random.set_state(rng["numpy"])
    if "python" in rng:
        version, internal, gauss_next = rng["python"]
        random.setstate((version, tuple(internal), gauss_next))
    saved = rng.get("generators") or {}
    for name, generator in (generators or {}).items():
        if name not in saved:
            warnings.warn(f"checkpoint has no RNG state for generator {name!r}; it keeps its state", stacklevel=2)
            continue
        generator.set_state(saved[name])


def _numpy_jsonable(obj: Any) -> Any:
    """numpy's RNG state with arrays as lists; ``np.random.set_state`` accepts it back as is."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _numpy_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_numpy_jsonable(v) for v in obj]
    return obj
