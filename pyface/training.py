"""The training loop: mini-batches, augmentation, validation, early stopping and history."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

import numpy as np
from tqdm.auto import tqdm

from .augment import Augmentation
from .data import FaceDataset, from_arrays
from .network import Architecture, Network, init_parameters, softmax_cross_entropy
from .optim import Adam, clip_grad_norm, learning_rate
from .recognizer import FaceRecognizer

CLASS_WEIGHTS = (None, "balanced")


@dataclass(frozen=True)
class TrainingSettings:
    """How a network is trained. The defaults were chosen on ORL (see docs/experiments.md)."""

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 3e-3
    lr_schedule: str = "cosine"
    warmup_epochs: int = 2
    weight_decay: float = 1e-4
    clip_norm: float | None = 5.0
    label_smoothing: float = 0.1
    class_weight: str | None = "balanced"
    augment: Augmentation | None = Augmentation()
    validation_fraction: float = 0.0
    patience: int = 20

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}, got {self.class_weight!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = None if self.augment is None else self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainingSettings:
        d = dict(d)
        if d.get("augment") is not None:
            d["augment"] = Augmentation(**d["augment"])
        return cls(**d)


ARCHITECTURE_OPTIONS = tuple(f.name for f in fields(Architecture) if f.name not in ("n_classes", "image_size"))
TRAINING_OPTIONS = tuple(f.name for f in fields(TrainingSettings))


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights inversely proportional to class frequency, averaging 1 over the samples."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), holding out about ``fraction`` of every class.

    A class keeps at least one training image; classes with a single image are not
    validated at all.
    """
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(int(round(fraction * len(idx))), len(idx) - 1)
        val_idx.extend(idx[:k])
        train_idx.extend(idx[k:])
    return np.sort(np.array(train_idx, dtype=np.int64)), np.sort(np.array(val_idx, dtype=np.int64))


def _as_dataset(data, labels, names, preprocessor) -> FaceDataset:
    if isinstance(data, FaceDataset):
        if labels is not None or names is not None or preprocessor is not None:
            raise TypeError("a FaceDataset brings its labels, names and preprocessing; pass them only with images")
        return data
    if labels is None:
        raise TypeError("train(images, labels): labels are required with image arrays")
    labels = np.asarray(labels)
    if names is None and not np.issubdtype(labels.dtype, np.integer):
        names = [str(n) for n in np.unique(labels)]
        labels = np.searchsorted(np.unique(labels), labels)
    return from_arrays(data, labels, names=names, preprocessor=preprocessor)


def _evaluate_loss(network: Network, images, labels, batch_size: int) -> tuple[float, float]:
    losses, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        logits, _ = network.forward(images[start : start + batch_size])
        loss, _, probs = softmax_cross_entropy(logits, labels[start : start + batch_size])
        losses += loss * len(logits)
        correct += int((probs.argmax(axis=1) == labels[start : start + batch_size]).sum())
    return losses / len(labels), correct / len(labels)


