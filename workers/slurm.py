"""A Prefect worker of type `slurm`: each flow run becomes one sbatch job.

    prefect work-pool create slurm-gpu --type slurm
    prefect worker start --pool slurm-gpu

The job variables below are the work-pool form in the UI; each has a default and a description.

Who may set what: every job variable becomes one #SBATCH line, checked against what sbatch accepts
(`medgen.cluster.slurm.JobSpec`), except those in PRIVILEGED, which decide what code runs as the worker's user.
A pool admin sets those in the pool's base job template, and a deployment's author (who already chooses
the code its jobs run) in the deployment's job_variables; a flow run that overrides one is refused before
anything reaches Slurm. To give every job of a pool its setup lines, as a pool admin:

    prefect work-pool get-default-base-job-template --type slurm > slurm-template.json
    # set variables.properties.setup_commands.default, then
    prefect work-pool update slurm-gpu --base-job-template slurm-template.json
"""

from __future__ import annotations

import shlex
import sys
from typing import Any, Optional

import anyio
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import InfrastructureNotFound
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from pydantic import Field

from medgen.cluster import slurm
from medgen.core.constants import FAILURE_KIND_LABEL, SLURM_STATE_LABEL
from medgen.core.io import read_tail

# Shell lines, the command, the environment (PYTHONPATH, LD_PRELOAD) and the directory the interpreter
# starts in (`python -m` imports from it) each let their author run code as the worker's user.
PRIVILEGED = ("command", "setup_commands", "env", "working_dir")
_PRIVILEGED_NOTE = ("Privileged (pool admins): set it in the work pool's base job template or a deployment's "
                    "job_variables; a flow run may not override it.")


def refused_overrides(flow_run_job_variables: dict[str, Any]) -> list[str]:
    """Why a flow run's own job_variables may not be used, one line per privileged key it sets."""
    keys = sorted({key.split(".")[0] for key in flow_run_job_variables} & set(PRIVILEGED))
    return [f"{key}: a flow run's job_variables may not set it, since it runs code as the worker's user; "
            "set it in the work pool's base job template or the deployment's job_variables (pool admins)"
            for key in keys]


