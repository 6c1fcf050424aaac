"""Per-frame facial-expression probabilities on the tracked face (fer's FER2013 TFLite model on LiteRT).

:class:`.stage.ExpressionObserver` classifies inside the face stage's frame loop and writes a clip's
``expression.parquet``; the classifier and the crop are usable on their own.
"""

from .classifier import EXPRESSION_NAMES, ExpressionClassifier

__all__ = ["EXPRESSION_NAMES", "ExpressionClassifier"]
