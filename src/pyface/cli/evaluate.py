"""``pyface evaluate``: accuracy, per-person precision and recall, worst confusions on a labelled folder."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from .common import UserError, count, existing_folder, load_faces, load_model, percent, say
from .options import int_at_least

__all__ = ["add_parser", "run", "print_report"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "accuracy, per-person precision and recall on a labelled folder"
    p = commands.add_parser("evaluate", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("folder", metavar="DIR", help="folder of person folders, named as in training")
    p.add_argument("--worst", type=int_at_least(0), default=10, help="confusions to list (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def print_report(report: dict, *, worst: int) -> None:
    """A :func:`~pyface.recognition.evaluation.classification_report` as a table and a list."""
    shown = sum(p["images"] > 0 for p in report["people"])
    say(f"Accuracy: {percent(report['accuracy'])} ({report['correct']} of {count(report['images'], 'image')}, "
        f"{count(shown, 'person', 'people')})")
    width = max([len("person")] + [len(p["name"]) for p in report["people"]])
    say("", f"{'person':<{width}}  images  precision  recall")
    for p in report["people"]:
        say(f"{p['name']:<{width}}  {p['images']:>6}  {percent(p['precision']):>9}  {percent(p['recall']):>6}")
    if not report["confusions"]:
        say("", "No confusions.")
        return
    say("", "Worst confusions (true person -> recognised as):")
    for c in report["confusions"][:worst]:
        say(f"  {c['true']} -> {c['predicted']}: {count(c['images'], 'image')}")


def _known_people_only(model, dataset):
    unknown = sorted(set(dataset.names[k] for k in np.unique(dataset.labels)) - set(model.names))
    if not unknown:
        return dataset
    keep = np.array([dataset.names[k] in model.names for k in dataset.labels])
    if not keep.any():
        raise UserError(f"none of the people in the folder are known to the model (it knows {', '.join(model.names)})")
    warnings.warn(f"skipping {count(len(unknown), 'person', 'people')} the model was not trained on: "
                  f"{', '.join(unknown)}", stacklevel=2)
    return dataset[keep]


def run(args: argparse.Namespace) -> int:
    from ..recognition.evaluation import classification_report

    model = load_model(args.model)
    folder = existing_folder(args.folder, "face folder")
    dataset = _known_people_only(model, load_faces(folder, model.preprocessor))
    report = classification_report(model, dataset)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, worst=args.worst)
    return 0
