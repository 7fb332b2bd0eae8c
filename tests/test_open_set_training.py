"""open_set=True: the recipe, people kept out of training, thresholds at a target false-acceptance rate."""

import numpy as np
import pytest

import pyface
from pyface.data.dataset import from_arrays
from pyface.recognition.cohort import NEAREST
from pyface.recognition.open_set import identification_scores, pair_scores, threshold_at_far
from pyface.training import DEFAULTS
from pyface.training.augment import Augmentation
from pyface.training.data import calibration_people
from pyface.training.settings import options_from, resolved


def test_threshold_at_far_by_hand():
    genuine = np.array([0.9, 0.8, 0.7, 0.4])
    impostor = np.array([0.75, 0.5, 0.3, 0.2, 0.1])
    # At most 1 of 5 impostors (20 %): 0.75 is let in, 0.5 would make it 2.
    assert threshold_at_far(genuine, impostor, 0.2) == pytest.approx((0.7, 0.2, 0.25))
    # None at all: the lowest threshold above 0.75 is the next score, 0.8.
    assert threshold_at_far(genuine, impostor, 0.0) == pytest.approx((0.8, 0.0, 0.5))
    with pytest.raises(ValueError, match="far"):
        threshold_at_far(genuine, impostor, 1.0)


def test_auto_options_take_the_recipe_with_open_set_and_given_values_are_kept():
    recipe = resolved(options_from(dict(DEFAULTS, open_set=True)))
    assert (recipe["epochs"], recipe["blended_people"], recipe["cosine_scale"]) == (200, 100, 64.0)
    # Wider LSTMs: LFW's held-out people were named right 42.0 % of the time instead of 37.0 %.
    assert recipe["hidden_size"] == 128
    assert recipe["augment"] == Augmentation(shift=0.1, rotation=10.0, scale=0.1)
    # The open-set network reads pixels: the default convolutions made unseen ORL people's EER worse.
    assert recipe["conv_channels"] == 0
    # It keeps the defaults' head and regularisation, which lowered the EER of unseen people on ORL and LFW.
    assert (recipe["head"], recipe["dropout"], recipe["weight_decay"]) == ("cosine", 0.4, 0.2)
    closed = resolved(options_from(DEFAULTS))
    assert (closed["epochs"], closed["conv_channels"], closed["cosine_scale"]) == (150, (16, 32), 32.0)
    assert closed["hidden_size"] == 64
    assert closed["augment"] == Augmentation() and closed["blended_people"] == "auto"  # one per person
    # A value given keeps it with open_set, the closed-set defaults' values too.
    given = resolved(options_from(dict(DEFAULTS, open_set=True, epochs=150, conv_channels=[16, 32], augment=True)))
    assert (given["epochs"], given["conv_channels"], given["augment"]) == (150, (16, 32), Augmentation())
    assert given["cosine_scale"] == 64.0


@pytest.mark.parametrize("name", ["epochs", "conv_channels", "cosine_scale", "augment", "blended_people"])
def test_a_word_other_than_auto_is_a_clear_error(make_dataset, name):
    with pytest.raises(ValueError, match=f"{name} must be a value or 'auto', got 'many'"):
        pyface.train(make_dataset(n_classes=3, per_class=4), **{name: "many"}, quiet=True)


@pytest.fixture(scope="module")
def open_model(make_dataset):
    faces = make_dataset(n_classes=9, per_class=6)
    model = pyface.train(faces, open_set=True, epochs=8, blended_people=2, hidden_size=8, num_layers=1,
                         views=("rows",), bidirectional=False, augment=None, batch_size=8, quiet=True,
                         calibration_people=0.3, target_far=0.05)
    return faces, model


