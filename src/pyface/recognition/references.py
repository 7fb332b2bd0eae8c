"""What a freshly trained network needs for the open set: its people's templates and default thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..nn.network import Network
from .cohort import NEAREST, cohort_means, cohort_offsets
from .descriptor import FaceDescriptor
from .identity import BEST_SHARE
from .open_set import (curve_points, eer_threshold, equal_error_rate, identification_scores, pair_scores,
                       roc_curve, threshold_at_far)
from .recognizer import embed_images

__all__ = ["open_set_reference", "calibrated_descriptor", "DEFAULT_FAR", "DESCRIPTOR_WEIGHTS"]

# Faces the default thresholds are measured on, at most (2 million pairs for verification).
THRESHOLD_FACES = 2000
# The share of strangers the default thresholds let in, on the faces they are measured on.
DEFAULT_FAR = 0.01
# The descriptor's shares of the joined cosine tried on people kept out of training. Where the
# network has learnt faces well (ORL) a small share is best, where it has not (LFW) a large
# one: on ORL's unseen people "hog+lbp" at 0.2 / 0.4 / 0.6 / 0.8 gave EER 6.8 / 7.8 / 10.0 /
# 12.7 % (seed 0), on LFW's held-out people 0.4 / 0.6 / 0.8 / 0.9 gave 21.0 / 19.2 / 18.6 / 18.9 %
# (docs/experiments.md, "A stronger second view").
DESCRIPTOR_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _finite_rows(embedded: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(embedded).all(axis=1)
    return embedded[finite], labels[finite]


def _people(labels: np.ndarray) -> int:
    """People with at least two faces: what leave-one-out scores need."""
    _, counts = np.unique(labels, return_counts=True)
    return int((counts >= 2).sum())


def _sample(*rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """At most ``THRESHOLD_FACES`` of the faces, a fixed sample, of each of ``rows`` (arrays of one
    row per face): all pairs of N faces are N^2/2 scores, and the sample bounds their memory and time."""
    if len(rows[0]) <= THRESHOLD_FACES:
        return rows
    keep = np.sort(np.random.default_rng(0).choice(len(rows[0]), THRESHOLD_FACES, replace=False))
    return tuple(part[keep] for part in rows)


def _candidates(descriptor: FaceDescriptor | Sequence[FaceDescriptor] | None) -> list[FaceDescriptor]:
    return [] if descriptor is None else [descriptor] if isinstance(descriptor, FaceDescriptor) else list(descriptor)


def calibrated_descriptor(network: Network, descriptor: FaceDescriptor | Sequence[FaceDescriptor],
                          calibration: tuple[np.ndarray, np.ndarray]) -> tuple[FaceDescriptor, dict | None]:
    """(``descriptor``, or the one of several, with the share of the joined cosine, one of
    ``DESCRIPTOR_WEIGHTS``, that gives the lowest equal error rate over all pairs of faces of
    ``calibration``, the curve it was chosen from: {"kind": [...], "share": [...], "eer": [...]},
    a row for each descriptor and share).

    ``calibration`` are people kept out of training (preprocessed images, labels); when they
    are not two people with two faces each, the (first) descriptor is returned unchanged with
    no curve. A tie goes to the first descriptor and the smaller share. The cosine of two joined
    embeddings is a weighted sum of the two parts' cosines, so each part's pair scores are
    computed once."""
    images, labels = calibration
    candidates = _candidates(descriptor)
    views = [candidate.transform(images) for candidate in candidates]
    chosen, _, curve = _chosen_share(candidates, embed_images(network, images), views, labels)
    return chosen, curve


def _chosen_share(candidates: list[FaceDescriptor], network_rows: np.ndarray, views: list[np.ndarray],
                  labels: np.ndarray) -> tuple[FaceDescriptor, int, dict | None]:
    """:func:`calibrated_descriptor`, and which of the candidates it chose, from the kept-out
    faces' network embeddings and each candidate's views of them."""
    finite = np.isfinite(network_rows).all(axis=1)  # weights on the way to diverging
    network_rows, labels, *views = _sample(network_rows[finite], labels[finite], *(v[finite] for v in views))
    if _people(labels) < 2:
        return candidates[0], 0, None
    net_genuine, net_impostor = pair_scores(network_rows, labels)
    curve = {"kind": [], "share": [], "eer": []}
    for candidate, own in zip(candidates, views):
        own_genuine, own_impostor = pair_scores(own, labels)
        for weight in DESCRIPTOR_WEIGHTS:
            scores = roc_curve((1 - weight) * net_genuine + weight * own_genuine,
                               (1 - weight) * net_impostor + weight * own_impostor)
            curve["kind"].append(candidate.kind)
            curve["share"].append(weight)
            curve["eer"].append(equal_error_rate(*scores)[0])
    best = int(np.argmin(curve["eer"]))
    chosen = best // len(DESCRIPTOR_WEIGHTS)
    return replace(candidates[chosen], weight=curve["share"][best]), chosen, curve


def _threshold(scores: tuple[np.ndarray, np.ndarray], target_far: float, trusted: bool) -> tuple[float, float, float]:
    """(threshold, FAR, FRR) at ``target_far``; on faces the network was trained on, never below the EER's.

    Trained people's faces lie further apart than strangers' do, so a threshold set for 1 %
    of them lets in far more strangers (55 of 90 on ORL); the equal-error threshold of the
    same scores is the stricter floor that keeps such a model from being more lenient than
    the thresholds of earlier versions.
    """
    threshold, far, frr = threshold_at_far(*scores, target_far)
    if not trusted:
        floor = eer_threshold(*scores)
        if floor is not None and floor > threshold:
            genuine, impostor = scores
            threshold = floor
            far, frr = float(np.mean(impostor >= floor)), float(np.mean(genuine < floor))
    return threshold, far, frr


def open_set_reference(network: Network, train: tuple[np.ndarray, np.ndarray],
                       validation: tuple[np.ndarray, np.ndarray], *,
                       calibration: tuple[np.ndarray, np.ndarray] | None = None,
                       descriptor: FaceDescriptor | Sequence[FaceDescriptor] | None = None,
                       target_far: float = DEFAULT_FAR) -> dict:
    """The trained people's templates, the default thresholds, the descriptor, the open-set rule
    the thresholds are set for (``best_share``) and the cohort scores are normalized against
    (``cohort``, ``cohort_nearest``, when chosen), as ``FaceRecognizer`` keywords.

    ``train``, ``validation`` and ``calibration`` are (preprocessed images, labels). With
    ``calibration`` people, ``descriptor``'s share of the joined cosine is chosen on them
    first, and of several descriptors the one that verifies them best
    (:func:`calibrated_descriptor`); without, the first is kept at its share. The templates
    are the unit embeddings of the training images (joined with the descriptor's view of
    them when there is one), with their labels; faces whose embedding is not finite (weights
    on the way to diverging) are left out.

    Both thresholds let in a share ``target_far`` of strangers on the faces they are
    measured on (on faces the network was trained on, never less strict than their equal
    error rate): ``calibration``, people kept out of training, when given (what strangers
    at a door are); else the validation images when they show two people, else the
    training images, which the network has learnt to tell apart and so make a lower,
    more lenient threshold. ``threshold`` is that of the open-set rule, each face left out
    of the gallery in turn (:func:`~pyface.recognition.open_set.identification_scores`;
    kept-out people are also compared with every trained person, as strangers are),
    ``verify_threshold`` that of all pairs of faces. ``calibration`` (the key) records
    where they were measured, their false acceptance and rejection rates there, and the
    curve they were chosen from, and the descriptor's share's curve (``"descriptor_share"``)
    when it was chosen. With kept-out people, they also choose whether scores are normalized
    against the trained people's unit mean templates (:mod:`.cohort`), by the equal error
    rate of their pairs (``"cohort"``: both rates and the choice), and the thresholds are set
    on the scores the model will give. At most ``THRESHOLD_FACES`` faces, a fixed sample, are used.
    """
    (x_train, y_train), (x_val, y_val) = train, validation
    shares = None
    candidates = _candidates(descriptor)
    descriptor = candidates[0] if candidates else None
    kept_out = calibration is not None and _people(calibration[1]) >= 2
    if kept_out:
        # Embedded once: the network's part and the views serve both the choice and the thresholds.
        network_rows = embed_images(network, calibration[0])
        if descriptor is None:
            kept_out_rows = network_rows
        else:
            views = [candidate.transform(calibration[0]) for candidate in candidates]
            descriptor, chosen, shares = _chosen_share(candidates, network_rows, views, calibration[1])
            kept_out_rows = descriptor.join_views(network_rows, views[chosen])
    embedded, labels = _finite_rows(embed_images(network, x_train, descriptor=descriptor), y_train)
    # The thresholds are set for the rule of the models this release trains, which they keep.
    reference = {"descriptor": descriptor, "best_share": BEST_SHARE}
    if len(labels):
        reference.update(templates=embedded, template_labels=labels)
    templates, template_labels = embedded, labels
    source = "training images"
    if kept_out:
        embedded, labels = _finite_rows(kept_out_rows, calibration[1])
        source = "people kept out of training"
    elif _people(y_val) >= 2:
        embedded, labels = _finite_rows(embed_images(network, x_val, descriptor=descriptor), y_val)
        source = "validation images"
    embedded, labels = _sample(embedded, labels)
    trusted = source == "people kept out of training"
    offsets = template_offsets = cohort = None
    plain = pair_scores(embedded, labels)
    if trusted and len(template_labels) and all(len(scores) for scores in plain):
        # The kept-out people also choose whether scores are normalized against the trained
        # people (pyface.recognition.cohort), by the equal error rate of their pairs.
        members = cohort_means(templates, template_labels)
        offsets = cohort_offsets(embedded, members, nearest=NEAREST)
        eers = [equal_error_rate(*roc_curve(*scores))[0]
                for scores in (plain, pair_scores(embedded, labels, offsets=offsets))]
        cohort = {"nearest": NEAREST, "eer": eers, "normalized": bool(eers[1] < eers[0])}
        if cohort["normalized"]:
            reference.update(cohort=members, cohort_nearest=NEAREST)
            template_offsets = cohort_offsets(templates, members, nearest=NEAREST)
        else:
            offsets = None
    # Kept-out people play strangers against the gallery the model will hold: the trained
    # people's templates as well as each other (on ORL, measured against each other alone,
    # a threshold for 1 % let in 27 % of unseen people's faces).
    identify = identification_scores(embedded, labels, gallery=templates if trusted else None,
                                     gallery_labels=template_labels, best_share=BEST_SHARE,
                                     offsets=offsets, gallery_offsets=template_offsets)
    verify = plain if offsets is None else pair_scores(embedded, labels, offsets=offsets)
    if not all(len(scores) for scores in (*identify, *verify)):
        return {**reference, "threshold": None, "verify_threshold": None}
    threshold, far, frr = _threshold(identify, target_far, trusted)
    verify_threshold, verify_far, verify_frr = _threshold(verify, target_far, trusted)
    return {**reference, "threshold": threshold, "verify_threshold": verify_threshold,
            "calibration": {"source": source, "faces": int(len(labels)), "people": int(len(np.unique(labels))),
                            "target_far": float(target_far),
                            "identify": {"far": far, "frr": frr, "curve": curve_points(*identify)},
                            "verify": {"far": verify_far, "frr": verify_frr, "curve": curve_points(*verify)},
                            **({} if shares is None else {"descriptor_share": shares}),
                            **({} if cohort is None else {"cohort": cohort})}}
