"""Per-person precision and recall and the ranking of confusions, from a recognizer's evaluation."""

from __future__ import annotations

import numpy as np

from ..data.dataset import FaceDataset
from .recognizer import FaceRecognizer

__all__ = ["classification_report"]


def classification_report(model: FaceRecognizer, dataset: FaceDataset, *, batch_size: int = 256) -> dict:
    """How well ``model`` names the people of the labelled ``dataset``, as plain (JSON-ready) data.

    Every person of ``dataset`` must be one of ``model.names``. Returns a dict with

    - ``accuracy`` (fraction in [0, 1]; NaN for no images), ``correct`` and ``images`` (counts)
      and ``loss`` (mean cross-entropy), as :meth:`FaceRecognizer.evaluate` measures them;
    - ``people``: per person shown or predicted at least once, in ``model.names`` order,
      ``{"name", "images", "precision", "recall"}``; precision and recall are fractions, None
      when undefined (never predicted, never shown);
    - ``confusions``: ``{"true", "predicted", "images"}`` for every pair of different people
      with at least one image taken for the other, most images first;
    - ``names`` and ``confusion_matrix`` (lists): ``confusion_matrix[i][j]`` counts images of
      ``names[i]`` recognised as ``names[j]``.
    """
    result = model.evaluate(dataset, batch_size=batch_size)
    confusion = result["confusion"]
    names = result["names"]
    predicted_as = confusion.sum(axis=0)
    shown = confusion.sum(axis=1)
    people = []
    for k, name in enumerate(names):
        if not shown[k] and not predicted_as[k]:
            continue
        people.append({
            "name": name,
            "images": int(shown[k]),
            "precision": float(confusion[k, k] / predicted_as[k]) if predicted_as[k] else None,
            "recall": float(confusion[k, k] / shown[k]) if shown[k] else None,
        })
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(zip(*np.nonzero(off)), key=lambda ij: (-off[ij], ij))
    confusions = [{"true": names[i], "predicted": names[j], "images": int(off[i, j])} for i, j in pairs]
    return {
        "accuracy": result["accuracy"],
        "correct": int(np.trace(confusion)),
        "images": result["n_images"],
        "loss": result["loss"],
        "people": people,
        "confusions": confusions,
        "names": names,
        "confusion_matrix": confusion.tolist(),
    }
