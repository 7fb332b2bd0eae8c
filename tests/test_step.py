"""The training step's seam: a batch's randomness drawn once, its parts adding up to the whole."""

import inspect

import numpy as np
import pytest

import pyface
from pyface.nn.network import Architecture, Network, init_parameters
from pyface.training import ARCHITECTURE_OPTIONS, DEFAULTS, TRAINING_OPTIONS
from pyface.training.augment import Augmentation
from pyface.training.step import draw_batch, batch_gradients, sum_gradients


def _network(dropout=0.3, views=("rows", "columns")):
    arch = Architecture(n_classes=3, image_size=12, hidden_size=6, num_layers=2, views=views, dropout=dropout)
    return Network(arch, init_parameters(arch, np.random.default_rng(0)))


def _batch(network, weights=None):
    rng = np.random.default_rng(1)
    images = rng.random((10, 12, 12), dtype=np.float32)
    labels = np.arange(10) % 3
    rngs = {name: np.random.default_rng(k) for k, name in enumerate(("augment", "dropout"))}
    return draw_batch(network, images, labels, np.arange(10), augment=Augmentation(), weights=weights, rngs=rngs)


@pytest.mark.parametrize("weights", [None, np.array([1.0, 2.0, 0.5])])
def test_the_parts_of_a_batch_add_up_to_the_whole(weights):
    network = _network()
    batch = _batch(network, weights)
    whole = batch_gradients(network, batch, 0.1)
    parts = sum_gradients([batch_gradients(network, batch.part(a, b), 0.1) for a, b in ((0, 3), (3, 7), (7, 10))])
    assert parts.loss == pytest.approx(whole.loss, rel=1e-5) and parts.correct == whole.correct
    for name, value in whole.grads.items():
        np.testing.assert_allclose(parts.grads[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_part_takes_its_images_rows_of_every_dropout_mask():
    network = _network()
    batch = _batch(network)
    # (view x layers-between) masks between layers, then one on the summaries.
    assert [m.shape for m in batch.dropout_masks] == [(10, 12, 12)] * 2 + [(10, network.arch.feature_size)]
    part = batch.part(4, 6)
    for whole, piece in zip(batch.dropout_masks, part.dropout_masks):
        np.testing.assert_array_equal(piece, whole[4:6])
    assert part.total_weight == batch.total_weight == 10


def test_given_dropout_masks_are_the_ones_used():
    network = _network()
    batch = _batch(network)
    zeros = [np.zeros_like(m) for m in batch.dropout_masks]
    logits, _ = network.forward(batch.images, training=True, dropout_masks=zeros)
    # Every summary dropped: the scores are the head's bias alone.
    np.testing.assert_allclose(logits, np.broadcast_to(network.params["dense.bias"], logits.shape), atol=1e-6)


def test_without_dropout_there_are_no_masks():
    assert _network(dropout=0.0).dropout_masks(4, np.random.default_rng(0)) == []


def test_train_names_every_option_with_its_default():
    parameters = inspect.signature(pyface.train).parameters
    for name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default == DEFAULTS[name], name
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_the_estimator_takes_the_same_options_as_train():
    params = pyface.LSTMFaceClassifier().get_params()
    own = {"image_size", "random_state", "quiet"}
    assert set(params) - own == set(ARCHITECTURE_OPTIONS + TRAINING_OPTIONS)
    for name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS:
        assert params[name] == DEFAULTS[name], name


def test_distributed_training_takes_the_same_options_as_train():
    # pyface.distributed imports Dask only when used: reading its signature needs none.
    from pyface.distributed import train as distributed_train

    ours = inspect.signature(pyface.train).parameters
    theirs = inspect.signature(distributed_train).parameters
    for name in ARCHITECTURE_OPTIONS + TRAINING_OPTIONS:
        assert theirs[name].default == ours[name].default, name
