"""A trained face recognizer: names people in images, evaluates itself, saves itself.

Besides the classifier's answer over the trained people, a recognizer answers in the
open set: every face becomes an embedding (the network's summary of it, scaled to unit
length), every known identity keeps the embeddings of its images (its templates), and
a face is the identity it is most similar to (by the cosines with its best template and
with the mean of its templates: :mod:`.identity`), or "unknown" below a threshold. Models
that were calibrated for it take off each score how like the trained people both sides look
(:mod:`.cohort`). Trained people are known by their training images; new people are enrolled
from a few images, without retraining.
"""

from __future__ import annotations

import os

import numpy as np

from ..data.dataset import FaceDataset
from ..data.images import read_image
from ..kernel.blas import one_blas_thread
from ..nn.functional import softmax, softmax_cross_entropy, unit_rows
from ..nn.network import Network
from .cohort import check_nearest, cohort_offsets, identity_offsets, normalized
from .descriptor import FaceDescriptor
from .histograms import histogram_size
from .identity import BEST_SHARE, check_best_share, identity_scores, run_starts, template_sum_norms
from .model_file import read_model, write_model

UNKNOWN = "unknown"
_THRESHOLD_KINDS = {"identify": "threshold", "verify": "verify_threshold"}


def _is_single_image(a: np.ndarray) -> bool:
    # (H, W) grey, or (H, W, 3|4) colour; a stack of grey images is (N, H, W) with W > 4.
    return a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))


def _embedding_size(network: Network, descriptor: FaceDescriptor | None) -> int:
    return network.arch.feature_size + (0 if descriptor is None else descriptor.size)


