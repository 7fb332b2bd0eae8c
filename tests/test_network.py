import numpy as np
import pytest

from pyface.kernel import reference
from pyface.nn.functional import softmax, softmax_cross_entropy
from pyface.nn.network import Architecture, Network, init_parameters

CONFIGS = [
    # views, bidirectional, num_layers, pooling, head
    (("rows", "columns"), True, 2, "mean", "dense"),
    (("rows",), False, 2, "last", "dense"),
    (("columns",), True, 1, "last", "dense"),
    (("rows", "columns"), True, 1, "mean", "cosine"),
]


def _loss(net, images, labels, weights, mask_seed):
    logits, cache = net.forward(images, training=True, rng=np.random.default_rng(mask_seed))
    loss, dlogits, _ = softmax_cross_entropy(logits, labels, sample_weight=weights, label_smoothing=0.1)
    return loss, dlogits, cache


@pytest.mark.parametrize("views,bidirectional,num_layers,pooling,head", CONFIGS)
def test_backward_matches_finite_differences(views, bidirectional, num_layers, pooling, head):
    # float64 through the NumPy reference, so central differences are accurate to ~1e-9.
    arch = Architecture(n_classes=3, image_size=5, hidden_size=3, num_layers=num_layers,
                        bidirectional=bidirectional, views=views, pooling=pooling, dropout=0.25, head=head)
    rng = np.random.default_rng(0)
    params = init_parameters(arch, rng, dtype=np.float64)
    for value in params.values():  # break the zero and one biases so every path carries gradient
        value += rng.normal(0, 0.3, value.shape)
    net = Network(arch, params, kernel=reference)
    images = rng.random((3, 5, 5))
    labels = np.array([0, 2, 1])
    weights = np.array([1.0, 2.0, 0.5])
    _, dlogits, cache = _loss(net, images, labels, weights, mask_seed=7)
    grads = net.backward(dlogits, cache)
    assert set(grads) == set(params)
    eps = 1e-6
    for name, value in params.items():
        flat = value.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 8), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = _loss(net, images, labels, weights, 7)[0]
            flat[i] = old - eps
            down = _loss(net, images, labels, weights, 7)[0]
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            assert grads[name].reshape(-1)[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), name


def test_native_kernel_gives_the_reference_scores():
    arch = Architecture(n_classes=4, image_size=12, hidden_size=8)
    params = init_parameters(arch, np.random.default_rng(1))
    images = np.random.default_rng(2).random((5, 12, 12), dtype=np.float32)
    native, _ = Network(arch, params).forward(images)
    ref, _ = Network(arch, params, kernel=reference).forward(images)
    assert native.dtype == np.float32
    np.testing.assert_allclose(native, ref, rtol=1e-4, atol=1e-5)


def test_dropout_only_in_training():
    arch = Architecture(n_classes=3, image_size=6, hidden_size=4, dropout=0.5)
    net = Network(arch, init_parameters(arch, np.random.default_rng(0)))
    images = np.random.default_rng(1).random((4, 6, 6), dtype=np.float32)
    a, cache = net.forward(images)
    b, _ = net.forward(images)
    assert cache is None
    np.testing.assert_array_equal(a, b)
    c, cache = net.forward(images, training=True, rng=np.random.default_rng(0))
    assert cache is not None
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="random generator"):
        net.forward(images, training=True)


def test_init_follows_the_recipe():
    arch = Architecture(n_classes=3, image_size=6, hidden_size=4, bidirectional=False, views=("rows",), num_layers=1)
    p = init_parameters(arch, np.random.default_rng(0))
    assert all(v.dtype == np.float32 for v in p.values())
    np.testing.assert_array_equal(p["rows.0.fwd.bias"], np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    for gate in range(4):
        block = p["rows.0.fwd.w_hh"][4 * gate : 4 * gate + 4].astype(np.float64)
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-6)


def test_parameters_must_match_the_architecture():
    arch = Architecture(n_classes=3, image_size=6, hidden_size=4)
    params = init_parameters(arch, np.random.default_rng(0))
    params["dense.bias"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="dense.bias"):
        Network(arch, params)
    del params["dense.bias"]
    with pytest.raises(ValueError, match="missing"):
        Network(arch, params)


def test_wrong_image_size_is_rejected():
    arch = Architecture(n_classes=3, image_size=6, hidden_size=4)
    net = Network(arch, init_parameters(arch, np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"\(N, 6, 6\)"):
        net.forward(np.zeros((2, 7, 7), np.float32))


@pytest.mark.parametrize("bad", [{"pooling": "max"}, {"views": ("diagonals",)}, {"views": ()},
                                 {"dropout": 1.0}, {"num_layers": 0}, {"hidden_size": 0}])
def test_architecture_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        Architecture(n_classes=3, **bad)


def test_architecture_dict_round_trip():
    arch = Architecture(n_classes=7, image_size=32, hidden_size=16, views=("columns",), pooling="last")
    assert Architecture.from_dict(arch.to_dict()) == arch
    with pytest.raises(ValueError, match="unknown"):
        Architecture.from_dict({**arch.to_dict(), "colour": True})


def test_cross_entropy_values():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    loss, dlogits, probs = softmax_cross_entropy(logits, np.array([0, 1]))
    np.testing.assert_allclose(probs, np.exp(logits))
    assert loss == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    np.testing.assert_allclose(dlogits, (probs - np.eye(3)[[0, 1]]) / 2)
    # Smoothing 0.3 over 3 classes aims at 0.8 for the true class and 0.1 for the others.
    loss, _, _ = softmax_cross_entropy(logits[:1], np.array([0]), label_smoothing=0.3)
    assert loss == pytest.approx(-(0.8 * np.log(0.5) + 0.2 * np.log(0.25)))
    # A weight of 3 on the second sample counts it three times.
    loss, _, _ = softmax_cross_entropy(logits, np.array([0, 1]), sample_weight=np.array([1.0, 3.0]))
    assert loss == pytest.approx(-(np.log(0.5) + 3 * np.log(0.8)) / 4)


def test_softmax_is_stable_for_large_scores():
    p = softmax(np.array([[1000.0, 0.0], [-1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.5, 0.5]])
