"""How a network is trained: the settings of a run and the names of every option of ``pyface.train``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..kernel.reference import PRECISIONS
from ..nn.network import Architecture
from ..recognition.descriptor import CLOSED_SET_CHOICE, OPEN_SET_CHOICE, descriptor_kinds
from .augment import Augmentation

CLASS_WEIGHTS = (None, "balanced")


@dataclass(frozen=True)
class TrainingSettings:
    """How a network is trained. The defaults were chosen on ORL and LFW (see docs/experiments.md)."""

    # 150 rather than 100 since blended people became a default: on LFW's held-out people
    # 64.5 / 61.8 % -> 68.3 / 64.1 % (seeds 0 / 1) for half as long again (docs/experiments.md).
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-3
    lr_schedule: str = "cosine"
    warmup_epochs: int = 2
    weight_decay: float = 1e-4
    clip_norm: float | None = 5.0
    label_smoothing: float = 0.0
    class_weight: str | None = "balanced"
    augment: Augmentation | None = Augmentation()
    validation_fraction: float = 0.0
    patience: int = 20
    # The count: pyface.train's "auto" is resolved by blended_count before a run's settings are made.
    blended_people: int = 0
    open_set: bool = False
    target_far: float = 0.01
    calibration_people: float = 0.2
    # Files written before precision was an option were trained in float32.
    precision: str = "float32"
    # The fixed view of a face joined to the network's embedding and to the classifier's answers
    # (pyface.recognition.descriptor), fitted on the training people after training; None: the
    # network alone, as in files written before it was an option.
    descriptor: str | None = None

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay}")
        # Decoupled decay multiplies the weights by 1 - learning_rate x weight_decay at each step:
        # at 1 or more that flips or zeroes them instead of shrinking them.
        if self.learning_rate * self.weight_decay >= 1:
            raise ValueError(f"learning_rate x weight_decay must be below 1 (each step multiplies the weights by "
                             f"1 minus it), got {self.learning_rate} x {self.weight_decay}")
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
            raise ValueError(f"blended_people must be a non-negative integer or 'auto', got {self.blended_people!r}")
        if not isinstance(self.open_set, (bool, np.bool_)):
            raise ValueError(f"open_set must be True or False, got {self.open_set!r}")
        if not 0.0 <= self.target_far < 1.0:
            raise ValueError(f"target_far must be a fraction in [0, 1), got {self.target_far}")
        if not 0.0 < self.calibration_people < 1.0:
            raise ValueError(f"calibration_people must be a fraction in (0, 1), got {self.calibration_people}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.descriptor is not None:
            descriptor_kinds(self.descriptor)

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


# Options of pyface.train that shape the network, and those that shape its training: one
# list each, from which the signature of pyface.train is checked and the estimator's
# parameters are derived.
ARCHITECTURE_OPTIONS = tuple(f.name for f in fields(Architecture) if f.name not in ("n_classes", "image_size"))
TRAINING_OPTIONS = tuple(f.name for f in fields(TrainingSettings))
AUTO = "auto"
# The network pyface.train builds unless told otherwise, where it differs from the plain
# Architecture (LSTMs reading pixels, dense head: what files without these fields hold). Chosen
# on LFW's held-out people and ORL (docs/experiments.md, "Two convolutions and the cosine head"):
# the cosine head took LFW from 47.5 to 62.5 % with ORL unchanged, with the convolutions below.
# Dropout 0.4 rather than 0.2, with the weight decay below: LFW 67.2 / 64.1 -> 71.8 / 71.0 %
# (seeds 0 / 1, one thread; docs/experiments.md, "Stronger regularisation").
CHOSEN_ARCHITECTURE = {"head": "cosine", "dropout": 0.4}
# The same for the training, where it differs from TrainingSettings (what older files hold):
# a weight decay of 0.2 (decoupled: each step shrinks the weights by learning rate x 0.2) where
# 1e-4 did next to nothing: with about ten photos per person the network learnt them by heart.
CHOSEN_TRAINING = {"weight_decay": 0.2}
# Options whose default, "auto", is one value for a model of the people it was trained on and
# another for open_set=True. For the former: two 3 x 3 convolutions in front of the LSTMs and
# a cosine scale of 32 (with the cosine head above, LFW 47.5 -> 62.5 %); as many blended people
# as real ones ("auto" again: blended_count says how many), which took LFW's held-out people
# from 62.5 / 60.2 % to 64.5 / 61.8 % (seeds 0 / 1) with ORL unchanged, at twice the images per
# epoch ("Blended people for every model"), and with them 150 epochs rather than 100. Both
# histograms as a second view joined to the classifier's answers: 71.8 / 71.0 -> 85.7 / 84.6 %
# (seeds 0 / 1), ORL 99.0 -> 99.75 % over seeds 0-4 ("A stronger second view"); all five
# histograms where the faces can give them: 86.9 / 85.3 % (descriptor.CLOSED_SET_CHOICE).
CLOSED_SET_CHOICES = {"hidden_size": 64, "conv_channels": (16, 32), "cosine_scale": 32.0, "epochs": 150,
                      "augment": Augmentation(), "blended_people": AUTO, "descriptor": CLOSED_SET_CHOICE}
# What open_set=True takes instead (chosen on ORL, docs/experiments.md "Open set"): a larger
# scale, wider shifts, turns and zooms, more epochs, and 100 made-up blended people, which teach
# finer differences between faces. The LSTMs read the pixels: with the default convolutions the
# EER of unseen ORL people rose from 8.3 / 8.0 % to 12.0 / 11.1 % (seeds 0 / 1), while on LFW
# they were not shown to help. It keeps the cosine head, no label smoothing, dropout 0.4 and
# weight decay 0.2 of the defaults; the last two lowered the EER of unseen ORL people from 8.3 to
# 7.9 % on average over seeds 0-4 and of LFW's held-out people from 28.9 to 27.9 %
# (docs/experiments.md, "Stronger regularisation"). 128 LSTM units rather than 64 named 42.0
# rather than 37.0 % of LFW's held-out people right from 5 photos each (EER 26.1 / 26.6 %), with
# ORL's unseen people no better or worse (EER 8.7 / 6.7 % against 7.2 / 7.1 %, seeds 0 / 1), at
# 2.4 times the training time: 25 minutes for the general model on two cores ("The open-set
# recipe with wider LSTMs or with the convolutions"). The embedding joins the network's with
# both histograms projected by a discriminant fitted on the training people, at the share
# chosen on the kept-out people: the general model named 40.7 -> 66.3 % of LFW's held-out
# people right, with an EER of 25.7 -> 18.7 %, and ORL's unseen people's EER went from 7.8 /
# 8.3 % to 6.9 / 7.8 % (seeds 0 / 1; "A second view: gradient histograms beside the LSTMs",
# "A stronger second view"). A second, richer view (all five histograms) is fitted beside it and
# the kept-out people choose between them: on LFW it takes the EER to 15.6 %, on ORL it would
# raise it to 9.1 / 8.3 % and is not chosen (descriptor.OPEN_SET_CHOICE; "Local phase, wider
# patterns and weighted directions").
OPEN_SET_RECIPE = {"hidden_size": 128, "conv_channels": 0, "cosine_scale": 64.0, "epochs": 200,
                   "augment": Augmentation(shift=0.1, rotation=10.0, scale=0.1), "blended_people": 100,
                   "descriptor": OPEN_SET_CHOICE}
DEFAULTS = {**{f.name: f.default for cls in (Architecture, TrainingSettings) for f in fields(cls)
               if f.name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS},
            **CHOSEN_ARCHITECTURE, **CHOSEN_TRAINING, **{name: AUTO for name in OPEN_SET_RECIPE}}


def blended_count(blended_people, n_people: int):
    """How many blended people ``blended_people`` asks for with ``n_people`` real ones.

    ``"auto"``: one per real person, as far as there are pairs of people to blend
    (n (n - 1) / 2); anything else is returned as it is, for TrainingSettings to check.
    """
    if blended_people != AUTO:
        return blended_people
    return min(n_people, n_people * (n_people - 1) // 2)


def options_from(arguments: dict) -> dict:
    """Every architecture and training option from the arguments of ``pyface.train`` (or a function
    taking the same options), in one form: ``augment`` an Augmentation, None or "auto", sequences tuples.

    Options left at "auto" stay so: :func:`resolved` says what they stand for, and a resumed
    run takes them from its checkpoint.
    """
    options = {name: arguments[name] for name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS}
    for name in OPEN_SET_RECIPE:
        value = options[name]
        if isinstance(value, str) and value != AUTO and name != "descriptor":  # its values are names
            raise ValueError(f"{name} must be a value or {AUTO!r}, got {value!r}")
    options["augment"] = augmentation(options["augment"])
    options["views"] = tuple(options["views"])
    if isinstance(options["conv_channels"], list):  # as JSON gives it: the same as the tuple
        options["conv_channels"] = tuple(options["conv_channels"])
    return options


def resolved(options: dict) -> dict:
    """``options`` with every "auto" replaced by its value: the open-set recipe's with ``open_set``,
    the closed-set choice otherwise (``blended_people`` may stay "auto": :func:`blended_count`)."""
    chosen = OPEN_SET_RECIPE if options["open_set"] else CLOSED_SET_CHOICES
    return {name: chosen[name] if name in chosen and _is_auto(value) else value for name, value in options.items()}


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO


def augmentation(value) -> Augmentation | str | None:
    """``augment`` as given to ``pyface.train``: an Augmentation, a dict of its fields, True/False, None or "auto"."""
    if _is_auto(value):
        return value
    if value is True:
        return Augmentation()
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        return Augmentation(**value)
    if isinstance(value, Augmentation):
        return value
    raise TypeError(f"augment must be an Augmentation, a dict of its fields, True, False, None or 'auto'; "
                    f"got {value!r}")
