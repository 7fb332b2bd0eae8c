"""The gallery scale benchmark runs (on a few templates) and reports every figure it promises."""

import importlib.util
import json
from pathlib import Path


def _load():
    spec = importlib.util.spec_from_file_location("gallery_scale", Path(__file__).with_name("gallery_scale.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_scale_smoke_run(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert _load().main(["--templates", "2000", "--queries", "20", "--batch", "100", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["templates"] == 2000 and report["dimension"] == 256
    for key in ("exact_1_thread", "exact_2_thread", "numpy_1_thread", "numpy_2_thread",
                "approximate_1_thread_build", "approximate_1_thread_load"):
        assert 0 < report[key]["p50_ms"] <= report[key]["p99_ms"], key
    # Well-separated made-up people: the index finds the exact answer.
    assert report["recall_at_1_build"] >= 0.95 and report["recall_at_1_load"] == report["recall_at_1_build"]
    assert report["disk_mb"] > 2000 * 256 * 4 / 2**20
    assert report["enrolment"]["templates_per_s"] > 0
