"""``pyface info``: version, instruction set, threads and libraries in use."""

from __future__ import annotations

import argparse
import json

from .common import say

__all__ = ["add_parser", "run"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "version, instruction set, threads and libraries in use"
    p = commands.add_parser("info", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    from ..kernel.runtime import info

    details = info()
    if args.json:
        print(json.dumps(details, indent=2))
        return 0
    say(f"pyface            {details['version']}",
        f"instruction set   {details['isa']} (vector width {details['vector_width']} floats; "
        f"supported: {', '.join(details['supported_isas'])})",
        f"threads           {details['threads']}",
        f"OpenMP            {details['openmp']}",
        f"compiler          {details['compiler']}",
        f"NumPy             {details['numpy']}",
        f"OpenCV            {details['opencv']}")
    return 0
