"""Classification metrics from predictions, computed the same way for both arms (numpy/sklearn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, top_k_accuracy_score

ECE_BINS = 15  # equal-width confidence bins (Guo et al. 2017)


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


def top_k_accuracy(y_true: np.ndarray, probabilities: np.ndarray, k: int = 5) -> float:
    """Fraction of images whose class is among the ``k`` most probable (1.0 when k >= classes)."""
    n_classes = probabilities.shape[1]
    if k >= n_classes:
        return 1.0
    labels = np.arange(n_classes)
    return float(top_k_accuracy_score(y_true, probabilities, k=k, labels=labels))


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list:
    """Recall of each class (``None`` for a class with no images)."""
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))
    support = cm.sum(axis=1)
    return [float(cm[c, c] / support[c]) if support[c] else None for c in range(num_classes)]


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Top-label ECE: the image-weighted mean |accuracy - confidence| over equal-width bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    # bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in np.unique(which):
        sel = which == b
        ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def classification_report(
    y_true: np.ndarray, probabilities: np.ndarray, loss: float, num_classes: int
) -> dict:
    """The metrics fwbench records for an evaluation from its class probabilities.

    Loss, top-1 and top-5 accuracy, macro-F1, per-class accuracy, expected calibration error.
    """
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    return {
        "loss": float(loss),
        "accuracy": accuracy(y_true, y_pred),
        "top5_accuracy": top_k_accuracy(y_true, probabilities, 5),
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "per_class_accuracy": per_class_accuracy(y_true, y_pred, num_classes),
        "ece": expected_calibration_error(y_true, probabilities),
        "ece_bins": ECE_BINS,
        "n": int(y_true.size),
    }
