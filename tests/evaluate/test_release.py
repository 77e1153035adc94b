"""Release: only a run whose corpus passed the gate moves the release; a failing one leaves the old release."""

import json

import pytest

from medgen.core.errors import GateFailed
from medgen.core.results import EvaluateResult, ExportResult, ServeResult
from medgen.evaluate import release

from conftest import tiny_config


def _run_dir(tmp_path, name: str, passed: bool):
    cfg = tiny_config(tmp_path / name, f"orchestration.release_dir={tmp_path / 'release'}")
    common = dict(wall_s=1.0, fingerprint=f"fp-{name}")
    for stage in ("export", "serve", "evaluate"):
        cfg.stage_dir(stage).mkdir(parents=True)
    gguf = cfg.stage_dir("export") / "model-f16.gguf"
    ExportResult(out_dir=cfg.stage_dir("export"), merged_dir=cfg.stage_dir("merge"), gguf=gguf, outtype="f16",
                 bytes=1, convert_s=1.0, **common).write(cfg.to_yaml())
    ServeResult(out_dir=cfg.stage_dir("serve"), backend="llamacpp", url="http://127.0.0.1:1", model="m", pid=None,
                kept_running=False, gguf=gguf, modelfile=cfg.stage_dir("serve") / "Modelfile", chat_format="chatml",
                notes=[], smoke={"passed": True, "n": 3, "n_passed": 3}, smoke_scores=[],
                smoke_file=cfg.stage_dir("serve") / "smoke.json", **common).write(cfg.to_yaml())
    reasons = [] if passed else ["excess PHI reuse NAME:PATIENT 0.200 > 0.05"]
    EvaluateResult(out_dir=cfg.stage_dir("evaluate"), sizes={}, validity={}, fidelity={}, diversity={}, privacy={},
                   utility=None, gate={"passed": passed, "reasons": reasons}, timings_s={}, files={},
                   **common).write(cfg.to_yaml())
    return cfg


def test_passing_run_is_released_and_failing_run_leaves_it(tmp_path):
    good = _run_dir(tmp_path, "good", passed=True)
    record = release.run(good)
    assert record["run_dir"] == str(good.run_path.resolve()) and record["evaluate_fingerprint"] == "fp-good"
    on_disk = json.loads((tmp_path / "release" / "released.json").read_text())
    assert on_disk == record and release.released(good) == record

    bad = _run_dir(tmp_path, "bad", passed=False)
    with pytest.raises(GateFailed, match="excess PHI reuse"):
        release.run(bad)
    assert release.released(bad) == record, "a run that failed the gate must leave the previous release"
