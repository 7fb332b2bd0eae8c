"""Property-based tests of the kernel boundary: whatever arrays arrive, each call either
returns what the NumPy reference returns or raises the documented TypeError / ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyface
from pyface.kernel import reference

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.float32, np.float32, np.float32, np.float64, np.float16, np.int32]


@st.composite
def argument(draw, shape, name):
    """An array of `shape` that is sometimes of another dtype, shape or layout, or not an array.
    Returns (value, valid)."""
    kind = draw(st.sampled_from(["ok"] * 6 + ["dtype", "shape", "strided", "list", "empty"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "shape":
        shape = tuple(s + draw(st.sampled_from([-1, 1])) if s > 1 else s + 1 for s in shape)
        if draw(st.booleans()):
            shape = shape + (1,)
    if kind == "empty":
        shape = (0,) + tuple(shape[1:])
    dtype = draw(st.sampled_from(DTYPES[3:])) if kind == "dtype" else np.float32
    value = (rng.standard_normal(shape) * 0.7).astype(dtype)
    if kind == "ok" and value.size and draw(st.integers(0, 9)) == 0:
        value.flat[rng.integers(value.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if kind == "strided":
        wide = np.repeat(value[..., None], 2, axis=-1).reshape(shape[:-1] + (2 * shape[-1],))
        value = wide[..., ::2]
        assert not value.flags.c_contiguous or value.size <= 1
    if kind == "list":
        value = value.tolist()
    valid = kind == "ok" or (kind == "strided" and value.size <= 1)
    return value, valid


@st.composite
def forward_call(draw):
    B, T, D, H = (draw(st.integers(1, n)) for n in (5, 6, 19, 19))
    args, valid = {}, True
    for name, shape in (("x", (B, T, D)), ("w_ih", (4 * H, D)), ("w_hh", (4 * H, H)), ("bias", (4 * H,))):
        args[name], ok = draw(argument(shape, name))
        valid &= ok
    for name in ("h0", "c0"):
        if draw(st.booleans()):
            args[name], ok = draw(argument((B, H), name))
            valid &= ok
    args["reverse"] = draw(st.booleans())
    return args, valid


def assert_matches(got, want):
    got64 = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(got64), np.isnan(want))
    finite = np.isfinite(want)
    scale = max(np.max(np.abs(want[finite]), initial=0.0), 1.0)
    np.testing.assert_allclose(got64[finite], want[finite], rtol=0, atol=1e-4 * scale)


@SETTINGS
@given(forward_call())
def test_forward_returns_the_reference_or_raises(call):
    args, valid = call
    if not valid:
        with pytest.raises((TypeError, ValueError)):
            pyface.lstm_forward(**args)
        return
    y, (h, c), cache = pyface.lstm_forward(**args)
    as64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    y_r, (h_r, c_r), cache_r = reference.lstm_forward(**as64)
    for got, want in ((y, y_r), (h, h_r), (c, c_r)):
        assert_matches(got, want)

    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(a.shape).astype(np.float32) for a in (y, h, c)]
    got = pyface.lstm_backward(*grads, cache)
    want = reference.lstm_backward(*(g.astype(np.float64) for g in grads), cache_r)
    for g, w in zip(got, want):
        assert_matches(g, w)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 9), st.data())
def test_backward_returns_the_reference_or_raises(B, T, H, data):
    rng = np.random.default_rng(1)
    D = 3
    layer = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((B, T, D), (4 * H, D), (4 * H, H), (4 * H,))]
    _, _, cache = pyface.lstm_forward(*layer)
    _, _, cache_r = reference.lstm_forward(*(a.astype(np.float64) for a in layer))
    grads, valid = [], True
    for shape, name in (((B, T, H), "dy"), ((B, H), "dh_T"), ((B, H), "dc_T")):
        if data.draw(st.booleans()):
            value, ok = data.draw(argument(shape, name))
            grads.append(value)
            valid &= ok
        else:
            grads.append(None)
    if not valid:
        with pytest.raises((TypeError, ValueError)):
            pyface.lstm_backward(*grads, cache)
        return
    got = pyface.lstm_backward(*grads, cache)
    want = reference.lstm_backward(*(None if g is None else g.astype(np.float64) for g in grads), cache_r)
    for g, w in zip(got, want):
        assert_matches(g, w)


@pytest.mark.parametrize("shape", [(1, 2**27, 1), (2**27, 1, 1)], ids=["long-sequence", "huge-batch"])
def test_sizes_beyond_memory_are_refused_before_allocating(shape):
    # Valid arguments that fit, some 4 TB of outputs, gates and states: 2^27 steps (or
    # sequences) of 1024 hidden units. x is 512 MB of zero pages that NumPy maps but nothing
    # touches, since the kernel must refuse the call by arithmetic, before allocating anything.
    # (A broadcast view would not do: it is refused earlier, as not contiguous.)
    B, T, D = shape
    H = 1024
    x = np.zeros(shape, np.float32)
    message = rf"sizes too large: \(batch={B}, time={T}, input={D}, hidden={H}\) needs [0-9.]+ GB, more than this machine's"
    with pytest.raises(ValueError, match=message):
        pyface.lstm_forward(x, np.zeros((4 * H, D), np.float32), np.zeros((4 * H, H), np.float32), np.zeros(4 * H, np.float32))


def test_workspace_bytes_matches_the_cache():
    B, T, D, H = 3, 5, 7, 9
    sizes = pyface.kernel.lstm.workspace_bytes(B, T, D, H)
    _, _, cache = pyface.lstm_forward(
        np.zeros((B, T, D), np.float32), np.zeros((4 * H, D), np.float32), np.zeros((4 * H, H), np.float32),
        np.zeros(4 * H, np.float32),
    )
    assert sizes["cache"] == cache.nbytes
    assert sizes["forward"] > 0 and sizes["backward"] > 0
