"""The ``pyface`` command: train, evaluate, predict, enroll, verify, explain, info, bench, demo.

Results go to stdout, progress bars, warnings and errors to stderr. A mistake of the
user's (a missing folder, an unreadable image, an option out of range) ends the command
with one line on stderr and a non-zero status: 2 for a malformed command line, 1 for
everything else; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

_PREDICT_BATCH = 64


class UserError(Exception):
    """A mistake in what the user asked for; shown as one line without a traceback."""


# ---------------------------------------------------------------------------- options


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # One line, not argparse's usage block: the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _fraction(low_inclusive: bool, high_inclusive: bool) -> Callable[[str], float]:
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# ---------------------------------------------------------------------------- shared by the commands


def _say(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def _progress_quiet(args: argparse.Namespace) -> bool:
    return args.quiet or not sys.stderr.isatty()


def _existing_folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"{what} not found: {path}")
    if not folder.is_dir():
        raise UserError(f"{what} is not a folder: {path}")
    return folder


def _output_file(path: str, option: str) -> Path:
    """Check before any long computation that ``path`` can be written."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    if not out.absolute().parent.is_dir():
        raise UserError(f"{option} {path}: the folder {out.absolute().parent} does not exist")
    return out


def _load_model(path: str):
    from ..recognition.recognizer import load_model

    if not Path(path).exists():
        raise UserError(f"model file not found: {path}")
    if Path(path).is_dir():
        raise UserError(f"{path} is a folder, not a model file")
    return load_model(path)


def _load_faces(folder: Path, preprocessor):
    from ..data.dataset import load_images

    try:
        return load_images(folder, preprocessor=preprocessor)
    except ValueError as exc:
        if str(exc).startswith("no person folder"):
            raise UserError(
                f"no images found under {folder}: it must hold one folder of images per person "
                f"({folder / 'alice' / '1.jpg'}, {folder / 'bob' / '1.jpg'}, ...)"
            ) from exc
        raise


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _plot_or_say(draw: Callable[[], list[Path]]) -> None:
    from .. import plots

    if not plots.matplotlib_available():
        _say(plots.MISSING_MESSAGE)
        return
    written = draw()
    if written:
        _say("Wrote " + ", ".join(str(p) for p in written))


def _sibling(model_path: Path, suffix: str) -> Path:
    return model_path.with_name(f"{model_path.stem}.{suffix}")


# ---------------------------------------------------------------------------- evaluate


def _report(model, dataset) -> dict:
    """Evaluation of ``model`` on ``dataset`` with per-person precision and recall, as plain data."""
    result = model.evaluate(dataset)
    confusion = result["confusion"]
    names = result["names"]
    predicted_as = confusion.sum(axis=0)
    shown = confusion.sum(axis=1)
    people = []
    for k, name in enumerate(names):
        if not shown[k] and not predicted_as[k]:
            continue
        people.append({
            "name": name,
            "images": int(shown[k]),
            "precision": float(confusion[k, k] / predicted_as[k]) if predicted_as[k] else None,
            "recall": float(confusion[k, k] / shown[k]) if shown[k] else None,
        })
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(zip(*np.nonzero(off)), key=lambda ij: (-off[ij], ij))
    confusions = [{"true": names[i], "predicted": names[j], "images": int(off[i, j])} for i, j in pairs]
    return {
        "accuracy": result["accuracy"],
        "correct": int(np.trace(confusion)),
        "images": result["n_images"],
        "loss": result["loss"],
        "people": people,
        "confusions": confusions,
        "names": names,
        "confusion_matrix": confusion.tolist(),
    }


