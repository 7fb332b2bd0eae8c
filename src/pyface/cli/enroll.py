"""``pyface enroll``, ``people``, ``rename``, ``remove``: the people a model file knows, without retraining.

Each command that changes the model rewrites its file atomically (``model.save``): an
interrupted or failed command leaves the file as it was.
"""

from __future__ import annotations

import argparse
import json

from .common import UserError, count, image_files, load_model, say

__all__ = ["add_parser"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    model_help = "model file; it is rewritten (atomically) with the change"

    def command(name: str, run, help: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(run=run)
        p.add_argument("model", metavar="MODEL", help=model_help)
        return p

    p = command("enroll", run_enroll, "add a person to a model from a few images, without retraining")
    p.add_argument("name", metavar="NAME", help="the person's name")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--add", action="store_true", help="add the images to NAME, who is already enrolled")

    p = command("people", run_people, "list the people a model knows: trained and enrolled")
    p.add_argument("--json", action="store_true", help="print the list as JSON")

    p = command("rename", run_rename, "call a trained or enrolled person by another name")
    p.add_argument("old", metavar="OLD", help="the person's name now")
    p.add_argument("new", metavar="NEW", help="the person's new name")

    p = command("remove", run_remove, "forget an enrolled person")
    p.add_argument("name", metavar="NAME", help="the enrolled person's name")


def _knows(model) -> str:
    """'4 people (1 enrolled)': the identities the open-set rule answers with."""
    try:
        known = len(model.gallery()[0])
    except ValueError:  # nobody: a model without templates (older pyface) and nobody enrolled
        known = 0
    return f"{count(known, 'person', 'people')} ({len(model.enrolled)} enrolled)"


def _enrolled_person(model, name: str, path: str) -> None:
    """A UserError unless ``name`` is enrolled in the model of ``path``."""
    if name in model.enrolled:
        return
    if name in model.names:
        raise UserError(f"{name!r} is a trained person, not an enrolled one: only retraining changes them")
    enrolled = ", ".join(model.enrolled) or "nobody"
    raise UserError(f"nobody called {name!r} is enrolled in {path} (enrolled: {enrolled})")


def run_enroll(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.add:
        _enrolled_person(model, args.name, args.model)
    elif args.name in model.enrolled:
        raise UserError(f"{args.name!r} is already known to the model (enrolled from "
                        f"{count(model.enrolled[args.name], 'image')}): add images with --add, "
                        "or remove or rename it first")
    elif args.name in model.names:
        raise UserError(f"{args.name!r} is already known to the model (a trained person): "
                        "choose another name, or rename the trained person first")
    files = image_files(args.images)
    paths = [str(f) for f in files]
    if args.add:
        model.add_images(args.name, paths)
    else:
        model.enroll(args.name, paths)
    model.save(args.model)
    done = f"Added {count(len(files), 'image')} to {args.name}" if args.add else \
        f"Enrolled {args.name} from {count(len(files), 'image')}"
    say(f"{done}; {args.model} now knows {_knows(model)}")
    return 0


def run_people(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    enrolled = model.enrolled
    people = [{"name": name, "kind": "trained"} for name in model.names]
    people += [{"name": name, "kind": "enrolled", "images": n} for name, n in enrolled.items()]
    if args.json:
        print(json.dumps(people, indent=2))
        return 0
    say(f"{args.model}: {count(len(model.names), 'trained person', 'trained people')}, "
        f"{len(enrolled)} enrolled")
    for p in people:
        say(f"  {p['name']}" + (f"  (enrolled from {count(p['images'], 'image')})" if "images" in p else ""))
    return 0


def run_rename(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.old not in model.names and args.old not in model.enrolled:
        raise UserError(f"nobody called {args.old!r} is known to {args.model}")
    model.rename(args.old, args.new)
    model.save(args.model)
    say(f"Renamed {args.old} to {args.new} in {args.model}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    _enrolled_person(model, args.name, args.model)
    model.remove(args.name)
    model.save(args.model)
    say(f"Removed {args.name}; {args.model} now knows {_knows(model)}")
    return 0
