"""A stage run before its upstream: one line naming the missing output and the command that makes it, exit 2."""

import pytest
from typer.testing import CliRunner

from medgen.core.constants import LOCK_FILE
from medgen.core.registry import STAGES

# Each stage on an empty run_dir, and the stage whose output it misses first.
CASES = [
    ("train", [], "prepare"),
    ("train", ["--set", "train.max_steps=5"], "prepare"),
    ("merge", [], "train"),
    ("export", [], "merge"),
    ("serve", [], "export"),
    ("generate", [], "prepare"),
    ("canaries", [], "prepare"),
    ("canaries", ["--set", "data.canaries.per_repeat=2"], "prepare"),
    ("evaluate", [], "prepare"),
]


def test_the_table_covers_every_stage_with_an_upstream():
    assert {stage for stage, _, _ in CASES} == {s.name for s in STAGES if s.upstream}


@pytest.mark.parametrize("stage, extra, upstream", CASES, ids=[f"{c[0]}{'-' + c[1][1] if c[1] else ''}" for c in CASES])
def test_a_stage_before_its_upstream_says_what_to_run_first(stage, extra, upstream, tmp_path, repo_root):
    from medgen.flows.cli import app

    run = tmp_path / "run"
    out = CliRunner().invoke(app, [stage, "--set", f"run_dir={run}", *extra])
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1, out.output
    assert lines[0].startswith(f"error: {run / upstream / 'manifest.json'} is missing: "), lines[0]
    assert f"{upstream} has not run in this run_dir; run `medgen {upstream}` first" in lines[0], lines[0]
    # Nothing written but the run_dir's lock, released (empty).
    written = sorted(str(p.relative_to(run)) for p in run.rglob("*")) if run.exists() else []
    assert written in ([], [LOCK_FILE]), written


def test_zero_steps_is_a_config_error_not_an_epoch():
    from medgen.flows.cli import app

    out = CliRunner().invoke(app, ["train", "--set", "train.max_steps=0"])
    assert out.exit_code == 2
    assert out.output.strip() == ("error: --set train.max_steps: expected a number of optimizer steps >= 1, or -1 "
                                  "to train for train.epochs, got 0")
