"""Data-parallel training: the launch command, the split of a step over ranks, and two CPU ranks (gloo) in a job on
the local Slurm cluster whose loss curve is a single process's with the same global batch, stopped by SIGUSR1 and
resumed."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgen.cluster import slurm
from medgen.core.config import load_config
from medgen.core.constants import CHECKPOINT_COMPLETE_FILE, EXIT_REQUEUE
from medgen.core.errors import RemoteStageFailed
from medgen.data import prepare
from medgen.train import distributed
from medgen.train.packing import Layout, split_across

from conftest import TINY, cluster_up, tiny_config


@pytest.mark.parametrize("rows, accum, world, per_rank", [
    (1, 4, 2, (1, 2)),  # CPU: one row per micro-batch, accumulated
    (4, 3, 2, (3, 2)),
    (4, 3, 3, (4, 1)),
    (2, 1, 2, (1, 1)),
    (4, 2, 1, (4, 2)),
])
def test_a_step_is_split_over_ranks_and_stays_global(rows, accum, world, per_rank):
    lay = Layout(512, 10, 0, rows=rows, grad_accum=accum, gradient_checkpointing=False, estimated_peak_gb=1.0,
                 budget_gb=2.0)
    split = split_across(lay, world)
    assert (split.rows, split.grad_accum) == per_rank
    assert split.rows * split.grad_accum * world == rows * accum and split.rows <= rows


def test_a_step_that_does_not_split_evenly_is_rounded_up_and_said(caplog):
    lay = Layout(512, 10, 0, rows=4, grad_accum=3, gradient_checkpointing=False, estimated_peak_gb=1.0, budget_gb=2.0)
    split = split_across(lay, 5)
    assert split.rows * split.grad_accum * 5 == 15 and "do not split evenly over 5 ranks" in caplog.text


def _cfg(*extra):
    return load_config("configs/default.yaml", ["train.launcher=torchrun", *extra])


def test_outside_slurm_torchrun_runs_the_ranks_of_one_node(tmp_path):
    cmd = distributed.launch_command(_cfg("train.nproc_per_node=2"), tmp_path / "c.yaml", {})
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node=2" in cmd and "--standalone" in cmd
    assert "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1" in cmd
    assert cmd[-3:] == ["-m", "medgen.train.distributed", str(tmp_path / "c.yaml")]
    with pytest.raises(RemoteStageFailed, match="train.nnodes=2: expected a Slurm job spanning the nodes"):
        distributed.launch_command(_cfg("train.nnodes=2"), tmp_path / "c.yaml", {})


def test_in_a_slurm_job_srun_starts_one_torchrun_per_node_with_a_rendezvous_on_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "slurm_first_node", lambda env: "gpu-node-3")
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu-node-[3-4]", "SLURM_CPUS_PER_TASK": "16",
           "SLURM_JOB_GPUS": "0,1,2,3"}
    cmd = distributed.launch_command(_cfg("train.nproc_per_node=4", "train.nnodes=2"), tmp_path / "c.yaml", env)
    assert cmd[:6] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gres=gpu:4",
                       "--cpus-per-task=16"]
    assert {"--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu-node-3:29642",
            "--rdzv_id=medgen-4242"} <= set(cmd)
    assert "--standalone" not in cmd


def test_the_retrain_flow_asks_slurm_for_every_node_and_gpu():
    from medgen.flows.retrain import job_variables

    cfg = _cfg("train.nproc_per_node=4", "train.nnodes=2")
    assert job_variables(cfg, "train") == {"nodes": 2, "ntasks_per_node": 1, "gres": "gpu:4"}
    assert job_variables(cfg, "generate") == {} and job_variables(load_config("configs/default.yaml"), "train") == {}
    spec = slurm.JobSpec(command="true", nodes=2, ntasks_per_node=1, gres="gpu:4")
    assert {"#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gres=gpu:4"} <= set(spec.sbatch_lines())
    with pytest.raises(slurm.JobSpecError, match="nodes \\(#SBATCH --nodes\\): '0'; expected a whole number >= 1"):
        slurm.JobSpec(command="true", nodes=0)


# Six steps of two rows each (one per rank, or two accumulated in one process), a checkpoint every two steps,
# dropout off, all within the first epoch (about 18 training rows): the ranks see exactly the rows of the single
# process, step by step. (An epoch's last, partial step differs: DDP fills it with rows from the epoch's start.)
DDP = [*[t for t in TINY if not t.startswith(("train.max_steps", "train.save_steps", "train.eval_steps",
                                              "train.batch_size", "data.n_records"))],
       "data.n_records=24", "train.max_steps=6", "train.save_steps=2", "train.eval_steps=100",
       "train.logging_steps=1", "train.batch_size=1", "train.grad_accum=2", "train.lora.dropout=0.0",
       "train.packing=true"]
# Measured 2026-12-06 on 2 CPU cores: equal to the last printed digit at every step. The tolerance leaves room
# for the order of the gradient all-reduce on other machines.
LOSS_TOLERANCE = 1e-3


def _job(run_dir: Path, log: Path) -> str:
    medgen = Path(sys.executable).parent / "medgen"
    sets = " ".join(f"--set {o}" for o in [f"run_dir={run_dir}", *DDP, "train.launcher=torchrun",
                                           "train.nproc_per_node=2"])
    return slurm.submit(slurm.JobSpec(
        command=f"{medgen} train {sets}", name="ddp-test", partition="cpu", time_limit="00:20:00", mem="6G",
        cpus_per_task=2, output=str(log.parent / "%j.out"), working_dir=str(Path.cwd()),
        env={"PYTHONUNBUFFERED": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}))


def _ended(job: str, timeout_s: float = 900) -> slurm.JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = slurm.job_state(job)
        if state.state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "UNKNOWN", ""):
            return state
        time.sleep(1)
    raise AssertionError(f"job {job} still running after {timeout_s} s")


@pytest.mark.slow
@pytest.mark.skipif(not cluster_up(), reason="no Slurm cluster answers here; .ci/run starts one with "
                    "deployments/slurm/local-cluster.sh start")
def test_two_gloo_ranks_under_slurm_match_one_process_and_resume_after_sigusr1(repo_root, tmp_path):
    from medgen.train import stage as train

    single, ddp = tmp_path / "single", tmp_path / "ddp"
    prepare.run(tiny_config(single, *DDP))
    shutil.copytree(single / "prepare", ddp / "prepare")
    one = train.run(tiny_config(single, *DDP))
    assert one.world_size == 1 and (one.micro_batch_rows, one.grad_accum) == (1, 2)

    # Two ranks in a Slurm job; SIGUSR1 to the batch shell (as --signal=B:USR1@<grace> sends) once the first
    # checkpoint is complete: every rank stops at the same step, rank 0 saves, the job exits "requeue me".
    job = _job(ddp, tmp_path / "x.out")
    deadline = time.monotonic() + 900
    while not list((ddp / "train" / "checkpoints").glob(f"*/checkpoint-2/{CHECKPOINT_COMPLETE_FILE}")):
        assert slurm.job_state(job).state in ("PENDING", "RUNNING", "CONFIGURING"), \
            (tmp_path / f"{job}.out").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    state = _ended(job)
    log = (tmp_path / f"{job}.out").read_text()
    assert state.exit_code == f"{EXIT_REQUEUE}:0", log[-3000:]
    assert "train: 2 rank(s) on 1 node(s): srun --nodes=1 --ntasks-per-node=1" in log, log[-3000:]
    stopped_at = int(log.split("stopped by SIGUSR1 at step ")[1].split()[0])
    assert 2 <= stopped_at < 6, log[-3000:]
    complete = list((ddp / "train" / "checkpoints").glob(f"*/checkpoint-{stopped_at}/{CHECKPOINT_COMPLETE_FILE}"))
    assert complete and {p.name for p in complete[0].parent.glob("rng_state_*.pth")} == {"rng_state_0.pth",
                                                                                          "rng_state_1.pth"}

    # The requeued job resumes there and finishes.
    job = _job(ddp, tmp_path / "x.out")
    state = _ended(job)
    log = (tmp_path / f"{job}.out").read_text()
    assert state.exit_code == "0:0", log[-3000:]
    two = json.loads((ddp / "train" / "manifest.json").read_text())
    assert two["world_size"] == 2 and (two["micro_batch_rows"], two["grad_accum"]) == (1, 1)
    assert two["resumed_from_step"] == stopped_at and two["steps"] == 6
    assert len(two["train_losses"]) == len(one.train_losses) == 6
    gaps = [abs(a - b) / b for a, b in zip(two["train_losses"], one.train_losses)]
    print(f"DDP (2 gloo ranks) vs one process, train loss per step: {two['train_losses']} vs "
          f"{one.train_losses}; largest relative gap {max(gaps):.2e}")
    assert max(gaps) < LOSS_TOLERANCE, gaps
