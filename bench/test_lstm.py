"""Kernel benchmarks: pyface against the NumPy reference and torch.nn.LSTM (when installed),
same weights and inputs, in the same run.

    pytest bench/ --benchmark-only                       # time it
    pytest bench/ --benchmark-only --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Each benchmark stores its GFLOP/s in ``extra_info``. FLOPs of one layer's forward pass are
2*B*T*4H*(D+H); a training step (forward + backward) counts three times that.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyface
from pyface import reference

try:
    import torch
except ImportError:  # torch is an optional benchmark extra: pip install ".[bench]"
    torch = None

CONFIGS = {
    # name: (batch, time, input, hidden, layers)
    "standard": (32, 64, 64, 128, 2),
    "batch1": (1, 64, 64, 128, 2),
    "large": (64, 64, 128, 512, 1),
}
IMPLS = ["pyface", "numpy", "torch"]


def flops(batch, time, inp, hidden, layers):
    total = 0
    for layer in range(layers):
        d = inp if layer == 0 else hidden
        total += 2 * batch * time * 4 * hidden * (d + hidden)
    return total


class Stack:
    """The same stacked LSTM in each implementation."""

    def __init__(self, impl, batch, time, inp, hidden, layers, seed=0):
        rng = np.random.default_rng(seed)
        self.impl = impl
        self.x = rng.standard_normal((batch, time, inp)).astype(np.float32)
        self.dy = rng.standard_normal((batch, time, hidden)).astype(np.float32)
        self.weights = []
        for layer in range(layers):
            d = inp if layer == 0 else hidden
            s = 1 / np.sqrt(hidden)
            self.weights.append(
                (
                    rng.uniform(-s, s, (4 * hidden, d)).astype(np.float32),
                    rng.uniform(-s, s, (4 * hidden, hidden)).astype(np.float32),
                    rng.uniform(-s, s, 4 * hidden).astype(np.float32),
                )
            )
        if impl == "torch":
            self.net = torch.nn.LSTM(inp, hidden, num_layers=layers, batch_first=True)
            with torch.no_grad():
                for k, (w_ih, w_hh, b) in enumerate(self.weights):
                    getattr(self.net, f"weight_ih_l{k}").copy_(torch.from_numpy(w_ih))
                    getattr(self.net, f"weight_hh_l{k}").copy_(torch.from_numpy(w_hh))
                    getattr(self.net, f"bias_ih_l{k}").copy_(torch.from_numpy(b))
                    getattr(self.net, f"bias_hh_l{k}").zero_()
            self.tx = torch.from_numpy(self.x)
            self.tdy = torch.from_numpy(self.dy)

    def infer(self):
        if self.impl == "torch":
            with torch.inference_mode():
                return self.net(self.tx)[0].numpy()
        forward = pyface.lstm_forward if self.impl == "pyface" else reference.lstm_forward
        h = self.x
        for w in self.weights:
            h = forward(h, *w, training=False)[0]
        return h

    def train_step(self):
        if self.impl == "torch":
            self.net.zero_grad(set_to_none=True)
            y = self.net(self.tx)[0]
            y.backward(self.tdy)
            return self.net.weight_hh_l0.grad.numpy()
        lib = pyface if self.impl == "pyface" else reference
        h, caches = self.x, []
        for w in self.weights:
            h, _, cache = lib.lstm_forward(h, *w, training=True)
            caches.append(cache)
        grad = self.dy
        for k in reversed(range(len(caches))):
            grads = lib.lstm_backward(grad, None, None, caches[k], need_dx=k > 0)
            grad = grads[0]
        return grads[2]


def make(impl, config):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed (pip install '.[bench]')")
    return Stack(impl, *CONFIGS[config])


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = pyface.get_num_threads()
    pyface.set_num_threads(request.param)
    if torch is not None:
        torch_before = torch.get_num_threads()
        torch.set_num_threads(request.param)
    yield request.param
    pyface.set_num_threads(before)
    if torch is not None:
        torch.set_num_threads(torch_before)


def record(benchmark, config, mode, threads):
    benchmark.group = f"{config} {mode} {threads}t"
    n = flops(*CONFIGS[config]) * (3 if mode == "train" else 1)
    benchmark.extra_info["flops"] = n
    benchmark.extra_info["threads"] = threads
    benchmark.extra_info["isa"] = pyface.get_isa()
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["gflops_median"] = n / stats.stats.median / 1e9


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_inference(benchmark, impl, config, threads):
    stack = make(impl, config)
    y = benchmark(stack.infer)
    assert y.shape == stack.dy.shape and np.isfinite(y).all()
    record(benchmark, config, "inference", threads)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", ["standard", "large"])
def test_train_step(benchmark, impl, config, threads):
    stack = make(impl, config)
    g = benchmark(stack.train_step)
    assert np.isfinite(g).all()
    record(benchmark, config, "train", threads)


def test_implementations_agree():
    """The benchmarked stacks compute the same thing, so their timings compare like for like."""
    impls = ["pyface", "numpy"] + (["torch"] if torch is not None else [])
    outs = [Stack(impl, 4, 8, 16, 32, 2).infer() for impl in impls]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-4, atol=1e-5)
    grads = [Stack(impl, 4, 8, 16, 32, 2).train_step() for impl in impls]
    for g in grads[1:]:
        np.testing.assert_allclose(g, grads[0], rtol=1e-3, atol=1e-5)