class SlurmJobConfiguration(BaseJobConfiguration):
    partition: Optional[str] = Field(default=None)
    gres: Optional[str] = Field(default=None)
    constraint: Optional[str] = Field(default=None)
    time_limit: Optional[str] = Field(default=None)
    mem: Optional[str] = Field(default=None)
    cpus_per_task: Optional[int] = Field(default=None)
    nodes: Optional[int] = Field(default=None)
    ntasks_per_node: Optional[int] = Field(default=None)
    account: Optional[str] = Field(default=None)
    qos: Optional[str] = Field(default=None)
    output: str = Field(default="slurm-%j.out")
    working_dir: Optional[str] = Field(default=None)
    signal: Optional[str] = Field(default=None)
    requeue: bool = Field(default=False)
    setup_commands: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(default=5.0)
    unknown_timeout_s: float = Field(default=600.0)

    @classmethod
    async def resolve_for_flow_run(cls, flow_run: FlowRun, **kwargs: Any) -> SlurmJobConfiguration:
        # Prefect lays the flow run's job_variables over the deployment's and the pool's: refuse the
        # privileged ones there, before they are merged and their origin is lost.
        refused = refused_overrides(flow_run.job_variables or {})
        if refused:
            raise slurm.JobSpecError(refused)
        return await super().resolve_for_flow_run(flow_run, **kwargs)

    @staticmethod
    def _base_flow_run_command() -> str:
        # The worker's own interpreter: on a shared file system the job sees the same environment. The engine
        # itself (as Prefect's own runner starts it), not `prefect flow-run execute`, which runs it in a child
        # process: the job script execs this, so the flow's process *is* the batch shell, and the signal that
        # `--signal=B:USR1@<grace>` sends before the time limit reaches the training loop.
        return f"{shlex.quote(sys.executable)} -m prefect.engine"

    def job_spec(self, flow_run: FlowRun) -> slurm.JobSpec:
        """The sbatch job; JobSpecError names every job variable sbatch would misread."""
        return slurm.JobSpec(
            command=self.command or self._base_flow_run_command(), name=self.name or flow_run.name,
            partition=self.partition, gres=self.gres, constraint=self.constraint, time_limit=self.time_limit,
            mem=self.mem, cpus_per_task=self.cpus_per_task, nodes=self.nodes, ntasks_per_node=self.ntasks_per_node,
            account=self.account, qos=self.qos,
            output=self.output, working_dir=self.working_dir, signal=self.signal, requeue=self.requeue,
            setup_commands=list(self.setup_commands),
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
    nodes: Optional[int] = Field(default=None, title="Nodes", description="#SBATCH --nodes. The retrain flow sets "
                                 "it for data-parallel training (train.nnodes). Empty: one.")
    ntasks_per_node: Optional[int] = Field(default=None, title="Tasks per node",
                                           description="#SBATCH --ntasks-per-node: one torchrun per node when "
                                           "training data-parallel. Empty: Slurm's default.")
    account: Optional[str] = Field(default=None, title="Account", description="#SBATCH --account to charge.")
    qos: Optional[str] = Field(default=None, title="QOS", description="#SBATCH --qos.")
    output: str = Field(default="slurm-%j.out", title="Log path",
                        description="#SBATCH --output; its file name must hold %j (the job id). Relative paths "
                        "are under the working dir. The worker creates its directory owner-only, and the job "
                        "runs with umask 077, so the log (which may hold record text) is owner-only.")
    working_dir: Optional[str] = Field(default=None, title="Working directory",
                                       description="#SBATCH --chdir: where the job starts (a shared file system). "
                                       + _PRIVILEGED_NOTE)
    signal: Optional[str] = Field(
        default=None, title="Warning signal",
        description="#SBATCH --signal, e.g. B:USR1@300: Slurm signals the job (B: the batch shell, which is the "
        "flow's process) that many seconds before its time limit. A training job saves a checkpoint, stops and "
        "is run again from there (train.max_resumes). Other stages would die of it: set it on the train "
        "deployment only.")
    requeue: bool = Field(
        default=False, title="Requeue",
        description="#SBATCH --requeue: a job that is preempted or loses its node is queued again (same job id, "
        "same flow run) instead of ending; a training job stopped by its warning signal asks for the same. "
        "Only for stages that resume (train).")
    setup_commands: list[str] = Field(
        default_factory=list, title="Setup lines",
        description="Shell lines run before the flow: module loads, environment fixes "
        "(e.g. export CUDA_HOME=$CONDA_PREFIX; export LD_LIBRARY_PATH=$CUDA_HOME/lib:$LD_LIBRARY_PATH), "
        "venv activation (source /path/.venv/bin/activate). They run as the worker's user. " + _PRIVILEGED_NOTE)
    env: dict[str, Optional[str]] = Field(
        default_factory=dict, title="Environment Variables",
        description="Exported before the setup lines; names are letters, digits and _. " + _PRIVILEGED_NOTE)
    command: Optional[str] = Field(
        default=None, description="The command the job execs; leave blank for the worker's own "
        "`python -m prefect.engine`. " + _PRIVILEGED_NOTE)
    unknown_timeout_s: float = Field(default=600.0, title="Unknown-state limit (s)",
                                     description="How long a job no Slurm tool knows (sacct, squeue, scontrol) is "
                                     "polled before the run is reported crashed.")
    poll_interval_s: float = Field(default=5.0, title="Poll interval (s)",
                                   description="How often the worker asks Slurm for the job state.")


MAX_BACKOFF_S = 60.0


async def wait_for_job(job_id: str, poll, cancel_requested, cancel, logger, interval_s: float,
                       unknown_timeout_s: float) -> slurm.JobState:
    """Poll until the job ends; return its last state (UNKNOWN when no tool has known it for too long).

    A Slurm call that fails or times out (a busy controller) is retried with backoff and said once: the
    job runs on, so the worker must not give up on it. scancel is sent once, when the run is cancelled.
    """
    last, failures, unknown_since, cancelled = None, 0, None, False
    while True:
        try:
            state = await poll()
        except (slurm.SlurmError, OSError) as e:  # slurm._run reports a timed-out call as SlurmError
            failures += 1
            if failures == 1:
                logger.warning("Slurm job %s: asking Slurm for its state failed (%s); retrying, the job runs on",
                               job_id, e)
            await anyio.sleep(min(MAX_BACKOFF_S, interval_s * 2 ** min(failures, 6)))
            continue
        if failures:
            logger.info("Slurm job %s: Slurm answers again after %d failed poll(s)", job_id, failures)
            failures = 0
        if state.state != last:
            logger.info("Slurm job %s: %s (via %s)", job_id, state.state, state.source)
            last = state.state
        if state.terminal:
            return state
        if state.state == "UNKNOWN":
            unknown_since = unknown_since if unknown_since is not None else anyio.current_time()
            if anyio.current_time() - unknown_since > unknown_timeout_s:
                return state
        else:
            unknown_since = None
        if not cancelled and await cancel_requested():
            logger.info("Flow run cancelled: scancel %s", job_id)
            cancelled = True
            try:
                await cancel()
            except slurm.SlurmError as e:
                logger.warning("Slurm job %s: scancel failed (%s); polling on", job_id, e)
        await anyio.sleep(interval_s)


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
        job_id = await anyio.to_thread.run_sync(slurm.submit, spec)
        log = slurm.log_path(spec.output, job_id, spec.working_dir)
        logger.info("Submitted Slurm job %s (log: %s)", job_id, log)
        if task_status is not None:
            task_status.started(job_id)  # becomes the flow run's infrastructure_pid, for cancellation

        use_sacct = await anyio.to_thread.run_sync(slurm.accounting_available)
        state = await wait_for_job(
            job_id, lambda: anyio.to_thread.run_sync(slurm.job_state, job_id, use_sacct),
            lambda: self._cancel_requested(flow_run), lambda: anyio.to_thread.run_sync(slurm.cancel, job_id),
            logger, configuration.poll_interval_s, configuration.unknown_timeout_s)
        if not state.terminal:
            message = (f"Slurm job {job_id}: no Slurm tool (sacct, squeue, scontrol) has known it for "
                       f"{configuration.unknown_timeout_s:.0f} s (unknown_timeout_s); stopped polling it")
            logger.error(message)
            await self._propose_crashed_state(flow_run, message)
            return SlurmWorkerResult(identifier=job_id, status_code=1)

        # The whole end of the log decides the state; only its quotable lines reach the run's log and state.
        final = slurm.effective_state(state, (read_tail(log) or "") if state.state != "COMPLETED" else "")
        code = slurm.STATE_EXIT_CODES.get(final, 1)
        if code != 0:
            message = (f"Slurm job {job_id} ended {final} ({slurm.TERMINAL_STATES.get(final, '')}"
                       f"{', exit code ' + state.exit_code if state.exit_code else ''}); log tail "
                       f"(lines that may hold record text are left in {log}):\n{slurm.job_log_tail(log)}")
            logger.error(message)
            # A job killed from outside (time limit, memory, node) leaves the run Running, or Crashed by the
            # engine's own SIGTERM handler with no reason: say why it crashed.
            await self._mark_crashed(flow_run, message[:2000])
            # Its flow could not record why either: say it as data on the run. Last, since the orchestrator
            # waits for this label on a crashed run (flows/retrain.py), and the state is set by then.
            kind = {FAILURE_KIND_LABEL: slurm.STATE_KINDS[final].value} if final in slurm.STATE_KINDS else {}
            await self.client.update_flow_run_labels(flow_run.id, {**kind, SLURM_STATE_LABEL: final})
        return SlurmWorkerResult(identifier=job_id, status_code=code)

    async def _mark_crashed(self, flow_run: FlowRun, message: str) -> None:
        from prefect.states import Crashed

        await self._propose_crashed_state(flow_run, message)
        # The engine may have marked it crashed first, on Slurm's SIGTERM, with no reason. (Its report can also
        # land after this one, while Slurm waits KillWait for the job's processes: the labels, set after this,
        # are what the orchestrator reads.)
        current = await self.client.read_flow_run(flow_run.id)
        if current.state is not None and current.state.is_crashed() and current.state.message != message:
            await self.client.set_flow_run_state(flow_run.id, Crashed(message=message), force=True)

    async def _cancel_requested(self, flow_run: FlowRun) -> bool:
        current = await self.client.read_flow_run(flow_run.id)
        return current.state is not None and current.state.type.value in ("CANCELLING", "CANCELLED")

    async def kill_infrastructure(self, infrastructure_pid: str, configuration: SlurmJobConfiguration,
                                  grace_seconds: int = 30) -> None:
        try:
            job_id = slurm.checked_job_id(infrastructure_pid)
        except slurm.SlurmError as e:
            raise InfrastructureNotFound(f"no Slurm job to cancel: {e}") from None
        state = await anyio.to_thread.run_sync(slurm.job_state, job_id)
        if state.state == "UNKNOWN":
            raise InfrastructureNotFound(f"Slurm job {job_id} not found")
        if not state.terminal:
            await anyio.to_thread.run_sync(slurm.cancel, job_id)
