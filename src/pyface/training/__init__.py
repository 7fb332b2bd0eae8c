"""Training a recognizer: ``pyface.train``, its loop and settings, checkpoints, augmentation, blended people."""

from .api import train
from .errors import TrainingDivergedError, TrainingInterrupted, TrainingStalledWarning
from .settings import ARCHITECTURE_OPTIONS, DEFAULTS, OPEN_SET_RECIPE, TRAINING_OPTIONS, TrainingSettings

__all__ = ["train", "TrainingDivergedError", "TrainingInterrupted", "TrainingStalledWarning", "TrainingSettings",
           "ARCHITECTURE_OPTIONS", "TRAINING_OPTIONS", "DEFAULTS", "OPEN_SET_RECIPE"]
