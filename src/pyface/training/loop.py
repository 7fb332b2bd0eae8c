"""The training loop: epochs of mini-batches, validation and early stopping, checkpoints, the final model."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..data.dataset import FaceDataset
from ..kernel.runtime import check_precision
from ..nn.network import Architecture, Network, init_parameters
from ..nn.optim import Adam
from ..recognition.descriptor import FaceDescriptor, check_fittable, descriptor_kinds
from ..recognition.recognizer import FaceRecognizer
from ..recognition.references import open_set_reference
from .checkpoint import TrainingState, data_fingerprint, load_checkpoint, save_checkpoint
from .data import RunData, calibration_people, run_data
from .epoch import Schedule, evaluate_loss, train_epoch
from .errors import TrainingDivergedError, TrainingInterrupted, TrainingStalledWarning
from .settings import ARCHITECTURE_OPTIONS, AUTO, DEFAULTS, TRAINING_OPTIONS, TrainingSettings, blended_count, resolved
from .state import HISTORY_KEYS, EarlyStopping, capture, restore, run_generators
from .step import GradientFunction, batch_gradients, class_weights

__all__ = ["fit"]


@dataclass
class _Setup:
    """What a run is: its architecture, settings and seed, the checkpoint's description of it, where it resumes."""

    arch: Architecture
    settings: TrainingSettings
    seed: int | None
    entropy: int
    description: dict
    resumed: TrainingState | None


def _resumed(path, options: dict, description: dict) -> _Setup:
    """The run saved at ``path``, after checking that it has the same data and that ``options`` agree with it.

    Options left at their default (among them every "auto") are taken from the checkpoint; any
    other must equal it.
    """
    state, saved = load_checkpoint(path)
    if {key: saved.get(key) for key in description} != description:
        raise ValueError(f"cannot resume from {os.fspath(path)}: it was made with other images, "
                         "people or preprocessing")
    arch = Architecture.from_dict(saved["architecture"])
    settings = TrainingSettings.from_dict(saved["settings"])
    saved_options = {**{n: getattr(arch, n) for n in ARCHITECTURE_OPTIONS},
                     **{n: getattr(settings, n) for n in TRAINING_OPTIONS}}
    given = {n: v for n, v in options.items() if v != DEFAULTS[n]}
    differing = [n for n, v in given.items() if v != saved_options[n]]
    if differing:
        raise ValueError(f"cannot resume from {os.fspath(path)} with other options than it was started with: "
                         + ", ".join(f"{n} (checkpoint: {saved_options[n]!r})" for n in differing))
    return _Setup(arch, settings, saved["seed"], saved["entropy"], saved, state)


def _setup(dataset: FaceDataset, options: dict, validation_data: FaceDataset | None, seed: int | None,
           resume) -> _Setup:
    images = np.asarray(dataset.images, dtype=np.float32)
    description = {"names": dataset.names, "preprocessor": dataset.preprocessor.to_dict(),
                   "data": data_fingerprint(images, dataset.labels, *(() if validation_data is None else
                                                                       (validation_data.images,
                                                                        validation_data.labels)))}
    if resume is not None:
        return _resumed(resume, options, description)
    auto_descriptor = options["descriptor"] == AUTO
    options = resolved(options)
    chosen = {n: options[n] for n in TRAINING_OPTIONS}
    chosen["blended_people"] = blended_count(chosen["blended_people"], len(np.unique(dataset.labels)))
    if auto_descriptor:
        # "auto" trains on what it is given; a descriptor asked for fails clearly.
        chosen["descriptor"] = _fittable_kind(dataset.labels, images.shape[1], chosen["descriptor"])
    settings = TrainingSettings(**chosen)
    arch = Architecture(n_classes=len(dataset.names) + settings.blended_people, image_size=images.shape[1],
                        **{n: options[n] for n in ARCHITECTURE_OPTIONS})
    # seed=None draws fresh entropy; recording it lets a checkpoint of such a run resume.
    entropy = np.random.SeedSequence(seed).entropy
    description.update(architecture=arch.to_dict(), settings=settings.to_dict(), seed=seed, entropy=entropy)
    return _Setup(arch, settings, seed, entropy, description, None)


def _fittable_kind(labels: np.ndarray, size: int, kind: str) -> str | None:
    """The kinds of ``kind`` that can be fitted on faces of ``size`` pixels (patterns of the
    half-size face need 32), joined with "|", or None where none can."""
    fittable = []
    for candidate in descriptor_kinds(kind):
        try:
            check_fittable(labels, size, candidate)
        except ValueError:
            continue
        fittable.append(candidate)
    return "|".join(fittable) or None


