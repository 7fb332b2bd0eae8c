"""pyface.bench: the table a user prints must be right about what it measured."""

import subprocess
import sys

import numpy as np
import pytest

import pyface
from pyface import bench


def test_flops_formula():
    # one layer: 2*B*T*4H*(D+H); a second layer reads H inputs
    assert bench.flops(2, 3, 5, 7, 1) == 2 * 2 * 3 * 28 * 12
    assert bench.flops(2, 3, 5, 7, 2) == 2 * 2 * 3 * 28 * 12 + 2 * 2 * 3 * 28 * 14
    assert bench.flops(2, 3, 5, 7, 1, mode="train") == 3 * bench.flops(2, 3, 5, 7, 1)


def test_pyface_and_numpy_stacks_agree():
    a, b = bench.Stack("pyface", 3, 5, 7, 9, 2), bench.Stack("numpy", 3, 5, 7, 9, 2)
    np.testing.assert_allclose(a.infer(), b.infer(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.train_step(), b.train_step(), rtol=1e-3, atol=1e-6)


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="impl must be one of"):
        bench.Stack("jax", 1, 1, 1, 1, 1)


def test_table_reports_ratios_of_medians():
    rows = [
        dict(config="standard", threads=2, mode="train", impl="pyface", seconds=0.010, gflops=94.0, peak_gflops=188.0),
        dict(config="standard", threads=2, mode="train", impl="numpy", seconds=0.060, gflops=15.7, peak_gflops=188.0),
    ]
    table = bench.format_table(rows)
    assert "| standard | train | 2 | 10.00 | 60.00 | 94 | 50% | 6.00x |" in table


def test_main_prints_a_table(capsys):
    assert bench.main(["--configs", "batch1", "--threads", "1", "--impls", "pyface", "numpy", "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    assert "| batch1 | inference | 1 |" in out and "isa" in out and "FMA peak: " in out


@pytest.mark.parametrize("isa", pyface.supported_isas())
def test_fma_probe_counts_its_operations(isa, kernel_threads):
    from pyface import _core

    before = pyface.get_isa()
    pyface.set_isa(isa)
    try:
        for n in (1, 2):
            kernel_threads(n)
            # kFmaChains vector FMAs per round, 2 operations per lane, on every thread.
            assert _core.fma_probe(10) == 2 * 12 * _core.vector_width() * 10 * n
    finally:
        pyface.set_isa(before)
    for rounds in (0, -1, 1 << 40):
        with pytest.raises(ValueError, match="rounds"):
            _core.fma_probe(rounds)


def test_epoch_seconds_trains_the_classic_recipe():
    rng = np.random.default_rng(0)
    images = rng.random((48, 16, 16), dtype=np.float32)
    labels = np.repeat(np.arange(4), 12)
    seconds = bench.epoch_seconds(images, labels, "pyface", epochs=3)
    assert 0 < seconds < 60


_FAULTS_OF_A_REUSED_BLOCK = """
import ctypes, ctypes.util, resource, sys
from pyface import bench
if sys.argv[1] == "keep":
    assert bench.keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def use_and_free(size):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
use_and_free(64 << 20)  # allocated, touched and freed once before counting
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
use_and_free(64 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_keep_freed_memory_stops_page_faults_on_reused_blocks(tmp_path):
    def faults(mode):
        # Run outside the source folder, whose pyface/ (no compiled module) would shadow the installed one.
        out = subprocess.run([sys.executable, "-c", _FAULTS_OF_A_REUSED_BLOCK, mode], cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout
        return int(out)

    # 64 MB is 16384 pages of 4 KiB. By default glibc maps blocks above 32 MiB afresh on
    # every allocation, so each page faults again.
    assert faults("default") > 8000
    assert faults("keep") < 100
