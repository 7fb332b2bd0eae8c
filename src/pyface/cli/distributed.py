"""``pyface predict --scheduler``: the same predictions, run on a Dask cluster, optionally into Parquet."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from .common import UserError, image_files

# Failed files listed on stderr at most; the rest are in the results' error column.
_ERRORS_SHOWN = 20


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``pyface predict`` that send the work to a Dask cluster."""
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="name the images on a Dask cluster: its scheduler's address (tcp://host:8786), or "
                        "'local' for a cluster of one worker per core of this machine (needs pyface[dask])")
    parser.add_argument("--out", metavar="PATH", help="with --scheduler: write the results (path, name, score, "
                        "error) to this Parquet file, partition by partition, instead of printing them")
    parser.add_argument("--partition-size", metavar="N", type=int, default=256,
                        help="with --scheduler: images per task (default 256)")


@contextlib.contextmanager
def _client(scheduler: str):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--scheduler needs Dask: pip install 'pyface[dask]'") from None
    if scheduler == "local":
        # One single-threaded worker process per core, as pyface runs best; loopback only, no dashboard.
        with LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


def _show_failures(failed) -> None:
    for error in failed["error"].head(_ERRORS_SHOWN):
        print(f"pyface: error: {error}", file=sys.stderr)
    if len(failed) > _ERRORS_SHOWN:
        print(f"pyface: error: ... and {len(failed) - _ERRORS_SHOWN} more", file=sys.stderr)


def _print_table(table, as_json: bool) -> None:
    read = table[table["error"].isna()]
    if as_json:
        print(json.dumps([{"image": r.path, "person": r.name, "score": r.score} for r in read.itertuples()], indent=2))
        return
    width = max((len(p) for p in read["path"]), default=0)
    for r in read.itertuples():
        print(f"{r.path:<{width}}  {r.name}  {r.score:.3f}", flush=False)
    sys.stdout.flush()


def run_predict(args: argparse.Namespace) -> int:
    """``pyface predict`` with ``--scheduler``; the exit status."""
    if args.scheduler is None:
        raise UserError("--out writes the results of a Dask job: give --scheduler ADDRESS or --scheduler local")
    if args.partition_size < 1:
        raise UserError(f"--partition-size must be at least 1, got {args.partition_size}")
    if not os.path.isfile(args.model):
        raise UserError(f"model file not found: {args.model}")
    files = [os.fspath(p) for p in image_files(args.images)]
    with _client(args.scheduler) as client:
        from .. import distributed

        result = distributed.predict_files(args.model, files, client=client, threshold=args.threshold,
                                           partition_size=args.partition_size, out=args.out,
                                           quiet=not sys.stderr.isatty())
    failed = result if args.out is not None else result[result["error"].notna()]
    if args.out is None:
        _print_table(result, args.json)
    else:
        print(f"Wrote the results of {len(files)} images to {args.out}", flush=True)
    _show_failures(failed)
    if len(failed):
        print(f"pyface: error: {len(failed)} of {len(files)} images could not be read", file=sys.stderr)
        return 1
    return 0
