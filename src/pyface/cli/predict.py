"""``pyface predict``: name the person in each image, or 'unknown' under the open-set rule."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

from . import distributed
from .common import image_files, load_model, per_file, percent, report_answers
from .options import threshold_option

__all__ = ["add_parser", "run"]

_PREDICT_BATCH = 64  # images read and answered at a time: a bad file costs a retry of this many


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "name the person in each image"
    p = commands.add_parser("predict", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--threshold", type=threshold_option,
                   help="open-set rule: name the most similar trained or enrolled person, or 'unknown' when "
                   "its score is below this (-2..2, or 'auto' for the model's own threshold)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    distributed.add_predict_options(p)


def _closed_set_answer(model) -> Callable[[list[str]], list]:
    """Per image (best match, probability) from the classifier over the trained people."""
    def answer(paths: list[str]) -> list:
        proba = model.predict_proba(paths)
        return [(model.names[int(p.argmax())], float(p.max())) for p in proba]

    return answer


def _open_set_answer(model) -> Callable[[list[str]], list]:
    """Per image (most similar identity, its score) among trained and enrolled people."""
    def answer(paths: list[str]) -> list:
        names, scores = model.identify(paths, threshold=-np.inf)
        return list(zip(names.tolist(), scores.tolist()))

    return answer


def run(args: argparse.Namespace) -> int:
    if args.scheduler is not None or args.out is not None:
        return distributed.run_predict(args)
    model = load_model(args.model)
    files = image_files(args.images)
    # The classifier answers as it always did unless the open-set rule is asked for or needed.
    open_set = args.threshold is not None or bool(model.enrolled)
    limit = model.resolve_threshold(args.threshold) if args.threshold is not None else -math.inf
    answer = _open_set_answer(model) if open_set else _closed_set_answer(model)
    return report_answers(files, per_file(answer, files), limit=limit, as_json=args.json, key="confidence",
                          shown=(lambda score: f"similarity {score:.3f}") if open_set else percent)
