"""The per-clip status record (``status.json``) and the output folder layout.

Layout under the extraction folder::

    clips/<clip_id>/status.json      written last; a clip without it does not exist; it records the
                                     size and sha256 of every output, so damage is noticed
    clips/<clip_id>/frames.parquet   per-frame face data (see medtalk_data.face.frames)
    clips/<clip_id>/audio.wav        16 kHz mono PCM
    clips/<clip_id>/words.json       transcript with word and phone timings (words stage)
    clips/<clip_id>/expression.parquet  per-frame expression probabilities (labels stage)
    clips/<clip_id>/failure.json     the latest failed retry of a clip whose earlier outputs were kept
    .staging/                        work in progress; deleted on the next run
    extract_summary.json             the last run's summary
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from ..audio.stage import AudioInfo
from ..clip_labels import ClipLabels
from ..expression.stage import ExpressionSummary
from ..face.deca.encoder import DecaSummary
from ..face.fan.landmarker import FanSummary
from ..face.flame.types import FlameSummary
from ..face.stage import FaceSummary, VideoSummary
from ..io.files import sha256_file
from ..io.media import MediaInfo
from ..io.records import record_from_dict
from ..words.types import WordsSummary

STATUS_SCHEMA_VERSION = 1
STATUS_FILE = "status.json"
FRAMES_FILE = "frames.parquet"
AUDIO_FILE = "audio.wav"
FAILURE_FILE = "failure.json"
WORDS_FILE = "words.json"
EXPRESSION_FILE = "expression.parquet"

DONE = "done"
FAILED = "failed"
DUPLICATE = "duplicate"


RUNNING = "running"


@dataclass
class SourceRecord:
    """The source file as it was when the clip was extracted (a changed size or mtime gets it re-hashed)."""

    relpath: str = ""
    path: str = ""
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str = ""


@dataclass
class OutputFile:
    size: int
    sha256: str


@dataclass
class ClipStatus:
    """One clip's ``status.json``: what was done to it, what it holds, and what went wrong.

    Each stage fills its own part (``media``, ``video`` and ``face``, ``audio``, ``words``,
    ``expression``); a part is None when its stage did not run, and ``audio`` is also None when the
    audio stage found no audio. :meth:`to_dict` writes the JSON that ``status.json`` has always had.
    """

    clip_id: str
    source: SourceRecord = field(default_factory=SourceRecord)
    kind: str = "video"  # "video" or "audio" (an audio-only file)
    recipe: str = "auto"
    labels: ClipLabels = field(default_factory=ClipLabels)
    stages: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # ExtractSettings.to_dict() of the run
    settings_hash: str = ""
    words_hash: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    state: str = RUNNING  # DONE | FAILED
    reason: str | None = None  # a failure's short cause (ClipError.reason, "setup", "internal_error"…)
    error: str | None = None  # a failure's one-line message
    traceback: str | None = None  # an unexpected failure's traceback
    warnings: list[str] = field(default_factory=list)
    words_warnings: list[str] = field(default_factory=list)  # the words stage's own, taken back when redone
    outputs: dict[str, str] = field(default_factory=dict)  # stage output → file name in the clip folder
    output_files: dict[str, OutputFile] = field(default_factory=dict)  # file name → size, sha256 at commit
    timings_s: dict[str, float] = field(default_factory=dict)
    media: MediaInfo | None = None
    video: VideoSummary | None = None
    face: FaceSummary | None = None
    flame: FlameSummary | None = None  # the flame backend's fit (face stage), where it ran
    deca: DecaSummary | None = None  # the deca backend (face stage), where it ran
    fan: FanSummary | None = None  # the fan backend (face stage), where it ran
    audio: AudioInfo | None = None
    words: WordsSummary | None = None
    expression: ExpressionSummary | None = None
    kept_previous_outputs: bool = False  # a failed retry recorded beside finished outputs (failure.json)

    @property
    def done(self) -> bool:
        return self.state == DONE

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    def has(self, output: str) -> bool:
        """Whether the clip holds a stage output ("frames", "audio", "words", "expression")."""
        return output in self.outputs

    def fail(self, reason: str, error: str, traceback: str | None = None) -> None:
        self.state, self.reason, self.error, self.traceback = FAILED, reason, error, traceback

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status_schema_version": STATUS_SCHEMA_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "output_files":
                value = {name: asdict(o) for name, o in value.items()}
            elif hasattr(value, "to_dict"):  # labels, media, audio, words: their own JSON form
                value = value.to_dict()
            elif is_dataclass(value):
                value = asdict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipStatus:
        """The record of a status.json (fields it lacks keep their defaults; unknown ones are dropped)."""
        parts = {
            "source": SourceRecord,
            "media": MediaInfo,
            "video": VideoSummary,
            "face": FaceSummary,
            "flame": FlameSummary,
            "deca": DecaSummary,
            "fan": FanSummary,
            "expression": ExpressionSummary,
            "words": WordsSummary,
        }
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in names:
                continue
            if key in parts and value is not None:
                if not isinstance(value, dict):
                    raise ValueError(f"{key}: expected a mapping")
                value = record_from_dict(parts[key], value)
            elif key == "labels":
                value = ClipLabels.from_dict(value)
            elif key == "audio" and isinstance(value, dict):
                value = AudioInfo.from_dict(value)
            elif key == "output_files" and isinstance(value, dict):
                value = {name: OutputFile(int(o["size"]), str(o["sha256"])) for name, o in value.items()}
            values[key] = value
        return cls(**values)


def clips_dir(out_dir: Path) -> Path:
    return out_dir / "clips"


def staging_dir(out_dir: Path) -> Path:
    return out_dir / ".staging"


def clip_dir(out_dir: Path, clip_id: str) -> Path:
    return clips_dir(out_dir) / clip_id


def read_status(path: Path) -> ClipStatus | None:
    """The status in ``path`` (a clip folder or a status.json), or None if absent or unreadable."""
    file = path / STATUS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("status_schema_version") != STATUS_SCHEMA_VERSION:
        return None
    try:
        return ClipStatus.from_dict(data)
    except (TypeError, ValueError, KeyError):  # a status.json edited into another shape
        return None


def output_checksums(clip_path: Path, outputs: dict[str, str]) -> dict[str, OutputFile]:
    """file name → size and sha256 of each output, recorded in the status when a clip is committed."""
    checksums = {}
    for name in outputs.values():
        path = clip_path / name
        checksums[name] = OutputFile(path.stat().st_size, sha256_file(path))
    return checksums


def damaged_outputs(clip_path: Path, status: ClipStatus, *, verify_hash: bool = False) -> list[str]:
    """What is wrong with the outputs a finished clip's status lists ([] when all are intact).

    Always checks that each file exists with the size recorded at commit time (cheap); with
    ``verify_hash`` also its sha256. Statuses written before checksums were recorded get the
    existence check only.
    """
    problems = []
    for name in status.outputs.values():
        path = clip_path / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        expected = status.output_files.get(name)
        if expected is None:
            continue
        if size != expected.size:
            problems.append(f"{name} has {size} bytes, {expected.size} when it was written")
        elif verify_hash and sha256_file(path) != expected.sha256:
            problems.append(f"{name} has changed since it was written (sha256 differs)")
    return problems


def iter_statuses(out_dir: Path) -> list[ClipStatus]:
    """Every readable clip status under an extraction folder, sorted by clip id."""
    base = clips_dir(out_dir)
    if not base.is_dir():
        return []
    found = []
    for child in sorted(base.iterdir()):
        status = read_status(child) if child.is_dir() else None
        if status is not None:
            found.append(status)
    return found
