"""Parsers of option values: each turns the text of one option into a checked value or a usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["FACES", "int_at_least", "conv_channels", "blended_people", "fraction", "positive_float", "threshold_option"]

# --faces: the Preprocessor's detect_faces for each choice.
FACES = {"auto": "auto", "crop": True, "whole": False}


def int_at_least(low: int) -> Callable[[str], int]:
    """A parser of integers from ``low`` up."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def conv_channels(text: str) -> int | tuple[int, ...]:
    """Channels of the convolutions: ``0`` (none), ``16`` (one layer) or ``16,32`` (one layer per number)."""
    parts = text.split(",")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if len(values) == 1 and values[0] >= 0:
        return values[0]
    if all(value >= 1 for value in values):
        return tuple(values)
    raise argparse.ArgumentTypeError(f"channels must be at least 1 (or a single 0 for none), got {text!r}")


def blended_people(text: str) -> int | str:
    """Blended people to train beside the real ones: ``auto`` (one per real person) or a whole number >= 0."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or at least 0, got {value}")
    return value


def fraction(low_inclusive: bool, high_inclusive: bool) -> Callable[[str], float]:
    """A parser of numbers between 0 and 1, each end included or not."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value >= 0 if low_inclusive else value > 0
        below = value <= 1 if high_inclusive else value < 1
        if not (above and below):
            interval = ("[" if low_inclusive else "(") + "0, 1" + ("]" if high_inclusive else ")")
            raise argparse.ArgumentTypeError(f"must lie in {interval}, got {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def threshold_option(text: str) -> float | str:
    """A score in [-2, 2] (``FaceRecognizer.identify``'s or ``verify``'s: a cosine, less the mean
    of two offsets where the model normalizes scores), or ``'auto'`` for the model's own threshold."""
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if not -2.0 <= value <= 2.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must lie in [-2, 2], got {text}")
    return value
