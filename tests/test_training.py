import re
import warnings

import numpy as np
import pytest
from pyface.kernel import reference
from pyface.training.augment import Augmentation
from pyface.data.preprocess import Preprocessor
from pyface.training import loop as training
from pyface.data.split import stratified_split
from pyface.training import TrainingStalledWarning, train
from pyface.training.settings import blended_count
from pyface.training.step import class_weights


@pytest.fixture(scope="module")
def faces(make_dataset):
    return make_dataset(per_class=8, seed=0)


def test_learns_separable_faces(faces, tiny, make_dataset):
    model = train(faces, epochs=25, quiet=True, **tiny)
    assert model.evaluate(faces)["accuracy"] == 1.0
    unseen = make_dataset(per_class=4, seed=1)
    assert model.evaluate(unseen)["accuracy"] >= 0.9


def test_same_seed_same_model_other_seed_other_model(faces, tiny):
    options = dict(epochs=3, quiet=True, **{**tiny, "augment": True, "dropout": 0.3})
    a = train(faces, seed=5, **options)
    b = train(faces, seed=5, **options)
    c = train(faces, seed=6, **options)
    for name, value in a.network.params.items():
        np.testing.assert_array_equal(value, b.network.params[name])
    assert any(not np.array_equal(v, c.network.params[n]) for n, v in a.network.params.items())
    assert a.history["loss"] == b.history["loss"]


def test_history_records_every_epoch(faces, tiny):
    model = train(faces, epochs=4, validation_fraction=0.25, quiet=True, **tiny)
    h = model.history
    assert h["epoch"] == [1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(h[key]) == 4, key
    assert all(s > 0 for s in h["seconds"])
    assert 1 <= h["best_epoch"] <= 4
    assert model.training["validation_fraction"] == 0.25 and model.training["seed"] == 0


def test_early_stopping_restores_the_best_weights(faces, tiny):
    # Validation labels unrelated to the images: fitting the training set can only make
    # the validation loss worse, so training stops early.
    rng = np.random.default_rng(0)
    shuffled = faces[rng.permutation(len(faces))[:12]]
    shuffled.labels = rng.permutation(shuffled.labels)
    model = train(faces, validation_data=shuffled, epochs=60, patience=3, learning_rate=0.03,
                  label_smoothing=0.0, quiet=True, **tiny)
    h = model.history
    assert len(h["epoch"]) == h["best_epoch"] + 3 < 60
    best = h["best_epoch"] - 1
    assert (h["val_accuracy"][best], -h["val_loss"][best]) == max(zip(h["val_accuracy"], (-v for v in h["val_loss"])))
    assert model.evaluate(shuffled)["loss"] == pytest.approx(h["val_loss"][best], rel=1e-4)


def test_validation_data_must_share_people(faces, tiny, make_dataset):
    other = make_dataset(n_classes=4, per_class=2)
    with pytest.raises(ValueError, match="person3"):
        train(faces, validation_data=other, epochs=1, quiet=True, **tiny)


def test_stratified_split_keeps_every_class_in_training():
    labels = np.array([0] * 4 + [1] * 4 + [2] * 8 + [3])
    train_idx, val_idx = stratified_split(labels, 0.25, np.random.default_rng(0))
    assert sorted(np.r_[train_idx, val_idx]) == list(range(len(labels)))
    assert np.bincount(labels[val_idx], minlength=4).tolist() == [1, 1, 2, 0]


def test_class_weights_balance_rare_people():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w, [4 / 6, 4 / 2, 0.0])
    assert w[np.array([0, 0, 0, 1])].mean() == pytest.approx(1.0)


def test_trains_from_arrays_with_any_labels(tiny, make_images):
    images, labels = make_images(per_class=6)
    names = np.array(["carol", "alice", "bob"])[labels]
    model = train(images, names, epochs=20, quiet=True, **tiny)
    assert model.names == ["alice", "bob", "carol"]
    assert model.preprocessor == Preprocessor()
    assert (model.predict(images) == names).mean() >= 0.9
    small = train(images, labels, names=["a", "b", "c"], preprocessor=Preprocessor(size=16),
                  epochs=1, quiet=True, **tiny)
    assert small.names == ["a", "b", "c"] and small.architecture.image_size == 16


def test_runs_through_any_kernel(faces, tiny):
    a = train(faces, epochs=2, quiet=True, **tiny)
    b = train(faces, epochs=2, quiet=True, kernel=reference, **tiny)
    for name, value in a.network.params.items():
        np.testing.assert_allclose(value, b.network.params[name], rtol=1e-3, atol=1e-4)


