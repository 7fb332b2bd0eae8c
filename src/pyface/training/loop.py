"""The training loop: mini-batches, augmentation, validation, early stopping and history."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from tqdm.auto import tqdm

from ..training.augment import Augmentation
from ..training.blend import blend_people
from ..training.step import local_gradients, train_epoch
from ..training.checkpoint import (
    TrainingState,
    data_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from ..data.dataset import FaceDataset, from_arrays
from ..nn.network import Architecture, Network, init_parameters, softmax_cross_entropy
from ..recognition.open_set import eer_threshold, identification_scores, pair_scores
from ..nn.optim import Adam
from ..recognition.recognizer import FaceRecognizer, embed_images

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
    blended_people: int = 0

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
        if isinstance(self.blended_people, bool) or not isinstance(self.blended_people, (int, np.integer)) \
                or self.blended_people < 0:
            raise ValueError(f"blended_people must be a non-negative integer, got {self.blended_people!r}")

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


class TrainingDivergedError(RuntimeError):
    """Training produced NaN or infinity and stopped.

    ``epoch`` is the epoch (1-based) in which it happened; ``model`` is a recognizer
    with the weights of the last good epoch (never NaN); ``checkpoint`` is the path
    of the last good checkpoint, if the run wrote one.
    """

    def __init__(self, message: str, *, epoch: int, model: FaceRecognizer, checkpoint: str | None):
        super().__init__(message)
        self.epoch = epoch
        self.model = model
        self.checkpoint = checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training. ``epochs_done`` epochs are complete; ``checkpoint`` holds them, if given."""

    def __init__(self, *, epochs_done: int, epochs: int, checkpoint: str | None):
        self.epochs_done = epochs_done
        self.epochs = epochs
        self.checkpoint = checkpoint
        if checkpoint is None:
            hint = "no checkpoint was written: pass checkpoint= to be able to resume"
        else:
            hint = f"saved a checkpoint to {checkpoint}; continue with train(..., resume={checkpoint!r})"
        super().__init__(f"training interrupted after {epochs_done} of {epochs} epochs; {hint}")


def _rngs(entropy: int) -> dict[str, np.random.Generator]:
    """The run's independent random generators, all derived from one seed."""
    # Spawned children do not depend on how many are spawned: adding a name at the end
    # leaves the others, and so the models of earlier versions, as they were.
    names = ("init", "split", "batch", "augment", "dropout", "blend")
    return {name: np.random.default_rng(s)
            for name, s in zip(names, np.random.SeedSequence(entropy).spawn(len(names)))}


# Generators still drawn from after the first epoch begins, so part of a checkpoint.
_EPOCH_RNGS = ("batch", "augment", "dropout")


def _capture(epoch: int, network: Network, optimizer: Adam, rngs: dict, history: dict, best: dict) -> TrainingState:
    """A copy of everything that training changes, after ``epoch`` completed epochs."""
    return TrainingState(
        epoch=epoch, params=network.params, adam_m=optimizer.m, adam_v=optimizer.v, adam_t=optimizer.t,
        rng_states={name: rngs[name].bit_generator.state for name in _EPOCH_RNGS}, history=history, **best,
    ).copy()


def _restore(state: TrainingState, network: Network, optimizer: Adam, rngs: dict) -> tuple[dict, dict]:
    """Put ``state`` back into the network, optimizer and generators; returns (history, best) to continue."""
    for name in network.params:
        network.params[name][...] = state.params[name]
        optimizer.m[name][...] = state.adam_m[name]
        optimizer.v[name][...] = state.adam_v[name]
    optimizer.t = state.adam_t
    try:
        for name in _EPOCH_RNGS:
            rngs[name].bit_generator.state = state.rng_states[name]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the checkpoint's random generator states are unusable ({exc})") from exc
    state = state.copy()
    best = {"best_score": state.best_score, "best_params": state.best_params,
            "best_epoch": state.best_epoch, "waited": state.waited}
    return state.history, best