def test_people_are_kept_out_and_thresholds_measured_on_them(open_model):
    faces, model = open_model
    kept_out = sorted(set(faces.names) - set(model.names))
    assert len(kept_out) == 3 and len(model.names) == 6  # 0.3 of 9 people
    calibration = model.calibration
    assert calibration["source"] == "people kept out of training" and calibration["people"] == 3
    # Options left at "auto" take the recipe's values, those given keep theirs.
    assert model.architecture.conv_channels == 0 and model.architecture.cosine_scale == 64.0
    assert model.architecture.head == "cosine" and model.training["open_set"] is True
    assert model.training["epochs"] == 8 and model.training["blended_people"] == 2
    strangers = pyface.data.select_people(faces, kept_out)
    emb = model.embed(strangers)
    # Scores as the model gives them: normalized against its cohort when the kept-out people chose so.
    normalizing = calibration["cohort"]["normalized"]
    assert model.cohort_nearest == (NEAREST if normalizing else None)
    offsets = model.score_offsets(emb) if normalizing else None
    template_offsets = model.score_offsets(model.templates) if normalizing else None
    # Strangers meet the trained people's templates too, not only each other.
    identify = identification_scores(emb, strangers.labels, gallery=model.templates,
                                     gallery_labels=model.template_labels, offsets=offsets,
                                     gallery_offsets=template_offsets)
    alone = identification_scores(emb, strangers.labels, offsets=offsets)
    assert np.mean(identify[1] > alone[1]) > 0
    for threshold, scores, key in ((model.threshold, identify, "identify"),
                                   (model.verify_threshold, pair_scores(emb, strangers.labels, offsets=offsets),
                                    "verify")):
        expected, far, frr = threshold_at_far(*scores, 0.05)
        assert threshold == pytest.approx(expected, abs=1e-5)
        assert calibration[key]["far"] == pytest.approx(far) and calibration[key]["frr"] == pytest.approx(frr)
        curve = calibration[key]["curve"]
        assert len(curve["threshold"]) == len(curve["far"]) == len(curve["frr"]) <= 200
        assert curve["far"] == sorted(curve["far"])


def test_the_calibration_is_kept_in_the_model_file(open_model, tmp_path):
    _, model = open_model
    model.save(tmp_path / "open.pyface")
    loaded = pyface.load_model(tmp_path / "open.pyface")
    assert loaded.calibration == model.calibration
    assert (loaded.threshold, loaded.verify_threshold) == (model.threshold, model.verify_threshold)


def test_open_set_takes_given_values_equal_to_the_closed_set_defaults(make_dataset, tmp_path):
    # Given explicitly, the closed-set defaults' convolutions, scale and epochs stay.
    faces = make_dataset(n_classes=6, per_class=4)
    options = dict(open_set=True, conv_channels=(16, 32), cosine_scale=32.0, epochs=2, blended_people=3,
                   hidden_size=4, num_layers=1, views=("rows",), bidirectional=False, augment=None, quiet=True,
                   calibration_people=0.34)
    ckpt = tmp_path / "open.ckpt"
    model = pyface.train(faces, checkpoint=ckpt, **options)
    assert model.architecture.conv_channels == (16, 32) and model.architecture.cosine_scale == 32.0
    assert model.training["epochs"] == 2 and model.training["blended_people"] == 3
    # A resumed run takes what was left at "auto" from its checkpoint, not from the recipe.
    resumed = pyface.train(faces, resume=ckpt, open_set=True, calibration_people=0.34, quiet=True)
    assert resumed.training == model.training and resumed.architecture == model.architecture


def test_too_few_people_for_open_set_training_is_a_clear_error(make_dataset):
    with pytest.raises(ValueError, match="open_set=True keeps 2 people"):
        pyface.train(make_dataset(n_classes=3, per_class=4), open_set=True, epochs=1, quiet=True)


def test_the_calibration_share_is_of_the_people_with_two_or_more_images():
    # 4 people with 3 images and 16 with one: half of the 4 are kept out, not half of all 20
    # (10, more than there are people to measure on).
    labels = np.concatenate([np.repeat(np.arange(4), 3), np.arange(4, 20)])
    faces = from_arrays(np.random.default_rng(0).random((len(labels), 8, 8), dtype=np.float32), labels)
    trained, kept_out = calibration_people(faces, 0.5, np.random.default_rng(0))
    assert len(kept_out.names) == 2 and len(trained.names) == 18
    assert set(kept_out.names) <= {faces.names[k] for k in range(4)}
    assert set(kept_out.names).isdisjoint(trained.names)