def test_augment_option_forms(faces, tiny):
    options = dict(epochs=1, quiet=True, **{k: v for k, v in tiny.items() if k != "augment"})
    assert train(faces, augment=True, **options).training["augment"] == Augmentation().to_dict()
    assert train(faces, augment=False, **options).training["augment"] is None
    custom = train(faces, augment={"flip": False, "shift": 0.1}, **options).training["augment"]
    assert custom == Augmentation(flip=False, shift=0.1).to_dict()


def test_progress_bar_on_a_terminal_or_when_asked(faces, capsys, tiny):
    train(faces, epochs=1, quiet=False, **tiny)
    assert "training" in capsys.readouterr().err
    train(faces, epochs=1, quiet=True, **tiny)
    assert capsys.readouterr().err == ""
    train(faces, epochs=1, **tiny)  # stderr is captured here, as in a script's log: no bar
    assert capsys.readouterr().err == ""


@pytest.fixture
def epochs_seen(monkeypatch):
    """(classes of the network, labels trained on) of every epoch of the runs of a test."""
    seen = []
    real = training.train_epoch

    def recording(network, optimizer, x, y, *args, **kwargs):
        seen.append((network.arch.n_classes, list(np.unique(y))))
        return real(network, optimizer, x, y, *args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", recording)
    return seen


def test_blended_people_are_trained_on_and_left_out_of_the_model(faces, tiny, epochs_seen):
    model = train(faces, epochs=2, quiet=True, **dict(tiny, blended_people=2))
    assert epochs_seen == [(5, [0, 1, 2, 3, 4])] * 2
    assert model.names == faces.names and model.network.arch.n_classes == 3
    assert model.network.params["dense.weight"].shape[0] == 3 and model.network.params["dense.bias"].shape == (3,)
    assert len(model.templates) == len(faces)
    assert set(model.predict(faces)) <= set(faces.names)
    assert model.training["blended_people"] == 2


def test_auto_blends_one_person_per_real_person_as_far_as_there_are_pairs(faces, tiny, epochs_seen):
    model = train(faces, epochs=1, quiet=True, **dict(tiny, blended_people="auto"))
    # Three people make three pairs, so three blended people beside them.
    assert epochs_seen == [(6, [0, 1, 2, 3, 4, 5])]
    assert model.training["blended_people"] == 3 and model.network.arch.n_classes == 3


@pytest.mark.parametrize("n_people,asked,count", [(2, "auto", 1), (3, "auto", 3), (4, "auto", 4), (96, "auto", 96),
                                                  (5, 7, 7), (5, 0, 0)])
def test_blended_count(n_people, asked, count):
    assert blended_count(asked, n_people) == count


@pytest.mark.parametrize("options,error", [
    ({"epochs": 0}, ValueError), ({"blended_people": "many"}, ValueError), ({"class_weight": "inverse"}, ValueError),
    ({"learning_rate": -1.0}, ValueError), ({"layers": 2}, TypeError),
    ({"blended_people": -1}, ValueError), ({"blended_people": 1.5}, ValueError), ({"blended_people": 4}, ValueError),
])
def test_bad_options(faces, options, error):
    with pytest.raises(error):
        train(faces, quiet=True, **options)


@pytest.mark.parametrize("options,message", [
    ({"weight_decay": -0.1}, "weight_decay must be non-negative, got -0.1"),
    # A decay of 0.2 with a learning rate of 5 would multiply the weights by 0 at each step.
    ({"learning_rate": 5.0, "weight_decay": 0.2}, "learning_rate x weight_decay must be below 1"),
    ({"learning_rate": 0.5, "weight_decay": 3.0}, "got 0.5 x 3.0"),
])
def test_weight_decay_that_cannot_shrink_the_weights_is_refused(faces, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train(faces, quiet=True, **options)


def test_labels_only_with_arrays(faces):
    with pytest.raises(TypeError):
        train(faces, faces.labels, quiet=True)
    with pytest.raises(TypeError):
        train(faces, preprocessor=faces.preprocessor, quiet=True)
    with pytest.raises(TypeError):
        train(faces.images, quiet=True)


def test_a_run_that_learnt_nothing_warns_and_still_returns_its_model(faces, tiny):
    # A learning rate too small to move the weights: the model names its images as guessing would.
    with pytest.warns(TrainingStalledWarning, match=r"no better than guessing among 3 people \(33\.3%\)"):
        model = train(faces, epochs=2, learning_rate=1e-12, weight_decay=0.0, quiet=True, **tiny)
    assert model.history["accuracy"][-1] <= 0.5 and len(model.names) == 3


def test_a_run_that_learnt_does_not_warn(faces, tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingStalledWarning)
        model = train(faces, epochs=30, learning_rate=1e-2, quiet=True, **tiny)
    assert model.history["accuracy"][-1] > 0.9
