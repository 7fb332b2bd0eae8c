"""``pyface train``: a recognizer from a folder with one subfolder of images per person."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import (UserError, count, existing_folder, load_faces, output_file, percent, plot_or_say,
                     progress_quiet, say, sibling)
from .options import FACES, blended_people, conv_channels, fraction, int_at_least, positive_float

__all__ = ["add_parser", "run", "resume_command"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    # pyface.train's own defaults, shown in the help; "auto" ones as they stand without and with --open-set
    from ..training import DEFAULTS as trained
    from ..training.settings import CLOSED_SET_CHOICES as closed
    from ..training.settings import OPEN_SET_RECIPE as recipe
    help = "train a recognizer on a folder with one subfolder of images per person"
    p = commands.add_parser("train", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("folder", metavar="DIR", help="folder of person folders: DIR/alice/1.jpg, DIR/bob/1.jpg, ...")
    p.add_argument("--out", default="faces.pyface", help="model file to write (default: faces.pyface); "
                   "curves and confusion matrix PNGs are written next to it")
    p.add_argument("--epochs", type=int_at_least(1),
                   help=f"passes over the training images (default {closed['epochs']}; {recipe['epochs']} with "
                   "--open-set)")
    p.add_argument("--hidden", type=int_at_least(1),
                   help=f"LSTM hidden units per direction (default {closed['hidden_size']}; "
                   f"{recipe['hidden_size']} with --open-set)")
    p.add_argument("--layers", type=int_at_least(1), help=f"stacked LSTM layers (default {trained['num_layers']})")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help=f"also read every sequence backwards (default {trained['bidirectional']})")
    p.add_argument("--conv", type=conv_channels, metavar="CHANNELS",
                   help="channels of the 3x3 convolutions the LSTMs read instead of the pixels, one number "
                   f"per layer (default {','.join(map(str, closed['conv_channels']))}; 0: none, the LSTMs "
                   "read the pixels, as with --open-set by default)")
    p.add_argument("--blended", type=blended_people, metavar="N",
                   help="made-up people, each a blend of two real ones, trained on beside them and left out of "
                   "the model: auto (one per real person, about twice the work per epoch; with --open-set "
                   f"{recipe['blended_people']}) or a number (default auto; 0: none)")
    p.add_argument("--batch-size", type=int_at_least(1), help=f"images per step (default {trained['batch_size']})")
    p.add_argument("--learning-rate", type=positive_float,
                   help=f"peak learning rate (default {trained['learning_rate']})")
    p.add_argument("--precision", choices=("float32", "bfloat16"),
                   help="number format of the LSTM's matrix products in training; bfloat16 needs a CPU "
                        "with AVX512_BF16 or AMX (default float32; `pyface info` shows the bf16 path)")
    p.add_argument("--no-augment", action="store_true", help="train on the images as they are (no random shifts, "
                   "rotations, flips, lighting changes)")
    p.add_argument("--test-size", type=fraction(True, False), default=0.2,
                   help="fraction of each person's images held out to measure accuracy (default 0.2; 0: none)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the split and the training (default 0)")
    p.add_argument("--size", type=int_at_least(8), default=64, help="side of the square images the network reads "
                   "(default 64)")
    p.add_argument("--faces", choices=tuple(FACES), default="auto",
                   help="auto (default): crop photos to their largest face and leave face crops whole; "
                   "crop: crop every image to its largest face; whole: never look for faces")
    p.add_argument("--detect-faces", dest="faces", action="store_const", const="crop",
                   help="the same as --faces crop")
    p.add_argument("--open-set", action="store_true",
                   help="train for people never seen in training (the open-set recipe; a fifth of the people "
                   "are kept out to set the thresholds on)")
    p.add_argument("--descriptor", choices=("auto", "hog", "lbp", "hog+lbp", "hog+lbp+lbp2+lbph+lpq", "none"),
                   default=None,
                   help="a fixed second view of each face joined to the network's embedding: histograms of "
                   "gradients (hog), of local binary patterns (lbp), both, or these with wider patterns, patterns "
                   "of the half-size face and local phase (hog+lbp+lbp2+lbph+lpq), projected onto what tells the "
                   "training people apart, joined to the embedding and to the classifier's answers; or none "
                   "(default auto: all of them on faces of 32 pixels or more, else hog+lbp; with --open-set the "
                   "people kept out choose between hog+lbp and all of them)")
    p.add_argument("--target-far", type=fraction(True, False), default=None,
                   help=f"share of strangers the default thresholds let in (default {trained['target_far']})")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is no terminal)")
    p.add_argument("--checkpoint", metavar="PATH", help="save everything needed to resume training to PATH "
                   "every --checkpoint-every epochs (default: only on Ctrl-C, to --out's name + .ckpt)")
    p.add_argument("--checkpoint-every", metavar="N", type=int_at_least(1),
                   help="epochs between checkpoints (default 1 with --checkpoint)")
    p.add_argument("--resume", metavar="PATH", help="continue the training saved in the checkpoint PATH; "
                   "give the same folder and options as the interrupted command")


def _faces(args: argparse.Namespace, folder: Path):
    """The training and held-out images of ``folder``, with what was loaded said."""
    from ..data.preprocess import Preprocessor

    try:
        preprocessor = Preprocessor(size=args.size, detect_faces=FACES[args.faces])
    except RuntimeError as exc:  # no face detector in this OpenCV
        raise UserError(str(exc)) from exc
    dataset = load_faces(folder, preprocessor)
    say(f"Loaded {count(len(dataset), 'image')} of {count(len(dataset.names), 'person', 'people')} from {folder} "
        f"({args.size}x{args.size} pixels)")
    if preprocessor.detect_faces:
        say(f"Face detection: a face found in {count(preprocessor.n_faces_found_, 'image')}; "
            f"{preprocessor.n_faces_missed_} without one used whole")
    if len(dataset.names) < 2:
        raise UserError(f"found only one person ({dataset.names[0]}) under {folder}: a recognizer needs at least two")
    if args.test_size > 0:
        train_set, test_set = dataset.split(test_size=args.test_size, seed=args.seed)
    else:
        train_set, test_set = dataset, dataset[[]]
    if len(test_set):
        say(f"Training on {count(len(train_set), 'image')}, holding out {len(test_set)} to test (seed {args.seed})")
    else:
        say(f"Training on all {count(len(train_set), 'image')}; none held out, so accuracy will not be measured")
    return train_set, test_set


def _options(args: argparse.Namespace) -> dict:
    """The pyface.train options given on the command line; the others keep train's defaults."""
    options = {
        "epochs": args.epochs, "hidden_size": args.hidden, "num_layers": args.layers,
        "bidirectional": args.bidirectional, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "precision": args.precision, "conv_channels": args.conv, "blended_people": args.blended,
    }
    options = {name: value for name, value in options.items() if value is not None}
    if args.no_augment:
        options["augment"] = None
    if args.open_set:
        options["open_set"] = True
    if args.target_far is not None:
        options["target_far"] = args.target_far
    if args.descriptor is not None:
        options["descriptor"] = None if args.descriptor == "none" else args.descriptor
    return options


