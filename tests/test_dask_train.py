"""Data-parallel training on a real two-worker Dask cluster: the model of pyface.train, whatever happens."""

import os
import threading

import numpy as np
import pytest

from pyface.training import TrainingInterrupted, train
from pyface.training import loop as training

# Augmentation and dropout on, two layers and balanced class weights: every random draw and
# every weighting of the loss crosses the shards.
OPTIONS = dict(hidden_size=8, num_layers=2, views=("rows",), bidirectional=True, batch_size=8, augment=True,
               dropout=0.3, class_weight="balanced", quiet=True)


@pytest.fixture(scope="module")
def distributed():
    from pyface import distributed

    return distributed


@pytest.fixture(scope="module")
def faces(make_dataset):
    # 3 people, uneven numbers of images: the balanced weights differ between people.
    data = make_dataset(per_class=8, seed=0)
    return data[np.r_[0:8, 8:13, 16:24]]


def assert_same_weights(model, reference, rtol=1e-4):
    for name, value in reference.network.params.items():
        difference = np.linalg.norm(model.network.params[name] - value) / np.linalg.norm(value)
        assert difference <= rtol, f"{name}: relative difference {difference:.2e}"


@pytest.mark.parametrize("shards", [1, 2])
def test_one_epoch_gives_the_weights_of_pyface_train(distributed, dask_client, faces, shards):
    reference = train(faces, seed=3, epochs=1, **OPTIONS)
    model = distributed.train(faces, client=dask_client, shards=shards, seed=3, epochs=1, **OPTIONS)
    assert_same_weights(model, reference)
    assert model.history["loss"] == pytest.approx(reference.history["loss"], rel=1e-5)
    assert 0.0 <= model.history["communication_share"] < 1.0


def test_other_seed_other_model(distributed, dask_client, faces):
    a = distributed.train(faces, client=dask_client, seed=3, epochs=1, **OPTIONS)
    b = distributed.train(faces, client=dask_client, seed=4, epochs=1, **OPTIONS)
    assert not np.allclose(a.network.params["dense.weight"], b.network.params["dense.weight"], rtol=1e-3)


def test_interrupted_training_resumes_to_the_same_model(distributed, dask_client, faces, tmp_path, monkeypatch):
    checkpoint = tmp_path / "run.ckpt"
    real, calls = training.train_epoch, []

    def epoch_then_ctrl_c(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(training, "train_epoch", epoch_then_ctrl_c)
    with pytest.raises(TrainingInterrupted) as stopped:
        distributed.train(faces, client=dask_client, seed=1, epochs=3, checkpoint=checkpoint, **OPTIONS)
    assert stopped.value.epochs_done == 1
    monkeypatch.setattr(training, "train_epoch", real)
    resumed = distributed.train(faces, client=dask_client, resume=checkpoint, **OPTIONS)
    assert resumed.history["epoch"] == [1, 2, 3]
    assert_same_weights(resumed, train(faces, seed=1, epochs=3, **OPTIONS))


def test_a_worker_killed_mid_training_costs_a_retry_not_the_run(distributed, own_dask_client, faces,
                                                                kill_a_worker_once_busy):
    before = own_dask_client.run(os.getpid)
    kill = {}
    killer = threading.Thread(target=lambda: kill.update(kill_a_worker_once_busy(own_dask_client)))
    killer.start()
    model = distributed.train(faces, client=own_dask_client, shards=2, seed=2, epochs=6, **OPTIONS)
    done_first = not killer.is_alive()
    killer.join()
    assert kill["killed"] and done_first, "the worker was not killed while training ran"
    assert kill["pid"] in before.values() and kill["pid"] not in own_dask_client.run(os.getpid).values()
    assert model.history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert_same_weights(model, train(faces, seed=2, epochs=6, **OPTIONS))


def test_full_training_reaches_the_orl_accuracy_of_pyface_train(distributed, dask_client, att_faces_dir):
    from pyface.data import load_images

    fit, test = load_images(att_faces_dir).split(test_size=0.2, seed=42)
    # As tests/model/test_orl.py: a fifth of the default epochs already names most faces.
    here = train(fit, seed=0, epochs=20, quiet=True).evaluate(test)["accuracy"]
    there = distributed.train(fit, client=dask_client, seed=0, epochs=20, quiet=True).evaluate(test)["accuracy"]
    assert there >= 0.85
    # Summation order differs from the first step on, and over 20 epochs grows into a different
    # run of the same recipe, as one and two kernel threads do: within seed noise means a few of
    # the 80 test faces (2 and 4 apart in the runs measured; pyface.train's own seeds 0-4 span
    # 3 faces at 100 epochs, more at 20).
    assert abs(round(there * 80) - round(here * 80)) <= 5
