"""Time the kernel against the NumPy reference and torch.nn.LSTM on the same weights and inputs.

    python -m pyface.bench                 # the table in the README
    python -m pyface.bench --configs standard --threads 2
    python -m pyface.bench --precision bfloat16   # torch under autocast bf16, the kernel's bf16 path

torch is optional (``pip install ".[bench]"``); without it its columns are empty. FLOPs of one
layer's forward pass are 2*B*T*4H*(D+H); a training step (forward + backward) counts three
times that. Times are medians over repeated calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from .kernel import runtime as _runtime

from .kernel import lstm

from .kernel import reference
from .kernel.malloc import M_MMAP_MAX, M_TRIM_THRESHOLD, set_malloc_option

__all__ = ["CONFIGS", "IMPLS", "Stack", "flops", "fma_peak", "keep_freed_memory", "median_seconds", "run", "format_table", "report", "main"]

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
    ``precision="bfloat16"`` runs pyface's and the reference's bfloat16 mixed precision and
    torch under ``torch.autocast("cpu", dtype=torch.bfloat16)``.
    """

    def __init__(self, impl: str, batch: int, time: int, inp: int, hidden: int, layers: int, *, seed: int = 0,
                 precision: str = "float32"):
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if precision not in _runtime.PRECISIONS:
            raise ValueError(f"precision must be one of {_runtime.PRECISIONS}, got {precision!r}")
        self.precision = precision
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
            with self._torch.inference_mode(), self._autocast():
                return self.net(self.tx)[0].float().numpy()
        h = self.x
        for w in self.weights:
            h = self.lib.lstm_forward(h, *w, training=False, precision=self.precision)[0]
        return h

    def _autocast(self):
        return self._torch.autocast("cpu", dtype=self._torch.bfloat16, enabled=self.precision == "bfloat16")

    def train_step(self) -> np.ndarray:
        """Gradient of the first layer's recurrent weights, (4H, H)."""
        if self.impl == "torch":
            self.net.zero_grad(set_to_none=True)
            with self._autocast():
                y = self.net(self.tx)[0]
            y.backward(self.tdy.to(y.dtype))
            return self.net.weight_hh_l0.grad.numpy()
        h, caches = self.x, []
        for w in self.weights:
            h, _, cache = self.lib.lstm_forward(h, *w, training=True, precision=self.precision)
            caches.append(cache)
        grad = self.dy
        for k in reversed(range(len(caches))):
            grads = self.lib.lstm_backward(grad, None, None, caches[k], need_dx=k > 0)
            grad = grads[0]
        return grads[2]


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory instead of mapping fresh pages on every call.

    torch.nn.LSTM allocates its temporaries (multi-MB) on every call. By default glibc
    serves such blocks with mmap and returns them on free, so each call pays page faults
    again, unless earlier large frees have raised malloc's adaptive threshold: the same
    torch training step then takes 10 or 18 ms depending on what the process ran before.
    With mmap off and trimming off, every implementation is timed with its memory warm.
    Returns False where this is not glibc (the setting then stays as it was).
    """
    return set_malloc_option(M_MMAP_MAX, 0) and set_malloc_option(M_TRIM_THRESHOLD, 2**31 - 1)


def set_threads(n: int) -> None:
    """Use n threads in pyface, and in torch when it is installed."""
    _runtime.set_num_threads(n)
    torch = sys.modules.get("torch")  # only once loaded: importing it would cost the caller
    if torch is not None:
        torch.set_num_threads(n)


def _bf16_peak(precision: str) -> bool:
    """Whether the peak that bounds ``precision`` is that of bf16 dot products (a bfloat16 path exists)."""
    return precision == "bfloat16" and bool(_runtime.info()["bf16"])


def fma_peak(*, min_time: float = 0.5, precision: str = "float32") -> float:
    """GFLOP/s of independent vector FMAs on pyface's threads and instruction set.

    No float32 kernel on this path can go faster: the table reports pyface as a fraction
    of it. With ``precision="bfloat16"`` on a machine with a bfloat16 path, the same for
    that path's bf16 dot products (``vdpbf16ps``: two products and a sum per float32 lane),
    which bound the bfloat16 kernel. Median over repeated calls of about 0.1 s each.
    """
    from . import _core

    probe = _core.bf16_probe if _bf16_peak(precision) else _core.fma_probe
    rounds = 1 << 16
    while True:
        start = time.perf_counter()
        probe(rounds)
        if time.perf_counter() - start > 0.05 or rounds >= 1 << 34:
            break
        rounds *= 4
    flops = probe(rounds)
    return flops / median_seconds(lambda: probe(rounds), min_time=min_time, min_calls=3) / 1e9


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
    pause: float = 0.5,
    precision: str = "float32",
) -> List[dict]:
    """Time every (config, threads, mode, impl); rows with median seconds, GFLOP/s and the
    FMA peak of that thread count (:func:`fma_peak`).

    Each cell starts after `pause` seconds of idleness. Implementations that are not
    installed (torch) are left out. batch1 is timed for
    inference only: a training step of one sequence is not a use case. ``precision`` is that
    of every implementation (:class:`Stack`) and of the peak (:func:`fma_peak`).
    """
    impls = [i for i in impls if i != "torch" or _torch() is not None]
    if "pyface" in impls:
        _runtime.check_precision(precision)
    keep_freed_memory()
    rows = []
    for n in threads:
        set_threads(n)
        time.sleep(pause)
        peak = fma_peak(min_time=min(min_time, 0.5), precision=precision)
        for config in configs:
            for mode in MODES:
                if config == "batch1" and mode == "train":
                    continue
                for impl in impls:
                    # Idle threads of the previous library (OpenMP, OpenBLAS) spin before
                    # they sleep; timing beside them would measure their spinning.
                    time.sleep(pause)
                    stack = Stack(impl, *CONFIGS[config], precision=precision)
                    fn = stack.train_step if mode == "train" else stack.infer
                    sec = median_seconds(fn, min_time=min_time)
                    rows.append(
                        dict(config=config, threads=n, mode=mode, impl=impl, seconds=sec,
                             gflops=flops(*CONFIGS[config], mode=mode) / sec / 1e9, peak_gflops=peak)
                    )
    return rows


def format_table(rows: List[dict]) -> str:
    """Markdown table: one line per (config, mode, threads), ms per implementation, pyface's
    GFLOP/s and its share of the FMA peak, and how many times faster pyface is than each
    other implementation."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    others = [i for i in impls if i != "pyface"]
    head = ["config", "mode", "threads"] + [f"{i} ms" for i in impls] + ["pyface GFLOP/s", "% of peak"]
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
        cells.append(f"{100 * mine['gflops'] / mine['peak_gflops']:.0f}%" if mine and mine.get("peak_gflops") else "")
        for i in others:
            ok = mine and i in by_impl
            cells.append(f"{by_impl[i]['seconds'] / mine['seconds']:.2f}x" if ok else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The classic Keras recipe: LSTM(128, full sequence) -> dropout 0.2 -> LSTM(128) -> dropout
# 0.2 -> dense softmax, Adam 1e-3, batch 32, rows as timesteps, nothing else.
CLASSIC = dict(hidden_size=128, num_layers=2, bidirectional=False, views=("rows",), pooling="last",
               dropout=0.2, learning_rate=1e-3, lr_schedule="constant", warmup_epochs=0,
               weight_decay=0.0, clip_norm=None, label_smoothing=0.0, class_weight=None, augment=None,
               batch_size=32)


def epoch_seconds(images: np.ndarray, labels: np.ndarray, impl: str, *, epochs: int = 5, seed: int = 0) -> float:
    """Median seconds per epoch of the classic recipe trained on (N, S, S) float32 images in
    [0, 1] with integer labels, by pyface.train or by an equivalent torch.nn.LSTM loop."""
    if impl == "pyface":
        from .training import train

        model = train(images, labels, seed=seed, quiet=True, epochs=epochs, **CLASSIC)
        return float(np.median(model.history["seconds"][1:]))
    torch = _torch()
    if torch is None:
        raise ImportError("torch is not installed (pip install '.[bench]')")
    torch.manual_seed(seed)
    size, n_classes = images.shape[-1], int(labels.max()) + 1
    lstm = torch.nn.LSTM(size, 128, num_layers=2, batch_first=True, dropout=0.2)
    head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(128, n_classes))
    params = list(lstm.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    x, y = torch.from_numpy(np.ascontiguousarray(images, np.float32)), torch.from_numpy(labels.astype(np.int64))
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(y)))
        for i in range(0, len(y), 32):
            batch = order[i : i + 32]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(head(lstm(x[batch])[0][:, -1]), y[batch])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def _print_versions(*, with_torch: bool) -> None:
    info = _runtime.info()
    torch = _torch() if with_torch else None
    print(f"pyface {info['version']}, isa {info['isa']}, bf16 {info['bf16']}, numpy {info['numpy']}"
          + (f", torch {torch.__version__}" if torch is not None else ""))


