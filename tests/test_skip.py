"""Stage skipping: nothing is done twice; a changed key redoes exactly the stages downstream of it."""

import shutil
import time

import pytest

from medgen import skip


@pytest.fixture
def run_copy(trained, tmp_path):
    cfg, _ = trained
    cfg = cfg.model_copy(deep=True)
    shutil.copytree(cfg.run_path, tmp_path / "run")
    cfg.run_dir = str(tmp_path / "run")
    cfg.export.verify = False
    return cfg


def _ran(cfg, stages=("prepare", "train", "merge", "export")) -> list[str]:
    return [s for s in stages if not skip.run(cfg, s).skipped]


def test_rerun_skips_every_stage_and_a_change_redoes_its_downstream(run_copy):
    cfg = run_copy
    assert _ran(cfg) == ["merge", "export"]  # the shared run has been prepared and trained only
    t0 = time.perf_counter()
    assert _ran(cfg) == []
    assert time.perf_counter() - t0 < 10

    cfg.export.outtype = "bf16"
    assert _ran(cfg) == ["export"]
    cfg.merge.dtype = "float16"
    assert _ran(cfg) == ["merge", "export"]
    assert _ran(cfg) == []


@pytest.mark.parametrize("damage,redone", [
    (lambda run: (run / "export" / "manifest.json").unlink(), ["export"]),  # an interrupted stage
    (lambda run: next((run / "export").glob("*.gguf")).unlink(), ["export"]),  # an output removed since
    # Remade from the same inputs, the merged model keeps its fingerprint: the GGUF made from it stands.
    (lambda run: shutil.rmtree(run / "merge" / "merged"), ["merge"]),
])
def test_incomplete_outputs_are_redone(run_copy, damage, redone):
    cfg = run_copy
    _ran(cfg)
    damage(cfg.run_path)
    assert _ran(cfg) == redone


def test_force_redoes_a_stage(run_copy):
    cfg = run_copy
    _ran(cfg)
    cfg.orchestration.force = True
    assert _ran(cfg, ("merge",)) == ["merge"]