def embed_images(network: Network, images: np.ndarray, batch_size: int = 256,
                 descriptor: FaceDescriptor | None = None) -> np.ndarray:
    """Unit-length embeddings (N, D) float32 of preprocessed images (N, S, S), in batches.

    D is the network's ``feature_size``, plus the ``descriptor``'s size when there is one:
    its view of the faces is joined to the network's (:meth:`FaceDescriptor.join`).
    """
    def batch(part: np.ndarray) -> np.ndarray:
        embedded = unit_rows(network.features(part).astype(np.float32, copy=False))
        # In batches too: the histograms of every face at once would hold them all in memory.
        return embedded if descriptor is None else descriptor.join(embedded, part)

    batches = [batch(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    return np.concatenate(batches) if batches else np.zeros((0, _embedding_size(network, descriptor)), np.float32)


def _unit_templates(vectors: np.ndarray) -> np.ndarray:
    """Template rows scaled to unit length, unless they already are.

    Normalising a float32 unit vector again can move its last bit, so a model saved and
    loaded would no longer hold the very templates it was saved with.
    """
    if len(vectors) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=0, atol=1e-5):
        return vectors
    return unit_rows(vectors)


def identity_name(name) -> str:
    """``name`` when it can name a person (a non-empty string other than "unknown"), else a ValueError."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a person's name must be a non-empty string, got {name!r}")
    if name == UNKNOWN:
        raise ValueError(f"{UNKNOWN!r} is the answer for strangers and cannot name a person")
    return name


def _single(item, what: str):
    """``item`` if it is one image (path, raw array, or a FaceDataset of one face), else a ValueError naming it."""
    if isinstance(item, (str, os.PathLike)) or (isinstance(item, np.ndarray) and _is_single_image(item)):
        return item
    if isinstance(item, FaceDataset) and len(item) == 1:
        return item
    raise ValueError(f"{what} must be one image (a path, an (H, W) or (H, W, 3) array, or a FaceDataset of one face)")


class FaceRecognizer:
    """Names the person in a face image.

    ``names[k]`` is the person of score column k. ``preprocessor`` is the one used on
    the training images; every image given to :meth:`predict` goes through it, so
    prediction repeats exactly what training saw.
    """

    def __init__(self, network: Network, names, preprocessor, *, training: dict | None = None,
                 history: dict | None = None, templates: np.ndarray | None = None,
                 template_labels: np.ndarray | None = None, threshold: float | None = None,
                 verify_threshold: float | None = None, enrolled: dict | None = None,
                 calibration: dict | None = None, descriptor: FaceDescriptor | None = None,
                 best_share: float = BEST_SHARE, cohort: np.ndarray | None = None,
                 cohort_nearest: int | None = None):
        names = [str(n) for n in names]
        if len(names) != network.arch.n_classes:
            raise ValueError(f"{len(names)} names for a network of {network.arch.n_classes} classes")
        self.network = network
        self.names = names
        self.preprocessor = preprocessor
        self.training = dict(training or {})
        self.history = dict(history or {})
        # The fixed second view of a face joined to the network's in every embedding (open-set
        # models since format 4), or None: the embedding is the network's alone.
        self.descriptor = descriptor
        if descriptor is not None and len(descriptor.mean) != histogram_size(preprocessor.size, descriptor.kind):
            raise ValueError(f"the descriptor was fitted on histograms of {len(descriptor.mean)} values; faces of "
                             f"{preprocessor.size} pixels give {histogram_size(preprocessor.size, descriptor.kind)}")
        d = self.embedding_size
        if (templates is None) != (template_labels is None):
            raise ValueError("templates and template_labels go together")
        if templates is not None:
            templates = _unit_templates(np.asarray(templates, dtype=np.float32))
            template_labels = np.asarray(template_labels)
            if templates.ndim != 2 or templates.shape[1] != d or not np.isfinite(templates).all():
                raise ValueError(f"templates must be finite rows of {d} values, got shape {templates.shape}")
            if (template_labels.shape != (len(templates),) or not np.issubdtype(template_labels.dtype, np.integer)
                    or not ((template_labels >= 0) & (template_labels < len(names))).all()):
                raise ValueError(f"template_labels must be {len(templates)} indices into the {len(names)} names")
            order = np.argsort(template_labels, kind="stable")
            templates, template_labels = templates[order], template_labels[order].astype(np.int64)
        # The trained people's templates (n, embedding_size), unit rows grouped by person, and
        # whose they are (n,); None for models saved before they were kept.
        self.templates = templates
        self.template_labels = template_labels
        # Cosine similarity below which a face is "unknown" to the open-set rule, and from which
        # two faces are the same person; None when the model has no default (older files).
        self.threshold = None if threshold is None else float(threshold)
        self.verify_threshold = None if verify_threshold is None else float(verify_threshold)
        # Where the default thresholds were measured, their error rates there and the curves
        # they were chosen from (see pyface.recognition.references); None for older files.
        self.calibration = None if calibration is None else dict(calibration)
        # The best template's share of an identity's score, the rule the thresholds were set
        # for (pyface.recognition.identity); 1 for models written before the rule weighed the
        # mean template.
        self.best_share = check_best_share(best_share)
        # Scores normalized against a cohort (pyface.recognition.cohort; the trained people's
        # unit mean templates, kept apart from the templates so that a gallery of enrolled
        # people alone scores the same way): each face's offset is the mean of its
        # ``cohort_nearest`` highest cosines with the ``cohort`` (C, embedding_size); both None:
        # scores are plain cosines (models whose kept-out people did not choose it).
        if (cohort is None) != (cohort_nearest is None):
            raise ValueError("cohort and cohort_nearest go together")
        if cohort is not None:
            cohort_nearest = check_nearest(cohort_nearest, "cohort_nearest")
            cohort = np.asarray(cohort, dtype=np.float32)
            if cohort.ndim != 2 or cohort.shape[1] != d or not len(cohort) or not np.isfinite(cohort).all():
                raise ValueError(f"the cohort must be finite rows of {d} values, got shape {cohort.shape}")
        self._cohort, self._cohort_nearest = cohort, cohort_nearest
        # identity (None: the trained people) -> (its templates, their offsets), while they are its templates
        self._offsets: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        self._enrolled: dict[str, np.ndarray] = {}
        for name, vectors in (enrolled or {}).items():
            self._add_identity(name, np.asarray(vectors, dtype=np.float32))

    @property
    def architecture(self):
        return self.network.arch

    @property
    def cohort(self) -> np.ndarray | None:
        """The cohort scores are normalized against (C, embedding_size) float32, or None: plain cosines."""
        return self._cohort

    @property
    def cohort_nearest(self) -> int | None:
        """How many of the :attr:`cohort` each face's offset averages over, or None: plain cosines."""
        return self._cohort_nearest

    @property
    def embedding_size(self) -> int:
        """Values in an embedding: the network's ``feature_size``, plus the descriptor's size if any."""
        return _embedding_size(self.network, self.descriptor)

    def __repr__(self):
        a = self.network.arch
        enrolled = f", {len(self._enrolled)} enrolled" if self._enrolled else ""
        return (f"FaceRecognizer({len(self.names)} trained people{enrolled}, {a.num_layers}x{a.hidden_size} "
                f"{'bidirectional ' if a.bidirectional else ''}LSTM over {'+'.join(a.views)}"
                f"{'' if self.descriptor is None else f', with {self.descriptor.kind} histograms'})")

    def preprocess(self, inputs) -> np.ndarray:
        """The images (N, S, S) float32 the network reads, as every other method prepares them.

        ``inputs`` as for :meth:`predict_proba`. A FaceDataset of these images with
        this recognizer's preprocessor is answered without preprocessing them again.
        """
        return self._images(inputs)

    def _images(self, inputs) -> np.ndarray:
        """Preprocessed images (N, S, S) from a dataset, paths or raw images."""
        if isinstance(inputs, FaceDataset):
            if inputs.preprocessor == self.preprocessor:
                return np.asarray(inputs.images, dtype=np.float32)
            if not all(inputs.paths):
                raise ValueError("the dataset was preprocessed differently from the training images "
                                 "and has no file paths to preprocess them again")
            inputs = list(inputs.paths)
        elif isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        elif isinstance(inputs, np.ndarray) and _is_single_image(inputs):
            inputs = [inputs]
        size = self.network.arch.image_size
        out = np.empty((len(inputs), size, size), dtype=np.float32)
        for i, item in enumerate(inputs):
            image = read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
            out[i] = self.preprocessor(image)
        return out

    def predict_proba(self, inputs, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, len(names)); column k is ``names[k]``.

        ``inputs``: a FaceDataset, an image path, a raw image (grey or colour, any
        size), or a sequence of paths or raw images.
        """
        return self._proba(self._images(inputs), batch_size)

    def _proba(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        # With a descriptor, the classifier's answer is joined with how like each trained
        # person's mean view a face looks (FaceDescriptor.class_scores): on LFW's held-out
        # people 71.8 -> 85.7 % of test photos named right.
        # Adding them to the logits is adding them to the log-probabilities: a softmax does not
        # change when a row is shifted.
        views = None
        if self.descriptor is not None and self.templates is not None:
            views = self.descriptor.class_views(self.templates, self.template_labels, len(self.names))
        out = np.empty((len(images), len(self.names)), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            logits, _ = self.network.forward(batch)
            scores = logits.astype(np.float64)
            if views is not None:
                scores += self.descriptor.class_scores(batch, views)
            out[start : start + batch_size] = softmax(scores)
        return out

    def predict(self, inputs, *, batch_size: int = 256, threshold: float | str | None = None,
                return_scores: bool = False):
        """The name of the person in each input, as a string array (N,).

        Without a ``threshold`` and with nobody enrolled, the classifier's most
        probable trained person, as always; with ``return_scores`` the second return
        value (N,) is that probability. With people enrolled, or a ``threshold`` (a
        score, or ``"auto"`` for the model's :attr:`threshold`), the
        open-set rule of :meth:`identify` applies and the scores are its scores;
        without a threshold nobody is "unknown".
        """
        if threshold is None and not self._enrolled:
            proba = self.predict_proba(inputs, batch_size=batch_size)
            names = np.array(self.names, dtype=str)[proba.argmax(axis=1)]
            scores = proba.max(axis=1)
        else:
            names, scores = self.identify(inputs, threshold=-np.inf if threshold is None else threshold,
                                          batch_size=batch_size)
        return (names, scores) if return_scores else names

    def embed(self, inputs, *, batch_size: int = 256) -> np.ndarray:
        """Unit-length embeddings (N, embedding_size) float32: the network's summaries of the faces
        (joined with the descriptor's view of them when the model has one).

        ``inputs`` as for :meth:`predict_proba`. Cosine similarity of two faces is the
        dot product of their embeddings.
        """
        return self._embed(self._images(inputs), batch_size)

    def _embed(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        return embed_images(self.network, images, batch_size, self.descriptor)

    def score_offsets(self, embeddings: np.ndarray) -> np.ndarray:
        """What each of ``embeddings`` (N, embedding_size) takes off the scores it is part of, (N,) float64.

        Half of each face's offset and half of each identity's are taken off their cosine
        (:mod:`pyface.recognition.cohort`); zeros when the model's scores are plain cosines
        (:attr:`cohort_nearest` None). For searches elsewhere (a :class:`~pyface.Gallery`)
        to score as the model does.
        """
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must be rows of {self.embedding_size} values, got shape {embeddings.shape}")
        if self.cohort_nearest is None:
            return np.zeros(len(embeddings))
        with one_blas_thread():
            return cohort_offsets(embeddings, self.cohort, nearest=self.cohort_nearest)

    def pair_score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The scores (N,) of the pairs of faces embedded as rows of ``a`` and ``b`` (N, embedding_size),
        as :meth:`verify` scores them: cosines, less the mean of the two offsets where the model
        normalizes scores against its cohort."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
        return np.einsum("ij,ij->i", a, b) - 0.5 * (self.score_offsets(a) + self.score_offsets(b))

    # ------------------------------------------------------------------ the open set

    @property
    def enrolled(self) -> dict[str, int]:
        """Enrolled people and the number of templates (images) each was enrolled from, in order of enrollment."""
        return {name: len(vectors) for name, vectors in self._enrolled.items()}

    def enrolled_templates(self) -> dict[str, np.ndarray]:
        """Enrolled people and their templates: unit embeddings (k, embedding_size) of their images."""
        return {name: vectors.copy() for name, vectors in self._enrolled.items()}

    def gallery(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every identity the open-set rule can answer: (names, templates (M, embedding_size), owners (M,)).

        ``owners[m]`` indexes ``names``; each identity's templates are contiguous. The
        trained people who have templates come first, then the enrolled ones.
        """
        names, vectors, owners = [], [], []
        if self.templates is not None:
            people, counts = np.unique(self.template_labels, return_counts=True)
            names.extend(self.names[k] for k in people)
            vectors.append(self.templates)
            owners.append(np.repeat(np.arange(len(people)), counts))
        for name, templates in self._enrolled.items():
            owners.append(np.full(len(templates), len(names)))
            names.append(name)
            vectors.append(templates)
        if not names:
            raise ValueError("the model knows nobody in the open set: it keeps no templates of its trained people "
                             "(saved by an older pyface) and nobody is enrolled")
        return names, np.concatenate(vectors, axis=0), np.concatenate(owners)

    def enroll(self, name: str, inputs, *, batch_size: int = 256) -> None:
        """Add the person ``name``, known from the faces ``inputs``, without retraining.

        Each face's embedding becomes one template of the identity. A name already
        trained or enrolled is refused: remove or rename that identity first.
        """
        name = identity_name(name)
        if name in self.names or name in self._enrolled:
            raise ValueError(f"{name!r} is already known to the model; remove or rename it first")
        images = self._images(inputs)
        if len(images) == 0:
            raise ValueError(f"no images to enroll {name!r} from")
        self._add_identity(name, self._embed(images, batch_size))

    def add_images(self, name: str, inputs, *, batch_size: int = 256) -> None:
        """Add the faces ``inputs`` to the templates of the enrolled person ``name``.

        Trained people keep the templates of their training images: only retraining changes them.
        """
        if name not in self._enrolled:
            if name in self.names:
                raise ValueError(f"{name!r} is a trained person, not an enrolled one; only retraining adds images")
            raise KeyError(f"nobody called {name!r} is enrolled")
        images = self._images(inputs)
        if len(images) == 0:
            raise ValueError(f"no images to add to {name!r}")
        self._enrolled[name] = np.concatenate([self._enrolled[name], _unit_templates(self._embed(images, batch_size))])
        self._offsets.pop(name, None)

    def _add_identity(self, name: str, vectors: np.ndarray) -> None:
        d = self.embedding_size
        if name in self.names or name in self._enrolled:
            raise ValueError(f"{name!r} is already known to the model")
        if vectors.ndim != 2 or vectors.shape[1] != d or not len(vectors) or not np.isfinite(vectors).all():
            raise ValueError(f"identity {name!r} needs at least one finite template of {d} values")
        self._enrolled[identity_name(name)] = _unit_templates(vectors)

    def remove(self, name: str) -> None:
        """Forget the enrolled person ``name``. Trained people cannot be removed without retraining."""
        if name in self._enrolled:
            del self._enrolled[name]
            self._offsets.pop(name, None)
        elif name in self.names:
            raise ValueError(f"{name!r} is a trained person, not an enrolled one; only retraining removes them")
        else:
            raise KeyError(f"nobody called {name!r} is enrolled")

    def rename(self, old: str, new: str) -> None:
        """Call the trained or enrolled person ``old`` ``new`` from now on."""
        new = identity_name(new)
        if new in self.names or new in self._enrolled:
            raise ValueError(f"{new!r} is already known to the model")
        if old in self._enrolled:
            # Rebuilt to keep the order of enrollment.
            self._enrolled = {new if n == old else n: entry for n, entry in self._enrolled.items()}
            self._offsets.pop(old, None)
        elif old in self.names:
            self.names[self.names.index(old)] = new
        else:
            raise KeyError(f"nobody called {old!r} is known to the model")

    def resolve_threshold(self, threshold: float | str | None, *, kind: str = "identify") -> float:
        """The score threshold to apply: ``threshold``, or for None or ``"auto"`` the model's own.

        ``kind`` names the model's own threshold: ``"identify"`` (:attr:`threshold`, a face
        against the known identities) or ``"verify"`` (:attr:`verify_threshold`, two faces).
        """
        if kind not in _THRESHOLD_KINDS:
            raise ValueError(f"kind must be one of {sorted(_THRESHOLD_KINDS)}, got {kind!r}")
        if threshold is None or (isinstance(threshold, str) and threshold == "auto"):
            value = getattr(self, _THRESHOLD_KINDS[kind])
            if value is None:
                raise ValueError("the model has no default threshold (saved by an older pyface); give one")
            return value
        if isinstance(threshold, str):
            raise ValueError(f"threshold must be a number or 'auto', got {threshold!r}")
        return float(threshold)

    def identify(self, inputs, *, threshold: float | str | None = None,
                 batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Open-set identification: (names (N,), scores (N,)).

        Each face gets the identity of the :meth:`gallery` it is most similar to, or
        ``"unknown"`` when that similarity is below ``threshold`` (default: the model's
        :attr:`threshold`, chosen when it was trained). An identity's similarity weighs
        the cosines with its most similar template (:attr:`best_share` of it, a half in the
        models this release trains) and with the unit mean of its templates
        (:mod:`pyface.recognition.identity`, where the rule's measurements are); where the model
        normalizes scores (:attr:`cohort_nearest`), less the mean of the face's and the
        identity's offsets (:meth:`score_offsets`), else it is that cosine similarity.
        """
        limit = self.resolve_threshold(threshold)
        names, per_identity = self._similarities(inputs, batch_size)
        best = per_identity.argmax(axis=1)
        scores = per_identity[np.arange(len(best)), best].astype(np.float64)
        answer = np.array(names, dtype=object)[best]
        answer[scores < limit] = UNKNOWN
        return answer.astype(str), scores

    def search(self, inputs, *, k: int = 5, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar identities of each face: (names (N, k), scores (N, k)).

        Best first, each identity scored as in :meth:`identify`, with no threshold (nobody
        is "unknown"); fewer than ``k`` columns when the model knows fewer people.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        names, per_identity = self._similarities(inputs, batch_size)
        # Stable on the negated scores, so equal scores keep the gallery's order as identify does.
        order = np.argsort(-per_identity, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(per_identity, order, axis=1).astype(np.float64)
        return np.array(names, dtype=str)[order], scores

    def _gallery_offsets(self) -> np.ndarray:
        """The offsets of :meth:`gallery`'s templates, in its order (each identity's kept until it changes)."""
        parts = []
        for key, vectors in ([(None, self.templates)] if self.templates is not None else []) + list(self._enrolled.items()):
            if key not in self._offsets or self._offsets[key][0] is not vectors:
                self._offsets[key] = (vectors, self.score_offsets(vectors))
            parts.append(self._offsets[key][1])
        return np.concatenate(parts)

    def _similarities(self, inputs, batch_size: int) -> tuple[list[str], np.ndarray]:
        """The open-set identities and each face's score (N, identities) for each (:mod:`.identity`)."""
        names, templates, owners = self.gallery()
        embedded = self._embed(self._images(inputs), batch_size)
        starts = run_starts(owners)
        norms = template_sum_norms(templates, starts)
        if self.cohort_nearest is not None:
            faces, identities = self.score_offsets(embedded), identity_offsets(self._gallery_offsets(), starts)
        per_identity = np.zeros((len(embedded), len(names)), dtype=embedded.dtype)
        # In blocks of faces, so the faces x templates similarities never all exist at once. At
        # one BLAS thread, as the network's own products: OpenBLAS's threads would spin on the
        # cores the next kernel call needs (a batch of 16 faces identified twice as fast).
        with one_blas_thread():
            for start in range(0, len(embedded), batch_size):
                block = embedded[start : start + batch_size] @ templates.T
                scores = identity_scores(block, starts, norms, best_share=self.best_share)
                if self.cohort_nearest is not None:
                    scores = normalized(scores, faces[start : start + batch_size], identities)
                per_identity[start : start + batch_size] = scores
        return names, per_identity

    def identify_faces(self, image, *, threshold: float | str | None = None
                       ) -> list[tuple[tuple[int, int, int, int], str, float]]:
        """Every face in one photo (a path or a raw image), largest first: (box (x, y, w, h), name, score).

        Each face found by the model's preprocessing (:meth:`Preprocessor.faces`) is
        identified as :meth:`identify` does; a photo without a face found gives [].
        """
        raw = read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
        faces = self.preprocessor.faces(raw)
        if not faces:
            return []
        crops = np.stack([face for _, face in faces])
        names, scores = self.identify(FaceDataset(crops, np.zeros(len(crops), np.int64), ["face"],
                                                  [""] * len(crops), self.preprocessor), threshold=threshold)
        return [(box, str(name), float(score)) for (box, _), name, score in zip(faces, names, scores)]

    def verify(self, a, b, *, threshold: float | str | None = None) -> tuple[bool, float]:
        """Whether two face images show the same person, and their score (:meth:`pair_score`: the
        cosine similarity of their embeddings, less the mean of their offsets where the model
        normalizes scores).

        ``a`` and ``b`` are single images (paths, raw arrays, or FaceDatasets of one
        face); they are the same person when the similarity reaches ``threshold``
        (default: the model's :attr:`verify_threshold`, for pairs of single images).
        """
        limit = self.resolve_threshold(threshold, kind="verify")
        images = np.concatenate([self._images(_single(a, "a")), self._images(_single(b, "b"))])
        ea, eb = self._embed(images, 2)
        score = float(self.pair_score(ea[None], eb[None])[0])
        return score >= limit, score

    def evaluate(self, dataset: FaceDataset, *, batch_size: int = 256) -> dict:
        """Accuracy, mean loss, per-person accuracy and the confusion matrix on labelled data.

        ``confusion[i, j]`` counts images of ``names[i]`` recognised as ``names[j]``.
        """
        unknown = sorted({dataset.names[k] for k in np.unique(dataset.labels)} - set(self.names))
        if unknown:
            raise ValueError(f"the data has people the model does not know: {unknown}")
        index = {n: k for k, n in enumerate(self.names)}
        truth = np.array([index[dataset.names[k]] for k in dataset.labels], dtype=np.int64)
        proba = self._proba(self._images(dataset), batch_size)
        predicted = proba.argmax(axis=1)
        C = len(self.names)
        confusion = np.zeros((C, C), dtype=np.int64)
        np.add.at(confusion, (truth, predicted), 1)
        per_person = {
            self.names[k]: float(confusion[k, k] / confusion[k].sum()) for k in range(C) if confusion[k].sum()
        }
        loss, _, _ = softmax_cross_entropy(np.log(np.maximum(proba, 1e-300)), truth)
        return {
            "accuracy": float((predicted == truth).mean()) if len(truth) else float("nan"),
            "loss": loss,
            "n_images": int(len(truth)),
            "per_person": per_person,
            "confusion": confusion,
            "names": list(self.names),
        }

    def save(self, path) -> None:
        """Write the model to one ``.pyface`` file, atomically: the old file or the complete new one.

        A model whose weights hold NaN or infinity is refused with ``ValueError``.
        """
        write_model(path, network=self.network, names=self.names, preprocessor=self.preprocessor,
                    training=self.training, history=self.history, templates=self.templates,
                    template_labels=self.template_labels, threshold=self.threshold,
                    verify_threshold=self.verify_threshold, enrolled=self._enrolled,
                    calibration=self.calibration, descriptor=self.descriptor, best_share=self.best_share,
                    cohort=self.cohort, cohort_nearest=self.cohort_nearest)


def load_model(path) -> FaceRecognizer:
    """Read a model written by :meth:`FaceRecognizer.save` (any format version from 1 on).

    Raises :class:`~pyface.ModelFileError` (a ``ValueError``) naming the file and the
    problem when it is corrupt, truncated, not a pyface model, or from a newer pyface.
    """
    return FaceRecognizer(**read_model(path))
