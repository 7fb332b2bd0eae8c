"""Which rows of a face drove a recognizer's decision: input gradients through the kernel.

The score of a person is the network's logit for them (before the softmax; a model with a
descriptor adds the descriptor's fixed view to it, which is not explained here). Its gradient
with respect to every input pixel comes from backpropagation through the LSTM kernel's own
backward pass (:func:`input_gradients`).

The gradient at the image alone measures sensitivity, not contribution: in an LSTM the first
rows of the sequence feed every later state, so their gradients are large whatever they
show. Row importance therefore integrates the gradient along the straight path from a flat
grey image to the face (integrated gradients, Sundararajan et al. 2017): the contribution
of pixel p is ``(x_p - 0.5) * mean over the path of d score / d x_p``, a row's contribution
is the sum over its pixels, and the contributions of all rows add up to the score of the
face minus the score of the grey image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..data.images import read_image
from .recognizer import FaceRecognizer

__all__ = ["BASELINE", "Explanation", "explain", "explanation", "input_gradients", "render"]

BASELINE = 0.5  # the flat grey image contributions are measured from, a pixel value in [0, 1]


def input_gradients(
    model: FaceRecognizer, images: np.ndarray, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of each image's target score with respect to its pixels.

    Parameters
    ----------
    model : FaceRecognizer
    images : (N, S, S), values in [0, 1]
        Preprocessed images, S the model's image size; computed in the network's dtype.
    targets : int (N,) or None
        Score column (index into ``model.names``) to differentiate for each image;
        None means the winning one.

    Returns
    -------
    gradients : (N, S, S), the network's dtype (float32)
        d logit[target] / d pixel, in score units per unit of pixel value.
    logits : (N, n_people), the network's dtype
        The network's scores before the softmax (:meth:`FaceRecognizer.predict_proba` adds the
        descriptor's to them when the model has one).
    """
    images = np.asarray(images)
    n = len(images)

    def one_hot(logits: np.ndarray) -> np.ndarray:
        chosen = logits.argmax(axis=1) if targets is None else np.asarray(targets, dtype=np.int64)
        if chosen.shape != (n,) or chosen.min(initial=0) < 0 or chosen.max(initial=0) >= len(model.names):
            raise ValueError(f"targets must be {n} indices into the {len(model.names)} names")
        dlogits = np.zeros_like(logits)
        dlogits[np.arange(n), chosen] = 1.0
        return dlogits

    return model.network.image_gradients(images, one_hot)


@dataclass(frozen=True)
class Explanation:
    """Why a recognizer named the person it named in one image.

    Attributes
    ----------
    face : float32 (S, S), values in [0, 1]
        The preprocessed image, as the network read it.
    person : str
        The person whose score is explained (the winner unless chosen).
    probability : float
        The model's probability of ``person`` for this image, in [0, 1].
    attribution : float32 (S, S)
        Each pixel's contribution to the score of ``person``, in score (logit) units.
    score, baseline_score : float
        Score of ``person`` for the face and for the flat grey image; ``attribution`` sums
        to their difference up to the integration error.
    """

    face: np.ndarray
    person: str
    probability: float
    attribution: np.ndarray
    score: float
    baseline_score: float

    @property
    def row_contribution(self) -> np.ndarray:
        """float32 (S,): each row's signed contribution to the score, top row first."""
        return self.attribution.sum(axis=1, dtype=np.float64).astype(np.float32)

    @property
    def row_importance(self) -> np.ndarray:
        """float32 (S,): size of each row's contribution, ``abs(row_contribution)``."""
        return np.abs(self.row_contribution)


def _load(image) -> np.ndarray:
    return read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)


