"""Training resume: keyed checkpoints, completeness markers, stop-on-signal, and the resume rule of the ladder.

The process test kills real `medgen train` processes (SIGKILL after the first checkpoint, then SIGUSR1, as
Slurm sends before a time limit) and checks that the runs pieced together train exactly what one
uninterrupted run with the same seed trains.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgen.core.config import Rung
from medgen.core.constants import CHECKPOINT_COMPLETE_FILE, EXIT_REQUEUE
from medgen.core.errors import ConfigError, FailureKind, RemoteStageFailed, TrainInterrupted, TrainOOM
from medgen.data import prepare
from medgen.train import resume
from medgen.train.ladder import walk_ladder

from conftest import TINY, tiny_config

KEY_ARGS = dict(model={"base": "m"}, train={"lora": {"r": 8}, "optimizer": "adamw_torch", "save_steps": 50},
                seed=1, data_fingerprint="d", layout={"rows": 1, "grad_accum": 4, "max_seq_length": 512})


@pytest.mark.parametrize("change, same", [
    (dict(train={"lora": {"r": 16}, "optimizer": "adamw_torch", "save_steps": 50}), False),  # another rung
    (dict(train={"lora": {"r": 8}, "optimizer": "sgd", "save_steps": 50}), False),  # optimiser
    (dict(model={"base": "other"}), False),
    (dict(seed=2), False),
    (dict(data_fingerprint="e"), False),
    (dict(layout={"rows": 2, "grad_accum": 2, "max_seq_length": 512}), False),  # another batch shape
    (dict(train={"lora": {"r": 8}, "optimizer": "adamw_torch", "save_steps": 10}), True),  # when to save only
])
def test_checkpoint_key_changes_with_what_shapes_the_weights_only(change, same):
    assert (resume.checkpoint_key(**{**KEY_ARGS, **change}) == resume.checkpoint_key(**KEY_ARGS)) is same


def test_resume_takes_the_newest_complete_checkpoint_and_removes_cut_ones(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (d / CHECKPOINT_COMPLETE_FILE).write_text("{}")
    (tmp_path / "checkpoint-10").mkdir()  # cut before anything was written
    (tmp_path / "runs").mkdir()  # not a checkpoint: left alone
    assert resume.latest_complete(tmp_path) == tmp_path / "checkpoint-4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4", "runs"]
    assert resume.latest_complete(tmp_path / "missing") is None


def _interrupted(c, kind):
    if kind is None:
        return TrainInterrupted(c.rung(), "SIGUSR1", 4, "ckpt")
    return RemoteStageFailed("job ended", kind)


@pytest.mark.parametrize("failures, max_resumes, expected_attempts, outcome", [
    # A time limit or preemption reruns the same rung (it resumes there), up to max_resumes.
    ([FailureKind.TIMEOUT, FailureKind.PREEMPTED], 3, [(8, 256)] * 3, "ok"),
    ([None, None], 2, [(8, 256)] * 3, "ok"),
    ([FailureKind.TIMEOUT] * 3, 2, [(8, 256)] * 3, RemoteStageFailed),
    # Never down the ladder for a time limit; here (max_resumes 0) a signal just stops.
    ([FailureKind.TIMEOUT], 0, [(8, 256)], RemoteStageFailed),
    ([None], 0, [(8, 256)], TrainInterrupted),
    # Failures that would repeat identically are not rerun.
    ([FailureKind.CONFIG], 3, [(8, 256)], RemoteStageFailed),
    ([FailureKind.DATA], 3, [(8, 256)], RemoteStageFailed),
    # OOM moves down; the next rung gets its own resumes.
    ([FailureKind.OOM, FailureKind.TIMEOUT], 1, [(8, 256), (4, 128), (4, 128)], "ok"),
])
def test_ladder_resumes_the_same_rung_after_a_time_limit_or_preemption(repo_root, tmp_path, failures, max_resumes,
                                                                        expected_attempts, outcome):
    cfg = tiny_config(tmp_path, "train.fallback=[{r: 8, max_seq_length: 256}, {r: 4, max_seq_length: 128}]")
    seen, pending = [], list(failures)

    def attempt(c):
        seen.append((c.train.lora.r, c.train.max_seq_length))
        if pending:
            kind = pending.pop(0)
            raise TrainOOM(c.rung(), "CUDA out of memory") if kind is FailureKind.OOM else _interrupted(c, kind)
        return "ok"

    if outcome == "ok":
        assert walk_ladder(cfg, attempt, max_resumes) == "ok"
    else:
        with pytest.raises(outcome):
            walk_ladder(cfg, attempt, max_resumes)
    assert seen == expected_attempts


def test_max_resumes_is_validated(repo_root, tmp_path):
    with pytest.raises(ConfigError, match="train.max_resumes"):
        tiny_config(tmp_path, "train.max_resumes=-1")


def test_interrupted_training_says_where_it_stopped():
    e = TrainInterrupted(Rung(r=8, max_seq_length=512), "SIGTERM", 40, "/run/train/checkpoints/k/checkpoint-40")
    assert e.kind is FailureKind.PREEMPTED and TrainInterrupted(e.rung, "SIGUSR1", 1, "c").kind is FailureKind.TIMEOUT
    assert "SIGTERM at step 40" in str(e) and "checkpoint-40" in str(e) and "resume" in str(e)
    assert e.details() == {"signal": "SIGTERM", "step": 40, "checkpoint": "/run/train/checkpoints/k/checkpoint-40"}


# Eight steps, a checkpoint every two; dropout on, so resuming must restore the RNG as well as the weights.
PROCESS = [*[t for t in TINY if not t.startswith(("train.max_steps", "train.save_steps", "train.eval_steps"))],
           "train.max_steps=8", "train.save_steps=2", "train.eval_steps=100", "train.lora.dropout=0.1"]


def _medgen_train(run_dir: Path) -> subprocess.Popen:
    args = [str(Path(sys.executable).parent / "medgen"), "train"]
    for o in [f"run_dir={run_dir}", *PROCESS]:
        args += ["--set", o]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        steps = [int(m.parent.name.split("-")[1])
                 for m in (run_dir / "train" / "checkpoints").glob(f"*/checkpoint-*/{CHECKPOINT_COMPLETE_FILE}")]
        if steps and max(steps) >= at_least:
            return max(steps)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"no complete checkpoint at step >= {at_least} in 600 s")


def _resumed_from(output: str) -> int | None:
    """The checkpoint step the process said it resumed from."""
    found = [line.rsplit("checkpoint-", 1)[1].split()[0] for line in output.splitlines()
             if "train: resuming from" in line]
    return int(found[0]) if found else None


@pytest.mark.slow
def test_killed_and_signalled_training_resumes_and_matches_an_uninterrupted_run(repo_root, tmp_path):
    straight, pieced = tmp_path / "straight", tmp_path / "pieced"
    for run_dir in (straight, pieced):
        prepare.run(tiny_config(run_dir, *PROCESS))

    # 1. SIGKILL once the first checkpoint is complete: nothing can be saved, the checkpoint must do.
    first = _medgen_train(pieced)
    killed_at = _wait_for_checkpoint(pieced, first, 2)
    first.kill()
    first.communicate()

    # 2. Resume, then SIGUSR1 (Slurm's time-limit warning): it saves where it is and exits "requeue me".
    second = _medgen_train(pieced)
    _wait_for_checkpoint(pieced, second, killed_at + 2)
    second.send_signal(signal.SIGUSR1)
    output = second.communicate(timeout=600)[0]
    assert second.returncode == EXIT_REQUEUE, output[-3000:]
    assert "stopped by SIGUSR1 at step" in output and "resume" in output
    stopped_at = int(output.split("stopped by SIGUSR1 at step ")[1].split()[0])
    assert stopped_at < 8, "the signal came before the last step"
    assert _resumed_from(output) == killed_at, "it started at the killed run's checkpoint"
    assert any((pieced / "train" / "checkpoints").glob(f"*/checkpoint-{stopped_at}/{CHECKPOINT_COMPLETE_FILE}"))

    # 3. Resume to the end.
    third = _medgen_train(pieced)
    output = third.communicate(timeout=600)[0]
    assert third.returncode == 0, output[-3000:]
    resumed = json.loads((pieced / "train" / "manifest.json").read_text())
    assert resumed["resumed_from_step"] == stopped_at and resumed["steps"] == 8
    assert _resumed_from(output) == stopped_at, "the resumed run trains only the steps still to do"
    assert f"resumed from step {stopped_at}" in output

    baseline = _medgen_train(straight)
    output = baseline.communicate(timeout=600)[0]
    assert baseline.returncode == 0, output[-3000:]
    straight_m = json.loads((straight / "train" / "manifest.json").read_text())
    assert straight_m["resumed_from_step"] is None
    assert len(resumed["train_losses"]) == len(straight_m["train_losses"]) == 8
    assert resumed["train_losses"] == pytest.approx(straight_m["train_losses"], abs=1e-4)

    from safetensors.torch import load_file

    a = load_file(pieced / "train" / "adapter" / "adapter_model.safetensors")
    b = load_file(straight / "train" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-4


@pytest.mark.slow
def test_a_rerun_that_finds_the_final_checkpoint_trains_no_further_step(trained, tmp_path):
    """The adapter lost, the checkpoint of the last step left: the rerun takes that checkpoint's weights as they are
    (the Trainer alone would train one step past the end, and make another model)."""
    import shutil

    from safetensors.torch import load_file

    from medgen.train import stage as train

    cfg, done = trained
    copy = tmp_path / "copy"
    shutil.copytree(cfg.run_path, copy)
    shutil.rmtree(copy / "train" / "adapter")
    (copy / "train" / "manifest.json").unlink()
    again = train.run(tiny_config(copy))
    assert again.resumed_from_step == done.steps == again.steps == 2
    assert sorted(p.name for p in again.checkpoints_dir.iterdir()) == sorted(p.name for p in done.checkpoints_dir.iterdir())
    assert again.tokens_seen == done.tokens_seen and again.train_losses == done.train_losses
    assert again.tokens_per_s is None, "no step was trained, so no speed was measured"
    a, b = (load_file(r.adapter_dir / "adapter_model.safetensors") for r in (again, done))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
