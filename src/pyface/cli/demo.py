"""``pyface demo``: the whole pipeline on synthetic faces, in about a minute, with nothing downloaded."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from .common import UserError, count, percent, plot_or_say, progress_quiet, say
from .explain import row_ranges
from .options import int_at_least

__all__ = ["add_parser", "run"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "the whole pipeline on synthetic faces, in about a minute, no download"
    p = commands.add_parser("demo", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("--out", default="pyface-demo", help="folder for the model and pictures (default: pyface-demo)")
    p.add_argument("--people", type=int_at_least(2), default=12, help="synthetic people (default 12)")
    p.add_argument("--per-person", type=int_at_least(4), default=12, help="images per person (default 12)")
    p.add_argument("--epochs", type=int_at_least(1), default=60, help="training epochs (default 60)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is no terminal)")


def _draw_faces(args: argparse.Namespace, out_dir: Path):
    import cv2

    from ..datasets import synthetic_faces

    faces = synthetic_faces(n_people=args.people, per_person=args.per_person, size=64, seed=args.seed)
    sample = np.concatenate([np.concatenate(list(faces.images[faces.labels == k][:6]), axis=1)
                             for k in range(min(args.people, 6))], axis=0)
    cv2.imwrite(str(out_dir / "faces.png"), np.rint(sample * 255).astype(np.uint8))
    say(f"1. Drew {count(len(faces), 'synthetic face')} of {count(args.people, 'person', 'people')} "
        f"({args.per_person} each, 64x64 pixels), each image with its own pose, light and expression; "
        f"a sample is in {out_dir / 'faces.png'}")
    return faces


def _predict_and_explain(model, test_set, out_dir: Path) -> None:
    import cv2

    from ..recognition.explain import explanation, render

    say("4. Predictions on held-out images:")
    proba = model.predict_proba(test_set)
    # One held-out image of each of the first five people.
    firsts = np.unique(test_set.labels, return_index=True)[1][:5]
    for i in firsts:
        truth = test_set.names[test_set.labels[i]]
        k = int(proba[i].argmax())
        mark = "right" if model.names[k] == truth else "WRONG"
        say(f"   image of {truth}: {model.names[k]} {percent(proba[i, k])} ({mark})")

    # The first of them explained, its picture titled with the very figure printed above.
    first, k = firsts[0], int(proba[firsts[0]].argmax())
    result = explanation(model, test_set.images[first], person=model.names[k])
    result = dataclasses.replace(result, probability=float(proba[first, k]))
    heat_path = out_dir / "explain.png"
    cv2.imwrite(str(heat_path), render(result))
    top = np.argsort(result.row_importance)[::-1][:8]
    say(f"5. Explanation of the first ({result.person} {percent(result.probability)}): rows {row_ranges(top)} "
        f"of 64 drove the decision most; see {heat_path}")


def run(args: argparse.Namespace) -> int:
    from .. import plots
    from ..recognition.evaluation import classification_report
    from ..training import train

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    demo_started = time.perf_counter()
    say("pyface demo: the whole pipeline on SYNTHETIC faces, cartoon faces drawn by pyface itself",
        "(no real people, nothing downloaded).", "")
    faces = _draw_faces(args, out_dir)

    train_set, test_set = faces.split(test_size=0.25, seed=args.seed)
    say(f"2. Training a bidirectional LSTM on {count(len(train_set), 'image')} for {count(args.epochs, 'epoch')} "
        f"({len(test_set)} held out)...")
    started = time.perf_counter()
    model = train(train_set, seed=args.seed, quiet=progress_quiet(args), epochs=args.epochs)
    say(f"   trained in {time.perf_counter() - started:.1f} s")
    model_path = out_dir / "faces.pyface"
    model.save(model_path)

    report = classification_report(model, test_set)
    say(f"3. Held-out accuracy: {percent(report['accuracy'])} ({report['correct']} of {report['images']})")
    for c in report["confusions"][:3]:
        say(f"   confused: {c['true']} taken for {c['predicted']} ({c['images']}x)")
    _predict_and_explain(model, test_set, out_dir)

    def draw() -> list[Path]:
        curves, confusion = out_dir / "curves.png", out_dir / "confusion.png"
        plots.save_training_curves(model.history, curves)
        plots.save_confusion_matrix(np.array(report["confusion_matrix"]), report["names"], confusion,
                                    title=f"Held-out synthetic faces ({percent(report['accuracy'])} correct)")
        return [curves, confusion]

    say(f"6. Saved the model to {model_path}")
    plot_or_say(draw)
    say("", f"Demo done in {time.perf_counter() - demo_started:.0f} s. Now on real faces, one folder per person "
        "(faces/alice/1.jpg, faces/bob/1.jpg, ...):", "",
        "    pyface train path/to/faces --out faces.pyface", "")
    return 0
