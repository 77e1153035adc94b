"""A Prefect worker of type `slurm`: each flow run becomes one sbatch job.

    prefect work-pool create slurm-gpu --type slurm
    prefect worker start --pool slurm-gpu

The job variables below are the work-pool form in the UI; each has a default and a description.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Optional

import anyio
from pydantic import Field
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import InfrastructureNotFound
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from medgen import slurm
from medgen.constants import FAILURE_KIND_LABEL
from medgen.io import log_tail


class SlurmJobConfiguration(BaseJobConfiguration):
    partition: Optional[str] = Field(default=None)
    gres: Optional[str] = Field(default=None)
    constraint: Optional[str] = Field(default=None)
    time_limit: Optional[str] = Field(default=None)
    mem: Optional[str] = Field(default=None)
    cpus_per_task: Optional[int] = Field(default=None)
    account: Optional[str] = Field(default=None)
    qos: Optional[str] = Field(default=None)
    output: str = Field(default="slurm-%j.out")
    working_dir: Optional[str] = Field(default=None)
    setup_commands: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(default=5.0)

    @staticmethod
    def _base_flow_run_command() -> str:
        # The worker's own interpreter: on a shared file system the job sees the same environment.
        return f"{shlex.quote(sys.executable)} -m prefect flow-run execute"

    def job_spec(self, flow_run: FlowRun) -> slurm.JobSpec:
        return slurm.JobSpec(
            command=self.command or self._base_flow_run_command(),
            job_name=self.name or f"prefect-{flow_run.name}",
            partition=self.partition, gres=self.gres, constraint=self.constraint, time=self.time_limit,
            mem=self.mem, cpus_per_task=self.cpus_per_task, account=self.account, qos=self.qos,
            output=self.output, workdir=self.working_dir, setup=list(self.setup_commands),
            env={k: v for k, v in self.env.items() if v is not None},
        )


class SlurmVariables(BaseVariables):
    partition: Optional[str] = Field(default=None, title="Partition",
                                     description="#SBATCH --partition, e.g. gpu. Empty: the cluster default.")
    gres: Optional[str] = Field(default=None, title="GRES", description="#SBATCH --gres, e.g. gpu:1.")
    constraint: Optional[str] = Field(default=None, title="Constraint",
                                      description="#SBATCH --constraint, e.g. geforce3090|a5000.")
    time_limit: Optional[str] = Field(default="04:00:00", title="Time limit",
                                      description="#SBATCH --time, e.g. 04:00:00 or 1-00:00:00.")
    mem: Optional[str] = Field(default="32G", title="Memory", description="#SBATCH --mem, e.g. 32G.")
    cpus_per_task: Optional[int] = Field(default=4, title="CPUs per task", description="#SBATCH --cpus-per-task.")
    account: Optional[str] = Field(default=None, title="Account", description="#SBATCH --account to charge.")
    qos: Optional[str] = Field(default=None, title="QOS", description="#SBATCH --qos.")
    output: str = Field(default="slurm-%j.out", title="Log path",
                        description="#SBATCH --output; %j is the job id. Relative paths are under the working dir.")
    working_dir: Optional[str] = Field(default=None, title="Working directory",
                                       description="#SBATCH --chdir: where the job starts (a shared file system).")
    setup_commands: list[str] = Field(
        default_factory=list, title="Setup lines",
        description="Shell lines run before the flow: module loads, environment fixes "
        "(e.g. export CUDA_HOME=$CONDA_PREFIX; export LD_LIBRARY_PATH=$CUDA_HOME/lib:$LD_LIBRARY_PATH), "
        "venv activation (source /path/.venv/bin/activate).")
    poll_interval_s: float = Field(default=5.0, title="Poll interval (s)",
                                   description="How often the worker asks Slurm for the job state.")


class SlurmWorkerResult(BaseWorkerResult):
    """identifier: the Slurm job id; status_code: 0 for COMPLETED, a distinct code per failure state."""


class SlurmWorker(BaseWorker[SlurmJobConfiguration, SlurmVariables, SlurmWorkerResult]):
    type = "slurm"
    job_configuration = SlurmJobConfiguration
    job_configuration_variables = SlurmVariables
    _description = "Run each flow run as a Slurm batch job (sbatch), polled with sacct or squeue/scontrol."
    _display_name = "Slurm"
    _documentation_url = "https://slurm.schedmd.com/sbatch.html"

    async def run(self, flow_run: FlowRun, configuration: SlurmJobConfiguration,
                  task_status: Optional[anyio.abc.TaskStatus] = None) -> SlurmWorkerResult:
        logger = self.get_flow_run_logger(flow_run)
        spec = configuration.job_spec(flow_run)
        with tempfile.NamedTemporaryFile("w", prefix="medgen-sbatch-", suffix=".sh", delete=False) as f:
            f.write(spec.script())
            script = Path(f.name)
        try:
            job_id = await anyio.to_thread.run_sync(slurm.submit, script)
        finally:
            script.unlink(missing_ok=True)
        log = slurm.log_path(spec.output, job_id, spec.workdir)
        logger.info("Submitted Slurm job %s (log: %s)", job_id, log)
        if task_status is not None:
            task_status.started(job_id)  # becomes the flow run's infrastructure_pid, for cancellation

        use_sacct = await anyio.to_thread.run_sync(slurm.accounting_available)
        last = None
        while True:
            state = await anyio.to_thread.run_sync(slurm.job_state, job_id, use_sacct)
            if state.state != last:
                logger.info("Slurm job %s: %s (via %s)", job_id, state.state, state.source)
                last = state.state
            if state.terminal:
                break
            if await self._cancel_requested(flow_run):
                logger.info("Flow run cancelled: scancel %s", job_id)
                await anyio.to_thread.run_sync(slurm.cancel, job_id)
            await anyio.sleep(configuration.poll_interval_s)

        tail = log_tail(log) if state.state != "COMPLETED" else ""
        final = slurm.effective_state(state, tail)
        code = slurm.STATE_EXIT_CODES.get(final, 1)
        if final in slurm.STATE_KINDS:
            # Slurm ended the job, so its flow could not record why: say it as data on the run.
            await self.client.update_flow_run_labels(
                flow_run.id, {FAILURE_KIND_LABEL: slurm.STATE_KINDS[final].value, "slurm.state": final})
        if code != 0:
            message = (f"Slurm job {job_id} ended {final} ({slurm.TERMINAL_STATES.get(final, '')}"
                       f"{', exit code ' + state.exit_code if state.exit_code else ''}); log tail:\n{tail}")
            logger.error(message)
            # A job killed from outside (time limit, memory, node) leaves the run Running: say why it crashed.
            await self._propose_crashed_state(flow_run, message[:2000])
        return SlurmWorkerResult(identifier=job_id, status_code=code)

    async def _cancel_requested(self, flow_run: FlowRun) -> bool:
        current = await self.client.read_flow_run(flow_run.id)
        return current.state is not None and current.state.type.value in ("CANCELLING", "CANCELLED")

    async def kill_infrastructure(self, infrastructure_pid: str, configuration: SlurmJobConfiguration,
                                  grace_seconds: int = 30) -> None:
        state = await anyio.to_thread.run_sync(slurm.job_state, infrastructure_pid)
        if state.state == "UNKNOWN":
            raise InfrastructureNotFound(f"Slurm job {infrastructure_pid} not found")
        if not state.terminal:
            await anyio.to_thread.run_sync(slurm.cancel, infrastructure_pid)
