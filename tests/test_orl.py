"""Real faces: a short training on ORL must already recognise most people, from files too."""

import numpy as np
import pytest

from pyface.data import load_images
from pyface import load_model
from pyface.training import train

# A short training (the default is 150 epochs) keeps this well under a minute; the
# defaults reach 97.5-100% on this split (docs/experiments.md).
EPOCHS = 20


@pytest.fixture(scope="module")
def orl_split(att_faces_dir):
    return load_images(att_faces_dir).split(test_size=0.2, seed=42)


@pytest.fixture(scope="module")
def orl_model(orl_split):
    return train(orl_split[0], seed=0, epochs=EPOCHS, quiet=True)


def test_short_training_recognises_most_orl_faces(orl_model, orl_split):
    report = orl_model.evaluate(orl_split[1])
    assert report["n_images"] == 80
    assert report["accuracy"] >= 0.85
    assert orl_model.history["epoch"][-1] == EPOCHS


def test_saved_model_names_people_in_image_files(orl_model, orl_split, tmp_path):
    test = orl_split[1]
    path = tmp_path / "orl.pyface"
    orl_model.save(path)
    loaded = load_model(path)
    from_files = loaded.predict(test.paths)
    np.testing.assert_array_equal(from_files, orl_model.predict(test))
    truth = np.array(test.names)[test.labels]
    assert (from_files == truth).mean() == orl_model.evaluate(test)["accuracy"]
