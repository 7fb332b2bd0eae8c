"""Training a recognizer: the loop, its settings, checkpoints, augmentation and blended people."""

from .loop import TrainingDivergedError, TrainingInterrupted, train

__all__ = ["train", "TrainingDivergedError", "TrainingInterrupted"]
