"""Kernel benchmarks: pyface against the NumPy reference and torch.nn.LSTM (when installed),
same weights and inputs, in the same run, in float32 and in bfloat16 (torch under autocast;
pyface's cells where the CPU has a bfloat16 path).

    pytest bench/ --benchmark-only --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Each benchmark stores its GFLOP/s in ``extra_info``. ``python -m pyface.bench`` prints the
same measurements as one table with ratios.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyface
from pyface.bench import CONFIGS, IMPLS, Stack, flops, keep_freed_memory, set_threads

try:
    import torch
except ImportError:  # optional: pip install ".[bench]"
    torch = None


def make(impl, config, precision="float32"):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed (pip install '.[bench]')")
    if impl == "pyface" and precision == "bfloat16" and pyface.info()["bf16"] is None:
        pytest.skip("no bfloat16 path on this CPU")  # test_bf16.py checks that the CPU lacks one
    return Stack(impl, *CONFIGS[config], precision=precision)


@pytest.fixture(params=["float32", "bfloat16"])
def precision(request):
    return request.param


@pytest.fixture(scope="session", autouse=True)
def warm_heap():
    """Time every implementation with malloc reusing freed memory (see keep_freed_memory)."""
    keep_freed_memory()


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = pyface.get_num_threads()
    set_threads(request.param)
    yield request.param
    set_threads(before)


def record(benchmark, config, mode, threads, precision):
    n = flops(*CONFIGS[config], mode=mode)
    benchmark.extra_info.update(flops=n, threads=threads, isa=pyface.get_isa(), precision=precision)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["gflops_median"] = n / stats.stats.median / 1e9


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_inference(benchmark, impl, config, threads, precision):
    stack = make(impl, config, precision)
    benchmark.group = f"{config} inference {threads}t {precision}"
    y = benchmark(stack.infer)
    assert y.shape == stack.dy.shape and np.isfinite(y).all()
    record(benchmark, config, "inference", threads, precision)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", ["standard", "large"])
def test_train_step(benchmark, impl, config, threads, precision):
    stack = make(impl, config, precision)
    benchmark.group = f"{config} train {threads}t {precision}"
    g = benchmark(stack.train_step)
    assert np.isfinite(g).all()
    record(benchmark, config, "train", threads, precision)


def test_implementations_agree():
    """The benchmarked stacks compute the same thing, so their timings compare like for like."""
    impls = ["pyface", "numpy"] + (["torch"] if torch is not None else [])
    outs = [Stack(impl, 4, 8, 16, 32, 2).infer() for impl in impls]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-4, atol=1e-5)
    grads = [Stack(impl, 4, 8, 16, 32, 2).train_step() for impl in impls]
    for g in grads[1:]:
        np.testing.assert_allclose(g, grads[0], rtol=1e-3, atol=1e-5)
