"""What a freshly trained network needs for the open set: its people's templates and default thresholds."""

from __future__ import annotations

import numpy as np

from ..nn.network import Network
from .open_set import eer_threshold, identification_scores, pair_scores
from .recognizer import embed_images

__all__ = ["open_set_reference"]

# Faces the default thresholds are measured on, at most (2 million pairs for verification).
THRESHOLD_FACES = 2000


def _finite_rows(embedded: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(embedded).all(axis=1)
    return embedded[finite], labels[finite]


def open_set_reference(network: Network, train: tuple[np.ndarray, np.ndarray],
                       validation: tuple[np.ndarray, np.ndarray]) -> dict:
    """The trained people's templates and the default cosine thresholds, as ``FaceRecognizer`` keywords.

    ``train`` and ``validation`` are (preprocessed images, labels). The templates are the
    unit embeddings of the training images, with their labels. Faces whose embedding is
    not finite (weights on the way to diverging) are left out. Both thresholds are
    equal-error-rate thresholds, measured on the validation images when they show at
    least two people, else on the training images (a fixed sample of ``THRESHOLD_FACES``
    of them when there are more): ``threshold`` of the open-set rule with each image left
    out of the gallery in turn (:func:`~pyface.recognition.open_set.identification_scores`),
    ``verify_threshold`` of all pairs of images.
    """
    (x_train, y_train), (x_val, y_val) = train, validation
    embedded, labels = _finite_rows(embed_images(network, x_train), y_train)
    reference = {"templates": embedded, "template_labels": labels} if len(labels) else {}
    if len(np.unique(y_val)) > 1:
        embedded, labels = _finite_rows(embed_images(network, x_val), y_val)
    if len(labels) > THRESHOLD_FACES:
        # All pairs of N faces are N^2/2 scores: a fixed sample bounds the memory and time.
        keep = np.sort(np.random.default_rng(0).choice(len(labels), THRESHOLD_FACES, replace=False))
        embedded, labels = embedded[keep], labels[keep]
    return {**reference,
            "threshold": eer_threshold(*identification_scores(embedded, labels)),
            "verify_threshold": eer_threshold(*pair_scores(embedded, labels))}
