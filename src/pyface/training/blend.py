"""Made-up people for training: each one the blend of two real people.

With few people to learn from, a classifier's summaries learn only the differences that
separate those people, and faces of new people differ in other ways. Blends of two people
are new faces the network must also tell apart, from the real people and from each other
(docs/experiments.md, "Blended people").
"""

from __future__ import annotations

import numpy as np


def blend_people(images: np.ndarray, labels: np.ndarray, count: int, first_label: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` made-up people, each from a different pair of the people in ``labels``.

    images: (N, S, S) float32 preprocessed faces in [0, 1]; labels: (N,) integers.
    Made-up person k gets label ``first_label + k`` and min(n_a, n_b) images, where n_a
    and n_b are the image counts of its two people a and b: each the pixel mean of a
    different image of a and a different image of b, paired at random.

    Returns (images (M, S, S) float32, labels (M,) int64).
    """
    people = np.unique(labels)
    pairs = [(a, b) for i, a in enumerate(people) for b in people[i + 1 :]]
    if not 0 <= count <= len(pairs):
        raise ValueError(f"{len(people)} people make at most {len(pairs)} blended people, asked for {count}")
    out_images, out_labels = [np.zeros((0,) + images.shape[1:], dtype=np.float32)], [np.zeros(0, dtype=np.int64)]
    for k, p in enumerate(rng.choice(len(pairs), size=count, replace=False)):
        a, b = (rng.permutation(np.flatnonzero(labels == person)) for person in pairs[p])
        m = min(len(a), len(b))
        out_images.append(((images[a[:m]] + images[b[:m]]) / 2).astype(np.float32))
        out_labels.append(np.full(m, first_label + k, dtype=np.int64))
    return np.concatenate(out_images), np.concatenate(out_labels)
