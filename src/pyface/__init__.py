"""pyface: fast LSTM face recognition on the CPU."""

from . import datasets
from .training.augment import Augmentation
from .kernel.runtime import get_isa, get_num_threads, info, set_isa, set_num_threads, supported_isas
from .data.dataset import FaceDataset, from_arrays, load_images
from .estimator import LSTMFaceClassifier
from .gallery import Gallery, GalleryError, open_gallery
from .recognition.explain import explain
from .kernel.lstm import LstmCache, LstmGrads, lstm_backward, lstm_forward
from .io.npz import ModelFileError
from .recognition.recognizer import load_model
from .recognition.open_set import evaluate_open_set
from .data.preprocess import Preprocessor
from .recognition.recognizer import FaceRecognizer
from .training import TrainingDivergedError, TrainingInterrupted, TrainingStalledWarning, train

__version__: str = info()["version"]

__all__ = [
    "__version__",
    "info",
    "get_isa",
    "set_isa",
    "supported_isas",
    "get_num_threads",
    "set_num_threads",
    "LstmCache",
    "LstmGrads",
    "lstm_forward",
    "lstm_backward",
    "Preprocessor",
    "FaceDataset",
    "load_images",
    "from_arrays",
    "datasets",
    "train",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "TrainingStalledWarning",
    "FaceRecognizer",
    "load_model",
    "evaluate_open_set",
    "ModelFileError",
    "open_gallery",
    "Gallery",
    "GalleryError",
    "LSTMFaceClassifier",
    "Augmentation",
    "explain",
]
