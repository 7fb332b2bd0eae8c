"""The recognition network: stacked LSTMs reading an image as sequences, then a dense layer.

An image of S x S pixels is read as a sequence of S rows (each row one timestep of
S pixels) and, optionally, as the sequence of its S columns. Every reading has its
own stack of LSTM layers; a bidirectional layer runs a second LSTM backwards in time
and concatenates both outputs. The last layer of each reading is summarised either
by its final hidden state or by the mean of its outputs over time, the summaries of
all readings are concatenated, and a dense layer maps them to one score per person.
The ``cosine`` head scores a person by the cosine between the summary and that
person's weight row instead (times a fixed scale), which trains summaries whose
direction, not length, tells people apart: what face verification compares.

With ``conv_channels`` the readings are of a convolutional front end instead of the
pixels (:mod:`pyface.nn.conv`): 3 x 3 convolutions with ReLU, one per entry of
``conv_channels`` (a whole number is one layer), each of ``conv_stride``; the last
layer's maps (S', S', C) are read as S' rows of S' x C values, and as S' columns.

The LSTM layers run through the native kernel; everything else is NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ..kernel.blas import one_blas_thread
from .conv import KERNEL, conv_backward, conv_forward, output_size
from .functional import unit_rows, unit_rows_backward

VIEWS = ("rows", "columns")
# The LSTMs read a pixel p in [0, 1] as _INPUT_SCALE * p - 1.
_INPUT_SCALE = 2
POOLINGS = ("last", "mean")
HEADS = ("dense", "cosine")


@dataclass(frozen=True)
class Architecture:
    """Shape of a network. ``n_classes`` and ``image_size`` come from the data."""

    n_classes: int
    image_size: int = 64
    hidden_size: int = 64
    num_layers: int = 2
    bidirectional: bool = True
    views: tuple[str, ...] = ("rows", "columns")
    pooling: str = "mean"
    dropout: float = 0.2
    # Files written before the head was an option have no such field: they are "dense".
    head: str = "dense"
    cosine_scale: float = 16.0
    # Files written before the front end existed have neither field: the LSTMs read pixels.
    # A whole number C is one layer of C channels (0: none); a sequence, one layer per entry.
    conv_channels: int | tuple[int, ...] = 0
    conv_stride: int = 2

    def __post_init__(self):
        object.__setattr__(self, "views", tuple(self.views))
        # NumPy integers become ints, so that the model file's JSON can hold them.
        channels = self.conv_channels
        if isinstance(channels, (list, tuple)):
            object.__setattr__(self, "conv_channels", tuple(_as_int(v) for v in channels))
        else:
            object.__setattr__(self, "conv_channels", _as_int(channels))
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be at least 1, got {self.n_classes}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be at least 1, got {self.image_size}")
        if self.hidden_size < 1:
            raise ValueError(f"hidden_size must be at least 1, got {self.hidden_size}")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        if not self.views or any(v not in VIEWS for v in self.views) or len(set(self.views)) != len(self.views):
            raise ValueError(f"views must be distinct names among {VIEWS}, got {self.views}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if not self.cosine_scale > 0:
            raise ValueError(f"cosine_scale must be positive, got {self.cosine_scale}")
        if not _valid_conv_channels(self.conv_channels):
            raise ValueError("conv_channels must be a whole number >= 0 (0: no convolution) or a non-empty "
                             f"sequence of whole numbers >= 1 (one layer each), got {self.conv_channels!r}")
        if isinstance(self.conv_stride, bool) or not isinstance(self.conv_stride, int) or self.conv_stride not in (1, 2):
            raise ValueError(f"conv_stride must be 1 or 2, got {self.conv_stride!r}")

    @property
    def conv_layers(self) -> tuple[int, ...]:
        """Channels of each convolution of the front end, first to last (empty: none)."""
        channels = self.conv_channels  # __post_init__ made it an int or a tuple
        return channels if isinstance(channels, tuple) else ((channels,) if channels else ())

    def conv_sizes(self) -> list[int]:
        """Side of the input of each convolution, then of the last maps."""
        sizes = [self.image_size]
        for _ in self.conv_layers:
            sizes.append(output_size(sizes[-1], self.conv_stride))
        return sizes

    @property
    def sequence_length(self) -> int:
        """Timesteps of every reading: the rows (or columns) the LSTMs read."""
        return self.conv_sizes()[-1]

    @property
    def step_size(self) -> int:
        """Values the first LSTM layer reads per timestep."""
        layers = self.conv_layers
        return self.sequence_length * (layers[-1] if layers else 1)

    @property
    def directions(self) -> tuple[str, ...]:
        return ("fwd", "bwd") if self.bidirectional else ("fwd",)

    @property
    def feature_size(self) -> int:
        return len(self.views) * len(self.directions) * self.hidden_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["views"] = list(self.views)
        if isinstance(self.conv_channels, tuple):
            d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {sorted(unknown)}")
        return cls(**d)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        shapes = {}
        inputs = 1
        for layer, channels in enumerate(self.conv_layers):
            shapes[f"{conv_name(layer)}.weight"] = (channels, KERNEL * KERNEL * inputs)
            shapes[f"{conv_name(layer)}.bias"] = (channels,)
            inputs = channels
        for view in self.views:
            for layer in range(self.num_layers):
                inputs = self.step_size if layer == 0 else H * len(self.directions)
                for direction in self.directions:
                    prefix = f"{view}.{layer}.{direction}"
                    shapes[f"{prefix}.w_ih"] = (4 * H, inputs)
                    shapes[f"{prefix}.w_hh"] = (4 * H, H)
                    shapes[f"{prefix}.bias"] = (4 * H,)
        shapes["dense.weight"] = (self.n_classes, self.feature_size)
        if self.head == "dense":
            # A bias would let the cosine head favour a person whatever the face.
            shapes["dense.bias"] = (self.n_classes,)
        return shapes


def conv_name(layer: int) -> str:
    """Name of the parameters of convolution ``layer`` (0: "conv", as files with one layer have it; 1: "conv2")."""
    return "conv" if layer == 0 else f"conv{layer + 1}"


def _as_int(value):
    return int(value) if isinstance(value, np.integer) and not isinstance(value, np.bool_) else value


def _valid_conv_channels(value) -> bool:
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)
    if isinstance(value, tuple):
        return len(value) > 0 and all(whole(v) and v >= 1 for v in value)
    return whole(value) and value >= 0


def _glorot(rng: np.random.Generator, fan_out: int, fan_in: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_out, fan_in))


def _orthogonal_blocks(rng: np.random.Generator, H: int) -> np.ndarray:
    # One orthogonal H x H matrix per gate keeps the recurrent map norm-preserving
    # at the start, which is what lets gradients cross 64 timesteps.
    blocks = []
    for _ in range(4):
        q, r = np.linalg.qr(rng.standard_normal((H, H)))
        blocks.append(q * np.sign(np.diag(r)))
    return np.concatenate(blocks, axis=0)


def init_parameters(arch: Architecture, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Glorot input weights, orthogonal recurrent weights, forget-gate bias 1, He convolution weights."""
    H = arch.hidden_size
    params = {}
    for name, shape in arch.parameter_shapes().items():
        if name.endswith(".w_ih"):
            value = _glorot(rng, *shape)
        elif name.endswith(".w_hh"):
            value = _orthogonal_blocks(rng, H)
        elif name.endswith(".bias") and name != "dense.bias":
            value = np.zeros(shape)
            value[H : 2 * H] = 1.0  # remember by default until the data says otherwise
        elif name == "dense.weight":
            value = _glorot(rng, *shape)
        elif name.startswith("conv") and name.endswith(".weight"):
            # He: the ReLU halves the variance, which twice the fan-in's share restores.
            value = rng.standard_normal(shape) * np.sqrt(2.0 / shape[1])
        else:
            value = np.zeros(shape)
        params[name] = np.ascontiguousarray(value, dtype=dtype)
    return params


