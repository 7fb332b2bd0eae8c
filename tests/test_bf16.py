"""precision="bfloat16" in the public API: CPU detection, the bf16 path and its variable, bf16 training
and benchmarking where a path runs, and the clear refusal where none does (a CPU without
AVX512_BF16, or the path switched off with PYFACE_BF16=none, which every machine can test)."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import pyface
from pyface import bench, cli
from pyface.kernel import reference
from pyface.kernel.runtime import check_precision
from pyface.training.settings import TrainingSettings

# The feature names cpu_features() shares with /proc/cpuinfo.
CPUINFO_FLAGS = ("avx", "fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    raise AssertionError("/proc/cpuinfo lists no flags")


# The bfloat16 paths pyface ships, and what each needs in /proc/cpuinfo (with the AVX-512 subsets
# its kernels use). AMX is not built yet: no AMX CPU has run its tests.
BUILT = {"avx512bf16": {"avx512_bf16", "avx512f", "avx512dq", "avx512bw", "avx512vl"}}
NOT_BUILT = {"amx": {"amx_tile", "amx_bf16"}}


def _expected_path():
    """The bfloat16 path this machine should run, from /proc/cpuinfo: None where there is none."""
    flags = _cpuinfo_flags() if sys.platform == "linux" else set()
    return next((path for path, needs in BUILT.items() if needs <= flags), None)


def _expected_refusal():
    """The message for a machine without a bfloat16 path, from /proc/cpuinfo."""
    best = pyface.supported_isas()[-1]
    return f"precision='bfloat16' needs a CPU with AVX512_BF16 or AMX (this CPU has: {best})"


SWITCHED_OFF = "precision='bfloat16' is switched off by PYFACE_BF16=none"
HAS_PATH = pyface.info()["bf16"] is not None


def run_python(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYFACE_ISA", "PYFACE_BF16")} | env
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/cpuinfo is Linux's")
def test_cpu_features_agree_with_proc_cpuinfo():
    features, flags = pyface.info()["cpu_features"], _cpuinfo_flags()
    for name in CPUINFO_FLAGS:
        assert features[name] == (name in flags), name


def test_cpu_features_agree_with_the_float32_paths():
    f = pyface.info()["cpu_features"]
    assert ("avx2" in pyface.supported_isas()) == (f["avx"] and f["avx2"] and f["fma"] and f["os_ymm"])
    if "avx512" in pyface.supported_isas():
        assert f["avx512f"] and f["os_zmm"]


def test_the_bfloat16_path_follows_the_cpu():
    # A CPU with AVX512_BF16 runs the path: the kernel tests of test_kernel_bf16.py then run too.
    assert pyface.info()["bf16"] == _expected_path()
    if _expected_path() is None:
        with pytest.raises(ValueError) as error:
            check_precision("bfloat16")
        assert str(error.value) == _expected_refusal()
    else:
        check_precision("bfloat16")
    check_precision("float32")
    with pytest.raises(ValueError, match="precision must be 'float32' or 'bfloat16', got 'fp16'"):
        check_precision("fp16")


def test_native_lstm_forward_takes_bfloat16_where_it_runs_and_its_cache_remembers():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4), (20, 4), (20, 5), (20,))]
    if HAS_PATH:
        assert pyface.lstm_forward(*args, precision="bfloat16")[2].precision == "bfloat16"
    else:
        with pytest.raises(ValueError) as error:
            pyface.lstm_forward(*args, precision="bfloat16")
        assert str(error.value) == _expected_refusal()
    with pytest.raises(TypeError, match="precision must be"):
        pyface.lstm_forward(*args, precision=None)
    _, _, cache = pyface.lstm_forward(*args)
    assert cache.precision == "float32"


def test_switched_off_the_kernel_refuses_bfloat16_in_every_entry_point():
    # Whatever the CPU: the API, training, the train command and the bench each say why, in one line.
    code = """
import numpy as np, pyface
from pyface import bench, cli
from pyface.data.synthetic import synthetic_faces
args = [np.ones(s, np.float32) for s in ((2, 3, 4), (20, 4), (20, 5), (20,))]
for call in (lambda: pyface.lstm_forward(*args, precision="bfloat16"),
             lambda: pyface.train(synthetic_faces(2, 3, size=16, seed=0), epochs=1, quiet=True, precision="bfloat16")):
    try:
        call()
    except ValueError as e:
        print("refused:", e)
