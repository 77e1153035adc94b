"""Stage skipping: nothing is done twice; a changed key redoes exactly the stages downstream of it."""

import json
import shutil
import time
from pathlib import Path

import pytest

from medgen.core import skip
from medgen.core.errors import OutputsDamaged

pytestmark = pytest.mark.slow  # every test here trains or runs the pipeline

STAGES = ("prepare", "train", "merge", "export")


def _ran(cfg, stages=STAGES) -> list[str]:
    return [s for s in stages if not skip.run(cfg, s).skipped]


def test_rerun_skips_done_stages_and_a_change_redoes_its_downstream(tmp_path, repo_root):
    from conftest import tiny_config

    cfg = tiny_config(tmp_path / "run", "export.verify=false")
    run = cfg.run_path
    assert _ran(cfg) == list(STAGES)
    t0 = time.perf_counter()
    assert _ran(cfg) == []
    assert time.perf_counter() - t0 < 10

    # One key: its stage and everything after it, nothing before.
    cfg.export.outtype = "bf16"
    assert _ran(cfg) == ["export"]
    cfg.merge.dtype = "float16"
    assert _ran(cfg) == ["merge", "export"]
    assert _ran(cfg) == []

    # Incomplete outputs are redone: an interrupted stage (no manifest), an output removed since.
    (run / "export" / "manifest.json").unlink()
    assert _ran(cfg) == ["export"]
    gguf = run / "export" / json.loads((run / "export" / "manifest.json").read_text())["gguf"]
    gguf.unlink()
    assert _ran(cfg) == ["export"]
    # A truncated GGUF: nothing downstream builds on it, and the next run redoes it.
    size = gguf.stat().st_size
    with open(gguf, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(OutputsDamaged, match=f"serve: {gguf}: expected {size:,} bytes as written, got "
                       f"{size // 2:,} \\(truncated\\); export must run again"):
        skip.run(cfg, "serve")
    assert _ran(cfg) == ["export"] and gguf.stat().st_size == size
    # Remade from the same inputs, the merged model keeps its fingerprint: the GGUF made from it stands.
    shutil.rmtree(run / "merge" / "merged")
    assert _ran(cfg) == ["merge"]

    cfg.orchestration.force = True
    assert _ran(cfg, ("merge",)) == ["merge"]


def test_a_relative_run_dir_is_reused_too(tmp_path, repo_root):
    # The README's run_dir (runs/default) is relative: manifests hold paths as written, relative to the cwd.
    import os

    from conftest import tiny_config

    cfg = tiny_config(os.path.relpath(tmp_path / "run"))
    assert not cfg.run_path.is_absolute()
    assert _ran(cfg, ("prepare",)) == ["prepare"]
    assert _ran(cfg, ("prepare",)) == []


def test_a_run_folder_copied_then_moved_elsewhere_is_reused_there(tmp_path, repo_root):
    """HPC users move runs from scratch to project space: manifests hold paths relative to their own folder, so
    `cp -a runs/a runs/b` (then removing runs/a) and the same command with run_dir=runs/b skips every stage."""
    import subprocess

    from conftest import tiny_config
    from medgen.core.registry import stage

    first = tiny_config(tmp_path / "a", "export.verify=false")
    assert _ran(first) == list(STAGES)
    subprocess.run(["cp", "-a", str(first.run_path), str(tmp_path / "b")], check=True)
    shutil.rmtree(first.run_path)
    moved = tiny_config(tmp_path / "b", "export.verify=false")
    assert _ran(moved) == []
    for name in STAGES:
        done = stage(name).result.from_manifest(moved.stage_dir(name))
        assert done.out_dir == moved.stage_dir(name) and done.complete()
        assert all(Path(p).is_relative_to(moved.run_path) for p in done.outputs), name
    manifest = json.loads((moved.stage_dir("merge") / "manifest.json").read_text())
    assert (manifest["out_dir"], manifest["merged_dir"], manifest["adapter"]) == (".", "merged", "../train/adapter")