def _resumed_run(path, arch_options: dict, training_options: dict, run: dict) -> tuple[Architecture, TrainingSettings]:
    """The checkpoint's architecture and settings, after checking that the options given agree with them."""
    arch = Architecture.from_dict(run["architecture"])
    settings = TrainingSettings.from_dict(run["settings"])
    asked_arch = Architecture.from_dict({**arch.to_dict(), **arch_options})
    asked_settings = replace(settings, **training_options)
    differing = [name for name in arch_options if getattr(asked_arch, name) != getattr(arch, name)]
    differing += [name for name in training_options if getattr(asked_settings, name) != getattr(settings, name)]
    if differing:
        raise ValueError(f"cannot resume from {os.fspath(path)} with other options than it was started with: "
                         + ", ".join(f"{n} (checkpoint: {getattr(arch if n in arch_options else settings, n)!r})"
                                     for n in differing))
    return arch, settings


def _finite_rows(embedded: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(embedded).all(axis=1)
    return embedded[finite], labels[finite]


# Faces the default thresholds are measured on, at most (2 million pairs for verification).
_THRESHOLD_FACES = 2000


def _open_set_reference(network: Network, train: tuple, validation: tuple) -> dict:
    """The trained people's templates and the default cosine thresholds.

    The templates are the unit embeddings of the training images, with their labels.
    Faces whose embedding is not finite (weights on the way to diverging) are left out.
    Both thresholds are equal-error-rate thresholds, measured on the validation images
    when they show at least two people, else on the training images (a fixed sample of
    ``_THRESHOLD_FACES`` of them when there are more): ``threshold`` of the open-set
    rule with each image left out of the gallery in turn
    (:func:`~pyface.open_set.identification_scores`), ``verify_threshold`` of all pairs
    of images.
    """
    (x_train, y_train), (x_val, y_val) = train, validation
    embedded, labels = _finite_rows(embed_images(network, x_train), y_train)
    reference = {"templates": embedded, "template_labels": labels} if len(labels) else {}
    if len(np.unique(y_val)) > 1:
        embedded, labels = _finite_rows(embed_images(network, x_val), y_val)
    if len(labels) > _THRESHOLD_FACES:
        # All pairs of N faces are N^2/2 scores: a fixed sample bounds the memory and time.
        keep = np.sort(np.random.default_rng(0).choice(len(labels), _THRESHOLD_FACES, replace=False))
        embedded, labels = embedded[keep], labels[keep]
    return {**reference,
            "threshold": eer_threshold(*identification_scores(embedded, labels)),
            "verify_threshold": eer_threshold(*pair_scores(embedded, labels))}


def _model(network: Network, params: dict, dataset: FaceDataset, settings: TrainingSettings, seed,
           history: dict, best_epoch, train: tuple, validation: tuple) -> FaceRecognizer:
    """A recognizer with a copy of ``params``, independent of the network that goes on training.

    ``train`` and ``validation`` are (images, labels) of the run's real people, for the
    open-set references. Blended people (score rows past the data set's names) are left out.
    """
    people = len(dataset.names)
    kept = {n: (v[:people] if n.startswith("dense.") else v).copy() for n, v in params.items()}
    final = Network(replace(network.arch, n_classes=people), kept, kernel=network.kernel)
    return FaceRecognizer(final, dataset.names, dataset.preprocessor,
                          training={"seed": seed, **settings.to_dict()},
                          history={**history, "best_epoch": best_epoch},
                          **_open_set_reference(final, train, validation))


def train(data, labels=None, *, names=None, preprocessor=None, validation_data: FaceDataset | None = None,
          seed: int | None = 0, quiet: bool = False, kernel=None, checkpoint=None, checkpoint_every: int | None = 1,
          resume=None, step_gradients=None, **options) -> FaceRecognizer:
    """Train a face recognizer.

    ``data`` is a :class:`~pyface.data.FaceDataset`, or images (N, H, W) with
    ``labels`` (integers indexing ``names``, or any labels whose sorted unique values
    become the names); such images go through ``preprocessor`` (default
    ``Preprocessor()``), which the model keeps for prediction. The data must show at
    least two people.

    ``options`` set the architecture (hidden_size, num_layers, bidirectional, views,
    pooling, dropout, head, cosine_scale) and the training (epochs, batch_size, learning_rate,
    lr_schedule, warmup_epochs, weight_decay, clip_norm, label_smoothing,
    class_weight, augment, validation_fraction, patience, blended_people); ``augment`` takes an
    :class:`~pyface.augment.Augmentation` or a dict of its fields, ``None``/``False``
    to turn it off, or ``True`` for the default. With ``validation_fraction > 0`` a stratified part of
    the training images is held out, training stops once its accuracy (then loss)
    has not improved for ``patience`` epochs, and the best weights are restored.
    ``validation_data`` (a FaceDataset) serves the same purpose with images kept
    apart by the caller. ``blended_people`` made-up people, each the pixel blend of a
    different pair of the training people (:func:`~pyface.blend.blend_people`), are
    trained on beside the real ones and left out of the model (the training accuracy
    counts them); they make the embeddings tell new people apart better (docs/experiments.md).
    ``kernel`` replaces the native LSTM kernel (tests only).

    ``checkpoint`` (a path) receives everything needed to resume, atomically, every
    ``checkpoint_every`` epochs (None: only on Ctrl-C). Ctrl-C raises
    :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) after saving the last
    completed epoch there. ``resume`` (a checkpoint path) continues such a run with
    the same data: its settings and seed are the checkpoint's, options given must
    agree with them, and the final weights are those of an uninterrupted run.

    NaN or infinity in the loss, the gradients or the weights stops training with
    :class:`TrainingDivergedError`, which carries the last good model; no
    checkpoint of a diverged state is written.

    The same ``seed`` with the same data, options and kernel thread count gives the
    same model.

    ``step_gradients(network, images, labels, weights, settings)`` makes what computes
    each step's gradients (see :mod:`pyface.training.step`); by default this process,
    the whole batch at once. :func:`pyface.distributed.train` passes its cluster's.
    """
    unknown = set(options) - set(ARCHITECTURE_OPTIONS) - set(TRAINING_OPTIONS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1 or None, got {checkpoint_every}")
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
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError(f"training needs images of at least two people, got only {dataset.names[present[0]]!r}")
    arch_options = {k: v for k, v in options.items() if k in ARCHITECTURE_OPTIONS}
    training_options = {k: v for k, v in options.items() if k in TRAINING_OPTIONS}
    run = {"names": dataset.names, "preprocessor": dataset.preprocessor.to_dict(),
           "data": data_fingerprint(images, y, *(() if validation_data is None else
                                                 (validation_data.images, validation_data.labels)))}
    if resume is not None:
        resumed, resumed_run = load_checkpoint(resume)
        if {k: resumed_run.get(k) for k in run} != run:
            raise ValueError(f"cannot resume from {os.fspath(resume)}: it was made with other images, "
                             "people or preprocessing")
        arch, settings = _resumed_run(resume, arch_options, training_options, resumed_run)
        seed, entropy = resumed_run["seed"], resumed_run["entropy"]
    else:
        settings = TrainingSettings(**training_options)
        arch = Architecture(n_classes=len(dataset.names) + settings.blended_people, image_size=images.shape[1],
                            **arch_options)
        # seed=None draws fresh entropy; recording it lets a checkpoint of such a run resume.
        entropy = np.random.SeedSequence(seed).entropy
    run.update(architecture=arch.to_dict(), settings=settings.to_dict(), seed=seed, entropy=entropy)

    rngs = _rngs(entropy)
    network = Network(arch, init_parameters(arch, rngs["init"]), kernel=kernel)
    if validation_data is not None:
        x_train, y_train = images, y
        x_val, y_val = _validation_arrays(validation_data, dataset)
    else:
        if settings.validation_fraction > 0:
            train_idx, val_idx = stratified_holdout(y, settings.validation_fraction, rngs["split"])
        else:
            train_idx, val_idx = np.arange(len(y)), np.array([], dtype=np.int64)
        x_train, y_train = images[train_idx], y[train_idx]
        x_val, y_val = images[val_idx], y[val_idx]
    x_fit, y_fit = x_train, y_train
    if settings.blended_people:
        x_blend, y_blend = blend_people(x_train, y_train, settings.blended_people, len(dataset.names), rngs["blend"])
        x_fit, y_fit = np.concatenate([x_train, x_blend]), np.concatenate([y_train, y_blend])
    weights = class_weights(y_fit, arch.n_classes) if settings.class_weight == "balanced" else None

    gradients = (step_gradients or local_gradients)(network, x_fit, y_fit, weights, settings)
    optimizer = Adam(network.params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(y_fit) // settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = steps_per_epoch * settings.warmup_epochs
    history = {k: [] for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")}
    best = {"best_score": None, "best_params": None, "best_epoch": None, "waited": 0}
    if resume is not None:
        history, best = _restore(resumed, network, optimizer, rngs)
    checkpoint = None if checkpoint is None else os.fspath(checkpoint)
    # The last completed epoch, copied aside: Ctrl-C or a divergence mid-epoch falls back to it.
    good = _capture(len(history["epoch"]), network, optimizer, rngs, history, best)

    progress = tqdm(range(good.epoch, settings.epochs), initial=good.epoch, total=settings.epochs,
                    desc="training", unit="epoch", disable=quiet, leave=False)
    saved = None  # the epoch of the checkpoint this call last wrote
    try:
        for epoch in progress:
            if len(y_val) and best["waited"] >= settings.patience:
                break
            started = time.perf_counter()
            try:
                loss, accuracy, lr = train_epoch(network, optimizer, x_fit, y_fit, weights, settings, rngs,
                                                 total_steps, warmup_steps, gradients)
                if len(y_val):
                    val_loss, val_acc = _evaluate_loss(network, x_val, y_val, 256)
                    if not np.isfinite(val_loss):
                        raise FloatingPointError(f"the validation loss became {val_loss}")
            except FloatingPointError as exc:
                kept = f"the weights of epoch {good.epoch} are kept"
                if saved is not None:
                    kept += f" (checkpoint {checkpoint} holds epoch {saved})"
                raise TrainingDivergedError(
                    f"training diverged in epoch {epoch + 1}: {exc}; {kept}; "
                    f"try a lower learning rate than {settings.learning_rate}",
                    epoch=epoch + 1, checkpoint=None if saved is None else checkpoint,
                    model=_model(network, good.params, dataset, settings, seed, good.history,
                                 good.best_epoch if len(y_val) else good.epoch,
                                 (x_train, y_train), (x_val, y_val)),
                ) from exc
            history["epoch"].append(epoch + 1)
            history["loss"].append(loss)
            history["accuracy"].append(accuracy)
            history["lr"].append(lr)
            postfix = {"loss": f"{loss:.3f}", "acc": f"{accuracy:.3f}"}
            if len(y_val):
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_acc)
                postfix["val_acc"] = f"{val_acc:.3f}"
                score = (val_acc, -val_loss)
                if best["best_score"] is None or score > best["best_score"]:
                    best.update(best_score=score, best_epoch=epoch + 1, waited=0,
                                best_params={n: v.copy() for n, v in network.params.items()})
                else:
                    best["waited"] += 1
            history["seconds"].append(time.perf_counter() - started)
            progress.set_postfix(postfix)
            good = _capture(epoch + 1, network, optimizer, rngs, history, best)
            if checkpoint is not None and checkpoint_every is not None and good.epoch % checkpoint_every == 0:
                save_checkpoint(checkpoint, good, run)
                saved = good.epoch
    except KeyboardInterrupt as exc:
        if checkpoint is not None:
            save_checkpoint(checkpoint, good, run)
        raise TrainingInterrupted(epochs_done=good.epoch, epochs=settings.epochs, checkpoint=checkpoint) from exc
    finally:
        progress.close()
    params = network.params if best["best_params"] is None else best["best_params"]
    best_epoch = best["best_epoch"] if len(y_val) else history["epoch"][-1]
    return _model(network, params, dataset, settings, seed, history, best_epoch,
                  (x_train, y_train), (x_val, y_val))
