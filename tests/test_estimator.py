import subprocess
import sys
import tempfile

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import cross_val_score

from pyface.estimator import LSTMFaceClassifier

FAST = dict(image_size=16, hidden_size=8, num_layers=1, views=("rows",), bidirectional=False, augment=False,
            batch_size=8, epochs=25)


def test_importing_pyface_does_not_import_sklearn():
    code = "import sys, pyface, pyface.estimator, pyface.training; print('sklearn' in sys.modules)"
    # From a neutral folder: the source folder would shadow the installed package.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir())
    assert out.stdout.strip() == "False"


def test_params_come_from_the_constructor():
    est = LSTMFaceClassifier(hidden_size=32, epochs=7)
    params = est.get_params()
    assert params["hidden_size"] == 32 and params["epochs"] == 7 and params["random_state"] == 0
    assert "model_" not in params
    assert est.set_params(epochs=3, pooling="last") is est
    assert est.get_params()["epochs"] == 3 and est.pooling == "last"
    with pytest.raises(ValueError, match="colour"):
        est.set_params(colour=True)
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert is_classifier(est)
    assert repr(est) == "LSTMFaceClassifier(hidden_size=32, pooling='last', epochs=3)"


def test_cross_val_score(make_images):
    images, labels = make_images(per_class=6)
    y = np.array(["ann", "ben", "cid"])[labels]
    scores = cross_val_score(LSTMFaceClassifier(**FAST), images, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() >= 0.85


def test_fit_predict_keeps_label_values(make_images):
    images, labels = make_images(per_class=6)
    y = labels * 10 + 5
    est = LSTMFaceClassifier(**FAST).fit(images, y)
    np.testing.assert_array_equal(est.classes_, [5, 15, 25])
    assert est.predict(images).dtype == y.dtype
    assert est.model_.preprocessor.size == 16
    assert est.score(images, y) >= 0.9
    proba = est.predict_proba(images)
    assert proba.shape == (18, 3)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], est.predict(images))
    weights = (y == 5).astype(float)
    assert est.score(images, y, sample_weight=weights) == pytest.approx(np.mean(est.predict(images)[:6] == 5))


def test_unfitted_and_mismatched_inputs(make_images):
    images, labels = make_images(per_class=2)
    with pytest.raises(AttributeError, match="not fitted"):
        LSTMFaceClassifier().predict(images)
    with pytest.raises(ValueError, match="labels"):
        LSTMFaceClassifier(**FAST).fit(images, labels[:-1])
