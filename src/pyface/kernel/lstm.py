"""One LSTM layer on the native kernel: forward and backward through time.

The math is exactly that of :mod:`pyface.reference` (gate order i, f, g, o and weight shapes
as in ``torch.nn.LSTM``; ``bias`` is torch's ``b_ih + b_hh``). Every array is float32 and
C-contiguous; nothing is converted silently. Wrong arguments raise ``TypeError`` (wrong type or
dtype) or ``ValueError`` (wrong shape, empty, non-contiguous), naming the argument.

Moving weights between libraries: ``torch.nn.LSTM`` layer ``k`` has ``weight_ih_lk`` = ``w_ih``,
``weight_hh_lk`` = ``w_hh`` and ``bias_ih_lk + bias_hh_lk`` = ``bias``. Keras' ``LSTM`` keeps
``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H) and ``bias`` (4H,) in the same i, f, g(c), o
order: ``w_ih = kernel.T``, ``w_hh = recurrent_kernel.T``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np

from .runtime import _core

__all__ = ["LstmCache", "LstmGrads", "lstm_forward", "lstm_backward", "workspace_bytes"]

LstmCache = _core.LstmCache


class LstmGrads(NamedTuple):
    """Gradients of a loss with respect to the inputs of :func:`lstm_forward`."""

    dx: Optional[np.ndarray]  # (B, T, D), None when not asked for
    dw_ih: np.ndarray  # (4H, D)
    dw_hh: np.ndarray  # (4H, H)
    dbias: np.ndarray  # (4H,)
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)


def lstm_forward(
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    bias: np.ndarray,
    h0: Optional[np.ndarray] = None,
    c0: Optional[np.ndarray] = None,
    reverse: bool = False,
    training: bool = True,
    precision: str = "float32",
) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray], Optional[LstmCache]]:
    """Run one LSTM layer over a batch of sequences.

    Parameters
    ----------
    x : float32 (B, T, D)
        Input sequences, batch-major (like Keras): B sequences of T steps of D features.
    w_ih : float32 (4H, D)
        Input weights, rows in gate order i, f, g, o.
    w_hh : float32 (4H, H)
        Recurrent weights; H, the hidden size, is read from this shape.
    bias : float32 (4H,)
    h0, c0 : float32 (B, H) or None
        Initial hidden and cell state; None means zeros.
    reverse : bool
        Process time steps T-1 down to 0 (the backward half of a bidirectional layer). ``y`` is
        indexed by time either way.
    training : bool
        Keep what :func:`lstm_backward` needs (``cache``); False keeps nothing (inference).
    precision : ``"float32"`` or ``"bfloat16"``
        ``"bfloat16"`` rounds the operands of the matrix products to bfloat16 and keeps
        everything else in float32, as :mod:`pyface.kernel.reference` specifies; arrays are
        float32 either way. It needs a bfloat16 kernel path (``pyface.info()["bf16"]``); where
        there is none it raises ``ValueError`` saying what the CPU lacks. The cache remembers
        the precision and :func:`lstm_backward` follows it.

    Returns
    -------
    y : float32 (B, T, H)
        Hidden state after each time step.
    (h_T, c_T) : float32 (B, H) each
        States after the last processed step.
    cache : LstmCache or None
        Owned by the caller; pass it to :func:`lstm_backward`. None when ``training=False``.
    """
    y, h_T, c_T, cache = _core.lstm_forward(x, w_ih, w_hh, bias, h0, c0, bool(reverse), bool(training),
                                            _precision_name(precision))
    return y, (h_T, c_T), cache


def _precision_name(precision) -> str:
    if not isinstance(precision, str):
        raise TypeError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
    return precision


def lstm_backward(
    dy: Optional[np.ndarray],
    dh_T: Optional[np.ndarray],
    dc_T: Optional[np.ndarray],
    cache: LstmCache,
    need_dx: bool = True,
) -> LstmGrads:
    """Backpropagate through time.

    Parameters
    ----------
    dy : float32 (B, T, H) or None
        Gradient of the loss with respect to ``y``; None means zeros.
    dh_T, dc_T : float32 (B, H) or None
        Gradients with respect to the final states; None means zeros.
    cache : LstmCache
        From ``lstm_forward(..., training=True)``. It is not consumed: backward can run again.
        Backward runs in the precision of that forward call (``cache.precision``).
    need_dx : bool
        False skips the input gradient (the first layer of a network does not need it).

    Returns
    -------
    LstmGrads
        ``(dx, dw_ih, dw_hh, dbias, dh0, dc0)`` with the shapes of the forward arguments;
        ``dx`` is None when ``need_dx=False``.
    """
    return LstmGrads(*_core.lstm_backward(dy, dh_T, dc_T, cache, bool(need_dx)))


def workspace_bytes(batch: int, time: int, input_size: int, hidden_size: int) -> dict:
    """Memory one layer's kernel calls use on the active instruction set, in bytes.

    Returns ``{'forward': ..., 'cache': ..., 'backward': ...}``: scratch freed when
    :func:`lstm_forward` returns, what its ``cache`` keeps for training (with
    ``training=False`` the same buffers are scratch of the call), and scratch freed when
    :func:`lstm_backward` returns. Outputs are not counted. A call that would need more than
    the machine's physical memory is refused with ``ValueError`` before allocating.
    """
    out = _core.workspace_bytes(int(batch), int(time), int(input_size), int(hidden_size))
    return {key: int(value) for key, value in out.items()}
