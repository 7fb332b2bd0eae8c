"""The native bfloat16 kernel against the NumPy reference's bfloat16 math and against float64.

The kernel and ``reference.lstm_forward(..., precision="bfloat16")`` round the same operands
to bfloat16 and accumulate in float32; they differ only in the order of the float32 sums, which
now and then moves an h or a gate delta across a bfloat16 rounding boundary. So the kernel must
be (a) far closer to the bf16 reference than float32 math is, which proves it rounds, and (b) no
further from float64 than the bf16 reference itself (the issue's bar: 1.5x plus a little).

Runs on every machine with a bfloat16 path (``pyface.info()["bf16"]``); test_bf16.py holds
that a CPU with AVX512_BF16 has one, so this cannot be skipped where the path exists.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyface
from pyface.kernel import reference

pytestmark = pytest.mark.skipif(pyface.info()["bf16"] is None,
                                reason="no bfloat16 path on this CPU (its refusal is tested in test_bf16.py)")

NAMES = ("y", "h_T", "c_T", *pyface.LstmGrads._fields)

# (batch, time, input, hidden): batch 1 and time 1, odd and prime sizes, inputs of odd width
# (x is paired along the input), sizes across the 16-unit blocks, the "odd" and a large one.
SHAPES = [
    (1, 1, 1, 1),
    (1, 6, 3, 7),
    (2, 3, 65, 33),
    (3, 7, 16, 16),
    (5, 4, 3, 1),
    (4, 2, 1, 65),
    (5, 17, 33, 40),
    (13, 3, 8, 8),
    (1, 64, 64, 128),
    (32, 64, 64, 128),
    (9, 5, 130, 300),
]


def make_layer(rng, B, T, D, H, *, scale=0.5, x_scale=1.0, forget_bias=0.0):
    f = np.float32
    bias = rng.standard_normal(4 * H) * scale
    bias[H:2 * H] += forget_bias
    return dict(
        x=(rng.standard_normal((B, T, D)) * x_scale).astype(f),
        w_ih=(rng.standard_normal((4 * H, D)) * scale / np.sqrt(D)).astype(f),
        w_hh=(rng.standard_normal((4 * H, H)) * scale / np.sqrt(H)).astype(f),
        bias=bias.astype(f),
        h0=rng.standard_normal((B, H)).astype(f),
        c0=rng.standard_normal((B, H)).astype(f),
    )


def everything(impl, layer, *, reverse, precision, dtype=np.float32, seed=1):
    """y, h_T, c_T and every gradient, for output gradients drawn from ``seed``."""
    B, T, _ = layer["x"].shape
    H = layer["w_hh"].shape[1]
    rng = np.random.default_rng(seed)
    grads_in = [rng.standard_normal(s).astype(np.float32) for s in ((B, T, H), (B, H), (B, H))]
    layer = {k: v.astype(dtype) for k, v in layer.items()}
    y, (h, c), cache = impl.lstm_forward(**layer, reverse=reverse, training=True, precision=precision)
    grads = impl.lstm_backward(*(g.astype(dtype) for g in grads_in), cache)
    return [np.asarray(a, dtype=np.float64) for a in (y, h, c, *grads)]


def rel_l2(got, want):
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B%dT%dD%dH%d" % s)
@pytest.mark.parametrize("n_threads", [1, 2], ids=["1thread", "2threads"])
def test_matches_the_bfloat16_reference(kernel_threads, n_threads, shape, reverse):
    kernel_threads(n_threads)
    layer = make_layer(np.random.default_rng(0), *shape)
    kernel = everything(pyface, layer, reverse=reverse, precision="bfloat16")
    bf16 = everything(reference, layer, reverse=reverse, precision="bfloat16")
    f32 = everything(reference, layer, reverse=reverse, precision="float32")
    exact = everything(reference, layer, reverse=reverse, precision="float32", dtype=np.float64)
    for name, k, b, f, e in zip(NAMES, kernel, bf16, f32, exact):
        assert np.all(np.isfinite(k)), name
        rounding = rel_l2(f, b)  # what rounding to bfloat16 changes
        assert rounding > 1e-4, (name, rounding)  # the problem is one where bf16 shows
        assert rel_l2(k, b) < 0.5 * rounding, (name, rel_l2(k, b), rounding)  # (a)
        assert rel_l2(k, e) <= 1.5 * rel_l2(b, e) + 1e-3, (name, rel_l2(k, e), rel_l2(b, e))  # (b)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_one_and_two_threads_agree(kernel_threads, reverse):
    layer = make_layer(np.random.default_rng(4), 9, 7, 20, 24)
    kernel_threads(1)
    one = everything(pyface, layer, reverse=reverse, precision="bfloat16")
    kernel_threads(2)
    two = everything(pyface, layer, reverse=reverse, precision="bfloat16")
    for name, a, b in zip(NAMES, one, two):
        assert rel_l2(b, a) <= 1e-3, name


@pytest.mark.parametrize("n", [1, 2])
def test_same_thread_count_is_bitwise_reproducible(kernel_threads, n):
    kernel_threads(n)
    layer = make_layer(np.random.default_rng(4), 9, 7, 20, 24)
    for a, b in zip(everything(pyface, layer, reverse=False, precision="bfloat16"),
                    everything(pyface, layer, reverse=False, precision="bfloat16")):
        np.testing.assert_array_equal(a, b)


def test_large_inputs_stay_as_close_to_float64_as_the_reference():
    # |x| around 10 saturates gates; products of larger operands carry larger absolute errors.
    layer = make_layer(np.random.default_rng(3), 3, 12, 20, 16, x_scale=10.0)
    kernel = everything(pyface, layer, reverse=False, precision="bfloat16")
    bf16 = everything(reference, layer, reverse=False, precision="bfloat16")
    exact = everything(reference, layer, reverse=False, precision="float32", dtype=np.float64)
    for name, k, b, e in zip(NAMES, kernel, bf16, exact):
        assert rel_l2(k, e) <= 1.5 * rel_l2(b, e) + 1e-3, name


def test_cell_state_does_not_drift_over_512_steps():
    # As for the reference (test_reference_bf16.py): the cell state stays float32, so its error
    # stays at the level of the first steps; kept in bf16 it would sit near u = 2**-8.
    layer = make_layer(np.random.default_rng(3), 2, 512, 16, 32, forget_bias=1.0, x_scale=0.1)
    layer["h0"][:] = 0
    layer["c0"][:] = 0
    # c is not returned per step; the hidden states follow it (o * tanh(c)).
    y = pyface.lstm_forward(**layer, precision="bfloat16")[0]
    y64 = reference.lstm_forward(**{k: v.astype(np.float64) for k, v in layer.items()})[0]
    per_step = np.linalg.norm(y - y64, axis=(0, 2)) / np.linalg.norm(y64, axis=(0, 2))
    early, late = per_step[32:96].max(), per_step[-64:].max()
    assert late < 2.0**-9, late
    assert late < 1.5 * early, (early, late)


def test_weights_are_rounded_before_the_products():
    # w = 1 + 2**-10 is 1 in bfloat16, x = 1 and h0 = 0.5 are exact: the bfloat16 layer equals the
    # float32 layer with w = 1, step for step (sums of exact small products are exact).
    H = 3
    one_plus = np.float32(1 + 2.0**-10)
    args = dict(x=np.ones((2, 4, 4), np.float32), bias=np.zeros(4 * H, np.float32),
                h0=np.full((2, H), 0.5, np.float32), c0=np.full((2, H), 0.25, np.float32))
    bf16 = pyface.lstm_forward(w_ih=np.full((4 * H, 4), one_plus), w_hh=np.full((4 * H, H), one_plus),
                               **args, precision="bfloat16")[0]
    ones_bf16 = reference.lstm_forward(w_ih=np.ones((4 * H, 4), np.float32), w_hh=np.ones((4 * H, H), np.float32),
                                       **args, precision="bfloat16")[0]
    plain = pyface.lstm_forward(w_ih=np.full((4 * H, 4), one_plus), w_hh=np.full((4 * H, H), one_plus), **args)[0]
    np.testing.assert_allclose(bf16, ones_bf16, rtol=1e-6)
    assert np.abs(plain - bf16).max() > 1e-5


def test_cache_and_inference_mode():
    layer = make_layer(np.random.default_rng(5), 3, 4, 5, 6)
    y, (h, c), cache = pyface.lstm_forward(**layer, training=True, precision="bfloat16")
    assert cache.precision == "bfloat16" and "bfloat16" in repr(cache)
    y2, (h2, c2), none = pyface.lstm_forward(**layer, training=False, precision="bfloat16")
    assert none is None
    for a, b in ((y, y2), (h, h2), (c, c2)):
        np.testing.assert_array_equal(a, b)
    f32 = pyface.lstm_forward(**layer)[0]
    assert 0 < np.abs(y - f32).max() < 0.05


def test_nan_in_gives_nan_out_and_padding_stays_clean():
    layer = make_layer(np.random.default_rng(6), 2, 3, 5, 20)  # 20 units: a padded 16-unit block
    layer["x"][0, 1, 2] = np.nan
    y, (h, c), cache = pyface.lstm_forward(**layer, training=True, precision="bfloat16")
    assert np.isnan(y[0, 1:]).all() and np.isfinite(y[1]).all()  # the other sequence is untouched
    grads = pyface.lstm_backward(np.ones_like(y), None, None, cache)
    assert np.isfinite(grads.dx[1]).all()


def test_the_bfloat16_probe_measures_twice_the_float32_work_per_instruction():
    from pyface import _core
    assert _core.bf16_probe(1000) == 2 * _core.fma_probe(1000)
