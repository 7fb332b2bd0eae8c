import json
import numpy as np
import pytest

from pyface.kernel import reference
from pyface.nn.functional import softmax, softmax_cross_entropy
from pyface.nn.network import Architecture, Network, init_parameters

CONFIGS = [
    # views, bidirectional, num_layers, pooling, head, conv_channels, conv_stride
    (("rows", "columns"), True, 2, "mean", "dense", 0, 2),
    (("rows",), False, 2, "last", "dense", 0, 2),
    (("columns",), True, 1, "last", "dense", 0, 2),
    (("rows", "columns"), True, 1, "mean", "cosine", 0, 2),
    (("rows", "columns"), True, 2, "mean", "dense", 2, 2),
    (("columns",), False, 1, "last", "cosine", 3, 1),
    (("rows", "columns"), True, 1, "mean", "cosine", (2, 3), 2),
    (("rows",), True, 2, "mean", "dense", (3, 2), 1),
]


def _loss(net, images, labels, weights, mask_seed):
    logits, cache = net.forward(images, training=True, rng=np.random.default_rng(mask_seed))
    loss, dlogits, _ = softmax_cross_entropy(logits, labels, sample_weight=weights, label_smoothing=0.1)
    return loss, dlogits, cache


@pytest.mark.parametrize("views,bidirectional,num_layers,pooling,head,conv_channels,conv_stride", CONFIGS)
def test_backward_matches_finite_differences(views, bidirectional, num_layers, pooling, head, conv_channels,
                                             conv_stride):
    # float64 through the NumPy reference, so central differences are accurate to ~1e-9.
    arch = Architecture(n_classes=3, image_size=5, hidden_size=3, num_layers=num_layers,
                        bidirectional=bidirectional, views=views, pooling=pooling, dropout=0.25, head=head,
                        conv_channels=conv_channels, conv_stride=conv_stride)
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


@pytest.mark.parametrize("conv_channels,conv_stride", [(0, 2), (2, 2), (2, 1), ((2, 3), 2), ((3, 2), 1)])
def test_pixel_gradients_match_finite_differences(conv_channels, conv_stride):
    arch = Architecture(n_classes=3, image_size=5, hidden_size=3, num_layers=1, dropout=0.0,
                        conv_channels=conv_channels, conv_stride=conv_stride)
    rng = np.random.default_rng(3)
    params = init_parameters(arch, rng, dtype=np.float64)
    for value in params.values():
        value += rng.normal(0, 0.3, value.shape)
    net = Network(arch, params, kernel=reference)
    images = rng.random((2, 5, 5))
    pick = np.array([[1.0, 0, 0], [0, 0, 1.0]])  # d(score of person 0 for image 0 + person 2 for image 1)
    pixels, _ = net.image_gradients(images, lambda scores: pick)
    eps = 1e-6
    for n, i, j in [(0, 0, 0), (0, 2, 3), (1, 4, 4), (1, 1, 2)]:
        up, down = images.copy(), images.copy()
        up[n, i, j] += eps
        down[n, i, j] -= eps
        numeric = ((net.forward(up)[0] * pick).sum() - (net.forward(down)[0] * pick).sum()) / (2 * eps)
        assert pixels[n, i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("stride", [1, 2])
def test_convolution_is_the_textbook_sum(stride):
    from pyface.nn.conv import conv_forward, output_size

    rng = np.random.default_rng(4)
    images = rng.normal(size=(2, 7, 7))
    weight, bias = rng.normal(size=(3, 9)), rng.normal(size=3)
    maps, _ = conv_forward(images, weight, bias, stride)
    out = output_size(7, stride)
    assert maps.shape == (2, out, out, 3)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    for n in range(2):
        for c in range(3):
            for i in range(out):
                for j in range(out):
                    window = padded[n, i * stride : i * stride + 3, j * stride : j * stride + 3]
                    expected = max(float((window.reshape(-1) * weight[c]).sum() + bias[c]), 0.0)
                    assert maps[n, i, j, c] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_convolution_over_channels_is_the_textbook_sum(stride):
    from pyface.nn.conv import conv_forward, output_size

    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(2, 6, 6, 3))
    weight, bias = rng.normal(size=(4, 27)), rng.normal(size=4)
    maps, _ = conv_forward(inputs, weight, bias, stride)
    out = output_size(6, stride)
    assert maps.shape == (2, out, out, 4)
    padded = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel = weight.reshape(4, 3, 3, 3)  # (out channel, tap row, tap column, in channel)
    for n in range(2):
        for c in range(4):
            for i in range(out):
                for j in range(out):
                    window = padded[n, i * stride : i * stride + 3, j * stride : j * stride + 3, :]
                    expected = max(float((window * kernel[c]).sum() + bias[c]), 0.0)
                    assert maps[n, i, j, c] == pytest.approx(expected, abs=1e-12)


def test_two_convolutions_shape_what_the_lstms_read():
    arch = Architecture(n_classes=3, image_size=64, hidden_size=8, conv_channels=(8, 16), conv_stride=2)
    assert arch.conv_layers == (8, 16) and arch.conv_sizes() == [64, 32, 16]
    assert (arch.sequence_length, arch.step_size) == (16, 256)
    shapes = arch.parameter_shapes()
    assert shapes["conv.weight"] == (8, 9) and shapes["conv2.weight"] == (16, 72) and shapes["conv2.bias"] == (16,)
    assert shapes["rows.0.fwd.w_ih"] == (32, 256)
    # A list (as JSON gives it back) is the same architecture as the tuple.
    assert Architecture.from_dict(arch.to_dict()) == arch and arch.to_dict()["conv_channels"] == [8, 16]
    # NumPy integers are kept as ints, which the model file's JSON can hold.
    from_numpy = Architecture(n_classes=3, conv_channels=tuple(np.array([8, 16])))
    assert json.loads(json.dumps(from_numpy.to_dict()))["conv_channels"] == [8, 16]
    assert type(Architecture(n_classes=3, conv_channels=np.int64(8)).conv_channels) is int


def test_convolution_front_end_shapes_what_the_lstms_read():
    arch = Architecture(n_classes=3, image_size=64, hidden_size=8, conv_channels=8, conv_stride=2)
    assert (arch.sequence_length, arch.step_size) == (32, 256)
    shapes = arch.parameter_shapes()
    assert shapes["conv.weight"] == (8, 9) and shapes["rows.0.fwd.w_ih"] == (32, 256)
    plain = Architecture(n_classes=3, image_size=64, hidden_size=8)
    assert (plain.sequence_length, plain.step_size) == (64, 64) and "conv.weight" not in plain.parameter_shapes()
    # Files written before the front end existed load as networks reading pixels.
    old = {k: v for k, v in plain.to_dict().items() if not k.startswith("conv_")}
    assert Architecture.from_dict(old) == plain


def test_native_kernel_gives_the_reference_scores_with_the_convolution():
    arch = Architecture(n_classes=4, image_size=12, hidden_size=8, conv_channels=4)
    params = init_parameters(arch, np.random.default_rng(1))
    images = np.random.default_rng(2).random((5, 12, 12), dtype=np.float32)
    native, _ = Network(arch, params).forward(images)
    ref, _ = Network(arch, params, kernel=reference).forward(images)
    np.testing.assert_allclose(native, ref, rtol=1e-4, atol=1e-5)


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
                                 {"dropout": 1.0}, {"num_layers": 0}, {"hidden_size": 0},
                                 {"conv_channels": -1}, {"conv_channels": 2.5}, {"conv_stride": 3},
                                 {"conv_channels": ()}, {"conv_channels": (8, 0)}, {"conv_channels": (8, True)}])
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
