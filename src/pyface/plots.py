"""Training curves and confusion matrices as PNG files, with matplotlib (the ``plot`` extra).

matplotlib is imported only when a plot is drawn, and figures are drawn on its Agg canvas
directly: no display is needed and pyplot's global backend is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["MISSING_MESSAGE", "matplotlib_available", "save_training_curves", "save_confusion_matrix",
           "save_roc_curve"]

MISSING_MESSAGE = "matplotlib is not installed, so no plots were drawn (pip install 'pyface[plot]')"


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MESSAGE) from exc
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_training_curves(history: dict, path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, training and (when recorded) validation, side by side.

    ``history`` is :attr:`FaceRecognizer.history`: lists ``epoch``, ``loss``, ``accuracy``
    and possibly ``val_loss``, ``val_accuracy`` (accuracies as fractions in [0, 1]).
    """
    figure = _figure(8, 3.2)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = history["epoch"]
    loss_axes.plot(epochs, history["loss"], label="training")
    accuracy_axes.plot(epochs, 100 * np.asarray(history["accuracy"]), label="training")
    if history.get("val_loss"):
        loss_axes.plot(epochs[: len(history["val_loss"])], history["val_loss"], label="validation")
        accuracy_axes.plot(epochs[: len(history["val_accuracy"])], 100 * np.asarray(history["val_accuracy"]),
                           label="validation")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="Loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 100))
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.savefig(os.fspath(path))


def save_confusion_matrix(confusion: np.ndarray, names: Sequence[str], path: str | os.PathLike,
                          *, title: str = "Confusion matrix") -> None:
    """Counts of images of each true person (rows) recognised as each person (columns).

    ``confusion`` is int (C, C), ``names`` the C people in the same order, as returned by
    :meth:`FaceRecognizer.evaluate`. Names are written on the axes up to 50 people.
    """
    confusion = np.asarray(confusion)
    C = len(names)
    side = min(10.0, 3.0 + 0.17 * C)
    figure = _figure(side + 1.0, side)
    axes = figure.subplots()
    shown = axes.imshow(confusion, cmap="Blues", interpolation="nearest")
    from matplotlib.ticker import MaxNLocator

    figure.colorbar(shown, ax=axes, shrink=0.8, label="images", ticks=MaxNLocator(integer=True))
    axes.set(xlabel="recognised as", ylabel="true person", title=title)
    if C <= 50:
        fontsize = 8 if C <= 20 else 5
        axes.set_xticks(range(C), names, rotation=90, fontsize=fontsize)
        axes.set_yticks(range(C), names, fontsize=fontsize)
    if C <= 20:
        threshold = confusion.max() / 2
        for i, j in zip(*np.nonzero(confusion)):
            colour = "white" if confusion[i, j] > threshold else "black"
            axes.text(j, i, str(confusion[i, j]), ha="center", va="center", color=colour, fontsize=8)
    figure.savefig(os.fspath(path))


def save_roc_curve(fpr: np.ndarray, tpr: np.ndarray, path: str | os.PathLike, *, eer: float | None = None,
                   title: str = "ROC") -> None:
    """True against false acceptance rate (fractions (K,) as from :func:`pyface.open_set.roc_curve`), in %.

    The false acceptance axis is logarithmic, where verification is judged; ``eer``
    (a fraction) is marked on the curve's equal-error line.
    """
    figure = _figure(4.8, 4)
    axes = figure.subplots()
    # A log axis cannot show 0: the first points sit at a tenth of the smallest non-zero rate.
    floor = 0.1 * (fpr[fpr > 0].min() if (fpr > 0).any() else 1.0)
    axes.plot(100 * np.maximum(fpr, floor), 100 * tpr, drawstyle="steps-post")
    if eer is not None:
        axes.plot([100 * eer], [100 * (1 - eer)], "o", label=f"EER {100 * eer:.1f}%")
        axes.legend(loc="lower right")
    axes.set(xscale="log", xlabel="false acceptance rate (%)", ylabel="true acceptance rate (%)",
             title=title, ylim=(0, 101))
    axes.grid(alpha=0.3, which="both")
    figure.savefig(os.fspath(path))
