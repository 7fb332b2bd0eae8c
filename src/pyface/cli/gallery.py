"""``pyface gallery``: create, enroll, list, remove, rename and identify against a gallery.

A gallery is an SQLite file or a ``postgresql://`` URL (see :func:`pyface.open_gallery`);
every command names the model whose embeddings it holds with ``--model``.
"""

from __future__ import annotations

import argparse
import json
import math
import os

from .common import UserError, image_files, load_model, per_file, report_answers, say
from .options import threshold_option


def _open(args: argparse.Namespace, *, create: bool = False):
    from ..gallery import open_gallery

    model = load_model(args.model)
    try:
        return open_gallery(args.gallery, model, create=create,
                            search="approximate" if getattr(args, "approximate", False) else "exact")
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; create it with: pyface gallery create {args.gallery} --model {args.model}") from exc
    except ImportError as exc:  # psycopg or FAISS not installed
        raise UserError(str(exc)) from exc


def _names_error(exc: KeyError) -> UserError:
    return UserError(exc.args[0] if exc.args else str(exc))


def cmd_create(args: argparse.Namespace) -> int:
    from ..gallery.api import is_postgres_url

    if not is_postgres_url(args.gallery) and os.path.exists(args.gallery):
        raise UserError(f"{args.gallery} already exists")
    with _open(args, create=True) as gallery:
        added = gallery.import_recognizer(trained=args.with_trained) if args.import_people else 0
        say(f"Created the gallery {gallery.where} for {args.model}"
             + (f"; imported {len(gallery)} people ({added} templates)" if args.import_people else ""))
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except ValueError as exc:
            raise UserError(f"--metadata is not JSON ({exc})") from exc
    files = image_files(args.images)
    with _open(args) as gallery:
        added = gallery.enroll(args.name, [str(f) for f in files], metadata=metadata)
        say(f"Enrolled {args.name} from {added} image{'s' if added > 1 else ''}; {gallery.where} now holds "
             f"{len(gallery)} people")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as gallery:
        counts = gallery.enrolled
    if args.json:
        print(json.dumps([{"name": n, "templates": c} for n, c in counts.items()], indent=2))
    else:
        for name, count in counts.items():
            say(f"{name}  {count} template{'s' if count > 1 else ''}")
        say(f"{len(counts)} people")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as gallery:
        try:
            gallery.remove(args.name)
        except KeyError as exc:
            raise _names_error(exc) from exc
        say(f"Removed {args.name}; {len(gallery)} people left")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with _open(args) as gallery:
        try:
            gallery.rename(args.old, args.new)
        except KeyError as exc:
            raise _names_error(exc) from exc
    say(f"Renamed {args.old} to {args.new}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    files = image_files(args.images)
    with _open(args) as gallery:
        limit = gallery.model.resolve_threshold(args.threshold)
        if len(gallery) == 0:  # not an error of each image
            raise UserError(f"{gallery.where}: the gallery is empty; enroll someone first")

        def answer(paths: list[str]) -> list:
            names, scores = gallery.identify(paths, threshold=-math.inf)
            return list(zip(names.tolist(), scores.tolist()))

        results = per_file(answer, files)
    return report_answers(files, results, limit=limit, as_json=args.json, key="similarity",
                          shown=lambda score: f"similarity {score:.3f}")


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    """Add ``pyface gallery`` and its commands to ``commands``, the subparsers of ``pyface``."""
    help_ = "enrolled people in an SQLite file or a PostgreSQL database: create, enroll, list, remove, rename, identify"
    top = commands.add_parser("gallery", help=help_, description=help_, parents=[common])
    actions = top.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("gallery", metavar="GALLERY", help="gallery file (SQLite), or postgresql://user@host/database")
    where.add_argument("--model", required=True, help="model file whose embeddings the gallery holds")

    def action(name, run, help):
        sub = actions.add_parser(name, help=help, description=help, parents=[common, where])
        sub.set_defaults(run=run)
        return sub

    p = action("create", cmd_create, "create an empty gallery for a model (a new file is readable by you only)")
    p.add_argument("--import", dest="import_people", action="store_true",
                   help="also copy the people the model knows (enrolled, and trained unless --no-trained)")
    p.add_argument("--trained", dest="with_trained", action=argparse.BooleanOptionalAction, default=True,
                   help="with --import, the trained people too (default: yes)")
    p = action("enroll", cmd_enroll, "add a person from a few images, in one transaction")
    p.add_argument("name", metavar="NAME", help="the person's name")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--metadata", help='JSON object stored with the person, e.g. \'{"badge": 1042}\'')
    p = action("list", cmd_list, "everyone in the gallery and their number of templates")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = action("remove", cmd_remove, "forget a person")
    p.add_argument("name", metavar="NAME")
    p = action("rename", cmd_rename, "rename a person")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p = action("identify", cmd_identify, "name the person in each image, or 'unknown'")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--threshold", type=threshold_option, default="auto",
                   help="score below which a face is 'unknown' (-2..2, default 'auto': the model's own)")
    p.add_argument("--approximate", action="store_true", help="search with the approximate index (pyface[ann])")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
