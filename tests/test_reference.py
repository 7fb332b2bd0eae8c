"""The NumPy reference LSTM: hand-derived values, time reversal, and gradients by finite differences."""

import math

import numpy as np
import pytest

from pyface.kernel.reference import lstm_backward, lstm_forward

B, T, D, H = 2, 3, 4, 5


def _problem(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(B, T, D)).astype(dtype),
        "w_ih": (0.5 * rng.normal(size=(4 * H, D))).astype(dtype),
        "w_hh": (0.5 * rng.normal(size=(4 * H, H))).astype(dtype),
        "bias": (0.5 * rng.normal(size=4 * H)).astype(dtype),
        "h0": (0.5 * rng.normal(size=(B, H))).astype(dtype),
        "c0": (0.5 * rng.normal(size=(B, H))).astype(dtype),
    }


# --- forward against values derived by hand --------------------------------------------


def test_zero_weights_give_half_open_gates():
    # W = 0 and b = 0 except b_g: i = f = o = 1/2, g = tanh(b_g) = 0.6 (b_g = atanh 0.6).
    # From c0 = 0.4: c1 = 0.5 * 0.4 + 0.5 * 0.6 = 0.5, h1 = 0.5 * tanh(0.5).
    h_units = 3
    bias = np.zeros(4 * h_units)
    bias[2 * h_units : 3 * h_units] = math.atanh(0.6)
    c0 = np.full((2, h_units), 0.4)
    y, (h1, c1), _ = lstm_forward(
        np.ones((2, 1, 7)), np.zeros((4 * h_units, 7)), np.zeros((4 * h_units, h_units)), bias, c0=c0
    )
    np.testing.assert_allclose(c1, 0.5, rtol=1e-12)
    np.testing.assert_allclose(h1, 0.5 * math.tanh(0.5), rtol=1e-12)
    np.testing.assert_allclose(y[:, 0], h1, rtol=0)


def test_zero_weights_two_steps_carry_the_cell():
    # Same gates as above from zero states: c1 = 0.3, c2 = 0.5 * 0.3 + 0.3 = 0.45.
    bias = np.array([0.0, 0.0, math.atanh(0.6), 0.0])
    y, (h2, c2), _ = lstm_forward(np.zeros((1, 2, 1)), np.zeros((4, 1)), np.zeros((4, 1)), bias)
    np.testing.assert_allclose(y[0, :, 0], [0.5 * math.tanh(0.3), 0.5 * math.tanh(0.45)], rtol=1e-12)
    np.testing.assert_allclose(c2, [[0.45]], rtol=1e-12)
    np.testing.assert_allclose(h2, [[0.5 * math.tanh(0.45)]], rtol=1e-12)


def test_gate_order_and_each_input_term():
    # H = D = 1, x = 1, h0 = 0.5, c0 = 0.8, with one pre-activation from each term:
    #   a_i = w_ih[i] * x = ln 3             -> i = 3/4
    #   a_f = w_hh[f] * h0 = -ln 3           -> f = 1/4
    #   a_g = b_g = atanh(0.5)               -> g = 1/2
    #   a_o = 0                              -> o = 1/2
    # c1 = 1/4 * 0.8 + 3/4 * 1/2 = 0.575, h1 = 1/2 * tanh(0.575)
    ln3 = math.log(3.0)
    w_ih = np.array([[ln3], [0.0], [0.0], [0.0]])
    w_hh = np.array([[0.0], [-2.0 * ln3], [0.0], [0.0]])
    bias = np.array([0.0, 0.0, math.atanh(0.5), 0.0])
    y, (h1, c1), _ = lstm_forward(
        np.ones((1, 1, 1)), w_ih, w_hh, bias, h0=np.array([[0.5]]), c0=np.array([[0.8]])
    )
    np.testing.assert_allclose(c1, [[0.575]], rtol=1e-12)
    np.testing.assert_allclose(h1, [[0.5 * math.tanh(0.575)]], rtol=1e-12)


# --- time reversal -----------------------------------------------------------------------


def test_reverse_equals_forward_on_flipped_time():
    p = _problem(seed=1)
    y_rev, (h_rev, c_rev), _ = lstm_forward(**p, reverse=True)
    flipped = dict(p, x=p["x"][:, ::-1])
    y_flip, (h_flip, c_flip), _ = lstm_forward(**flipped)
    np.testing.assert_allclose(y_rev, y_flip[:, ::-1], rtol=1e-12)
    np.testing.assert_allclose(h_rev, h_flip, rtol=1e-12)
    np.testing.assert_allclose(c_rev, c_flip, rtol=1e-12)
    # The final state of a reversed pass is the state after time 0.
    np.testing.assert_allclose(h_rev, y_rev[:, 0], rtol=0)


def test_reverse_gradients_equal_forward_gradients_on_flipped_time():
    p = _problem(seed=2)
    dy = np.random.default_rng(3).normal(size=(B, T, H))
    _, _, cache_rev = lstm_forward(**p, reverse=True)
    _, _, cache_flip = lstm_forward(**dict(p, x=p["x"][:, ::-1]))
    grads_rev = lstm_backward(dy, None, None, cache_rev)
    grads_flip = lstm_backward(dy[:, ::-1], None, None, cache_flip)
    np.testing.assert_allclose(grads_rev[0], grads_flip[0][:, ::-1], rtol=1e-12)
    for g_rev, g_flip in zip(grads_rev[1:], grads_flip[1:]):
        np.testing.assert_allclose(g_rev, g_flip, rtol=1e-12)