def non_finite_parameters(params: dict[str, np.ndarray]) -> list[str]:
    """Names of the arrays in ``params`` holding a NaN or an infinity."""
    return [name for name, value in params.items() if not np.isfinite(value).all()]


def _default_kernel():
    from ..kernel import lstm

    return lstm


class Network:
    """Forward and backward passes of an :class:`Architecture` over a parameter dict.

    ``kernel`` is any object with ``lstm_forward`` and ``lstm_backward`` of the native
    signature; the native one unless a test swaps in the NumPy reference. ``precision``
    (``"float32"`` or ``"bfloat16"``) is handed to every ``lstm_forward``; it is how the
    network computes, not part of what it is, so copies of it compute in float32 again
    unless told otherwise.
    """

    def __init__(self, arch: Architecture, params: dict[str, np.ndarray], kernel=None, precision: str = "float32"):
        expected = arch.parameter_shapes()
        if set(params) != set(expected):
            missing = sorted(set(expected) - set(params))
            extra = sorted(set(params) - set(expected))
            raise ValueError(f"parameters do not match the architecture (missing {missing}, unexpected {extra})")
        for name, shape in expected.items():
            if params[name].shape != shape:
                raise ValueError(f"parameter {name} has shape {params[name].shape}, expected {shape}")
        self.arch = arch
        self.params = params
        self.kernel = kernel if kernel is not None else _default_kernel()
        self.precision = precision

    @property
    def dtype(self):
        return self.params["dense.weight"].dtype

    def head_parameter_names(self) -> tuple[str, ...]:
        """Names of the head's parameters, whose first axis runs over the classes."""
        return tuple(name for name in self.arch.parameter_shapes() if name.startswith("dense."))

    def keep_classes(self, n_classes: int) -> Network:
        """A copy of the network scoring only the first ``n_classes`` classes, with copied weights."""
        if not 1 <= n_classes <= self.arch.n_classes:
            raise ValueError(f"n_classes must be in [1, {self.arch.n_classes}], got {n_classes}")
        head = self.head_parameter_names()
        params = {name: (value[:n_classes] if name in head else value).copy() for name, value in self.params.items()}
        return Network(replace(self.arch, n_classes=n_classes), params, kernel=self.kernel)

    def _sequences(self, images: np.ndarray, cache: dict | None = None) -> dict[str, np.ndarray]:
        """The sequences (N, T, step_size) each view's first layer reads; the front end's cache goes in ``cache``."""
        arch = self.arch
        S = arch.image_size
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (S, S):
            raise ValueError(f"images must have shape (N, {S}, {S}), got {images.shape}")
        # Centred inputs keep the gates away from saturation at the start.
        x = images.astype(self.dtype) * _INPUT_SCALE - 1
        if arch.conv_layers:
            maps, conv_caches = x, []
            for layer in range(len(arch.conv_layers)):
                name = conv_name(layer)
                maps, layer_cache = conv_forward(maps, self.params[f"{name}.weight"], self.params[f"{name}.bias"],
                                                 arch.conv_stride)
                conv_caches.append(layer_cache)
            if cache is not None:
                cache["conv"] = conv_caches
            n, T = len(maps), arch.sequence_length
            seqs = {"rows": lambda: maps.reshape(n, T, -1),
                    "columns": lambda: np.ascontiguousarray(maps.transpose(0, 2, 1, 3)).reshape(n, T, -1)}
        else:
            seqs = {"rows": lambda: np.ascontiguousarray(x),
                    "columns": lambda: np.ascontiguousarray(x.transpose(0, 2, 1))}
        return {view: seqs[view]() for view in arch.views}

    def dropout_masks(self, n_images: int, rng: np.random.Generator) -> list[np.ndarray]:
        """The dropout masks of one training pass over ``n_images`` images, in the order the pass uses them.

        One mask (n_images, S, width) between stacked layers of each view, then one
        (n_images, feature_size) on the summaries; kept units are scaled by 1/(1 - dropout).
        Row i of every mask belongs to image i, so a batch split into parts can take each
        part's rows: the randomness of an image does not depend on who computes it.
        """
        arch = self.arch
        if arch.dropout <= 0:
            return []
        keep = 1.0 - arch.dropout
        width = arch.hidden_size * len(arch.directions)
        shapes = [(n_images, arch.sequence_length, width)] * (len(arch.views) * (arch.num_layers - 1))
        shapes.append((n_images, arch.feature_size))
        return [(rng.random(shape) < keep).astype(self.dtype) / self.dtype.type(keep) for shape in shapes]

    def features(self, images: np.ndarray) -> np.ndarray:
        """Summaries (N, feature_size) of preprocessed images (N, S, S) in [0, 1], as the head sees them at test time."""
        with one_blas_thread():
            return self._features(images, training=False, masks=[])[0]

    def _features(self, images: np.ndarray, *, training: bool, masks: list[np.ndarray]):
        """The concatenated summaries (N, feature_size), dropped out by ``masks`` in training, and the LSTM cache."""
        arch, p, k = self.arch, self.params, self.kernel
        masks = iter(masks)
        cache = {"views": {}}
        summaries = []
        for view, inputs in self._sequences(images, cache).items():
            layers = []
            for layer in range(arch.num_layers):
                outputs, finals, caches = [], [], []
                for direction in arch.directions:
                    prefix = f"{view}.{layer}.{direction}"
                    y, (h_T, _), c = k.lstm_forward(
                        inputs, p[f"{prefix}.w_ih"], p[f"{prefix}.w_hh"], p[f"{prefix}.bias"],
                        reverse=direction == "bwd", training=training, precision=self.precision,
                    )
                    outputs.append(y)
                    finals.append(h_T)
                    caches.append(c)
                mask = None
                if layer < arch.num_layers - 1:
                    inputs = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
                    mask = next(masks, None)
                    if mask is not None:
                        inputs = inputs * mask
                elif arch.pooling == "last":
                    summaries.extend(finals)
                else:
                    summaries.extend(y.mean(axis=1) for y in outputs)
                layers.append({"caches": caches, "mask": mask})
            cache["views"][view] = layers
        features = np.concatenate(summaries, axis=1) if len(summaries) > 1 else summaries[0]
        mask = next(masks, None)
        if mask is not None:
            cache["mask"] = mask
            features = features * mask
        return features, cache

    def forward(self, images: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None,
                dropout_masks: list[np.ndarray] | None = None):
        """Scores (N, n_classes) for preprocessed images (N, S, S) in [0, 1].

        With ``training=True`` dropout is active and the second return value is the
        cache for :meth:`backward` (otherwise None); its masks are ``dropout_masks``
        (from :meth:`dropout_masks`) or, when not given, drawn from ``rng``.
        """
        masks: list[np.ndarray] = []
        if training and self.arch.dropout > 0:
            if dropout_masks is None:
                if rng is None:
                    raise ValueError("training with dropout needs a random generator or dropout masks")
                dropout_masks = self.dropout_masks(len(images), rng)
            masks = dropout_masks
        with one_blas_thread():
            features, cache = self._features(images, training=training, masks=masks)
            logits = self._head(features)
        if not training:
            return logits, None
        cache["features"] = features
        return logits, cache

    def _head(self, features: np.ndarray) -> np.ndarray:
        """Scores (N, n_classes) of summaries (N, feature_size)."""
        w = self.params["dense.weight"]
        if self.arch.head == "dense":
            return features @ w.T + self.params["dense.bias"]
        return self.arch.cosine_scale * (unit_rows(features) @ unit_rows(w).T)

    def _head_backward(self, dlogits: np.ndarray, features: np.ndarray) -> tuple[dict, np.ndarray]:
        """Gradients of the head's parameters and of the summaries (N, feature_size)."""
        w = self.params["dense.weight"]
        if self.arch.head == "dense":
            return {"dense.weight": dlogits.T @ features, "dense.bias": dlogits.sum(axis=0)}, dlogits @ w
        s = self.dtype.type(self.arch.cosine_scale)
        f_unit, w_unit = unit_rows(features), unit_rows(w)
        dw = unit_rows_backward(s * (dlogits.T @ f_unit), w, w_unit)
        dfeatures = unit_rows_backward(s * (dlogits @ w_unit), features, f_unit)
        return {"dense.weight": dw}, dfeatures

    def backward(self, dlogits: np.ndarray, cache: dict) -> dict[str, np.ndarray]:
        """Gradients of every parameter, given the gradient of the loss w.r.t. the scores."""
        with one_blas_thread():
            return self._backward(dlogits, cache, None)

    def image_gradients(self, images: np.ndarray, dlogits: Callable[[np.ndarray], np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The gradient w.r.t. the pixels of preprocessed ``images`` (N, S, S), and the scores.

        ``dlogits(scores)`` gives the gradient w.r.t. the scores (N, n_classes) of what
        is differentiated, e.g. one-hot rows for each image's score of one person. Dropout
        is off: this is the gradient of the function :meth:`forward` computes at test time.
        Returns (gradients (N, S, S) in units per unit of pixel value, scores).
        """
        network = Network(replace(self.arch, dropout=0.0), self.params, kernel=self.kernel, precision=self.precision)
        logits, cache = network.forward(images, training=True)
        pixels = np.zeros(np.shape(images), dtype=self.dtype)
        with one_blas_thread():
            network._backward(dlogits(logits), cache, pixels)
        return pixels, logits

    def _backward(self, dlogits: np.ndarray, cache: dict, pixels: np.ndarray | None) -> dict[str, np.ndarray]:
        """Parameter gradients; with ``pixels`` given, the gradient w.r.t. the image is added to it."""
        arch, k = self.arch, self.kernel
        H, T = arch.hidden_size, arch.sequence_length
        dlogits = np.asarray(dlogits, dtype=self.dtype)
        grads, dfeatures = self._head_backward(dlogits, cache["features"])
        if "mask" in cache:
            dfeatures *= cache["mask"]
        n_dirs = len(arch.directions)
        conv = bool(arch.conv_layers)
        dmaps = None
        for v, view in enumerate(arch.views):
            layers = cache["views"][view]
            dinputs = None
            for layer in reversed(range(arch.num_layers)):
                entry = layers[layer]
                if layer < arch.num_layers - 1:
                    dseq = dinputs * entry["mask"] if entry["mask"] is not None else dinputs
                dinputs = None
                for d, direction in enumerate(arch.directions):
                    prefix = f"{view}.{layer}.{direction}"
                    if layer == arch.num_layers - 1:
                        start = (v * n_dirs + d) * H
                        dsummary = dfeatures[:, start : start + H]
                        if arch.pooling == "last":
                            dy, dh_T = None, np.ascontiguousarray(dsummary)
                        else:
                            dy = np.repeat((dsummary / T)[:, None, :], T, axis=1)
                            dh_T = None
                    else:
                        dy, dh_T = np.ascontiguousarray(dseq[:, :, d * H : (d + 1) * H]), None
                    dx, dw_ih, dw_hh, dbias, _, _ = k.lstm_backward(
                        dy, dh_T, None, entry["caches"][d], need_dx=layer > 0 or conv or pixels is not None
                    )
                    grads[f"{prefix}.w_ih"] = dw_ih
                    grads[f"{prefix}.w_hh"] = dw_hh
                    grads[f"{prefix}.bias"] = dbias
                    if dx is not None:
                        dinputs = dx if dinputs is None else dinputs + dx
            if conv:
                # Back from the view's sequences to the maps (N, S', S', C) they were read from.
                n, T = dinputs.shape[:2]
                part = dinputs.reshape(n, T, T, -1)
                part = part if view == "rows" else part.transpose(0, 2, 1, 3)
                dmaps = part if dmaps is None else dmaps + part
            elif pixels is not None:
                pixels += _INPUT_SCALE * (dinputs if view == "rows" else dinputs.transpose(0, 2, 1))
        if conv:
            sizes = arch.conv_sizes()
            for layer in reversed(range(len(arch.conv_layers))):
                name = conv_name(layer)
                dmaps, grads[f"{name}.weight"], grads[f"{name}.bias"] = conv_backward(
                    dmaps, cache["conv"][layer], self.params[f"{name}.weight"], size=sizes[layer],
                    stride=arch.conv_stride, need_dinputs=layer > 0 or pixels is not None)
            if pixels is not None:
                pixels += _INPUT_SCALE * dmaps[..., 0]
        return grads