def _print_report(report: dict, *, worst: int) -> None:
    _say(f"Accuracy: {_percent(report['accuracy'])} ({report['correct']} of {report['images']} images, "
         f"{sum(p['images'] > 0 for p in report['people'])} people)")
    width = max([len("person")] + [len(p["name"]) for p in report["people"]])
    _say("", f"{'person':<{width}}  images  precision  recall")
    for p in report["people"]:
        _say(f"{p['name']:<{width}}  {p['images']:>6}  {_percent(p['precision']):>9}  {_percent(p['recall']):>6}")
    if not report["confusions"]:
        _say("", "No confusions.")
        return
    _say("", "Worst confusions (true person -> recognised as):")
    for c in report["confusions"][:worst]:
        _say(f"  {c['true']} -> {c['predicted']}: {c['images']} image{'s' if c['images'] > 1 else ''}")


def _known_people_only(model, dataset):
    unknown = sorted(set(dataset.names[k] for k in np.unique(dataset.labels)) - set(model.names))
    if not unknown:
        return dataset
    keep = np.array([dataset.names[k] in model.names for k in dataset.labels])
    if not keep.any():
        raise UserError(f"none of the people in the folder are known to the model (it knows {', '.join(model.names)})")
    warnings.warn(f"skipping {len(unknown)} people the model was not trained on: {', '.join(unknown)}", stacklevel=2)
    return dataset[keep]


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    folder = _existing_folder(args.folder, "face folder")
    dataset = _known_people_only(model, _load_faces(folder, model.preprocessor))
    report = _report(model, dataset)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report, worst=args.worst)
    return 0


# ---------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from .. import plots
    from ..data.preprocess import Preprocessor
    from ..training import TrainingInterrupted, train

    folder = _existing_folder(args.folder, "face folder")
    out = _output_file(args.out, "--out")
    try:
        preprocessor = Preprocessor(size=args.size, detect_faces=args.detect_faces)
    except RuntimeError as exc:  # no face detector in this OpenCV
        raise UserError(str(exc)) from exc
    dataset = _load_faces(folder, preprocessor)
    n_people = len(dataset.names)
    _say(f"Loaded {len(dataset)} images of {n_people} people from {folder} ({args.size}x{args.size} pixels)")
    if args.detect_faces:
        _say(f"Face detection: a face found in {preprocessor.n_faces_found_} images; "
             f"{preprocessor.n_faces_missed_} used whole")
    if n_people < 2:
        raise UserError(f"found only one person ({dataset.names[0]}) under {folder}: a recognizer needs at least two")
    if args.test_size > 0:
        train_set, test_set = dataset.split(test_size=args.test_size, seed=args.seed)
    else:
        train_set, test_set = dataset, dataset[[]]
    if len(test_set):
        _say(f"Training on {len(train_set)} images, holding out {len(test_set)} to test (seed {args.seed})")
    else:
        _say(f"Training on all {len(train_set)} images; none held out, so accuracy will not be measured")

    options = {
        "epochs": args.epochs, "hidden_size": args.hidden, "num_layers": args.layers,
        "bidirectional": args.bidirectional, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
    }
    options = {name: value for name, value in options.items() if value is not None}
    if args.no_augment:
        options["augment"] = None
    if args.resume is not None and not Path(args.resume).is_file():
        raise UserError(f"--resume {args.resume}: checkpoint file not found")
    # Ctrl-C always leaves a checkpoint; periodic ones only when asked for.
    checkpoint = _output_file(args.checkpoint or args.resume or str(_sibling(out, "ckpt")), "--checkpoint")
    every = args.checkpoint_every or (1 if args.checkpoint else None)
    started = time.perf_counter()
    try:
        model = train(train_set, seed=args.seed, quiet=_progress_quiet(args), checkpoint=checkpoint,
                      checkpoint_every=every, resume=args.resume, **options)
    except TrainingInterrupted as stop:
        print(f"pyface: interrupted after {stop.epochs_done} of {stop.epochs} epochs; saved {checkpoint}; "
              f"resume with: {_resume_command(args.argv, checkpoint)}", file=sys.stderr)
        return 130
    _say(f"Trained {len(model.history['epoch'])} epochs in {time.perf_counter() - started:.1f} s: {model!r}")

    report = _report(model, test_set) if len(test_set) else None
    if report is not None:
        _say(f"Held-out accuracy: {_percent(report['accuracy'])} ({report['correct']} of {report['images']} images)")
    model.save(out)
    _say(f"Saved the model to {out}")

    def draw() -> list[Path]:
        written = [_sibling(out, "curves.png")]
        plots.save_training_curves(model.history, written[0])
        if report is not None:
            written.append(_sibling(out, "confusion.png"))
            plots.save_confusion_matrix(np.array(report["confusion_matrix"]), report["names"], written[1],
                                        title=f"Held-out images ({_percent(report['accuracy'])} correct)")
        return written

    _plot_or_say(draw)
    return 0


