"""Batch recognition on a real two-worker Dask cluster: the same answers as one process, every file once."""

import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pandas as pd
import pytest

import pyface


@pytest.fixture(scope="module")
def distributed():
    from pyface import distributed

    return distributed


@pytest.fixture(scope="module")
def photos(tmp_path_factory, make_images):
    """A folder of 3 people x 8 PNG photos in subfolders, plus one file that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    images, labels = make_images(per_class=8)
    for k, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"person{label}"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{k}.png"), image)
    (root / "person1" / "broken.png").write_bytes(b"not a picture")
    return root


@pytest.fixture(scope="module")
def listed(photos):
    from pyface.data.images import list_image_files

    return [str(p) for p in list_image_files([photos])]


def _readable(paths):
    return [p for p in paths if not p.endswith("broken.png")]


def test_import_pyface_does_not_import_dask(tmp_path):
    code = ("import sys, pyface; assert not any(m.split('.')[0] in ('dask', 'distributed', 'pandas', 'pyarrow') "
            "for m in sys.modules), sorted(m for m in sys.modules if 'dask' in m); "
            "from pyface import distributed; assert 'distributed' in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_predict_files_equals_one_process_and_reports_the_broken_file(distributed, dask_client, tiny_model, photos,
                                                                      listed):
    table = distributed.predict_files(tiny_model, photos, client=dask_client, partition_size=5, quiet=True)
    assert list(table.columns) == ["path", "name", "score", "error"]
    assert table["path"].tolist() == listed
    broken = table["path"].str.endswith("broken.png")
    assert broken.sum() == 1
    row = table[broken].iloc[0]
    assert pd.isna(row["name"]) and np.isnan(row["score"]) and "not a readable image" in row["error"]
    good = table[~broken]
    names, scores = tiny_model.predict(_readable(listed), return_scores=True)
    assert good["name"].tolist() == names.tolist()
    np.testing.assert_allclose(good["score"].to_numpy(), scores, rtol=1e-5, atol=1e-6)
    assert good["error"].isna().all()


def test_open_set_threshold_as_in_one_process(distributed, dask_client, tiny_model, photos, listed):
    paths = _readable(listed)
    table = distributed.predict_files(tiny_model, paths, client=dask_client, threshold=0.9, partition_size=7,
                                      quiet=True)
    names, scores = tiny_model.predict(paths, threshold=0.9, return_scores=True)
    assert table["name"].tolist() == names.tolist()
    np.testing.assert_allclose(table["score"].to_numpy(), scores, rtol=1e-5, atol=1e-6)


def test_a_missing_file_in_a_list_is_its_own_row(distributed, dask_client, tiny_model, listed, tmp_path):
    paths = [listed[0], str(tmp_path / "gone.png"), listed[1]]
    table = distributed.predict_files(tiny_model, paths, client=dask_client, quiet=True)
    assert table["path"].tolist() == paths
    assert table["error"].isna().tolist() == [True, False, True]
    assert "image file not found" in table["error"][1]


def test_embed_files_equals_one_process(distributed, dask_client, tiny_model, listed):
    paths = _readable(listed)
    embedded = distributed.embed_files(tiny_model, paths, client=dask_client, partition_size=4, quiet=True)
    assert embedded.dtype == np.float32
    np.testing.assert_allclose(embedded, tiny_model.embed(paths), atol=1e-5)


def test_embed_files_gives_nan_rows_and_errors_for_unreadable_files(distributed, dask_client, tiny_model, listed):
    embedded, errors = distributed.embed_files(tiny_model, listed, client=dask_client, return_errors=True,
                                               quiet=True)
    bad = [i for i, p in enumerate(listed) if p.endswith("broken.png")]
    assert [i for i, e in enumerate(errors) if e is not None] == bad
    assert np.isnan(embedded[bad]).all() and np.isfinite(np.delete(embedded, bad, axis=0)).all()


def test_a_model_file_is_loaded_once_per_worker_with_its_share_of_threads(distributed, dask_client, tiny_model, listed,
                                                                          tmp_path):
    from pyface.distributed import workers

    path = tmp_path / "model.pyface"
    tiny_model.save(path)
    first = distributed.predict_files(path, listed, client=dask_client, partition_size=2, quiet=True)
    again = distributed.predict_files(str(path), listed, client=dask_client, partition_size=2, quiet=True)
    assert first.equals(again)
    loaded = dask_client.run(workers.loaded_models)
    digests = {digest for per_worker in loaded.values() for digest in per_worker}
    # Both runs, every partition, the same single entry per worker: loaded once, never per task.
    assert len(loaded) == 2 and all(len(d) == len(set(d)) for d in loaded.values())
    assert workers.model_digest(path) in digests
    assert set(dask_client.run(pyface.get_num_threads).values()) == {1}
    # OpenCV too (decoding, face detection): by default it would use every core of the machine.
    assert set(dask_client.run(cv2.getNumThreads).values()) == {1}


def _page_faults_of_megabyte_arrays(rounds=50):
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        np.ones(1 << 18, dtype=np.float32).sum()  # 1 MB, written then freed, as a batch's temporaries
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_workers_reuse_freed_batch_memory(distributed, dask_client, tiny_model, listed):
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_ set, which pins glibc's mmap threshold
    # at 128 kB: each 1 MB array would be 256 fresh pages. After a job, pyface's workers reuse them.
    assert set(dask_client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {"65536"}
    distributed.predict_files(tiny_model, listed[:2], client=dask_client, quiet=True)
    faults = dask_client.run(_page_faults_of_megabyte_arrays)
    assert len(faults) == 2 and max(faults.values()) < 50 * 256 // 10, faults


def test_results_go_to_parquet_partition_by_partition(distributed, dask_client, tiny_model, photos, listed, tmp_path):
    out = tmp_path / "results.parquet"
    failed = distributed.predict_files(tiny_model, photos, client=dask_client, partition_size=3, out=out,
                                       quiet=True)
    written = pd.read_parquet(out)
    expected = distributed.predict_files(tiny_model, photos, client=dask_client, quiet=True)
    assert written["path"].tolist() == listed
    assert written["name"].tolist() == expected["name"].tolist()
    np.testing.assert_allclose(written["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-6)
    assert failed["path"].tolist() == [p for p in listed if p.endswith("broken.png")]
    assert os.listdir(tmp_path) == ["results.parquet"]  # no temporary file left behind


def test_a_bad_output_path_fails_before_the_job(distributed, dask_client, tiny_model, listed, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        distributed.predict_files(tiny_model, listed, client=dask_client, out=tmp_path / "no" / "r.parquet",
                                  quiet=True)


def test_a_worker_killed_mid_job_costs_a_retry_not_the_job(distributed, own_dask_client, tmp_path,
                                                          kill_a_worker_once_busy):
    from pyface.data import from_arrays
    from pyface.data.preprocess import Preprocessor
    from pyface.training import train

    # Large noisy photos decode slowly enough that the job is still running when a worker dies.
    rng = np.random.default_rng(0)
    paths = []
    for k in range(100):
        path = tmp_path / f"{k}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (400, 400), dtype=np.uint8))
        paths.append(str(path))
    images = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in paths[:12]]
    model = train(from_arrays(images, np.arange(12) % 2, preprocessor=Preprocessor(size=16)), epochs=1,
                  quiet=True, hidden_size=8, num_layers=1, views=("rows",), bidirectional=False, augment=None)
    before = own_dask_client.run(os.getpid)
    kill = {}
    killer = threading.Thread(target=lambda: kill.update(kill_a_worker_once_busy(own_dask_client)))
    killer.start()
    table = distributed.predict_files(model, paths, client=own_dask_client, partition_size=2, quiet=True)
    done_first = not killer.is_alive()
    killer.join()
    assert kill["killed"] and done_first, "the worker was not killed while the job ran"
    assert kill["pid"] not in own_dask_client.run(os.getpid).values() and kill["pid"] in before.values()
    assert table["path"].tolist() == paths  # every file, once, in order
    names, scores = model.predict(paths, return_scores=True)
    assert table["name"].tolist() == names.tolist() and table["error"].isna().all()
    np.testing.assert_allclose(table["score"].to_numpy(), scores, rtol=1e-5, atol=1e-6)


def test_cli_predict_on_a_cluster_into_parquet(dask_client, tiny_model, photos, listed, tmp_path, capsys):
    from pyface import cli

    model, out = tmp_path / "model.pyface", tmp_path / "results.parquet"
    tiny_model.save(model)
    status = cli.main(["predict", str(model), str(photos), "--scheduler", dask_client.scheduler.address,
                       "--out", str(out), "--partition-size", "4"])
    captured = capsys.readouterr()
    assert status == 1  # one file could not be read: said on stderr, in one line per file and a total
    assert captured.err.strip().splitlines()[-1] == f"pyface: error: 1 of {len(listed)} images could not be read"
    assert "broken.png" in captured.err and "Traceback" not in captured.err
    table = pd.read_parquet(out)
    assert table["path"].tolist() == listed
    good = table[table["error"].isna()]
    assert good["name"].tolist() == tiny_model.predict(_readable(listed)).tolist()


def test_cli_out_without_scheduler_is_one_line_error(tiny_model, photos, tmp_path, capsys):
    from pyface import cli

    model = tmp_path / "model.pyface"
    tiny_model.save(model)
    status = cli.main(["predict", str(model), str(photos), "--out", str(tmp_path / "r.parquet")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "--scheduler" in err[0]