def report(
    configs: Iterable[str] = tuple(CONFIGS),
    threads: Iterable[int] = (1, 2),
    impls: Iterable[str] = IMPLS,
    *,
    min_time: float = 1.0,
    precision: str = "float32",
) -> None:
    """Print the versions, the FMA peak of each thread count and the :func:`format_table` of
    :func:`run` over ``configs`` x ``threads`` x ``impls`` (``min_time`` seconds per cell)."""
    impls = list(impls)
    _print_versions(with_torch="torch" in impls)
    rows = run(configs, threads, impls, min_time=min_time, precision=precision)
    print(f"precision: {precision}")
    peaks = {r["threads"]: r["peak_gflops"] for r in rows}
    kind = "bf16 dot-product peak" if _bf16_peak(precision) else "FMA peak"
    print(f"{kind}: " + ", ".join(f"{peaks[n]:.0f} GFLOP/s on {n} thread{'s' if n > 1 else ''}" for n in peaks))
    print(format_table(rows))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyface.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS))
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per cell (default 1)")
    parser.add_argument("--precision", choices=_runtime.PRECISIONS, default="float32",
                        help="number format of the LSTM products: bfloat16 runs torch under autocast (default float32)")
    parser.add_argument("--epoch", metavar="FACES_DIR",
                        help="instead: seconds per training epoch of the classic recipe on this folder "
                             "(80 %% of it, e.g. ORL's 320 images), pyface against torch")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.threads):
        parser.error("--threads must be >= 1")
    if args.epoch and args.precision != "float32":
        parser.error("--epoch times the float32 classic recipe; --precision does not apply to it")
    if args.epoch:
        # torch is loaded only after pyface's run, which reports its own peak memory.
        _print_versions(with_torch=False)
        return _print_epochs(args.epoch, args.threads, [i for i in args.impls if i != "numpy"])
    if "pyface" in args.impls:
        try:
            _runtime.check_precision(args.precision)
        except ValueError as exc:  # one line, as for every other mistake on the command line
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 2
    report(args.configs, args.threads, args.impls, min_time=args.min_time, precision=args.precision)
    return 0


def _print_epochs(folder: str, threads: Iterable[int], impls: List[str]) -> int:
    import resource

    from .data.dataset import load_images

    train_set, _ = load_images(folder).split(test_size=0.2, seed=42)
    keep_freed_memory()
    print(f"classic recipe, {len(train_set)} images per epoch, batch 32: seconds per epoch (median)")
    for k, n in enumerate(threads):
        cells = []
        for impl in impls:
            if impl == "torch" and _torch() is None:
                continue
            set_threads(n)
            cells.append(f"{impl} {epoch_seconds(train_set.images, train_set.labels, impl):.3f}")
            if impl == "pyface" and k == 0:
                # Linux reports kilobytes; torch is not loaded yet, so this is pyface's own peak.
                cells.append(f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
        print(f"{n} thread(s): " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
