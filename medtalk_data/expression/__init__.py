"""Per-frame facial-expression probabilities on the tracked face (fer's FER2013 TFLite model on LiteRT).

``run_expression_stage`` (in :mod:`.stage`) writes a clip's ``expression.parquet``; the classifier
and the crop are usable on their own.
"""

from .classifier import EXPRESSION_NAMES, ExpressionClassifier

__all__ = ["EXPRESSION_NAMES", "ExpressionClassifier"]
