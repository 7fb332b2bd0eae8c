"""``pyface bench``: time the LSTM kernel on the standard configuration."""

from __future__ import annotations

import argparse

from .common import say
from .options import int_at_least, positive_float

__all__ = ["add_parser", "run"]


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    help = "time the LSTM kernel on the standard configuration"
    p = commands.add_parser("bench", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("--threads", type=int_at_least(1), nargs="+", help="thread counts (default: the current one)")
    p.add_argument("--min-time", type=positive_float, default=1.0, help="seconds of timing per cell (default 1)")
    p.add_argument("--compare", action="store_true", help="also time the NumPy reference (and torch if installed)")


def run(args: argparse.Namespace) -> int:
    from .. import bench
    from ..kernel.runtime import get_num_threads

    batch, steps, inputs, hidden, layers = bench.CONFIGS["standard"]
    say(f"LSTM kernel, standard configuration: batch {batch}, {steps} rows of {inputs} pixels, "
        f"{layers} layers of {hidden}; inference = forward, train = forward + backward")
    bench.report(["standard"], args.threads or [get_num_threads()], bench.IMPLS if args.compare else ["pyface"],
                 min_time=args.min_time)
    return 0
