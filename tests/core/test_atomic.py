"""Crash-safe outputs: a folder is replaced whole or not at all, and a killed run's leftovers are cleaned."""

import os

import pytest

from medgen.core.io import atomic_dir, atomic_write_text


def _listing(parent):
    return sorted(p.name for p in parent.iterdir())


@pytest.mark.parametrize("existing", [False, True])
def test_atomic_dir_replaces_whole(tmp_path, existing):
    target = tmp_path / "merged"
    if existing:
        target.mkdir()
        (target / "old.bin").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "model.safetensors").write_text("new")
        assert not (target / "model.safetensors").exists()  # nothing shows before it is complete
    assert _listing(target) == ["model.safetensors"] and _listing(tmp_path) == ["merged"]


def test_failed_atomic_dir_keeps_the_old_folder(tmp_path):
    target = tmp_path / "merged"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_text("half")
            raise RuntimeError("killed mid-write")
    assert _listing(target) == ["old.bin"] and _listing(tmp_path) == ["merged"]


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next(tmp_path):
    target = tmp_path / "merged"
    (tmp_path / ".merged.abc123.tmp").mkdir()  # what a SIGKILL mid-stage leaves
    (tmp_path / ".merged.abc123.tmp" / "part").write_text("x")
    (tmp_path / ".merged.old-99-1").mkdir()
    (tmp_path / ".other.zzz.tmp").mkdir()  # another stage's: not ours to remove
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("y")
    assert _listing(tmp_path) == [".other.zzz.tmp", "merged"]


def test_atomic_write_text_leaves_no_temp_on_error(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    atomic_write_text(path, "v1")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "v2")
    assert path.read_text() == "v1" and _listing(tmp_path) == ["manifest.json"]
