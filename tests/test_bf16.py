"""precision="bfloat16" in the public API: CPU detection, the bf16 path and its variable, and the clear
refusal where no bfloat16 path runs (every machine until a kernel path is verified on its hardware)."""

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


def _expected_refusal():
    """The message for this machine, from /proc/cpuinfo: no bfloat16 path is built yet."""
    flags = _cpuinfo_flags() if sys.platform == "linux" else set()
    has = [name for name, needs in (("amx", {"amx_tile", "amx_bf16"}), ("avx512bf16", {"avx512_bf16"}))
           if needs <= flags]
    if not has:
        best = pyface.supported_isas()[-1]
        return (f"precision='bfloat16' needs a CPU with AVX512_BF16 or AMX (this CPU has: {best}); "
                "pyface's bfloat16 kernel is not yet available")
    return f"precision='bfloat16' cannot run: this CPU has {', '.join(has)}, but pyface's bfloat16 kernel " \
           "for it is not yet available"


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


def test_no_bfloat16_path_ships_yet_and_precision_says_why():
    assert pyface.info()["bf16"] is None
    with pytest.raises(ValueError) as error:
        check_precision("bfloat16")
    assert str(error.value) == _expected_refusal()
    check_precision("float32")
    with pytest.raises(ValueError, match="precision must be 'float32' or 'bfloat16', got 'fp16'"):
        check_precision("fp16")


def test_native_lstm_forward_refuses_bfloat16_and_its_cache_remembers_float32():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4), (20, 4), (20, 5), (20,))]
    with pytest.raises(ValueError) as error:
        pyface.lstm_forward(*args, precision="bfloat16")
    assert str(error.value) == _expected_refusal()
    with pytest.raises(TypeError, match="precision must be"):
        pyface.lstm_forward(*args, precision=None)
    _, _, cache = pyface.lstm_forward(*args)
    assert cache.precision == "float32"


@pytest.mark.parametrize("written, shown", [("none", None), (" NONE ", None)])
def test_variable_switches_bfloat16_off_in_any_case(written, shown):
    out = run_python("import pyface; print(pyface.info()['bf16'])", PYFACE_BF16=written)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(shown)


def test_variable_refuses_an_unknown_path():
    out = run_python("import pyface", PYFACE_BF16="avx10")
    assert out.returncode != 0
    assert "PYFACE_BF16=avx10 is not one of none, avx512bf16, amx" in out.stderr


@pytest.mark.parametrize("path, needs", [("amx", {"amx_tile", "amx_bf16"}), ("avx512bf16", {"avx512_bf16"})])
def test_variable_refuses_a_path_this_machine_cannot_run(path, needs):
    out = run_python("import pyface", PYFACE_BF16=path)
    assert out.returncode != 0
    cpu_has = sys.platform == "linux" and needs <= _cpuinfo_flags()
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
    assert line.startswith("bfloat16 path     none (the CPU has ")


# ---- training ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces(make_dataset):
    return make_dataset(per_class=6, seed=0)


def test_train_refuses_bfloat16_before_any_work(faces, tiny):
    with pytest.raises(ValueError) as error:
        pyface.train(faces, epochs=1, quiet=True, precision="bfloat16", **tiny)
    assert str(error.value) == _expected_refusal()


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


def test_train_command_refuses_bfloat16_in_one_line_before_loading(tmp_path, capsys):
    status = cli.main(["train", str(tmp_path / "no-such-folder"), "--precision", "bfloat16"])
    err = capsys.readouterr().err
    assert status == 1 and err == f"pyface: error: {_expected_refusal()}\n"


# ---- bench ------------------------------------------------------------------------------------


def test_bench_refuses_bfloat16_for_pyface_in_one_line(capsys):
    assert bench.main(["--configs", "batch1", "--threads", "1", "--precision", "bfloat16"]) == 2
    assert capsys.readouterr().err == f"python -m pyface.bench: error: {_expected_refusal()}\n"


def test_bench_times_the_reference_in_bfloat16(capsys):
    assert bench.main(["--configs", "batch1", "--threads", "1", "--impls", "numpy", "--min-time", "0",
                       "--precision", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "precision: bfloat16" in out and "| batch1 | inference | 1 |" in out
    f32, bf16 = (bench.Stack("numpy", 2, 5, 6, 7, 2, precision=p).infer() for p in ("float32", "bfloat16"))
    assert 0 < np.abs(f32 - bf16).max() < 0.05
