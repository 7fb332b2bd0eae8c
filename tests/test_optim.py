import math

import numpy as np
import pytest

from pyface.nn.optim import Adam, clip_grad_norm, learning_rate


def test_adam_two_steps_by_hand():
    p = {"w": np.array([[1.0]]), "b": np.array([2.0])}
    opt = Adam(p, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step({"w": np.array([[0.5]]), "b": np.array([0.0])})
    # m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25; bias-corrected 0.5 and 0.25: a step of lr * 0.5 / 0.5.
    assert p["w"][0, 0] == pytest.approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-12)
    assert p["b"][0] == 2.0
    opt.step({"w": np.array([[-0.2]]), "b": np.array([0.0])})
    m = 0.9 * 0.05 + 0.1 * -0.2
    v = 0.999 * 0.00025 + 0.001 * 0.04
    expected = 1.0 - 0.05 / (0.5 + 1e-8) - 0.1 * (m / 0.19) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert p["w"][0, 0] == pytest.approx(expected, rel=1e-12)
    assert opt.t == 2


def test_weight_decay_is_decoupled_and_spares_biases():
    p = {"w": np.full((2, 2), 3.0), "b": np.full(2, 3.0)}
    opt = Adam(p, lr=0.01, weight_decay=0.5)
    opt.step({"w": np.zeros((2, 2)), "b": np.zeros(2)})
    # A zero gradient moves nothing but the decay: w <- w * (1 - lr * wd).
    np.testing.assert_allclose(p["w"], 3.0 * (1 - 0.01 * 0.5))
    np.testing.assert_array_equal(p["b"], 3.0)


def test_step_uses_the_learning_rate_given():
    p = {"w": np.array([[0.0]])}
    opt = Adam(p, lr=1.0)
    opt.step({"w": np.array([[1.0]])}, lr=0.25)
    assert p["w"][0, 0] == pytest.approx(-0.25)


def test_clip_grad_norm_scales_all_gradients_together():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.8]])
    assert clip_grad_norm(grads, 10.0) == pytest.approx(1.0)
    np.testing.assert_allclose(grads["b"], [[0.8]])
    assert clip_grad_norm(grads, None) == pytest.approx(1.0)


def test_learning_rate_warmup_then_cosine():
    lrs = [learning_rate(s, 12, 1.0, warmup_steps=2, final_fraction=0.1) for s in range(12)]
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert lrs[-1] == pytest.approx(0.1)
    # Halfway through the decay (steps 2..11, middle 6.5) the cosine sits at the mean of its ends.
    mid = learning_rate(6.5, 12, 1.0, warmup_steps=2, final_fraction=0.1)
    assert mid == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


def test_constant_schedule_and_unknown_schedule():
    assert learning_rate(50, 100, 0.3, schedule="constant", warmup_steps=10) == 0.3
    assert learning_rate(4, 100, 0.3, schedule="constant", warmup_steps=10) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="schedule"):
        learning_rate(0, 10, 1.0, schedule="step")