def explanation(model: FaceRecognizer, image, *, person: str | None = None, steps: int = 32) -> Explanation:
    """Explain the model's decision on one image.

    Parameters
    ----------
    model : FaceRecognizer
    image : path or ndarray
        An image file, or a raw image (grey (H, W) or BGR colour (H, W, 3), uint8,
        uint16 or float in [0, 1]); it goes through the model's preprocessing.
    person : str or None
        Explain this person's score instead of the winner's.
    steps : int
        Points on the path from grey to the face at which the gradient is taken (one
        batch through the kernel); more is more exact.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    raw = _load(image)
    face = model.preprocessor(raw)
    logits, _ = model.network.forward(face[None])
    # The model's answer, with its descriptor's view when it has one; the attribution is of the
    # network's share of it (the descriptor's histograms are fixed, not learnt).
    proba = model.predict_proba(raw)[0]
    if person is None:
        k = int(proba.argmax())
    elif person in model.names:
        k = model.names.index(person)
    else:
        raise ValueError(f"the model does not know {person!r}; it knows {', '.join(model.names)}")
    # Midpoints of `steps` equal pieces of the path: the midpoint rule for the integral.
    alphas = ((np.arange(steps) + 0.5) / steps).astype(face.dtype)[:, None, None]
    path = BASELINE + alphas * (face - BASELINE)
    gradients, _ = input_gradients(model, path, np.full(steps, k))
    attribution = (face - BASELINE) * gradients.mean(axis=0)
    baseline_logits, _ = model.network.forward(np.full((1, *face.shape), BASELINE, dtype=face.dtype))
    probability = float(proba[k])
    return Explanation(face=face, person=model.names[k], probability=probability,
                       attribution=attribution.astype(np.float32), score=float(logits[0, k]),
                       baseline_score=float(baseline_logits[0, k]))


def explain(model: FaceRecognizer, image, *, person: str | None = None, steps: int = 32) -> np.ndarray:
    """Per-row importance for the model's decision on one image.

    Returns
    -------
    ndarray, float32, shape (S,)
        For each row of the preprocessed image (top to bottom), the size of its
        contribution to the winning person's score (or ``person``'s), in score units;
        see the module documentation, and :func:`explanation` for the arguments.
    """
    return explanation(model, image, person=person, steps=steps).row_importance


def render(result: Explanation, *, scale: int = 4) -> np.ndarray:
    """Picture of an explanation: the face, the face tinted row by row by importance, a bar per row.

    Returns
    -------
    ndarray, uint8, shape (S * scale + 44, 2 * S * scale + 108, 3)
        BGR image, ready for ``cv2.imwrite``. Hot colours mark the rows that mattered most;
        the colour scale is relative to the image's most important row.
    """
    importance = result.row_importance
    weight = importance / importance.max() if importance.max() > 0 else np.zeros_like(importance)
    S = len(importance)
    side, gap, bar_width, title, footer = S * scale, 4, 100, 24, 20
    grey = cv2.resize(np.rint(result.face * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    face = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    colours = cv2.applyColorMap(np.rint(weight * 255).astype(np.uint8)[:, None], cv2.COLORMAP_INFERNO)[:, 0]
    rows_colour = np.repeat(colours.astype(np.float32), scale, axis=0)[:, None, :]
    alpha = np.repeat(0.1 + 0.5 * weight, scale)[:, None, None]
    heat = np.clip((1 - alpha) * face + alpha * rows_colour, 0, 255).astype(np.uint8)

    canvas = np.full((title + side + footer, 2 * side + 2 * gap + bar_width, 3), 255, dtype=np.uint8)
    canvas[title : title + side, :side] = face
    canvas[title : title + side, side + gap : 2 * side + gap] = heat
    left = 2 * (side + gap)
    for r in range(S):
        length = int(round(weight[r] * (bar_width - 4)))
        top = title + r * scale
        cv2.rectangle(canvas, (left, top), (left + length, top + scale - 1), colours[r].tolist(), -1)

    def text(words: str, x: int, y: int, size: float, colour=(0, 0, 0)) -> None:
        cv2.putText(canvas, words, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, colour, 1, cv2.LINE_AA)

    text(f"{result.person}  {100 * result.probability:.1f}%", 4, title - 7, 0.5)
    text("rows that drove it", side + gap + 4, title - 7, 0.4)
    text("importance", left, title - 7, 0.4)
    text("importance: each row's share of the score (integrated gradients)", 4, title + side + 14, 0.38,
         (80, 80, 80))
    return canvas
