"""``pyface explain``: which rows of a face drove the model's decision, as a heat map and a list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .common import UserError, existing_image, load_model, output_file, percent, say

__all__ = ["add_parser", "run", "row_ranges"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "show which rows of a face drove the model's decision"
    p = commands.add_parser("explain", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument("--out", help="heat map to write (default: IMAGE's name + .explain.png, in this folder)")
    p.add_argument("--person", help="explain this person's score instead of the winner's")
    p.add_argument("--json", action="store_true", help="print the per-row importance as JSON")


def row_ranges(rows: np.ndarray) -> str:
    """'20-24, 31' for rows [20, 21, 22, 23, 24, 31]."""
    rows = np.sort(rows)
    parts, start = [], rows[0]
    for previous, current in zip(rows, list(rows[1:]) + [None]):
        if current is None or current != previous + 1:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = current
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..recognition.explain import explanation, render

    model = load_model(args.model)
    existing_image(args.image)
    out = output_file(args.out or f"{Path(args.image).stem}.explain.png", "--out")
    if not cv2.haveImageWriter(str(out)):
        raise UserError(f"--out {out}: could not write an image of this kind; use a .png or .jpg name")
    if args.person is not None and args.person not in model.names:
        raise UserError(f"--person {args.person!r}: the model does not know this person")
    result = explanation(model, args.image, person=args.person)
    importance = result.row_importance
    if not cv2.imwrite(str(out), render(result)):
        raise UserError(f"could not write {out}")
    top = np.argsort(importance)[::-1][: max(1, len(importance) // 8)]
    if args.json:
        print(json.dumps({"image": args.image, "person": result.person, "confidence": result.probability,
                          "row_importance": importance.tolist(), "heat_map": str(out)}, indent=2))
    else:
        say(f"{args.image}: {result.person} {percent(result.probability)}",
            f"Rows that drove the decision most (0 = top of the {len(importance)}-row face): {row_ranges(top)}",
            f"Wrote {out}")
    return 0
