"""Typed rows and their explicit Arrow schemas (a test checks that the two agree).

Units are in the names (``_s`` seconds, ``_deg`` degrees, ``_cm`` centimetres). Times are float64
seconds on the clip's video time axis (0 = first decoded frame). Paths (``audio_path``,
``reference_image``) are relative to the manifest folder, so a manifest can be moved or copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ..rigs import N_LANDMARKS
from ..words.types import Phone, Word

MANIFEST_SCHEMA_VERSION = 2
SCHEMA_METADATA_KEY = b"medtalk_manifest_schema_version"
N_BLENDSHAPES = 52
N_EXPRESSIONS = 7
AUDIO_DIR = "audio"  # <manifest>/audio/<clip_id>.wav
REFERENCES_DIR = "references"  # <manifest>/references/<clip_id>.jpg

WORD_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("score", pa.float32()),
        ("aligned", pa.bool_()),
    ]
)
PHONE_TYPE = pa.struct(
    [("phone", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("word_index", pa.int32())]
)


@dataclass(frozen=True)
class ClipRow:
    """One clip of a manifest."""

    clip_id: str
    kind: str  # "video" or "audio"
    source_path: str
    source_sha256: str
    dataset: str
    speaker: str
    sex: str | None
    emotion: str | None  # canonical (MEDTalk's seven) or None
    emotion_raw: str | None
    emotion_level: str | None  # the dataset's own level label
    intensity: float | None  # 0..1
    content_id: str | None  # same sentence across emotions
    language: str | None
    transcript: str | None
    words: list[Word] = field(default_factory=list)  # the words stage's records (clip video time)
    phones: list[Phone] = field(default_factory=list)
    fps: float | None = None
    n_frames: int = 0
    duration_s: float = 0.0
    face_found_ratio: float = 0.0
    has_audio: bool = False
    audio_path: str | None = None  # the 16 kHz mono wav, relative to the manifest folder (audio/<clip_id>.wav)
    audio_sha256: str | None = None  # of that wav, to detect a truncated or replaced file
    audio_offset_s: float = 0.0  # audio sample 0 sits here on the video time axis
    rig: str | None = None  # channel set of the frames' curves: "mediapipe52" or "metahuman174"
    rig_curves_path: str | None = None  # ground-truth rig file from the dataset, if any
    split: str = "train"
    extractor: str = ""
    extractor_version: str = ""
    extraction_dir: str = ""  # provenance only: no reader of the manifest needs the extraction folder
    frame_width: int | None = None  # upright video size in pixels (landmark x, y are normalised by it)
    frame_height: int | None = None
    reference_frame: int | None = None  # the clip's most intense frame (Int(x) over the intensity channels)
    reference_image: str | None = None  # that frame as a JPEG, relative to the manifest folder
    words_aligner: str | None = None  # what timed the words: pocketsphinx | faster-whisper (ASR only) | whisperx
    language_probability: float | None = None  # Whisper's confidence where it detected the language


CLIP_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("kind", pa.string()),
        ("source_path", pa.string()),
        ("source_sha256", pa.string()),
        ("dataset", pa.string()),
        ("speaker", pa.string()),
        ("sex", pa.string()),
        ("emotion", pa.string()),
        ("emotion_raw", pa.string()),
        ("emotion_level", pa.string()),
        ("intensity", pa.float32()),
        ("content_id", pa.string()),
        ("language", pa.string()),
        ("transcript", pa.string()),
        ("words", pa.list_(WORD_TYPE)),
        ("phones", pa.list_(PHONE_TYPE)),
        ("fps", pa.float64()),
        ("n_frames", pa.int32()),
        ("duration_s", pa.float64()),
        ("face_found_ratio", pa.float32()),
        ("has_audio", pa.bool_()),
        ("audio_path", pa.string()),
        ("audio_sha256", pa.string()),
        ("audio_offset_s", pa.float64()),
        ("rig", pa.string()),
        ("rig_curves_path", pa.string()),
        ("split", pa.string()),
        ("extractor", pa.string()),
        ("extractor_version", pa.string()),
        ("extraction_dir", pa.string()),
        ("frame_width", pa.int32()),
        ("frame_height", pa.int32()),
        ("reference_frame", pa.int32()),
        ("reference_image", pa.string()),
        ("words_aligner", pa.string()),
        ("language_probability", pa.float32()),
    ]
)
# Added within schema 2: manifests built before them still read (the rows get None).
OPTIONAL_CLIP_COLUMNS = ("words_aligner", "language_probability")

LANDMARKS_FIELD = pa.field("landmarks", pa.list_(pa.float32(), N_LANDMARKS * 3))
BLENDSHAPES_FIELD = pa.field("blendshapes", pa.list_(pa.float32(), N_BLENDSHAPES))


def frame_schema(n_channels: int, landmarks: bool = False, blendshapes: bool = False) -> pa.Schema:
    """Per-frame table: ``curves`` has one value per channel of the manifest's rig (manifest.json names them).

    ``blendshapes`` (the fitter's 52 scores) is stored only when the curves are another rig's; with the
    mediapipe52 rig the curves are those scores."""
    fields = [
        ("clip_id", pa.string()),
        ("frame_index", pa.int32()),
        ("time_s", pa.float64()),
        ("face_found", pa.bool_()),
        ("interpolated", pa.bool_()),
        ("curves", pa.list_(pa.float32(), n_channels)),
        ("head_rotation_deg", pa.list_(pa.float32(), 3)),
        ("head_translation_cm", pa.list_(pa.float32(), 3)),
        ("expression_probs", pa.list_(pa.float32(), N_EXPRESSIONS)),
    ]
    schema = pa.schema(fields)
    if blendshapes:
        schema = schema.append(BLENDSHAPES_FIELD)
    return schema.append(LANDMARKS_FIELD) if landmarks else schema


FRAME_SCHEMA = frame_schema(N_BLENDSHAPES)

EXCLUDED_SCHEMA = pa.schema([("clip_id", pa.string()), ("source_path", pa.string()), ("reason", pa.string())])


def with_version(schema: pa.Schema, extra: dict[bytes, bytes] | None = None) -> pa.Schema:
    """The schema with the manifest version in its Parquet metadata."""
    meta = {SCHEMA_METADATA_KEY: str(MANIFEST_SCHEMA_VERSION).encode(), **(extra or {})}
    return schema.with_metadata(meta)