class _Run:
    """A run in progress: the network, optimizer and generators, and what the epochs recorded."""

    def __init__(self, dataset: FaceDataset, setup: _Setup, data: RunData, network: Network,
                 rngs: dict, gradients: GradientFunction, calibration: FaceDataset | None):
        self.dataset, self.setup, self.data, self.network, self.rngs = dataset, setup, data, network, rngs
        self.gradients = gradients
        self.calibration = None if calibration is None else (np.asarray(calibration.images, np.float32),
                                                             calibration.labels)
        settings = setup.settings
        self.weights = class_weights(data.fit[1], setup.arch.n_classes) if settings.class_weight == "balanced" else None
        self.optimizer = Adam(network.params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        self.schedule = Schedule.of(len(data.fit[1]), settings)
        self.history = {key: [] for key in HISTORY_KEYS}
        self.stopping = EarlyStopping()
        self._descriptors = None
        if setup.resumed is not None:
            self.history, self.stopping = restore(setup.resumed, network, self.optimizer, rngs)
        # The last completed epoch, copied aside: Ctrl-C or a divergence mid-epoch falls back to it.
        self.good = self._capture(len(self.history["epoch"]))

    @property
    def validating(self) -> bool:
        return len(self.data.validation[1]) > 0

    def _capture(self, epoch: int) -> TrainingState:
        return capture(epoch, self.network, self.optimizer, self.rngs, self.history, self.stopping)

    def epoch(self, epoch: int) -> dict[str, str]:
        """Train epoch ``epoch`` (0-based) and record it; returns the figures for the progress bar."""
        started = time.perf_counter()
        loss, accuracy, lr = train_epoch(self.network, self.optimizer, *self.data.fit, self.weights,
                                         self.setup.settings, self.rngs, self.schedule, gradients=self.gradients)
        shown = {"loss": f"{loss:.3f}", "acc": f"{accuracy:.3f}"}
        if self.validating:
            val_loss, val_acc = evaluate_loss(self.network, *self.data.validation)
            if not np.isfinite(val_loss):
                raise FloatingPointError(f"the validation loss became {val_loss}")
            self.history["val_loss"].append(val_loss)
            self.history["val_accuracy"].append(val_acc)
            shown["val_acc"] = f"{val_acc:.3f}"
            self.stopping.update(epoch + 1, val_acc, val_loss, self.network.params)
        for key, value in (("epoch", epoch + 1), ("loss", loss), ("accuracy", accuracy), ("lr", lr),
                           ("seconds", time.perf_counter() - started)):
            self.history[key].append(value)
        self.good = self._capture(epoch + 1)
        return shown

    def descriptors(self) -> list[FaceDescriptor]:
        """The descriptors the settings ask for (one, or those the kept-out people choose from),
        fitted once on the real training images (they learn nothing from the network, so the
        last good model of a stopped run shares them)."""
        if self.setup.settings.descriptor is None:
            return []
        if self._descriptors is None:
            kinds = descriptor_kinds(self.setup.settings.descriptor)
            if self.calibration is None:
                kinds = kinds[:1]  # nobody kept out to choose: the first is kept, the others need no fit
            self._descriptors = [FaceDescriptor.fit(*self.data.train, kind=kind) for kind in kinds]
        return self._descriptors

    def model(self, params: dict, history: dict, best_epoch: int | None) -> FaceRecognizer:
        """A recognizer with a copy of ``params`` and the run's real people (blended people left out)."""
        people = len(self.dataset.names)
        final = Network(self.setup.arch, params, kernel=self.network.kernel).keep_classes(people)
        # The descriptor comes back chosen, with its share of the cosine, on the kept-out people.
        return FaceRecognizer(final, self.dataset.names, self.dataset.preprocessor,
                              training={"seed": self.setup.seed, **self.setup.settings.to_dict()},
                              history={**history, "best_epoch": best_epoch},
                              **open_set_reference(final, self.data.train, self.data.validation,
                                                   calibration=self.calibration, descriptor=self.descriptors(),
                                                   target_far=self.setup.settings.target_far))

    def last_good_model(self) -> FaceRecognizer:
        good = self.good
        return self.model(good.params, good.history, good.best_epoch if self.validating else good.epoch)

    def final_model(self) -> FaceRecognizer:
        params = self.network.params if self.stopping.best_params is None else self.stopping.best_params
        best_epoch = self.stopping.best_epoch if self.validating else self.history["epoch"][-1]
        return self.model(params, self.history, best_epoch)


def _epochs(run: _Run, *, quiet: bool | None, checkpoint: str | None, checkpoint_every: int | None) -> None:
    """Every remaining epoch of ``run``, with progress, checkpoints, early stopping, divergence and Ctrl-C."""
    settings = run.setup.settings
    progress = tqdm(range(run.good.epoch, settings.epochs), initial=run.good.epoch, total=settings.epochs,
                    desc="training", unit="epoch", leave=False,
                    # None: tqdm shows the bar only when stderr is a terminal.
                    disable=None if quiet is None else quiet)
    saved = None  # the epoch of the checkpoint this call last wrote
    try:
        for epoch in progress:
            if run.validating and run.stopping.exhausted(settings.patience):
                break
            try:
                progress.set_postfix(run.epoch(epoch))
            except FloatingPointError as exc:
                kept = f"the weights of epoch {run.good.epoch} are kept"
                if saved is not None:
                    kept += f" (checkpoint {checkpoint} holds epoch {saved})"
                raise TrainingDivergedError(
                    f"training diverged in epoch {epoch + 1}: {exc}; {kept}; "
                    f"try a lower learning rate than {settings.learning_rate}",
                    epoch=epoch + 1, checkpoint=None if saved is None else checkpoint, model=run.last_good_model(),
                ) from exc
            if checkpoint is not None and checkpoint_every is not None and run.good.epoch % checkpoint_every == 0:
                save_checkpoint(checkpoint, run.good, run.setup.description)
                saved = run.good.epoch
    except KeyboardInterrupt as exc:
        if checkpoint is not None:
            save_checkpoint(checkpoint, run.good, run.setup.description)
        raise TrainingInterrupted(epochs_done=run.good.epoch, epochs=settings.epochs, checkpoint=checkpoint) from exc
    finally:
        progress.close()


def fit(dataset: FaceDataset, options: dict, *, gradients: GradientFunction = batch_gradients,
        validation_data: FaceDataset | None = None, seed: int | None = 0, quiet: bool | None = None, kernel=None,
        checkpoint=None, checkpoint_every: int | None = 1, resume=None) -> FaceRecognizer:
    """Train on ``dataset`` with ``options`` (a value for every architecture and training option).

    What :func:`pyface.train` does once it has checked its arguments. ``gradients``
    computes the gradients of each batch (in this process by default; a cluster's
    workers in :mod:`pyface.distributed`); everything else is the same for both.
    """
    if set(options) != set(ARCHITECTURE_OPTIONS + TRAINING_OPTIONS):
        raise TypeError(f"options must name every training option, got {sorted(options)}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1 or None, got {checkpoint_every}")
    if len(dataset) == 0:
        raise ValueError("cannot train on an empty dataset")
    present = np.unique(dataset.labels)
    if len(present) < 2:
        raise ValueError(f"training needs images of at least two people, got only {dataset.names[present[0]]!r}")
    calibration = None
    if options["open_set"]:
        # Drawn from the seed alone, so that a resumed run keeps out the same people.
        dataset, calibration = calibration_people(dataset, options["calibration_people"],
                                                  run_generators(np.random.SeedSequence(seed).entropy)["calibrate"])
    setup = _setup(dataset, options, validation_data, seed, resume)
    if kernel is None:  # the native kernel: a precision it cannot run here fails now, not after the data is ready
        check_precision(setup.settings.precision)
    rngs = run_generators(setup.entropy)
    network = Network(setup.arch, init_parameters(setup.arch, rngs["init"]), kernel=kernel,
                      precision=setup.settings.precision)
    data = run_data(dataset, validation_data, setup.settings, rngs)
    if setup.settings.descriptor is not None:  # fitted after training: a failure now, not then
        check_fittable(data.train[1], data.train[0].shape[1], setup.settings.descriptor)
    run = _Run(dataset, setup, data, network, rngs, gradients, calibration)
    _epochs(run, quiet=quiet, checkpoint=None if checkpoint is None else os.fspath(checkpoint),
            checkpoint_every=checkpoint_every)
    model = run.final_model()
    _warn_if_stalled(model, *run.data.train)
    return model


def _warn_if_stalled(model: FaceRecognizer, images: np.ndarray, labels: np.ndarray) -> None:
    """Warn when ``model`` names its own training images (without augmentation or dropout) no
    more often right than guessing would, with three standard deviations' luck."""
    _, accuracy = evaluate_loss(model.network, images, labels)
    chance = 1.0 / len(model.names)
    if accuracy <= chance + 3.0 * np.sqrt(chance * (1.0 - chance) / len(labels)):
        warnings.warn(f"the trained model names {accuracy:.1%} of its own training images right, no better than "
                      f"guessing among {len(model.names)} people ({chance:.1%}): it does not tell them apart; "
                      "train longer, or with a lower learning_rate or fewer conv_channels",
                      TrainingStalledWarning, stacklevel=4)
