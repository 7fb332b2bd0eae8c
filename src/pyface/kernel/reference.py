"""One LSTM layer in plain NumPy: the executable specification of the native kernel.

Written to be read, not to be fast. The native ``lstm_forward`` / ``lstm_backward``
have exactly these signatures and must agree with these functions.

Forward, one step, for every batch row independently (gate order i, f, g, o as in
``torch.nn.LSTM``; ``bias`` is torch's ``b_ih + b_hh``)::

    a_t = x_t W_ih^T + h_prev W_hh^T + b          (B, 4H), split into a_i, a_f, a_g, a_o
    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c_t = f * c_prev + i * g
    h_t = o * tanh(c_t)
    y_t = h_t

``h_prev, c_prev`` are the states of the step processed before: time ``t - 1``, or
time ``t + 1`` when ``reverse=True``; ``h0, c0`` before the first processed step.

``precision="bfloat16"`` is mixed precision as bf16 kernels do it: the operands of every
matrix product (x, h_prev, W_ih, W_hh, and in backward the gate deltas) are rounded to
bfloat16 (:func:`round_to_bfloat16`), the products accumulate in float32, and everything else
(bias, gate non-linearities, cell state, the dh/dc recurrences, the sums of the weight and
bias gradients over time) stays float32. The weights are rounded once per call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lstm_forward", "lstm_backward", "round_to_bfloat16", "PRECISIONS"]

PRECISIONS = ("float32", "bfloat16")

_BF16_KEPT = np.uint64(0xFFFF0000)  # sign, exponent and the 7 fraction bits bfloat16 keeps
_QUIET_NAN = np.uint64(0x00400000)  # the quiet bit: a NaN stays a NaN once its low bits are cut


def round_to_bfloat16(array: np.ndarray) -> np.ndarray:
    """``array`` (float32) rounded to the nearest bfloat16, ties to even; float32 out.

    bfloat16 is the upper half of a float32, so each result is a float32 whose low 16 bits
    are zero. Subnormals round like any other value (bfloat16 has float32's exponent range),
    values beyond the largest bfloat16 (about 3.39e38) become infinities, and NaNs stay NaNs
    (made quiet, sign kept). Raises ``TypeError`` for anything but float32.
    """
    array = np.asarray(array)
    if array.dtype != np.float32:
        raise TypeError(f"round_to_bfloat16 takes float32, got {array.dtype}")
    bits = np.ascontiguousarray(array).view(np.uint32).astype(np.uint64)
    # Adding 0x7fff plus the lowest kept bit, then cutting, rounds to nearest with ties to even;
    # a carry out of the fraction rightly increments the exponent (up to infinity).
    odd = (bits >> np.uint64(16)) & np.uint64(1)
    rounded = (bits + np.uint64(0x7FFF) + odd) & _BF16_KEPT
    nan = (bits | _QUIET_NAN) & _BF16_KEPT
    out = np.where(np.isnan(array), nan, rounded).astype(np.uint32)
    return out.view(np.float32).reshape(array.shape)


def _operand_rounding(precision: str, dtype):
    """The rounding of matrix-product operands: bfloat16 or none."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return lambda a: a
    if dtype != np.float32:
        raise TypeError(f"precision='bfloat16' computes in float32: x must be float32, got {dtype}")
    return round_to_bfloat16


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # The tanh form never overflows in exp, whatever the sign of a.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _time_order(T: int, reverse: bool) -> list[int]:
    return list(range(T - 1, -1, -1)) if reverse else list(range(T))


def _state_or_zeros(state, B: int, H: int, dtype, name: str) -> np.ndarray:
    if state is None:
        return np.zeros((B, H), dtype=dtype)
    state = np.asarray(state)
    if state.shape != (B, H):
        raise ValueError(f"{name} must have shape (B, H) = {(B, H)}, got {state.shape}")
    return state.astype(dtype)


def lstm_forward(
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    bias: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    reverse: bool = False,
    training: bool = True,
    precision: str = "float32",
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], dict | None]:
    """Run one LSTM layer over a batch of sequences.

    Parameters
    ----------
    x : float32 or float64 array, shape (B, T, D)
        Inputs, batch-major. All computation happens in this dtype.
    w_ih : array, shape (4H, D)
        Input weights, gate blocks in order i, f, g, o.
    w_hh : array, shape (4H, H)
        Recurrent weights, same gate order.
    bias : array, shape (4H,)
        One bias per gate unit (torch's ``b_ih + b_hh``).
    h0, c0 : array, shape (B, H), or None
        Initial hidden and cell states; None means zeros.
    reverse : bool
        Process time from T-1 down to 0. ``y[:, t]`` is still the state after
        processing time t.
    training : bool
        Keep what ``lstm_backward`` needs; without it the cache is None.
    precision : ``"float32"`` or ``"bfloat16"``
        ``"float32"`` computes in the dtype of ``x``; ``"bfloat16"`` (float32 ``x`` only)
        rounds the operands of the matrix products to bfloat16 (see the module docstring).
        The cache remembers it for ``lstm_backward``.

    Returns
    -------
    y : array, shape (B, T, H)
        Hidden state after each time step.
    (h_T, c_T) : arrays, shape (B, H)
        Hidden and cell state after the last processed step (time 0 when reversed).
    cache : dict or None
        Everything ``lstm_backward`` needs, None when ``training=False``.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got {x.shape}")
    dtype = x.dtype
    B, T, D = x.shape
    w_hh = np.asarray(w_hh).astype(dtype, copy=False)
    if w_hh.ndim != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise ValueError(f"w_hh must have shape (4H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    w_ih = np.asarray(w_ih).astype(dtype, copy=False)
    if w_ih.shape != (4 * H, D):
        raise ValueError(f"w_ih must have shape (4H, D) = {(4 * H, D)}, got {w_ih.shape}")
    bias = np.asarray(bias).astype(dtype, copy=False)
    if bias.shape != (4 * H,):
        raise ValueError(f"bias must have shape (4H,) = {(4 * H,)}, got {bias.shape}")
    h0 = _state_or_zeros(h0, B, H, dtype, "h0")
    c0 = _state_or_zeros(c0, B, H, dtype, "c0")
    rnd = _operand_rounding(precision, dtype)
    # Rounded once per call, as the kernel packs them once; x too, as it is read once per step.
    x_op, w_ih_op, w_hh_op = rnd(x), rnd(w_ih), rnd(w_hh)

    y = np.empty((B, T, H), dtype=dtype)
    cells = np.empty((B, T, H), dtype=dtype)
    gates = np.empty((B, T, 4 * H), dtype=dtype)  # activated i, f, g, o per step
    h, c = h0, c0
    for t in _time_order(T, reverse):
        a = x_op[:, t] @ w_ih_op.T + rnd(h) @ w_hh_op.T + bias
        i = _sigmoid(a[:, 0 * H : 1 * H])
        f = _sigmoid(a[:, 1 * H : 2 * H])
        g = np.tanh(a[:, 2 * H : 3 * H])
        o = _sigmoid(a[:, 3 * H : 4 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        y[:, t] = h
        cells[:, t] = c
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)

    cache = None
    if training:
        cache = {
            "x": x_op,
            "w_ih": w_ih_op,
            "w_hh": w_hh_op,
            "h0": h0,
            "c0": c0,
            "h": y.copy(),  # y is the caller's to modify in place
            "c": cells,
            "gates": gates,
            "reverse": bool(reverse),
            "precision": precision,
        }
    return y, (h.copy(), c.copy()), cache


# Backward through time. Walk the steps in the opposite order of the forward pass,
# carrying dh, dc (gradients w.r.t. the state handed to the next processed step):
#
#     dh_t   = dy_t + dh_next                       (y_t = h_t, and h_t feeds the next step)
#     do     = dh_t * tanh(c_t)
#     dc_t   = dc_next + dh_t * o * (1 - tanh(c_t)^2)
#     di     = dc_t * g      df = dc_t * c_prev     dg = dc_t * i
#     da     = [di * i(1-i), df * f(1-f), dg * (1-g^2), do * o(1-o)]      (B, 4H)
#     dx_t   = da W_ih       dW_ih += da^T x_t      dW_hh += da^T h_prev     db += sum_B da
#     dh_next <- da W_hh     dc_next <- dc_t * f    (gradients w.r.t. h_prev, c_prev)
#
# In bfloat16, da, x_t and h_prev are rounded where they enter a product (the weights were
# rounded by forward); db sums the float32 da, as the bias is added in float32.
#
# After the first processed step, dh_next and dc_next are dh0 and dc0.
def lstm_backward(
    dy: np.ndarray | None,
    dh_T: np.ndarray | None,
    dc_T: np.ndarray | None,
    cache: dict,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss through one LSTM layer, given the gradients of its outputs.

    Parameters
    ----------
    dy : array, shape (B, T, H), or None
        Gradient w.r.t. ``y``; None means zero.
    dh_T, dc_T : array, shape (B, H), or None
        Gradient w.r.t. the final states ``h_T``, ``c_T``; None means zero.
    cache : dict
        From ``lstm_forward(..., training=True)``.
    need_dx : bool
        Compute the gradient w.r.t. ``x`` (a first layer has no use for it).

    Returns
    -------
    dx : array, shape (B, T, D), or None when ``need_dx=False``
    dw_ih : array, shape (4H, D)
    dw_hh : array, shape (4H, H)
    dbias : array, shape (4H,)
    dh0, dc0 : arrays, shape (B, H)
        All in the dtype of the forward input.
    """
    if cache is None:
        raise ValueError("cache is None: run lstm_forward with training=True")
    x, w_ih, w_hh = cache["x"], cache["w_ih"], cache["w_hh"]  # rounded by forward in bfloat16
    h_all, c_all, gates = cache["h"], cache["c"], cache["gates"]
    dtype = x.dtype
    B, T, D = x.shape
    H = w_hh.shape[1]
    rnd = _operand_rounding(cache.get("precision", "float32"), dtype)

    dh_next = _state_or_zeros(dh_T, B, H, dtype, "dh_T")
    dc_next = _state_or_zeros(dc_T, B, H, dtype, "dc_T")
    if dy is not None:
        dy = np.asarray(dy).astype(dtype, copy=False)
        if dy.shape != (B, T, H):
            raise ValueError(f"dy must have shape (B, T, H) = {(B, T, H)}, got {dy.shape}")

    dx = np.zeros((B, T, D), dtype=dtype) if need_dx else None
    dw_ih = np.zeros_like(w_ih)
    dw_hh = np.zeros_like(w_hh)
    dbias = np.zeros(4 * H, dtype=dtype)

    order = _time_order(T, cache["reverse"])
    for k in reversed(range(T)):
        t = order[k]
        if k == 0:
            h_prev, c_prev = cache["h0"], cache["c0"]
        else:
            h_prev, c_prev = h_all[:, order[k - 1]], c_all[:, order[k - 1]]
        i = gates[:, t, 0 * H : 1 * H]
        f = gates[:, t, 1 * H : 2 * H]
        g = gates[:, t, 2 * H : 3 * H]
        o = gates[:, t, 3 * H : 4 * H]
        tanh_c = np.tanh(c_all[:, t])

        dh = dh_next if dy is None else dh_next + dy[:, t]
        do = dh * tanh_c
        dc = dc_next + dh * o * (1.0 - tanh_c**2)
        di = dc * g
        df = dc * c_prev
        dg = dc * i
        da = np.concatenate(
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)],
            axis=1,
        )

        da_op = rnd(da)
        if need_dx:
            dx[:, t] = da_op @ w_ih
        dw_ih += da_op.T @ x[:, t]
        dw_hh += da_op.T @ rnd(h_prev)
        dbias += da.sum(axis=0)
        dh_next = da_op @ w_hh
        dc_next = dc * f

    return dx, dw_ih, dw_hh, dbias, dh_next, dc_next
