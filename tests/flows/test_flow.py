"""The retrain flow under a real (temporary) Prefect server."""

import asyncio

import pytest


def _task_runs(flow_run_id, expect: tuple[str, ...] = (), timeout_s: float = 60) -> dict:
    """The flow run's task runs by name. Task runs reach the server as events, recorded a moment later: wait until
    those in `expect` are there in a final state."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    deadline = time.monotonic() + timeout_s
    while True:
        runs = {tr.name: tr for tr in asyncio.run(read())}
        if all(n in runs and runs[n].state.is_final() for n in expect) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@pytest.mark.slow
def test_retrain_walks_the_oom_ladder(prefect_harness, repo_root, tmp_path, monkeypatch):
    import torch
    import trl

    from medgen.flows.retrain import retrain

    from conftest import TINY

    original = trl.SFTTrainer.train

    def oom_on_rank_8(self, *args, **kwargs):
        if self.model.peft_config["default"].r == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(trl.SFTTrainer, "train", oom_on_rank_8)
    overrides = [f"run_dir={tmp_path}", *TINY, "orchestration.stop_after=merge",
                 "train.fallback=[{r: 8, max_seq_length: 128}, {r: 4, max_seq_length: 96}]"]
    state = retrain(config_path="configs/default.yaml", overrides=overrides, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["train"]["rung"] == {"r": 4, "max_seq_length": 96}

    import json

    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert manifest["rung"] == {"r": 4, "max_seq_length": 96} and manifest["steps"] == 2
    merge_manifest = json.loads((tmp_path / "merge" / "manifest.json").read_text())
    assert merge_manifest["merged_vs_adapter"]["top1_agreement"] >= 0.95

    runs = _task_runs(state.state_details.flow_run_id, ("train-r8-seq128", "train-r4-seq96"))
    assert runs["train-r8-seq128"].state.is_failed()
    assert runs["train-r4-seq96"].state.is_completed()
    assert runs["train-r8-seq128"].run_count == 1, "OOM must not be retried as is"


def test_retrain_fails_on_non_oom_errors_without_walking(prefect_harness, repo_root, tmp_path, monkeypatch):
    import trl

    from medgen.flows.retrain import retrain

    from conftest import TINY

    calls = []

    def broken(self, *args, **kwargs):
        calls.append(self.model.peft_config["default"].r)
        raise ValueError("labels are all masked")

    monkeypatch.setattr(trl.SFTTrainer, "train", broken)
    overrides = [f"run_dir={tmp_path}", *TINY, "orchestration.stop_after=merge",
                 "train.fallback=[{r: 8, max_seq_length: 128}, {r: 4, max_seq_length: 96}]"]
    state = retrain(config_path="configs/default.yaml", overrides=overrides, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="labels are all masked"):
        state.result()
    assert calls == [8]


def test_transient_errors_only_are_retried():
    from prefect.states import Failed

    from medgen.core.errors import TransientError
    from medgen.tasks.stages import transient_only

    assert transient_only(None, None, Failed(data=TransientError("nfs hiccup")))
    assert transient_only(None, None, Failed(data=ConnectionResetError()))
    assert not transient_only(None, None, Failed(data=ValueError("bad data")))
    from medgen.core.config import Rung
    from medgen.core.errors import TrainOOM

    assert not transient_only(None, None, Failed(data=TrainOOM(Rung(r=8, max_seq_length=64), "oom")))
