"""A trained face recognizer: names people in images, evaluates itself, saves itself."""

from __future__ import annotations

import os

import numpy as np

from . import data
from .data import FaceDataset
from .network import Network, softmax, softmax_cross_entropy


def _read_image(path) -> np.ndarray:
    """The image decoded exactly as :func:`pyface.data.load_images` decodes training images."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {os.fspath(path)}")
    image = data._read_image(path)
    if image is None:
        raise ValueError(f"{os.fspath(path)}: not a readable image")
    return image


def _is_single_image(a: np.ndarray) -> bool:
    # (H, W) grey, or (H, W, 3|4) colour; a stack of grey images is (N, H, W) with W > 4.
    return a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))


class FaceRecognizer:
    """Names the person in a face image.

    ``names[k]`` is the person of score column k. ``preprocessor`` is the one used on
    the training images; every image given to :meth:`predict` goes through it, so
    prediction repeats exactly what training saw.
    """

    def __init__(self, network: Network, names, preprocessor, *, training: dict | None = None,
                 history: dict | None = None):
        names = [str(n) for n in names]
        if len(names) != network.arch.n_classes:
            raise ValueError(f"{len(names)} names for a network of {network.arch.n_classes} classes")
        self.network = network
        self.names = names
        self.preprocessor = preprocessor
        self.training = dict(training or {})
        self.history = dict(history or {})

    @property
    def architecture(self):
        return self.network.arch

    def __repr__(self):
        a = self.network.arch
        return (f"FaceRecognizer({len(self.names)} people, {a.num_layers}x{a.hidden_size} "
                f"{'bidirectional ' if a.bidirectional else ''}LSTM over {'+'.join(a.views)})")

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
            image = _read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
            out[i] = self.preprocessor(image)
        return out

    def predict_proba(self, inputs, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, len(names)); column k is ``names[k]``.

        ``inputs``: a FaceDataset, an image path, a raw image (grey or colour, any
        size), or a sequence of paths or raw images.
        """
        return self._proba(self._images(inputs), batch_size)

    def _proba(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        out = np.empty((len(images), len(self.names)), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            logits, _ = self.network.forward(images[start : start + batch_size])
            out[start : start + batch_size] = softmax(logits.astype(np.float64))
        return out

    def predict(self, inputs, *, batch_size: int = 256) -> np.ndarray:
        """The most probable person's name for each input, as a string array."""
        proba = self.predict_proba(inputs, batch_size=batch_size)
        return np.array(self.names, dtype=str)[proba.argmax(axis=1)]

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
        """Write the model to one file, atomically (see :func:`pyface.model_io.save_model`)."""
        from .model_io import save_model  # model_io imports this module to build recognizers

        save_model(self, path)
