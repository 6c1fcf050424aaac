"""Per-frame facial-expression probabilities on the tracked face (the ``labels`` stage of extract)."""

from .classifier import EXPRESSION_NAMES, ExpressionClassifier

__all__ = ["EXPRESSION_NAMES", "ExpressionClassifier"]
