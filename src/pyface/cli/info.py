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
        f"bfloat16 path     {_bf16(details)}",
        f"threads           {details['threads']}",
        f"OpenMP            {details['openmp']}",
        f"compiler          {details['compiler']}",
        f"NumPy             {details['numpy']}",
        f"OpenCV            {details['opencv']}")
    return 0


def _bf16(details: dict) -> str:
    """The bfloat16 path, or what the CPU has of the features one needs."""
    if details["bf16"] is not None:
        return details["bf16"]
    cpu = details["cpu_features"]
    has = [name for name in ("avx512_bf16", "amx_tile", "amx_bf16") if cpu.get(name)]
    return "none (the CPU has " + (", ".join(has) if has else "neither avx512_bf16 nor amx_bf16") + ")"
