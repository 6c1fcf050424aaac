"""The models of extract's stages (face backends, expression classifier, words stage), each made on first
use in a worker process and kept for every clip it extracts."""

from __future__ import annotations

from typing import Any

from ..settings import ExtractSettings

_MODELS: dict[str, Any] = {}


def cached(key: str, make: Any) -> Any:
    """Models loaded once per worker process and reused for every clip it extracts."""
    if key not in _MODELS:
        _MODELS[key] = make()
    return _MODELS[key]


def face_backends(settings: ExtractSettings) -> Any:
    """The backends the settings name beside MediaPipe, each loaded once per worker process."""
    from ..face.stage import FaceBackends

    chosen = settings.face.backends
    return FaceBackends(
        flame=flame_setup(settings) if "flame" in chosen else None,
        deca=deca_encoder(settings) if "deca" in chosen else None,
        fan=fan_landmarker(settings) if "fan" in chosen else None,
    )


def flame_setup(settings: ExtractSettings) -> Any:
    """The user's FLAME model and embedding, read and checked once per worker process."""
    from ..face.flame.embedding import find_embedding_path
    from ..face.flame.fitter import load_setup
    from ..face.flame.model_file import find_model_path

    fs = settings.face.flame
    files = f"{find_model_path(fs.model_path).resolve()}:{find_embedding_path(fs.embedding_path).resolve()}"
    key = f"flame:{files}:{fs.version}:{fs.landmarks}:{fs.n_shape}:{fs.n_expression}:{fs.device}"
    setup = cached(key, lambda: load_setup(fs))
    setup.settings = fs  # the fitting weights may differ between runs that share a model
    return setup


def deca_encoder(settings: ExtractSettings) -> Any:
    """DECA's encoder with the user's weights, loaded once per worker process."""
    from ..face.deca.encoder import DecaEncoder, find_deca_path

    ds = settings.face.deca
    key = f"deca:{find_deca_path(ds.model_path).resolve()}:{ds.device}"
    return cached(key, lambda: DecaEncoder(ds.model_path, ds.device))


def fan_landmarker(settings: ExtractSettings) -> Any:
    """face-alignment's FAN with the user's weights, loaded once per worker process."""
    from ..face.fan.landmarker import FanLandmarker, find_fan_path

    fs = settings.face.fan
    files = str(find_fan_path(fs.model_path, fs.landmarks).resolve())
    if fs.landmarks == "3D":
        files += ":" + str(find_fan_path(fs.depth_model_path, "depth").resolve())
    return cached(f"fan:{fs.landmarks}:{files}:{fs.device}", lambda: FanLandmarker(fs))


def new_classifier() -> Any:
    from ..expression.classifier import ExpressionClassifier

    return ExpressionClassifier()


def words_stage(settings: ExtractSettings) -> Any:
    """The words stage (its ASR and aligner models) for these words settings. Where it runs beside the
    face stage (extract/sound.py), its aligner runs in a child process, which keeps the face stage going."""
    from ..settings import Stage
    from ..words.stage import WordsStage

    apart = Stage.FACE in settings.stages and Stage.WORDS in settings.stages
    return cached(f"words:{settings.words}:{apart}", lambda: WordsStage(settings.words, aligner_apart=apart))