def _resume_command(argv: Sequence[str], checkpoint: Path) -> str:
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


# ---------------------------------------------------------------------------- predict


def _image_files(inputs: Sequence[str]) -> list[Path]:
    from ..data.images import list_image_files

    try:
        return list_image_files(inputs)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _per_file(answer: Callable[[list[str]], list], files: list[Path]) -> list:
    """``answer``'s result for each file, or why the file could not be read (a string)."""
    results: list = []
    for start in range(0, len(files), _PREDICT_BATCH):
        batch = [str(f) for f in files[start : start + _PREDICT_BATCH]]
        try:
            results.extend(answer(batch))
            continue
        except (ValueError, OSError):
            pass
        # Some file in the batch is bad: take them one by one to tell which.
        for path in batch:
            try:
                results.extend(answer([path]))
            except (ValueError, OSError) as exc:
                results.append(_one_line(exc))
    return results


def _closed_set_answer(model) -> Callable[[list[str]], list]:
    """Per image (best match, probability) from the classifier over the trained people."""
    def answer(paths: list[str]) -> list:
        proba = model.predict_proba(paths)
        return [(model.names[int(p.argmax())], float(p.max())) for p in proba]

    return answer


def _open_set_answer(model) -> Callable[[list[str]], list]:
    """Per image (most similar identity, cosine similarity) among trained and enrolled people."""
    def answer(paths: list[str]) -> list:
        names, scores = model.identify(paths, threshold=-np.inf)
        return list(zip(names.tolist(), scores.tolist()))

    return answer


def _threshold_option(text: str) -> float | str:
    return "auto" if text == "auto" else _fraction(True, True)(text)


def cmd_predict(args: argparse.Namespace) -> int:
    if args.scheduler is not None or args.out is not None:
        from . import distributed

        return distributed.run_predict(args)
    model = _load_model(args.model)
    files = _image_files(args.images)
    # The classifier answers as it always did unless the open-set rule is asked for or needed.
    open_set = args.threshold is not None or bool(model.enrolled)
    limit = model.resolve_threshold(args.threshold) if args.threshold is not None else -math.inf
    answer = _open_set_answer(model) if open_set else _closed_set_answer(model)
    records, failed = [], 0
    for path, result in zip(files, _per_file(answer, files)):
        if isinstance(result, str):
            failed += 1
            print(f"pyface: error: {result}", file=sys.stderr)
            continue
        best, score = result
        records.append({"image": str(path), "person": best if score >= limit else None,
                        "best_match": best, "confidence": score})
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        width = max((len(r["image"]) for r in records), default=0)
        for r in records:
            who = r["person"] if r["person"] is not None else f"unknown (closest: {r['best_match']})"
            score = f"similarity {r['confidence']:.3f}" if open_set else _percent(r["confidence"])
            _say(f"{r['image']:<{width}}  {who}  {score}")
    if failed:
        print(f"pyface: error: {failed} of {len(files)} images could not be read", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- enroll, verify


def cmd_enroll(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    files = _image_files(args.images)
    model.enroll(args.name, [str(f) for f in files])
    model.save(args.model)
    _say(f"Enrolled {args.name} from {len(files)} image{'s' if len(files) > 1 else ''}; {args.model} now knows "
         f"{len(model.gallery()[0])} people ({len(model.enrolled)} enrolled)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    for item in (args.a, args.b):
        if not Path(item).is_file():
            raise UserError(f"image file not found: {item}")
    limit = model.resolve_threshold(args.threshold, kind="verify")
    same, score = model.verify(args.a, args.b, threshold=limit)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "same": same, "similarity": score, "threshold": limit},
                         indent=2))
    else:
        _say(f"{'same person' if same else 'different people'} (similarity {score:.3f}, threshold {limit:.3f})")
    return 0


