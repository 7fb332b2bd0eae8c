"""Time the kernel against the NumPy reference and torch.nn.LSTM on the same weights and inputs.

    python -m pyface.bench                 # the table in the README
    python -m pyface.bench --configs standard --threads 2

torch is optional (``pip install ".[bench]"``); without it its columns are empty. FLOPs of one
layer's forward pass are 2*B*T*4H*(D+H); a training step (forward + backward) counts three
times that. Times are medians over repeated calls.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from . import _runtime, lstm, reference

__all__ = ["CONFIGS", "IMPLS", "Stack", "flops", "median_seconds", "run", "format_table", "main"]

# name: (batch, time, input, hidden, layers)
CONFIGS: Dict[str, tuple] = {
    "standard": (32, 64, 64, 128, 2),
    "batch1": (1, 64, 64, 128, 2),
    "large": (64, 64, 128, 512, 1),
}
IMPLS = ("pyface", "numpy", "torch")
MODES = ("inference", "train")


def flops(batch: int, time: int, inp: int, hidden: int, layers: int, mode: str = "inference") -> int:
    """Floating-point operations of a stacked LSTM forward pass (x3 for a training step)."""
    total = sum(2 * batch * time * 4 * hidden * ((inp if k == 0 else hidden) + hidden) for k in range(layers))
    return total * (3 if mode == "train" else 1)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


class Stack:
    """The same stacked LSTM in one implementation: ``'pyface'``, ``'numpy'`` or ``'torch'``.

    Weights are drawn from one seed, so every implementation computes the same function.
    ``infer()`` runs the forward pass; ``train_step()`` forward and backward from a fixed
    output gradient (the first layer skips its input gradient, as a network would).
    """

    def __init__(self, impl: str, batch: int, time: int, inp: int, hidden: int, layers: int, *, seed: int = 0):
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        rng = np.random.default_rng(seed)
        self.impl = impl
        self.x = rng.standard_normal((batch, time, inp)).astype(np.float32)
        self.dy = rng.standard_normal((batch, time, hidden)).astype(np.float32)
        s = 1 / np.sqrt(hidden)  # torch's initialisation range
        self.weights = [
            tuple(
                rng.uniform(-s, s, shape).astype(np.float32)
                for shape in ((4 * hidden, inp if k == 0 else hidden), (4 * hidden, hidden), (4 * hidden,))
            )
            for k in range(layers)
        ]
        if impl == "torch":
            torch = _torch()
            if torch is None:
                raise ImportError("torch is not installed (pip install '.[bench]')")
            self.net = torch.nn.LSTM(inp, hidden, num_layers=layers, batch_first=True)
            with torch.no_grad():
                for k, (w_ih, w_hh, b) in enumerate(self.weights):
                    getattr(self.net, f"weight_ih_l{k}").copy_(torch.from_numpy(w_ih))
                    getattr(self.net, f"weight_hh_l{k}").copy_(torch.from_numpy(w_hh))
                    getattr(self.net, f"bias_ih_l{k}").copy_(torch.from_numpy(b))
                    getattr(self.net, f"bias_hh_l{k}").zero_()
            self._torch = torch
            self.tx = torch.from_numpy(self.x)
            self.tdy = torch.from_numpy(self.dy)
        else:
            self.lib = lstm if impl == "pyface" else reference

    def infer(self) -> np.ndarray:
        """Outputs of the last layer, (B, T, H)."""
        if self.impl == "torch":
            with self._torch.inference_mode():
                return self.net(self.tx)[0].numpy()
        h = self.x
        for w in self.weights:
            h = self.lib.lstm_forward(h, *w, training=False)[0]
        return h

    def train_step(self) -> np.ndarray:
        """Gradient of the first layer's recurrent weights, (4H, H)."""
        if self.impl == "torch":
            self.net.zero_grad(set_to_none=True)
            self.net(self.tx)[0].backward(self.tdy)
            return self.net.weight_hh_l0.grad.numpy()
        h, caches = self.x, []
        for w in self.weights:
            h, _, cache = self.lib.lstm_forward(h, *w, training=True)
            caches.append(cache)
        grad = self.dy
        for k in reversed(range(len(caches))):
            grads = self.lib.lstm_backward(grad, None, None, caches[k], need_dx=k > 0)
            grad = grads[0]
        return grads[2]


def set_threads(n: int) -> None:
    """Use n threads in pyface, and in torch when it is installed."""
    _runtime.set_num_threads(n)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)


def median_seconds(fn: Callable[[], object], *, min_time: float = 1.0, min_calls: int = 5) -> float:
    """Median wall time of fn() over at least min_calls calls and min_time seconds, after one warm-up."""
    fn()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(
    configs: Iterable[str] = tuple(CONFIGS),
    threads: Iterable[int] = (1, 2),
    impls: Iterable[str] = IMPLS,
    *,
    min_time: float = 1.0,
) -> List[dict]:
    """Time every (config, threads, mode, impl); rows with median seconds and GFLOP/s.

    Implementations that are not installed (torch) are left out. batch1 is timed for
    inference only: a training step of one sequence is not a use case.
    """
    impls = [i for i in impls if i != "torch" or _torch() is not None]
    rows = []
    for n in threads:
        set_threads(n)
        for config in configs:
            for mode in MODES:
                if config == "batch1" and mode == "train":
                    continue
                for impl in impls:
                    stack = Stack(impl, *CONFIGS[config])
                    fn = stack.train_step if mode == "train" else stack.infer
                    sec = median_seconds(fn, min_time=min_time)
                    rows.append(
                        dict(config=config, threads=n, mode=mode, impl=impl, seconds=sec,
                             gflops=flops(*CONFIGS[config], mode=mode) / sec / 1e9)
                    )
    return rows


def format_table(rows: List[dict]) -> str:
    """Markdown table: one line per (config, mode, threads), ms and GFLOP/s per implementation,
    and how many times faster pyface is than each other implementation."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    others = [i for i in impls if i != "pyface"]
    head = ["config", "mode", "threads"] + [f"{i} ms" for i in impls] + ["pyface GFLOP/s"]
    head += [f"vs {i}" for i in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = []
    for r in rows:
        key = (r["config"], r["mode"], r["threads"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        by_impl: Dict[str, Optional[dict]] = {
            r["impl"]: r for r in rows if (r["config"], r["mode"], r["threads"]) == key
        }
        cells = [key[0], key[1], str(key[2])]
        cells += [f"{by_impl[i]['seconds'] * 1e3:.2f}" if i in by_impl else "" for i in impls]
        mine = by_impl.get("pyface")
        cells.append(f"{mine['gflops']:.0f}" if mine else "")
        for i in others:
            ok = mine and i in by_impl
            cells.append(f"{by_impl[i]['seconds'] / mine['seconds']:.2f}x" if ok else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyface.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS))
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per cell (default 1)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.threads):
        parser.error("--threads must be >= 1")
    info = _runtime.info()
    print(f"pyface {info['version']}, isa {info['isa']}, numpy {info['numpy']}", end="")
    torch = _torch()
    print(f", torch {torch.__version__}" if torch is not None and "torch" in args.impls else "")
    print(format_table(run(args.configs, args.threads, args.impls, min_time=args.min_time)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