def _validation_arrays(validation: FaceDataset, dataset: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    if validation.preprocessor != dataset.preprocessor:
        raise ValueError("validation_data must be preprocessed like the training data")
    index = {name: k for k, name in enumerate(dataset.names)}
    unknown = sorted({validation.names[k] for k in validation.labels} - set(index))
    if unknown:
        raise ValueError(f"validation_data has people absent from the training data: {unknown}")
    labels = np.array([index[validation.names[k]] for k in validation.labels], dtype=np.int64)
    return np.asarray(validation.images, dtype=np.float32), labels


def train(data, labels=None, *, names=None, preprocessor=None, validation_data: FaceDataset | None = None,
          seed: int | None = 0, quiet: bool = False, kernel=None, **options) -> FaceRecognizer:
    """Train a face recognizer.

    ``data`` is a :class:`~pyface.data.FaceDataset`, or images (N, H, W) with
    ``labels`` (integers indexing ``names``, or any labels whose sorted unique values
    become the names); such images go through ``preprocessor`` (default
    ``Preprocessor()``), which the model keeps for prediction.

    ``options`` set the architecture (hidden_size, num_layers, bidirectional, views,
    pooling, dropout) and the training (epochs, batch_size, learning_rate,
    lr_schedule, warmup_epochs, weight_decay, clip_norm, label_smoothing,
    class_weight, augment, validation_fraction, patience); ``augment`` takes an
    :class:`~pyface.augment.Augmentation` or a dict of its fields, ``None``/``False``
    to turn it off, or ``True`` for the default. With ``validation_fraction > 0`` a stratified part of
    the training images is held out, training stops once its accuracy (then loss)
    has not improved for ``patience`` epochs, and the best weights are restored.
    ``validation_data`` (a FaceDataset) serves the same purpose with images kept
    apart by the caller. ``kernel`` replaces the native LSTM kernel (tests only).

    The same ``seed`` with the same data, options and kernel thread count gives the
    same model.
    """
    unknown = set(options) - set(ARCHITECTURE_OPTIONS) - set(TRAINING_OPTIONS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    if options.get("augment") is True:
        options["augment"] = Augmentation()
    elif options.get("augment") is False:
        options["augment"] = None
    elif isinstance(options.get("augment"), dict):
        options["augment"] = Augmentation(**options["augment"])
    dataset = _as_dataset(data, labels, names, preprocessor)
    if len(dataset) == 0:
        raise ValueError("cannot train on an empty dataset")
    images = np.asarray(dataset.images, dtype=np.float32)
    y = np.asarray(dataset.labels, dtype=np.int64)
    arch = Architecture(
        n_classes=len(dataset.names),
        image_size=images.shape[1],
        **{k: v for k, v in options.items() if k in ARCHITECTURE_OPTIONS},
    )
    settings = TrainingSettings(**{k: v for k, v in options.items() if k in TRAINING_OPTIONS})

    init_rng, split_rng, batch_rng, augment_rng, dropout_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    network = Network(arch, init_parameters(arch, init_rng), kernel=kernel)
    if validation_data is not None:
        x_train, y_train = images, y
        x_val, y_val = _validation_arrays(validation_data, dataset)
    else:
        if settings.validation_fraction > 0:
            train_idx, val_idx = stratified_holdout(y, settings.validation_fraction, split_rng)
        else:
            train_idx, val_idx = np.arange(len(y)), np.array([], dtype=np.int64)
        x_train, y_train = images[train_idx], y[train_idx]
        x_val, y_val = images[val_idx], y[val_idx]
    weights = class_weights(y_train, arch.n_classes) if settings.class_weight == "balanced" else None

    optimizer = Adam(network.params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(y_train) // settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = steps_per_epoch * settings.warmup_epochs
    history = {k: [] for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")}
    best_score, best_params, best_epoch, waited = None, None, None, 0

    progress = tqdm(range(settings.epochs), desc="training", unit="epoch", disable=quiet, leave=False)
    for epoch in progress:
        started = time.perf_counter()
        order = batch_rng.permutation(len(y_train))
        loss_sum, weight_sum, correct = 0.0, 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            xb, yb = x_train[batch], y_train[batch]
            if settings.augment is not None:
                xb = settings.augment(xb, augment_rng)
            sw = None if weights is None else weights[yb]
            logits, cache = network.forward(xb, training=True, rng=dropout_rng)
            loss, dlogits, probs = softmax_cross_entropy(
                logits, yb, sample_weight=sw, label_smoothing=settings.label_smoothing
            )
            grads = network.backward(dlogits, cache)
            clip_grad_norm(grads, settings.clip_norm)
            lr = learning_rate(optimizer.t, total_steps, settings.learning_rate,
                               schedule=settings.lr_schedule, warmup_steps=warmup_steps)
            optimizer.step(grads, lr=lr)
            batch_weight = len(yb) if sw is None else float(sw.sum())
            loss_sum += loss * batch_weight
            weight_sum += batch_weight
            correct += int((probs.argmax(axis=1) == yb).sum())
        history["epoch"].append(epoch + 1)
        history["loss"].append(loss_sum / weight_sum)
        history["accuracy"].append(correct / len(y_train))
        history["lr"].append(lr)
        if len(y_val):
            val_loss, val_acc = _evaluate_loss(network, x_val, y_val, 256)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_acc)
        history["seconds"].append(time.perf_counter() - started)
        postfix = {"loss": f"{history['loss'][-1]:.3f}", "acc": f"{history['accuracy'][-1]:.3f}"}
        if len(y_val):
            postfix["val_acc"] = f"{val_acc:.3f}"
            score = (val_acc, -val_loss)
            if best_score is None or score > best_score:
                best_score, best_epoch, waited = score, epoch + 1, 0
                best_params = {n: v.copy() for n, v in network.params.items()}
            else:
                waited += 1
        progress.set_postfix(postfix)
        if len(y_val) and waited >= settings.patience:
            break
    progress.close()
    if best_params is not None:
        for name, value in best_params.items():
            network.params[name][...] = value
    if not len(y_val):
        best_epoch = history["epoch"][-1]
    history["best_epoch"] = best_epoch
    return FaceRecognizer(
        network, dataset.names, dataset.preprocessor,
        training={"seed": seed, **settings.to_dict()}, history=history,
    )
