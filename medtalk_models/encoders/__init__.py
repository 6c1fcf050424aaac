"""Frozen feature backbones of MEDTalk: audio, text and reference-image encoders (no training here).

Build them from plain config mappings; every model loads from local files only (nothing is downloaded):

- audio (:func:`build_audio_extractor`): ``{"kind": "whisper", "model": None | dir, "device": "cpu"}``
  (bundled Whisper tiny.en, 50 Hz × 384), ``{"kind": "hf", "path": dir, "layer": "last" | int}``
  (wav2vec2 / HuBERT / WavLM, 50 Hz) or ``{"kind": "logmel", "n_mels": 80, "hop_ms": 10.0}`` (100 Hz);
  frame ``i`` of every extractor is centred at ``(i + 0.5) / rate_hz`` seconds.
- text (:func:`build_text_encoder`): ``minilm`` (bundled all-MiniLM-L6-v2, 384-d), ``hf``, ``clip``, ``none``.
- image (:func:`build_image_encoder`): ``blendshapes`` (bundled MediaPipe FaceLandmarker, 52 scores) or ``clip``.

``cache_key()`` names the features for a feature cache: it changes when weights, layer or parameters do.
Heavy libraries (torch, transformers, faster-whisper, mediapipe) are imported only when an encoder is built.
"""

from ._common import FEATURES_VERSION, MODELS_EXTRA
from .audio import (
    AUDIO_KINDS,
    AudioFeatureExtractor,
    HFAudioExtractor,
    LogMelExtractor,
    WhisperExtractor,
    build_audio_extractor,
)
from .image import (
    IMAGE_KINDS,
    BlendshapeImageEncoder,
    CLIPImageEncoder,
    ImageEncoder,
    build_image_encoder,
    read_image,
)
from .text import (
    TEXT_KINDS,
    CLIPTextEncoder,
    HFTextEncoder,
    NullTextEncoder,
    TextEncoder,
    build_text_encoder,
)

__all__ = [
    "AUDIO_KINDS",
    "FEATURES_VERSION",
    "IMAGE_KINDS",
    "MODELS_EXTRA",
    "TEXT_KINDS",
    "AudioFeatureExtractor",
    "BlendshapeImageEncoder",
    "CLIPImageEncoder",
    "CLIPTextEncoder",
    "HFAudioExtractor",
    "HFTextEncoder",
    "ImageEncoder",
    "LogMelExtractor",
    "NullTextEncoder",
    "TextEncoder",
    "WhisperExtractor",
    "build_audio_extractor",
    "build_image_encoder",
    "build_text_encoder",
    "read_image",
]
