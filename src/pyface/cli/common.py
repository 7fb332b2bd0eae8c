"""What the commands share: the one-line user error, output, and checked loading of models, faces and images."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..data.images import IMAGE_SUFFIXES, list_image_files

__all__ = ["IMAGE_SUFFIXES", "UserError", "say", "count", "percent", "progress_quiet", "existing_folder",
           "existing_image", "output_file", "sibling", "load_model", "load_faces", "image_files",
           "plot_or_say", "one_line", "per_file", "report_answers"]


class UserError(Exception):
    """A mistake in what the user asked for; shown as one line without a traceback."""


# ---------------------------------------------------------------------------- output


def say(*lines: str) -> None:
    """Print results to stdout, flushed so that they interleave with stderr in order."""
    for line in lines:
        print(line, flush=True)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 image', '2 images'; '1 person', '3 people' with ``plural='people'``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal, the one rounding used in text and pictures."""
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def progress_quiet(args: argparse.Namespace) -> bool:
    """No progress bar when asked, or when stderr is no terminal (a log would fill with redraws)."""
    return args.quiet or not sys.stderr.isatty()


def one_line(exc: BaseException) -> str:
    """An exception as one line: its first line, and how many more it had."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] + (f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else "")


def plot_or_say(draw: Callable[[], list[Path]]) -> None:
    """Run ``draw`` (which returns the files it wrote) if matplotlib is installed, else say why not."""
    from .. import plots

    if not plots.matplotlib_available():
        say(plots.MISSING_MESSAGE)
        return
    written = draw()
    if written:
        say("Wrote " + ", ".join(str(p) for p in written))


# ---------------------------------------------------------------------------- paths


def existing_folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"{what} not found: {path}")
    if not folder.is_dir():
        raise UserError(f"{what} is not a folder: {path}")
    return folder


def existing_image(path: str) -> Path:
    """``path`` if it is a file; a folder or a missing file is a UserError saying which."""
    image = Path(path)
    if image.is_dir():
        raise UserError(f"{path} is a folder; give one image file")
    if not image.is_file():
        raise UserError(f"image file not found: {path}")
    return image


def output_file(path: str, option: str) -> Path:
    """Check before any long computation that ``path`` can be written."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    if not out.absolute().parent.is_dir():
        raise UserError(f"{option} {path}: the folder {out.absolute().parent} does not exist")
    return out


def sibling(model_path: Path, suffix: str) -> Path:
    """faces.pyface -> faces.<suffix>, in the same folder."""
    return model_path.with_name(f"{model_path.stem}.{suffix}")


# ---------------------------------------------------------------------------- loading


def load_model(path: str):
    """The FaceRecognizer in the model file ``path``."""
    from ..recognition.recognizer import load_model

    if not Path(path).exists():
        raise UserError(f"model file not found: {path}")
    if Path(path).is_dir():
        raise UserError(f"{path} is a folder, not a model file")
    return load_model(path)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def load_faces(folder: Path, preprocessor):
    """The FaceDataset of a folder of person folders (``folder/alice/1.jpg``)."""
    from ..data.dataset import load_images

    # Told apart before loading: a folder without person folders is a mistake of layout,
    # worth a hint, while unreadable images are listed by load_images itself.
    if not any(_visible(person) and person.is_dir() and any(_visible(f) and f.is_file() for f in person.iterdir())
               for person in folder.iterdir()):
        raise UserError(
            f"no images found under {folder}: it must hold one folder of images per person "
            f"({folder / 'alice' / '1.jpg'}, {folder / 'bob' / '1.jpg'}, ...)"
        )
    return load_images(folder, preprocessor=preprocessor)


def image_files(inputs: Sequence[str]) -> list[Path]:
    """The image files named by ``inputs``: files as given, folders searched recursively in natural order."""
    try:
        return list_image_files(inputs)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from exc


# Images read and answered per call: a bad file costs re-reading at most this many one by one.
IMAGES_PER_CALL = 64


def per_file(answer: Callable[[list[str]], list], files: list[Path]) -> list:
    """``answer``'s result for each file, or why the file could not be read (a string)."""
    results: list = []
    for start in range(0, len(files), IMAGES_PER_CALL):
        batch = [str(f) for f in files[start : start + IMAGES_PER_CALL]]
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
                results.append(one_line(exc))
    return results


def report_answers(files: list[Path], results: list, *, limit: float, as_json: bool, key: str,
                   shown: Callable[[float], str]) -> int:
    """Print each file's (best match, score) as a person (or "unknown" below ``limit``), say why
    the others could not be read, and return the exit status (1 when any could not be).

    ``key`` names the score in the JSON records; ``shown`` writes it in the table.
    """
    records, failed = [], 0
    for path, result in zip(files, results):
        if isinstance(result, str):
            failed += 1
            print(f"pyface: error: {result}", file=sys.stderr)
            continue
        best, score = result
        records.append({"image": str(path), "person": best if score >= limit else None, "best_match": best,
                        key: score})
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        width = max((len(r["image"]) for r in records), default=0)
        for r in records:
            who = r["person"] if r["person"] is not None else f"unknown (closest: {r['best_match']})"
            say(f"{r['image']:<{width}}  {who}  {shown(r[key])}")
    if failed:
        print(f"pyface: error: {failed} of {count(len(files), 'image')} could not be read", file=sys.stderr)
        return 1
    return 0
