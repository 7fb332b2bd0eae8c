"""The model, training and model-file API is reachable from the package itself."""

import pyface
from pyface.training.augment import Augmentation
from pyface.estimator import LSTMFaceClassifier
from pyface import ModelFileError, load_model
from pyface.recognition.recognizer import FaceRecognizer
from pyface.training import train


def test_top_level_names():
    assert pyface.train is train
    assert pyface.load_model is load_model
    assert pyface.FaceRecognizer is FaceRecognizer
    assert pyface.LSTMFaceClassifier is LSTMFaceClassifier
    assert pyface.ModelFileError is ModelFileError
    assert pyface.Augmentation is Augmentation
    assert {"train", "load_model", "FaceRecognizer", "LSTMFaceClassifier", "ModelFileError",
            "Augmentation"} <= set(pyface.__all__)
