"""Open-set figures: ROC curves of similarity scores, equal error rate, TAR at a FAR, thresholds.

A score is a cosine similarity; a pair (or a face and an identity) is accepted when its
score reaches the threshold. "Genuine" scores should be accepted, "impostor" scores
rejected.
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import FaceDataset, select_people
from .cohort import identity_offsets, normalized
from .identity import BEST_SHARE, check_best_share, identity_scores, run_starts, template_sum_norms
from .recognizer import UNKNOWN, FaceRecognizer


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), each (K,), for accepting the scores that reach a threshold.

    ``thresholds`` are +inf (nothing accepted) then every distinct score, decreasing;
    ``fpr[i]`` is the fraction of ``impostor`` scores >= ``thresholds[i]``, ``tpr[i]``
    that of ``genuine`` scores. Both inputs must be non-empty.
    """
    genuine = np.asarray(genuine, dtype=np.float64).ravel()
    impostor = np.asarray(impostor, dtype=np.float64).ravel()
    if not len(genuine) or not len(impostor):
        raise ValueError("a ROC curve needs at least one genuine and one impostor score")
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([genuine, impostor]))[::-1]])
    # Counting scores >= t is a search in the sorted scores from the right end.
    tpr = 1.0 - np.searchsorted(np.sort(genuine), thresholds, side="left") / len(genuine)
    fpr = 1.0 - np.searchsorted(np.sort(impostor), thresholds, side="left") / len(impostor)
    return fpr, tpr, thresholds


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) of a curve from :func:`roc_curve`.

    The EER is where the false rejection rate 1 - tpr meets fpr, interpolated linearly
    between the two points of the curve around the crossing; the threshold is that of
    the first point where fpr >= 1 - tpr.
    """
    fnr = 1.0 - tpr
    i = int(np.argmax(fpr >= fnr))  # fpr rises and fnr falls along the curve, and they end at (1, 0)
    if i == 0:
        return float(fpr[0]), float(thresholds[0])
    # On the segment from point i-1 to i, fpr - fnr goes from negative to >= 0.
    before, after = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    w = before / (before - after)
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1])), float(thresholds[i])


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """The highest true acceptance rate of the curve among its points with fpr <= ``far``."""
    return float(tpr[fpr <= far].max())


# Rows of the score matrix computed at a time: N faces cost 8 * _ROWS * N bytes, not 8 * N * N.
_ROWS = 1024


def _score_rows(embeddings: np.ndarray):
    """(rows, cosines of those rows against all faces) of unit ``embeddings`` (N, d), in blocks of rows."""
    e = np.asarray(embeddings, dtype=np.float64)
    for start in range(0, len(e), _ROWS):
        rows = np.arange(start, min(start + _ROWS, len(e)))
        yield rows, e[rows] @ e.T


def pair_scores(embeddings: np.ndarray, labels: np.ndarray, *,
                offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of all pairs of unit ``embeddings`` (N, d): (genuine, impostor), each 1-D.

    A pair is genuine when both have the same label (N,); each unordered pair counts once,
    in the order of ``np.triu_indices(N, 1)``. With ``offsets`` (N,) (``FaceRecognizer.score_offsets``),
    each pair's cosine less the mean of its two offsets, as ``FaceRecognizer.verify`` scores it.
    """
    labels = np.asarray(labels)
    half = None if offsets is None else 0.5 * _offsets(offsets, len(labels))
    genuine, impostor = [np.zeros(0)], [np.zeros(0)]
    for rows, scores in _score_rows(embeddings):
        if half is not None:
            scores -= half[rows][:, None] + half[None, :]
        later = np.arange(len(labels))[None, :] > rows[:, None]
        same = labels[rows][:, None] == labels[None, :]
        genuine.append(scores[later & same])
        impostor.append(scores[later & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def _offsets(offsets: np.ndarray, n: int) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape != (n,):
        raise ValueError(f"offsets must be one value per face ({n},), got shape {offsets.shape}")
    return offsets


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float, float]:
    """(threshold, false acceptance rate, false rejection rate) of the lowest threshold whose FAR is at most ``far``.

    The lowest such threshold rejects the fewest genuine scores. ``far`` is a fraction in [0, 1).
    """
    if not 0.0 <= far < 1.0:
        raise ValueError(f"far must be a fraction in [0, 1), got {far!r}")
    fpr, tpr, thresholds = roc_curve(genuine, impostor)
    i = int(np.flatnonzero(fpr <= far)[-1])  # fpr rises along the curve and starts at 0
    # A cosine never exceeds 1: "nothing accepted" is stored as 1 rather than infinity.
    return float(min(thresholds[i], 1.0)), float(fpr[i]), float(1.0 - tpr[i])


def curve_points(genuine: np.ndarray, impostor: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` points of the ROC curve, as lists: ``threshold``, ``far``, ``frr``.

    Small enough to keep in a model file; the first point accepts nothing.
    """
    fpr, tpr, thresholds = roc_curve(genuine, impostor)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return {"threshold": [float(min(t, 1.0)) for t in thresholds[keep]], "far": [float(f) for f in fpr[keep]],
            "frr": [float(1.0 - t) for t in tpr[keep]]}


def eer_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float | None:
    """The EER threshold of ``genuine`` and ``impostor`` scores; None unless both are given."""
    if not len(genuine) or not len(impostor):
        return None
    return equal_error_rate(*roc_curve(genuine, impostor))[1]


def identification_scores(embeddings: np.ndarray, labels: np.ndarray, *, gallery: np.ndarray | None = None,
                          gallery_labels: np.ndarray | None = None, best_share: float = BEST_SHARE,
                          offsets: np.ndarray | None = None,
                          gallery_offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the open-set rule on labelled unit ``embeddings`` (N, d), each face left out in turn.

    A face's score for a person is the rule of ``FaceRecognizer.identify``
    (:mod:`~pyface.recognition.identity`) over that person's faces, the best template's
    share of it ``best_share`` (by default that of the models this release trains).
    Genuine: each face's score for its own person, its other faces as templates (people
    with one face give none). Impostor: each face's best score for any other person, and for the people of
    ``gallery`` (M, d), unit templates of yet other people, when given, grouped by
    ``gallery_labels`` (M,) (default: each template a person of its own): a stranger meets
    the whole gallery of a model, and the more people it holds, the likelier one of them
    looks like the stranger. With ``offsets`` (N,) and ``gallery_offsets`` (M,) (both or
    neither; ``FaceRecognizer.score_offsets``), each score is less the mean of the face's
    offset and the person's (the mean of their templates' offsets), as a model that
    normalizes scores identifies. Returns (genuine, impostor), each 1-D, in the order of the faces.
    """
    best_share = check_best_share(best_share)
    labels = np.asarray(labels)
    e = np.asarray(embeddings, dtype=np.float64)
    if gallery is not None and (offsets is None) != (gallery_offsets is None):
        raise ValueError("offsets and gallery_offsets go together")
    offset = np.zeros(len(e)) if offsets is None else _offsets(offsets, len(e))
    order = np.argsort(labels, kind="stable")  # each person's faces contiguous, as the rule needs
    e, labels, offset = e[order], labels[order], offset[order]
    starts = run_starts(labels)
    lengths_of_runs = np.diff(np.r_[starts, len(e)])
    offset_sums = np.add.reduceat(offset, starts) if len(e) else np.zeros(0)
    sums = np.add.reduceat(e, starts, axis=0) if len(e) else np.zeros((0, e.shape[1]))
    norms = template_sum_norms(e, starts)
    person = np.repeat(np.arange(len(starts)), lengths_of_runs)  # each face's run
    others = None
    if gallery is not None and len(gallery):
        others = np.asarray(gallery, dtype=np.float64)
        owners = np.arange(len(others)) if gallery_labels is None else np.asarray(gallery_labels)
        if len(owners) != len(others):
            raise ValueError(f"gallery_labels must have one label per template, got {len(owners)} for {len(others)}")
        grouped = np.argsort(owners, kind="stable")
        others, owners = others[grouped], owners[grouped]
        other_starts = run_starts(owners)
        other_norms = template_sum_norms(others, other_starts)
        other_offsets = (np.zeros(len(other_starts)) if gallery_offsets is None else
                         identity_offsets(_offsets(gallery_offsets, len(others))[grouped], other_starts))
    genuine, impostor = np.full(len(e), -np.inf), np.full(len(e), -np.inf)
    for rows, scores in _score_rows(e):
        own = person[rows]
        scores[np.arange(len(rows)), rows] = -np.inf  # each face left out of its own person's templates
        best = np.maximum.reduceat(scores, starts, axis=1)
        scores[np.arange(len(rows)), rows] = 0.0
        total = np.add.reduceat(scores, starts, axis=1)
        lengths = np.broadcast_to(norms, total.shape).copy()
        lengths[np.arange(len(rows)), own] = np.maximum(np.linalg.norm(sums[own] - e[rows], axis=1), 1e-12)
        per_person = best_share * best + (1.0 - best_share) * total / lengths
        if offsets is not None:  # each person's offset the mean of their templates', the face's own left out
            people_offsets = np.broadcast_to(offset_sums / lengths_of_runs, total.shape).copy()
            people_offsets[np.arange(len(rows)), own] = ((offset_sums[own] - offset[rows])
                                                         / np.maximum(lengths_of_runs[own] - 1, 1))
            per_person = per_person - 0.5 * (offset[rows][:, None] + people_offsets)
        genuine[rows] = per_person[np.arange(len(rows)), own]  # -inf for people with one face
        per_person[np.arange(len(rows)), own] = -np.inf
        impostor[rows] = per_person.max(axis=1)
        if others is not None:
            against = identity_scores(e[rows] @ others.T, other_starts, other_norms, best_share=best_share)
            against = normalized(against, offset[rows], other_offsets)
            impostor[rows] = np.maximum(impostor[rows], against.max(axis=1))
    genuine[order], impostor[order] = genuine.copy(), impostor.copy()
    return genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]


def evaluate_open_set(model: FaceRecognizer, known: FaceDataset, unknown: FaceDataset, *,
                      threshold: float | str | None = None, far: float = 0.01) -> dict:
    """Open-set identification figures of ``model``.

    ``known`` holds faces of identities in the model's gallery (trained or enrolled),
    ``unknown`` faces of nobody it knows. A known face counts as a true acceptance at
    threshold t when its most similar identity is the right one with a score >= t; an
    unknown face is a false acceptance when its best score is >= t.

    Returns ``fpr``, ``tpr``, ``thresholds`` (the ROC curve, as :func:`roc_curve`),
    ``eer`` and ``eer_threshold``, ``tar_at_far`` (the TAR at FAR = ``far``, 1 %),
    and at ``threshold`` (default: the model's) ``open_set_accuracy``: the fraction of
    all faces answered right (known ones named, unknown ones "unknown").
    """
    gallery_names = model.gallery()[0]
    strangers = sorted({unknown.names[k] for k in np.unique(unknown.labels)} & set(gallery_names))
    if strangers:
        raise ValueError(f"the unknown faces include people the model knows: {strangers}")
    named, known_scores = model.identify(known, threshold=-np.inf)
    truth = np.array([known.names[k] for k in known.labels], dtype=str)
    _, unknown_scores = model.identify(unknown, threshold=-np.inf)
    correct = named == truth
    if not correct.any():
        raise ValueError("no known face is identified correctly at any threshold")
    fpr, tpr, thresholds = roc_curve(known_scores[correct], unknown_scores)
    # A misidentified known face is never a true acceptance, whatever the threshold.
    tpr = tpr * correct.mean()
    eer, at_eer = equal_error_rate(fpr, tpr, thresholds)
    limit = model.resolve_threshold(threshold)
    right = (correct & (known_scores >= limit)).sum() + (unknown_scores < limit).sum()
    return {
        "fpr": fpr, "tpr": tpr, "thresholds": thresholds,
        "eer": eer, "eer_threshold": at_eer,
        "tar_at_far": tar_at_far(fpr, tpr, far), "far": far,
        "threshold": limit,
        "open_set_accuracy": float(right / (len(known_scores) + len(unknown_scores))),
        "n_known": int(len(known_scores)), "n_unknown": int(len(unknown_scores)),
    }


__all__ = ["UNKNOWN", "roc_curve", "equal_error_rate", "tar_at_far", "pair_scores", "identification_scores",
           "eer_threshold", "threshold_at_far", "curve_points", "select_people", "evaluate_open_set"]
