"""``pyface verify``: whether two face images show the same person."""

from __future__ import annotations

import argparse
import json

from .common import existing_image, load_model, say
from .options import threshold_option

__all__ = ["add_parser", "run"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "tell whether two face images show the same person"
    p = commands.add_parser("verify", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("a", metavar="A", help="first image file")
    p.add_argument("b", metavar="B", help="second image file")
    p.add_argument("--threshold", type=threshold_option, default="auto",
                   help="score from which the faces are the same person (-2..2; default: "
                   "'auto', the model's own threshold)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    for item in (args.a, args.b):
        existing_image(item)
    limit = model.resolve_threshold(args.threshold, kind="verify")
    same, score = model.verify(args.a, args.b, threshold=limit)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "same": same, "similarity": score, "threshold": limit},
                         indent=2))
    else:
        say(f"{'same person' if same else 'different people'} (similarity {score:.3f}, threshold {limit:.3f})")
    return 0
