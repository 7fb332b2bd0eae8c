"""A scikit-learn compatible classifier around :func:`pyface.train`, without depending on scikit-learn."""

from __future__ import annotations

import inspect
import sys

import numpy as np

from .data.images import read_image
from .data.preprocess import Preprocessor
from .training import ARCHITECTURE_OPTIONS, DEFAULTS, TRAINING_OPTIONS, train

# The estimator's own parameters; every other one is an option of pyface.train, with its default.
OWN_PARAMETERS = ("image_size", "random_state", "quiet")
_D = DEFAULTS


class LSTMFaceClassifier:
    """Face classifier with the scikit-learn estimator interface.

    ``X`` is a sequence of face images (an array (N, H, W), colour or grey images of
    any size, or image paths); they are preprocessed to ``image_size`` pixels square
    with pyface's default preprocessing. ``y`` holds
    any labels; ``classes_`` are their sorted unique values. The parameters are those
    of :func:`pyface.train`, with its defaults (``"auto"`` where the value depends on
    ``open_set``); ``random_state`` is the seed (None: a fresh one every fit).
    """

    _estimator_type = "classifier"  # how scikit-learn before 1.6 recognises classifiers

    def __init__(
        self,
        image_size=64,
        hidden_size=_D["hidden_size"],
        num_layers=_D["num_layers"],
        bidirectional=_D["bidirectional"],
        views=_D["views"],
        pooling=_D["pooling"],
        dropout=_D["dropout"],
        head=_D["head"],
        cosine_scale=_D["cosine_scale"],
        conv_channels=_D["conv_channels"],
        conv_stride=_D["conv_stride"],
        epochs=_D["epochs"],
        batch_size=_D["batch_size"],
        learning_rate=_D["learning_rate"],
        lr_schedule=_D["lr_schedule"],
        warmup_epochs=_D["warmup_epochs"],
        weight_decay=_D["weight_decay"],
        clip_norm=_D["clip_norm"],
        label_smoothing=_D["label_smoothing"],
        class_weight=_D["class_weight"],
        augment=_D["augment"],
        validation_fraction=_D["validation_fraction"],
        patience=_D["patience"],
        blended_people=_D["blended_people"],
        open_set=_D["open_set"],
        target_far=_D["target_far"],
        calibration_people=_D["calibration_people"],
        precision=_D["precision"],
        descriptor=_D["descriptor"],
        random_state=0,
        quiet=True,
    ):
        self.image_size = image_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.views = views
        self.pooling = pooling
        self.dropout = dropout
        self.head = head
        self.cosine_scale = cosine_scale
        self.conv_channels = conv_channels
        self.conv_stride = conv_stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.blended_people = blended_people
        self.open_set = open_set
        self.target_far = target_far
        self.calibration_people = calibration_people
        self.precision = precision
        self.descriptor = descriptor
        self.random_state = random_state
        self.quiet = quiet

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters and their current values (none is an estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> LSTMFaceClassifier:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k]]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # Only scikit-learn asks for its tags, so it is loaded by then; taking its
        # classes from sys.modules keeps pyface from importing it.
        sk = sys.modules["sklearn.utils"]
        return sk.Tags(
            estimator_type="classifier",
            target_tags=sk.TargetTags(required=True),
            classifier_tags=sk.ClassifierTags(),
            input_tags=sk.InputTags(two_d_array=False, three_d_array=True),
            non_deterministic=self.random_state is None,
        )

    def fit(self, X, y) -> LSTMFaceClassifier:
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} images but y has {len(y)} labels")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        params = self.get_params()
        options = {name: params[name] for name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS}
        self.model_ = train(
            _images(X), y_index, names=[str(c) for c in self.classes_],
            preprocessor=Preprocessor(size=self.image_size), seed=self.random_state, quiet=self.quiet, **options,
        )
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (N, len(classes_)); column k is ``classes_[k]``."""
        self._check_fitted()
        return self.model_.predict_proba(_images_or_paths(X))

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy, optionally weighted."""
        correct = (self.predict(X) == np.asarray(y)).astype(np.float64)
        return float(np.average(correct, weights=sample_weight))


def _images_or_paths(X):
    return X if isinstance(X, np.ndarray) else list(X)


def _images(X) -> list:
    return [read_image(x) if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__") else np.asarray(x)
            for x in _images_or_paths(X)]
