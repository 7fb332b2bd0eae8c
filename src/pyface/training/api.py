"""``pyface.train``: every option named, checked, and handed to the training loop."""

from __future__ import annotations

from ..data.dataset import FaceDataset
from ..data.preprocess import Preprocessor
from ..recognition.recognizer import FaceRecognizer
from .augment import Augmentation
from .data import as_dataset
from .loop import fit
from .settings import options_from

__all__ = ["train"]


def train(data, labels=None, *, names=None, preprocessor: Preprocessor | None = None,
          validation_data: FaceDataset | None = None,
          hidden_size: int | str = "auto", num_layers: int = 2, bidirectional: bool = True,
          views: tuple[str, ...] = ("rows", "columns"), pooling: str = "mean", dropout: float = 0.4,
          head: str = "cosine", cosine_scale: float | str = "auto", conv_channels: int | tuple[int, ...] | str = "auto",
          conv_stride: int = 2,
          epochs: int | str = "auto", batch_size: int = 32, learning_rate: float = 3e-3, lr_schedule: str = "cosine",
          warmup_epochs: int = 2, weight_decay: float = 0.2, clip_norm: float | None = 5.0,
          label_smoothing: float = 0.0, class_weight: str | None = "balanced",
          augment: Augmentation | dict | bool | str | None = "auto",
          validation_fraction: float = 0.0, patience: int = 20, blended_people: int | str = "auto",
          open_set: bool = False, target_far: float = 0.01, calibration_people: float = 0.2,
          precision: str = "float32", descriptor: str | None = "auto",
          seed: int | None = 0, quiet: bool | None = None, checkpoint=None, checkpoint_every: int | None = 1,
          resume=None, kernel=None) -> FaceRecognizer:
    """Train a face recognizer.

    Data
        ``data`` is a :class:`~pyface.FaceDataset`, or images (N, H, W) with ``labels``
        (integers indexing ``names``, or any labels whose sorted unique values become the
        names); such images go through ``preprocessor`` (default ``Preprocessor()``),
        which the model keeps for prediction. The data must show at least two people.
        ``validation_data`` (a FaceDataset preprocessed alike) is watched for early stopping.

    Network (chosen on ORL and LFW, docs/experiments.md)
        ``hidden_size`` LSTM units per direction (>= 1; ``"auto"``: 64, or 128 with
        ``open_set``); ``num_layers`` stacked LSTMs
        (>= 1); ``bidirectional`` also reads every sequence backwards; ``views`` the
        readings of an image, among ``"rows"`` and ``"columns"``; ``pooling`` ``"mean"``
        over time or ``"last"`` state; ``dropout`` in [0, 1) between layers and on the
        summary; ``head`` ``"dense"`` (softmax over a linear layer) or ``"cosine"``
        (``cosine_scale`` > 0 times the cosine with each person's weight row; ``"auto"``:
        32, or 64 with ``open_set``); ``conv_channels`` > 0 puts a 3 x 3 convolution with
        that many channels and ReLU, of ``conv_stride`` 1 or 2 (pixels), in front of the
        LSTMs, which then read its maps instead of the pixels (0: they read the pixels); a
        sequence of channel counts stacks one such convolution per entry, each of
        ``conv_stride`` (``"auto"``: ``(16, 32)``, or 0 with ``open_set``).

    Training
        ``epochs`` passes over the images (>= 1; ``"auto"``: 150, or 200 with
        ``open_set``); ``batch_size`` images per step (>= 1);
        AdamW with peak ``learning_rate`` (> 0) under ``lr_schedule`` ``"cosine"`` or
        ``"constant"`` after ``warmup_epochs`` of linear warm-up, ``weight_decay`` (>= 0,
        decoupled: each step multiplies the weight matrices by 1 - learning rate x
        ``weight_decay``, so the product must stay below 1); gradients clipped to a
        global norm of ``clip_norm`` (None: never); ``label_smoothing`` in [0, 1); ``class_weight`` ``"balanced"`` (each
        person weighs the same) or None; ``augment`` an :class:`~pyface.Augmentation`,
        a dict of its fields, True for ``Augmentation()``, False or None for none (``"auto"``:
        ``Augmentation()``, or wider shifts, turns and zooms with ``open_set``).
        ``validation_fraction`` in [0, 1) of each person's images is held out: training
        stops once its accuracy (then loss) has not improved for ``patience`` epochs and
        the best weights are restored. ``blended_people`` (>= 0) made-up people, each the
        pixel blend of a different pair of training people, are trained on beside the
        real ones and left out of the model; they teach finer differences between faces.
        The default ``"auto"`` makes one per real person (fewer with under four people,
        who have fewer pairs), which roughly doubles the images of an epoch, or 100 with
        ``open_set``; 0 turns them off.
        ``precision`` ``"float32"`` or ``"bfloat16"``: the number format of the LSTM's
        matrix products in training (weights, Adam state and everything else stay float32;
        the model predicts in float32 and records the precision it was trained in).
        ``"bfloat16"`` needs a CPU path for it (``pyface.info()["bf16"]``) and raises
        ``ValueError`` naming what the CPU lacks before any work where there is none.

    Open set
        ``open_set=True`` trains a model for people it has never seen: the options left at
        ``"auto"`` take the open-set recipe's values (``pyface.training.OPEN_SET_RECIPE``:
        128 LSTM units, wider augmentation, 200 epochs, 100 blended people, a cosine scale
        of 64, the LSTMs reading the pixels); options given a value keep it. A share
        ``calibration_people`` in (0, 1) of the people with two or more images (at least
        two people) is kept out of training to measure the default thresholds on, as
        strangers are. Both default thresholds let in a share
        ``target_far`` in [0, 1) of strangers where they were measured
        (``model.calibration`` says where, with the error rates and curves). ``descriptor``
        is a fixed second view of each face: histograms of gradient orientations
        (``"hog"``), of local binary patterns (``"lbp"``), both (``"hog+lbp"``), or these with
        patterns two pixels wide and of the half-size face, and local phase
        (``"hog+lbp+lbp2+lbph+lpq"``), projected by a linear discriminant fitted on the
        training people once the network is trained (:mod:`pyface.recognition.descriptor`;
        seconds: on 3,870 faces, one thread, 12 s for both histograms, 26 s for all five). It is joined to the network's embedding, with the share of
        the cosine that verifies the kept-out people best when there are some (``open_set``),
        and to the classifier's answers (:meth:`FaceRecognizer.predict_proba`). Several kinds
        joined with ``"|"`` are each fitted, and the kept-out people choose the one (and
        share) that verifies them best (without kept-out people, the first). None: the network
        alone. ``"auto"``: ``"hog+lbp+lbp2+lbph+lpq|hog+lbp"`` (all five where the faces can
        give them), or with ``open_set`` ``"hog+lbp|hog+lbp+lbp2+lbph+lpq"`` (all five verify
        LFW's photos better, both ORL's faces), of those that can be fitted
        (two people, one of them with two or more images; faces of 16 pixels or more, 32 for
        all five), else None.

    Runs
        The same ``seed`` with the same data, options and kernel thread count gives the
        same model (None: fresh entropy). The progress bar shows on a terminal (``quiet=None``),
        always (``quiet=False``) or never (``quiet=True``): logs of scripts get no redraws.
        ``checkpoint`` (a path) receives everything needed to resume, atomically, every
        ``checkpoint_every`` epochs (None: only on Ctrl-C). Ctrl-C raises
        :class:`~pyface.TrainingInterrupted` (a ``KeyboardInterrupt``) after saving the
        last completed epoch there. ``resume`` (a checkpoint path) continues such a run
        with the same data: its settings and seed are the checkpoint's, options given
        other than their defaults must agree with them, and the final weights are those
        of an uninterrupted run. NaN or infinity in the loss, gradients or weights stops
        training with :class:`~pyface.TrainingDivergedError`, which carries the last good
        model. ``kernel`` replaces the native LSTM kernel (tests only).
    """
    options = options_from(locals())
    dataset = as_dataset(data, labels, names, preprocessor)
    return fit(dataset, options, validation_data=validation_data, seed=seed, quiet=quiet, kernel=kernel,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
