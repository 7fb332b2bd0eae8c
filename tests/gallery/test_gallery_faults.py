"""Galleries under concurrent writers, readers, killed writers, and files that are not galleries."""

import os
import signal
import sqlite3
import zipfile

import numpy as np
import pytest

import pyface


def _finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def test_two_processes_enrolling_500_people_each_lose_nothing(gallery_url, tiny_model, model_file, run_worker):
    pyface.open_gallery(gallery_url, tiny_model).close()  # created once, before the race
    writers = [run_worker("enroll", gallery_url, model_file, prefix, 500) for prefix in ("a", "b")]
    for writer in writers:
        _finish(writer)
    with pyface.open_gallery(gallery_url, tiny_model) as gallery:
        assert len(gallery) == 1000
        assert set(gallery.names()) == {f"{p}-{i}" for p in "ab" for i in range(500)}
        assert set(gallery.enrolled.values()) == {1}


def test_a_reader_never_sees_half_an_enrolment(gallery_url, tiny_model, model_file, run_worker):
    pyface.open_gallery(gallery_url, tiny_model).close()
    d = tiny_model.network.arch.feature_size
    probe = np.ones((1, d), dtype=np.float32) / np.sqrt(d)
    # 60 transactions, each of 5 people with 4 templates.
    writer = run_worker("batches", gallery_url, model_file, 5, 4, 60)
    seen = set()
    with pyface.open_gallery(gallery_url, tiny_model) as reader:
        while writer.poll() is None:
            counts = reader.enrolled
            assert len(counts) % 5 == 0 and set(counts.values()) <= {4}, counts
            seen.add(len(counts))
            if counts:
                names, _ = reader.search_embeddings(probe, k=5)
                assert set(names[0]) <= set(reader.enrolled)  # people answered are whole people
        _finish(writer)
        assert len(reader) == 300 and set(reader.enrolled.values()) == {4}
    # The reader ran while the writer wrote, not only before or after.
    assert len(seen - {0, 300}) >= 2, seen


def test_a_writer_killed_mid_enrolment_leaves_whole_people(gallery_url, tiny_model, model_file, run_worker):
    pyface.open_gallery(gallery_url, tiny_model).close()
    # Batches of 20 people with 500 templates each: the writer spends its time inside transactions.
    writer = run_worker("batches", gallery_url, model_file, 20, 500, 0)
    for _ in range(3):
        writer.stdout.readline()  # three batches committed, the fourth under way
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with pyface.open_gallery(gallery_url, tiny_model) as gallery:
        counts = gallery.enrolled
        assert len(counts) >= 60 and len(counts) % 20 == 0, len(counts)
        assert set(counts.values()) == {500}
        batches = len(counts) // 20
        assert set(counts) == {f"b{b}-{i}" for b in range(batches) for i in range(20)}
        assert gallery.metadata(f"b{batches - 1}-19") == {"batch": batches - 1}
        gallery.enroll_embeddings("after", np.ones((1, tiny_model.network.arch.feature_size)))
        assert "after" in gallery
    if not gallery_url.startswith("postgresql"):
        with sqlite3.connect(gallery_url) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------------- files that are not galleries


def test_a_new_gallery_file_is_readable_by_its_owner_only(tmp_path, tiny_model):
    path = tmp_path / "faces.db"
    with pyface.open_gallery(path, tiny_model) as gallery:
        gallery.enroll_embeddings("alice", np.ones((2, tiny_model.network.arch.feature_size)))
        for f in (path, tmp_path / "faces.db-wal"):
            assert f.stat().st_mode & 0o777 == 0o600, f
    assert path.stat().st_mode & 0o777 == 0o600


def _foreign_sqlite(path, model):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.execute("INSERT INTO invoices (amount) VALUES (12.5)")


def _model_file(path, model):
    model.save(path)


@pytest.mark.parametrize("make, problem", [
    (lambda p, m: p.write_text("alice,bob\n"), "not a pyface gallery"),
    (lambda p, m: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200), "not a pyface gallery, or corrupt"),
    (_foreign_sqlite, "not a pyface gallery"),
    (_model_file, "not a pyface gallery"),
])
def test_a_foreign_file_is_refused_and_left_alone(tmp_path, tiny_model, make, problem):
    path = tmp_path / "faces.db"
    make(path, tiny_model)
    before = path.read_bytes()
    with pytest.raises(pyface.GalleryError, match=problem) as caught:
        pyface.open_gallery(path, tiny_model)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    if zipfile.is_zipfile(path):
        pyface.load_model(path)  # the model file still loads


def test_a_damaged_gallery_is_refused(tmp_path, tiny_model):
    path = tmp_path / "faces.db"
    d = tiny_model.network.arch.feature_size
    with pyface.open_gallery(path, tiny_model) as gallery:
        gallery.enroll_many([(f"p{i}", np.ones((50, d)), None) for i in range(40)])
    size = path.stat().st_size
    with open(path, "r+b") as f:  # garbage over the middle pages
        f.seek(size // 3)
        f.write(os.urandom(size // 3))
    with pytest.raises(pyface.GalleryError, match="corrupt"):
        with pyface.open_gallery(path, tiny_model) as gallery:
            gallery.enrolled


def test_a_gallery_from_a_newer_pyface_is_refused(gallery_url, tiny_model):
    pyface.open_gallery(gallery_url, tiny_model).close()
    if gallery_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(gallery_url, autocommit=True) as db:
            db.execute("UPDATE pyface_gallery SET value = '99' WHERE key = 'format_version'")
    else:
        with sqlite3.connect(gallery_url) as db:
            db.execute("UPDATE pyface_gallery SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(pyface.GalleryError, match="newer than this pyface"):
        pyface.open_gallery(gallery_url, tiny_model)


def test_a_postgres_database_with_a_foreign_table_of_that_name_is_refused(postgres_url, tiny_model):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE pyface_gallery (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO pyface_gallery VALUES ('format', 'something-else')")
    with pytest.raises(pyface.GalleryError, match="not a pyface gallery"):
        pyface.open_gallery(postgres_url, tiny_model)


def test_an_unreachable_postgres_server_is_a_clear_error(tiny_model, tmp_path):
    url = f"postgresql://nobody:secret@/postgres?host={tmp_path}"
    with pytest.raises(pyface.GalleryError, match="cannot connect") as caught:
        pyface.open_gallery(url, tiny_model, timeout=2)
    assert "secret" not in str(caught.value)