# ---------------------------------------------------------------------------- explain


def _row_ranges(rows: np.ndarray) -> str:
    """'20-24, 31' for rows [20, 21, 22, 23, 24, 31]."""
    rows = np.sort(rows)
    parts, start = [], rows[0]
    for previous, current in zip(rows, list(rows[1:]) + [None]):
        if current is None or current != previous + 1:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = current
    return ", ".join(parts)


def cmd_explain(args: argparse.Namespace) -> int:
    import cv2

    from ..recognition.explain import explanation, render

    model = _load_model(args.model)
    if not Path(args.image).is_file():
        raise UserError(f"image file not found: {args.image}")
    out = _output_file(args.out or f"{Path(args.image).stem}.explain.png", "--out")
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
        _say(f"{args.image}: {result.person} {_percent(result.probability)}",
             f"Rows that drove the decision most (0 = top of the {len(importance)}-row face): {_row_ranges(top)}",
             f"Wrote {out}")
    return 0


# ---------------------------------------------------------------------------- info, bench


def cmd_info(args: argparse.Namespace) -> int:
    from ..kernel.runtime import info

    details = info()
    if args.json:
        print(json.dumps(details, indent=2))
        return 0
    _say(f"pyface            {details['version']}",
         f"instruction set   {details['isa']} (vector width {details['vector_width']} floats; "
         f"supported: {', '.join(details['supported_isas'])})",
         f"threads           {details['threads']}",
         f"OpenMP            {details['openmp']}",
         f"compiler          {details['compiler']}",
         f"NumPy             {details['numpy']}",
         f"OpenCV            {details['opencv']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .. import bench
    from ..kernel.runtime import get_num_threads

    batch, steps, inputs, hidden, layers = bench.CONFIGS["standard"]
    threads = args.threads or [get_num_threads()]
    _say(f"LSTM kernel, standard configuration: batch {batch}, {steps} rows of {inputs} pixels, "
         f"{layers} layers of {hidden}; inference = forward, train = forward + backward")
    impls = list(bench.IMPLS) if args.compare else ["pyface"]
    argv = ["--configs", "standard", "--threads", *map(str, threads), "--impls", *impls,
            "--min-time", str(args.min_time)]
    return bench.main(argv)


# ---------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    import cv2

    from .. import plots
    from ..datasets import synthetic_faces
    from ..recognition.explain import explanation, render
    from ..training import train

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    demo_started = time.perf_counter()
    _say("pyface demo: the whole pipeline on SYNTHETIC faces, cartoon faces drawn by pyface itself",
         "(no real people, nothing downloaded).", "")

    faces = synthetic_faces(n_people=args.people, per_person=args.per_person, size=64, seed=args.seed)
    sample = np.concatenate([np.concatenate(list(faces.images[faces.labels == k][:6]), axis=1)
                             for k in range(min(args.people, 6))], axis=0)
    cv2.imwrite(str(out_dir / "faces.png"), np.rint(sample * 255).astype(np.uint8))
    _say(f"1. Drew {len(faces)} synthetic faces of {args.people} people ({args.per_person} each, 64x64 pixels), "
         "each image with its own pose, light and expression; a sample is in " + str(out_dir / "faces.png"))

    train_set, test_set = faces.split(test_size=0.25, seed=args.seed)
    _say(f"2. Training a bidirectional LSTM on {len(train_set)} images for {args.epochs} epochs "
         f"({len(test_set)} held out)...")
    started = time.perf_counter()
    model = train(train_set, seed=args.seed, quiet=_progress_quiet(args), epochs=args.epochs)
    _say(f"   trained in {time.perf_counter() - started:.1f} s")
    model_path = out_dir / "faces.pyface"
    model.save(model_path)

    report = _report(model, test_set)
    _say(f"3. Held-out accuracy: {_percent(report['accuracy'])} ({report['correct']} of {report['images']})")
    for c in report["confusions"][:3]:
        _say(f"   confused: {c['true']} taken for {c['predicted']} ({c['images']}x)")

    _say("4. Predictions on held-out images:")
    proba = model.predict_proba(test_set)
    # One held-out image of each of the first five people.
    firsts = np.unique(test_set.labels, return_index=True)[1][:5]
    for i in firsts:
        truth = test_set.names[test_set.labels[i]]
        k = int(proba[i].argmax())
        mark = "right" if model.names[k] == truth else "WRONG"
        _say(f"   image of {truth}: {model.names[k]} {_percent(proba[i, k])} ({mark})")

    heat_path = out_dir / "explain.png"
    result = explanation(model, test_set.images[0])
    cv2.imwrite(str(heat_path), render(result))
    top = np.argsort(result.row_importance)[::-1][:8]
    _say(f"5. Explanation of the first: rows {_row_ranges(top)} of 64 drove the decision most; see {heat_path}")

    def draw() -> list[Path]:
        curves, confusion = out_dir / "curves.png", out_dir / "confusion.png"
        plots.save_training_curves(model.history, curves)
        plots.save_confusion_matrix(np.array(report["confusion_matrix"]), report["names"], confusion,
                                    title=f"Held-out synthetic faces ({_percent(report['accuracy'])} correct)")
        return [curves, confusion]

    _say(f"6. Saved the model to {model_path}")
    _plot_or_say(draw)
    _say("", f"Demo done in {time.perf_counter() - demo_started:.0f} s. Now on real faces, one folder per person "
         "(faces/alice/1.jpg, faces/bob/1.jpg, ...):", "",
         "    pyface train path/to/faces --out faces.pyface", "")
    return 0


# ---------------------------------------------------------------------------- parser, main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pyface`` command."""
    from .. import __version__
    from ..nn.network import Architecture
    from ..training import TrainingSettings
    from . import distributed

    # pyface.train's own defaults, shown in the help and used when an option is not given.
    trained = {f.name: f.default for cls in (Architecture, TrainingSettings) for f in dataclasses.fields(cls)}

    debug_help = "show the full traceback of an error"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: after a subcommand, --debug only overrides the top-level value when given.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    parser = _Parser(prog="pyface", description="Fast LSTM face recognition on the CPU.")
    parser.add_argument("--debug", action="store_true", help=debug_help)
    parser.add_argument("--version", action="version", version=f"pyface {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run)
        return sub

    p = command("train", cmd_train, "train a recognizer on a folder with one subfolder of images per person")
    p.add_argument("folder", metavar="DIR", help="folder of person folders: DIR/alice/1.jpg, DIR/bob/1.jpg, ...")
    p.add_argument("--out", default="faces.pyface", help="model file to write (default: faces.pyface); "
                   "curves and confusion matrix PNGs are written next to it")
    p.add_argument("--epochs", type=_int_at_least(1),
                   help=f"passes over the training images (default {trained['epochs']})")
    p.add_argument("--hidden", type=_int_at_least(1),
                   help=f"LSTM hidden units per direction (default {trained['hidden_size']})")
    p.add_argument("--layers", type=_int_at_least(1), help=f"stacked LSTM layers (default {trained['num_layers']})")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help=f"also read every sequence backwards (default {trained['bidirectional']})")
    p.add_argument("--batch-size", type=_int_at_least(1), help=f"images per step (default {trained['batch_size']})")
    p.add_argument("--learning-rate", type=_positive_float,
                   help=f"peak learning rate (default {trained['learning_rate']})")
    p.add_argument("--no-augment", action="store_true", help="train on the images as they are (no random shifts, "
                   "rotations, flips, lighting changes)")
    p.add_argument("--test-size", type=_fraction(True, False), default=0.2,
                   help="fraction of each person's images held out to measure accuracy (default 0.2; 0: none)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the split and the training (default 0)")
    p.add_argument("--size", type=_int_at_least(8), default=64, help="side of the square images the network reads "
                   "(default 64)")
    p.add_argument("--detect-faces", action="store_true", help="crop every image to the largest face OpenCV finds")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", metavar="PATH", help="save everything needed to resume training to PATH "
                   "every --checkpoint-every epochs (default: only on Ctrl-C, to --out's name + .ckpt)")
    p.add_argument("--checkpoint-every", metavar="N", type=_int_at_least(1),
                   help="epochs between checkpoints (default 1 with --checkpoint)")
    p.add_argument("--resume", metavar="PATH", help="continue the training saved in the checkpoint PATH; "
                   "give the same folder and options as the interrupted command")

    p = command("evaluate", cmd_evaluate, "accuracy, per-person precision and recall on a labelled folder")
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("folder", metavar="DIR", help="folder of person folders, named as in training")
    p.add_argument("--worst", type=_int_at_least(0), default=10, help="confusions to list (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = command("predict", cmd_predict, "name the person in each image")
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--threshold", type=_threshold_option,
                   help="open-set rule: name the most similar trained or enrolled person, or 'unknown' when "
                   "the cosine similarity is below this (0..1, or 'auto' for the model's own threshold)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    distributed.add_predict_options(p)

    p = command("enroll", cmd_enroll, "add a person to a model from a few images, without retraining")
    p.add_argument("model", metavar="MODEL", help="model file; it is rewritten (atomically) with the new person")
    p.add_argument("name", metavar="NAME", help="the person's name")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")

    p = command("verify", cmd_verify, "tell whether two face images show the same person")
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("a", metavar="A", help="first image file")
    p.add_argument("b", metavar="B", help="second image file")
    p.add_argument("--threshold", type=_threshold_option, default="auto",
                   help="cosine similarity from which the faces are the same person (0..1; default: "
                   "'auto', the model's own threshold)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("explain", cmd_explain, "show which rows of a face drove the model's decision")
    p.add_argument("model", metavar="MODEL", help="model file written by pyface train")
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument("--out", help="heat map to write (default: IMAGE's name + .explain.png, in this folder)")
    p.add_argument("--person", help="explain this person's score instead of the winner's")
    p.add_argument("--json", action="store_true", help="print the per-row importance as JSON")

    p = command("info", cmd_info, "version, instruction set, threads and libraries in use")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = command("bench", cmd_bench, "time the LSTM kernel on the standard configuration")
    p.add_argument("--threads", type=_int_at_least(1), nargs="+", help="thread counts (default: the current one)")
    p.add_argument("--min-time", type=_positive_float, default=1.0, help="seconds of timing per cell (default 1)")
    p.add_argument("--compare", action="store_true", help="also time the NumPy reference (and torch if installed)")

    p = command("demo", cmd_demo, "the whole pipeline on synthetic faces, in about a minute, no download")
    p.add_argument("--out", default="pyface-demo", help="folder for the model and pictures (default: pyface-demo)")
    p.add_argument("--people", type=_int_at_least(2), default=12, help="synthetic people (default 12)")
    p.add_argument("--per-person", type=_int_at_least(4), default=12, help="images per person (default 12)")
    p.add_argument("--epochs", type=_int_at_least(1), default=60, help="training epochs (default 60)")
    p.add_argument("--seed", type=_int_at_least(0), default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] + (f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else "")


@contextlib.contextmanager
def _warnings_as_lines():
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"pyface: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pyface`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from ..io.npz import ModelFileError

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to tell how to resume an interrupted run
    try:
        with _warnings_as_lines():
            return args.run(args)
    except KeyboardInterrupt:
        print("pyface: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        expected = (UserError, ModelFileError, OSError, ValueError, RuntimeError)
        message = _one_line(exc)
        if not isinstance(exc, expected) and not args.debug:
            message = f"unexpected {type(exc).__name__}: {message} (run with --debug to see where)"
        print(f"pyface: error: {message}", file=sys.stderr)
        return 1
