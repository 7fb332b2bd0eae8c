"""Answers from a trained network: the recognizer, open-set figures, explanations, model files."""

from .model_file import ModelFileError, load_model, save_model
from .recognizer import UNKNOWN, FaceRecognizer

__all__ = ["FaceRecognizer", "UNKNOWN", "ModelFileError", "load_model", "save_model"]
