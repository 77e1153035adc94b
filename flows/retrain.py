"""The `retrain` flow: prepare → train (OOM ladder) → merge → export → serve + smoke test.

    medgen run --config configs/default.yaml
    python -m flows.retrain configs/default.yaml
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger

from medgen.config import PipelineConfig, Rung, load_config
from tasks.stages import export_task, merge_task, prepare_task, serve_task, train_task


def _train_attempt(cfg: PipelineConfig) -> dict:
    # Each rung is its own task run, so the UI shows the parameters it really ran with.
    state = train_task(cfg.model_dump(mode="json"), return_state=True)
    return state.result()  # re-raises the task's exception, e.g. TrainOOM


@flow(name="retrain", log_prints=True)
def retrain(config_path: str = "configs/default.yaml", overrides: list[str] | None = None) -> dict:
    """Fine-tune the configured base into a discharge-record generator."""
    from medgen.train import walk_ladder

    logger = get_run_logger()
    cfg = load_config(config_path, overrides or [])
    as_dict = cfg.model_dump(mode="json")
    prepared = prepare_task(as_dict)
    logger.info("prepare: %s", prepared["counts"])
    trained = walk_ladder(cfg, _train_attempt)
    logger.info("train: rung %s, val loss %s", trained["rung"], trained["final_val_loss"])
    final = cfg.with_rung(Rung(**trained["rung"])).model_dump(mode="json")
    merged = merge_task(final)
    exported = export_task(final)
    served = serve_task(final)
    return {
        "run_dir": str(cfg.run_path.resolve()),
        "prepare": {"counts": prepared["counts"], "wall_s": prepared["wall_s"]},
        "train": {k: trained[k] for k in ("rung", "steps", "final_train_loss", "final_val_loss",
                                          "tokens_per_s", "wall_s", "adapter_dir")},
        "merge": {k: merged[k] for k in ("merged_dir", "wall_s")},
        "export": {k: exported[k] for k in ("gguf", "outtype", "parity", "wall_s")},
        "serve": served,
    }


if __name__ == "__main__":
    retrain(config_path=sys.argv[1] if len(sys.argv) > 1 else "configs/default.yaml", overrides=sys.argv[2:])