# --- gradients by central differences ---------------------------------------------------

# Which output gradients are given; the others are passed as None.
OUTPUTS = {"dy": ("dy",), "dh_T": ("dh_T",), "dc_T": ("dc_T",), "all": ("dy", "dh_T", "dc_T")}


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("given", list(OUTPUTS))
def test_gradients_match_finite_differences(reverse, given):
    # Loss = <Ry, y> + <Rh, h_T> + <Rc, c_T> with random R, so dL/dy = Ry, and so on.
    p = _problem(seed=4)
    rng = np.random.default_rng(5)
    seeds = {"dy": rng.normal(size=(B, T, H)), "dh_T": rng.normal(size=(B, H)), "dc_T": rng.normal(size=(B, H))}
    seeds = {k: (v if k in OUTPUTS[given] else None) for k, v in seeds.items()}

    def loss(params):
        y, (h_T, c_T), _ = lstm_forward(**params, reverse=reverse, training=False)
        total = 0.0
        for out, r in ((y, seeds["dy"]), (h_T, seeds["dh_T"]), (c_T, seeds["dc_T"])):
            if r is not None:
                total += float(np.sum(r * out))
        return total

    _, _, cache = lstm_forward(**p, reverse=reverse)
    analytic = dict(
        zip(
            ["x", "w_ih", "w_hh", "bias", "h0", "c0"],
            lstm_backward(seeds["dy"], seeds["dh_T"], seeds["dc_T"], cache),
        )
    )

    eps = 1e-6
    for name, value in p.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in p.items()}
            minus = {k: v.copy() for k, v in p.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        assert analytic[name].shape == value.shape
        # Every seed reaches every parameter, so an all-zero gradient would be a bug.
        assert np.abs(numeric).max() > 1e-3, name
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


# --- options and dtypes -----------------------------------------------------------------


def test_need_dx_false_skips_only_dx():
    p = _problem(seed=6)
    dy = np.random.default_rng(7).normal(size=(B, T, H))
    _, _, cache = lstm_forward(**p)
    full = lstm_backward(dy, None, None, cache)
    partial = lstm_backward(dy, None, None, cache, need_dx=False)
    assert full[0] is not None and partial[0] is None
    for a, b in zip(full[1:], partial[1:]):
        np.testing.assert_array_equal(a, b)


def test_inference_has_no_cache_and_same_outputs():
    p = _problem(seed=8)
    y_train, _, cache = lstm_forward(**p)
    y_eval, _, no_cache = lstm_forward(**p, training=False)
    assert isinstance(cache, dict) and no_cache is None
    np.testing.assert_array_equal(y_train, y_eval)


def test_zero_initial_states_are_the_default():
    p = _problem(seed=9)
    p_zero = dict(p, h0=np.zeros((B, H)), c0=np.zeros((B, H)))
    p_none = dict(p, h0=None, c0=None)
    np.testing.assert_array_equal(lstm_forward(**p_zero)[0], lstm_forward(**p_none)[0])


def test_float32_computes_in_float32():
    p64 = _problem(seed=10)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    y32, (h32, c32), cache = lstm_forward(**p32)
    grads = lstm_backward(np.ones((B, T, H), np.float32), None, None, cache)
    assert y32.dtype == h32.dtype == c32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(y32, lstm_forward(**p64)[0], rtol=1e-5, atol=1e-6)


def test_weights_are_cast_to_the_dtype_of_x():
    p = _problem(seed=11)
    p["x"] = p["x"].astype(np.float32)
    y, _, _ = lstm_forward(**p)
    assert y.dtype == np.float32


def test_modifying_y_in_place_does_not_change_gradients():
    p = _problem(seed=12)
    dy = np.random.default_rng(13).normal(size=(B, T, H))
    y, _, cache = lstm_forward(**p)
    before = lstm_backward(dy, None, None, cache)
    y[...] = 0.0
    after = lstm_backward(dy, None, None, cache)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"x": np.zeros((B, T, D), dtype=np.int64)}, TypeError),
        ({"x": np.zeros((B, D))}, ValueError),
        ({"w_ih": np.zeros((4 * H, D + 1))}, ValueError),
        ({"w_hh": np.zeros((4 * H, H + 1))}, ValueError),
        ({"bias": np.zeros(4 * H + 1)}, ValueError),
        ({"h0": np.zeros((B + 1, H))}, ValueError),
        ({"c0": np.zeros((B, H + 1))}, ValueError),
    ],
)
def test_bad_shapes_and_dtypes_are_rejected(change, error):
    with pytest.raises(error):
        lstm_forward(**dict(_problem(), **change))


def test_backward_rejects_a_missing_cache_and_bad_dy():
    p = _problem()
    _, _, cache = lstm_forward(**p)
    with pytest.raises(ValueError, match="training=True"):
        lstm_backward(None, np.ones((B, H)), None, None)
    with pytest.raises(ValueError, match="dy"):
        lstm_backward(np.ones((B, T + 1, H)), None, None, cache)
