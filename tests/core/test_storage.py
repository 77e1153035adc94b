"""A full disk: one line naming the path, the room left and the fix, exit 74, and nothing half-written."""

import subprocess
import sys
from pathlib import Path

import pytest

from medgen.core.errors import FailureKind, StorageError, failure_kind, storage_error

MEDGEN = str(Path(sys.executable).parent / "medgen")


@pytest.mark.parametrize("errno_name,kind,fix", [
    ("ENOSPC", FailureKind.STORAGE, "free some space or choose another run_dir"),
    ("EDQUOT", FailureKind.STORAGE, "free some space or choose another run_dir"),
    ("EROFS", FailureKind.STORAGE, "make it writable for your user or choose another run_dir"),
    ("EACCES", FailureKind.STORAGE, "make it writable for your user or choose another run_dir"),
    ("ENOENT", FailureKind.OTHER, None),
])
def test_storage_errors_are_told_from_others(tmp_path, errno_name, kind, fix):
    import errno
    import os

    e = OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(tmp_path / "x" / "f.jsonl"))
    assert failure_kind(e) is kind
    found = storage_error(e)
    if fix is None:
        assert found is None
    else:
        assert isinstance(found, StorageError) and f"({errno_name})" in str(found) and fix in str(found)
        assert str(found).startswith(str(tmp_path / "x" / "f.jsonl")) and "MiB free there" in str(found)


@pytest.mark.parametrize("exc", [
    RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/3: file "
                 "write failed"),
    RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
                 'device" })'),
])
def test_a_full_disk_reported_by_torch_or_safetensors_is_storage(exc):
    assert failure_kind(exc) is FailureKind.STORAGE and "(ENOSPC)" in str(storage_error(exc, "train/checkpoints"))


def test_prepare_on_a_full_disk_says_so_in_one_line_and_leaves_nothing(tiny_disk, repo_root):
    disk, _ = tiny_disk
    out = subprocess.run([MEDGEN, "prepare", "--set", f"run_dir={disk / 'run'}", "--set", "data.n_records=400"],
                         capture_output=True, text=True, timeout=600)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 74, out.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: {disk / 'run' / 'prepare'}: No space left on device "
                                                     "(ENOSPC); "), out.stderr[-2000:]
    assert "MiB free there; free some space or choose another run_dir, then rerun" in errors[0]
    assert "Traceback" not in out.stderr
    assert not list(disk.rglob("*.tmp")) and not list(disk.rglob("manifest.json"))