def _epochs_before(resume: str | None) -> int:
    """Epochs the checkpoint to resume from already holds (0 for a fresh run)."""
    from ..training.checkpoint import load_checkpoint

    if resume is None:
        return 0
    if not Path(resume).is_file():
        raise UserError(f"--resume {resume}: checkpoint file not found")
    return load_checkpoint(resume)[0].epoch


def _this_run(done: int, before: int, resume: str | None) -> str:
    """The epochs this run trained, of ``done`` in all after the checkpoint's ``before``."""
    if resume is None:
        return count(done, "epoch")
    if done == before:
        return f"no more epochs ({resume} already held all {done})"
    span = f"epoch {done}" if done == before + 1 else f"epochs {before + 1}-{done}"
    return f"{count(done - before, 'epoch')} ({span}; the first {before} came from {resume})"


def run(args: argparse.Namespace) -> int:
    from ..recognition.evaluation import classification_report
    from ..training import TrainingInterrupted, train

    from ..kernel.runtime import check_precision

    if args.precision is not None:
        check_precision(args.precision)  # before loading any image: this machine may not run it
    folder = existing_folder(args.folder, "face folder")
    out = output_file(args.out, "--out")
    train_set, test_set = _faces(args, folder)
    before = _epochs_before(args.resume)
    # Ctrl-C always leaves a checkpoint; periodic ones only when asked for.
    checkpoint = output_file(args.checkpoint or args.resume or str(sibling(out, "ckpt")), "--checkpoint")
    every = args.checkpoint_every or (1 if args.checkpoint else None)
    started = time.perf_counter()
    try:
        model = train(train_set, seed=args.seed, quiet=progress_quiet(args), checkpoint=checkpoint,
                      checkpoint_every=every, resume=args.resume, **_options(args))
    except TrainingInterrupted as stop:
        print(f"pyface: interrupted after {stop.epochs_done} of {stop.epochs} epochs; saved {checkpoint}; "
              f"resume with: {resume_command(args.argv, checkpoint)}", file=sys.stderr)
        return 130
    say(f"Trained {_this_run(len(model.history['epoch']), before, args.resume)} "
        f"in {time.perf_counter() - started:.1f} s: {model!r}")

    report = classification_report(model, test_set) if len(test_set) else None
    if report is not None:
        say(f"Held-out accuracy: {percent(report['accuracy'])} ({report['correct']} of "
            f"{count(report['images'], 'image')})")
    model.save(out)
    say(f"Saved the model to {out}")
    plot_or_say(lambda: _draw(model.history, report, out))
    return 0


def _draw(history: dict, report: dict | None, out: Path) -> list[Path]:
    from .. import plots

    written = [sibling(out, "curves.png")]
    plots.save_training_curves(history, written[0])
    if report is not None:
        written.append(sibling(out, "confusion.png"))
        plots.save_confusion_matrix(np.array(report["confusion_matrix"]), report["names"], written[1],
                                    title=f"Held-out images ({percent(report['accuracy'])} correct)")
    return written


def resume_command(argv: Sequence[str], checkpoint: Path) -> str:
    """The ``pyface train`` command line ``argv`` with ``--resume checkpoint`` in place of any other."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--resume="):
            skip = False
            continue
        if arg == "--resume":
            skip = True
            continue
        kept.append(arg)
    return shlex.join(["pyface", *kept, "--resume", str(checkpoint)])