print("cli", cli.main(["train", "no-such-folder", "--precision", "bfloat16"]))
print("bench", bench.main(["--configs", "batch1", "--threads", "1", "--precision", "bfloat16"]))
"""
    out = run_python(code, PYFACE_BF16="none")
    # A CPU without the features says so first; one with them, that the variable switched them off.
    why = SWITCHED_OFF if _expected_path() else _expected_refusal()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"refused: {why}"] * 2 + ["cli 1", "bench 2"]
    assert out.stderr.splitlines() == [f"pyface: error: {why}", f"python -m pyface.bench: error: {why}"]


@pytest.mark.parametrize("written, shown", [("none", None), (" NONE ", None)])
def test_variable_switches_bfloat16_off_in_any_case(written, shown):
    out = run_python("import pyface; print(pyface.info()['bf16'])", PYFACE_BF16=written)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(shown)


def test_variable_refuses_an_unknown_path():
    out = run_python("import pyface", PYFACE_BF16="avx10")
    assert out.returncode != 0
    assert "PYFACE_BF16=avx10 is not one of none, avx512bf16, amx" in out.stderr


@pytest.mark.parametrize("path, needs", [*BUILT.items(), *NOT_BUILT.items()])
def test_variable_forces_a_path_or_says_why_it_cannot(path, needs):
    out = run_python("import pyface; print(pyface.info()['bf16'])", PYFACE_BF16=path)
    cpu_has = sys.platform == "linux" and needs <= _cpuinfo_flags()
    if cpu_has and path in BUILT:
        assert out.returncode == 0 and out.stdout.strip() == path, out.stderr
        return
    assert out.returncode != 0
    why = "pyface's bfloat16 kernel for it is not yet available" if cpu_has else \
        "this CPU (or its operating system) does not support it"
    assert f"PYFACE_BF16={path}: {why}" in out.stderr


def test_the_command_says_the_variable_is_wrong_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "PYFACE_ISA"} | {"PYFACE_BF16": "Turbo"}
    out = subprocess.run([sys.executable, "-m", "pyface", "info"], capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), env=env, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == "pyface: error: PYFACE_BF16=turbo is not one of none, avx512bf16, amx\n"


def test_info_command_names_the_bfloat16_path(capsys):
    assert cli.main(["info"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("bfloat16 path"))
    if HAS_PATH:
        assert line == f"bfloat16 path     {_expected_path()}"
    else:
        assert line.startswith("bfloat16 path     none (the CPU has ")


# ---- training ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces(make_dataset):
    return make_dataset(per_class=6, seed=0)


def test_train_takes_bfloat16_where_it_runs(faces, tiny):
    if not HAS_PATH:
        with pytest.raises(ValueError) as error:
            pyface.train(faces, epochs=1, quiet=True, precision="bfloat16", **tiny)
        assert str(error.value) == _expected_refusal()
        return
    # The native bf16 training follows the reference's bf16 training (same seed, same batches).
    native = pyface.train(faces, epochs=2, quiet=True, precision="bfloat16", **tiny)
    ref = pyface.train(faces, epochs=2, quiet=True, kernel=reference, precision="bfloat16", **tiny)
    f32 = pyface.train(faces, epochs=2, quiet=True, **tiny)
    assert native.training["precision"] == "bfloat16"
    for name, value in native.network.params.items():
        gap = np.abs(value - ref.network.params[name]).max()
        assert gap < 0.5 * max(np.abs(f32.network.params[name] - ref.network.params[name]).max(), 1e-6) + 1e-5, name


def test_training_settings_refuse_an_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainingSettings(precision="half")
    assert TrainingSettings.from_dict({}).precision == "float32"  # files from before the option


def test_bfloat16_training_runs_through_the_reference_and_is_recorded(faces, tiny, tmp_path):
    # The math a bf16 kernel path must match, end to end: what the native path will run.
    f32 = pyface.train(faces, epochs=2, quiet=True, kernel=reference, **tiny)
    bf16 = pyface.train(faces, epochs=2, quiet=True, kernel=reference, precision="bfloat16", **tiny)
    assert bf16.training["precision"] == "bfloat16" and f32.training["precision"] == "float32"
    differs = [not np.array_equal(v, f32.network.params[n]) for n, v in bf16.network.params.items()]
    assert any(differs)
    for name, value in bf16.network.params.items():
        np.testing.assert_allclose(value, f32.network.params[name], atol=0.02, err_msg=name)
    path = tmp_path / "bf16.pyface"
    bf16.save(path)
    loaded = pyface.load_model(path)
    assert loaded.training["precision"] == "bfloat16"
    # Trained in bfloat16, it predicts in float32 on the native kernel.
    np.testing.assert_array_equal(loaded.predict(faces.images), bf16.predict(faces.images))


def test_estimator_takes_precision():
    assert pyface.LSTMFaceClassifier().get_params()["precision"] == "float32"
    assert pyface.LSTMFaceClassifier(precision="bfloat16").get_params()["precision"] == "bfloat16"


def test_train_command_with_bfloat16_names_the_missing_folder(tmp_path, capsys):
    # With a path, precision is accepted and the folder is the problem; without, the precision.
    status = cli.main(["train", str(tmp_path / "no-such-folder"), "--precision", "bfloat16"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert ("no-such-folder" in err) if HAS_PATH else err == f"pyface: error: {_expected_refusal()}\n"


# ---- bench ------------------------------------------------------------------------------------


def test_bench_times_pyface_in_bfloat16_where_it_runs(capsys):
    status = bench.main(["--configs", "batch1", "--threads", "1", "--impls", "pyface", "--min-time", "0",
                         "--precision", "bfloat16"])
    if HAS_PATH:
        assert status == 0 and "| batch1 | inference | 1 |" in capsys.readouterr().out
    else:
        assert status == 2
        assert capsys.readouterr().err == f"python -m pyface.bench: error: {_expected_refusal()}\n"


def test_bench_times_the_reference_in_bfloat16(capsys):
    assert bench.main(["--configs", "batch1", "--threads", "1", "--impls", "numpy", "--min-time", "0",
                       "--precision", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "precision: bfloat16" in out and "| batch1 | inference | 1 |" in out
    f32, bf16 = (bench.Stack("numpy", 2, 5, 6, 7, 2, precision=p).infer() for p in ("float32", "bfloat16"))
    assert 0 < np.abs(f32 - bf16).max() < 0.05
