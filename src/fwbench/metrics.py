"""Classification metrics from predictions, computed the same way for both arms (numpy/sklearn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if y_true.size else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 over all ``num_classes`` classes (absent classes score 0)."""
    return float(
        f1_score(y_true, y_pred, labels=np.arange(num_classes), average="macro", zero_division=0)
    )


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list[list[int]]:
    """Confusion matrix, rows = true class, columns = predicted class."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)).tolist()


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, loss: float, num_classes: int
) -> dict:
    """The metrics fwbench records for an evaluation: loss, accuracy, macro-F1."""
    return {
        "loss": float(loss),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "n": int(np.asarray(y_true).size),
    }
