"""The ``pyface`` command: one subcommand per module of this package, run by :func:`main`.

Results go to stdout, progress bars, warnings and errors to stderr. A mistake of the
user's (a missing folder, an unreadable image, an option out of range) ends the command
with one line on stderr and a non-zero status: 2 for a malformed command line, 1 for
everything else; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
import warnings
from collections.abc import Sequence

from .common import UserError, one_line

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # One line, not argparse's usage block: the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pyface`` command."""
    from .. import __version__
    from . import bench, demo, enroll, evaluate, explain, info, predict, serve, train, verify

    debug_help = "show the full traceback of an error"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: after a subcommand, --debug only overrides the top-level value when given.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    parser = _Parser(prog="pyface", description="Fast LSTM face recognition on the CPU.")
    parser.add_argument("--debug", action="store_true", help=debug_help)
    parser.add_argument("--version", action="version", version=f"pyface {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.add_parser(commands, common)
    evaluate.add_parser(commands, common)
    predict.add_parser(commands, common)
    enroll.add_parser(commands, common)
    verify.add_parser(commands, common)
    explain.add_parser(commands, common)
    info.add_parser(commands, common)
    bench.add_parser(commands, common)
    demo.add_parser(commands, common)
    serve.add_parser(commands, common)
    return parser


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
        message = one_line(exc)
        if not isinstance(exc, expected) and not args.debug:
            message = f"unexpected {type(exc).__name__}: {message} (run with --debug to see where)"
        print(f"pyface: error: {message}", file=sys.stderr)
        return 1
