"""Answers from a trained network: the recognizer, open-set figures, explanations, model files."""

from .recognizer import UNKNOWN, FaceRecognizer, load_model

__all__ = ["FaceRecognizer", "UNKNOWN", "load_model"]
