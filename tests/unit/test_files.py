"""gfm.files.atomic_write: the target holds the old content or the new, never a partial write."""

from __future__ import annotations

import pytest

from gfm.files import atomic_write, atomic_write_bytes, atomic_write_text


def test_atomic_write_creates_folder_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "file.json"
    assert atomic_write_text(target, "one\n") == target
    assert target.read_text() == "one\n"
    atomic_write_bytes(target, b"two\n")
    assert target.read_bytes() == b"two\n"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_temporary_is_hidden_beside_target(tmp_path):
    seen = []
    atomic_write(tmp_path / "x.parquet", lambda tmp: (seen.append(tmp), tmp.write_text("x")))
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".x.parquet.")
