"""Typed stage results: what each stage's manifest holds, written and read back in one place.

Stages return these; tasks, flows and the CLI read their fields, never string keys of a dict. A failed
stage leaves a `StageFailure` record instead, so the kind of failure (OOM, timeout, data, …) crosses a
process or Slurm-job boundary as data.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from medgen.config import Rung
from medgen.constants import FAILURE_FILE, MANIFEST_FILE, RESOLVED_CONFIG_FILE
from medgen.errors import FailureKind, TrainOOM, failure_kind
from medgen.io import atomic_write_text, ensure_dir, write_json
from medgen.provenance import environment


class StageResult(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    stage: str
    out_dir: Path
    wall_s: float
    fingerprint: str = Field("", description="Hash of everything the outputs depend on (see provenance.py).")
    inputs: dict = Field(default_factory=dict, description="What the fingerprint was computed from.")
    environment: dict = Field(default_factory=environment, description="medgen, git SHA, library versions.")

    def to_manifest(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    def write(self, config_yaml: str, out_dir: Path | None = None) -> Path:
        """Leave the resolved config and the manifest beside the outputs; the manifest goes last."""
        where = out_dir or self.out_dir
        atomic_write_text(where / RESOLVED_CONFIG_FILE, config_yaml)
        return write_json(where / MANIFEST_FILE, self.to_manifest())

    @classmethod
    def from_manifest(cls, stage_dir: Path):
        path = stage_dir / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no manifest; run the stage that writes {stage_dir.name}/ first")
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


class PrepareResult(StageResult):
    stage: Literal["prepare"] = "prepare"
    source: str
    path: Optional[str] = None
    seed: int
    profile: Optional[str] = None
    phi_markup: str = "none"
    counts: dict[str, int]
    duplicates_removed: dict[str, int]
    sex_service_counts: dict[str, int]
    phi_category_counts: dict[str, int]
    token_stats: dict[str, dict]
    import_report: Optional[dict] = Field(None, alias="import")
    files: dict[str, str]
    warnings: list[str] = Field(default_factory=list)


class TrainResult(StageResult):
    stage: Literal["train"] = "train"
    base: str
    resolved_base: str
    device: str
    quantization: str
    bf16: bool
    optimizer: str
    rung: Rung
    steps: int
    epochs: float
    train_examples: int
    final_train_loss: Optional[float]
    mean_train_loss: Optional[float]
    final_val_loss: Optional[float]
    train_losses: list[float]
    val_losses: list[float]
    tokens_seen: int
    tokens_per_s: Optional[float]
    peak_memory_mb: float
    peak_memory_kind: str
    adapter_dir: Path
    loss_plot: Path
    checkpoints_dir: Path


class MergeResult(StageResult):
    stage: Literal["merge"] = "merge"
    base: str
    adapter: Path
    dtype: str
    parameters: int
    merged_vs_adapter: dict
    merged_dir: Path


class ExportResult(StageResult):
    stage: Literal["export"] = "export"
    merged_dir: Path
    gguf: Path
    outtype: str
    bytes: int
    conversion: dict = Field(default_factory=dict, description="The converter's summary (tensors, tokenizer).")
    parity: Optional[dict] = None
    convert_s: float


class ServeResult(StageResult):
    stage: Literal["serve"] = "serve"
    backend: str
    url: str
    model: str
    pid: Optional[int]
    kept_running: bool
    gguf: Path
    modelfile: Path
    chat_format: str
    notes: list[str]
    smoke: dict
    smoke_scores: list[dict]
    smoke_file: Path
    _server: Any = PrivateAttr(default=None)

    @property
    def server(self):
        """The running server when the stage was asked to keep it (not part of the manifest)."""
        return self._server

    def raise_for_smoke(self) -> None:
        from medgen.errors import SmokeTestFailed

        if not self.smoke["passed"]:
            failed = [f"{r['sex']}/{r['service']}: {', '.join(r['reasons'])}" for r in self.smoke_scores
                      if not r["passed"]]
            raise SmokeTestFailed(f"smoke test: {self.smoke['n_passed']}/{self.smoke['n']} records passed; "
                                  + "; ".join(failed), self.smoke_scores)


class StageFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    kind: FailureKind
    error: str  # the exception's type name: never its message, which may quote record text
    rung: Optional[Rung] = None

    @classmethod
    def from_exception(cls, stage: str, exc: BaseException) -> StageFailure:
        return cls(stage=stage, kind=failure_kind(exc), error=type(exc).__name__,
                   rung=exc.rung if isinstance(exc, TrainOOM) else None)


def read_failure(stage_dir: Path) -> StageFailure | None:
    path = stage_dir / FAILURE_FILE
    return StageFailure.model_validate_json(path.read_text()) if path.is_file() else None


@contextlib.contextmanager
def failure_recorded(stage_dir: Path, stage: str) -> Iterator[None]:
    """Record the kind of any failure inside as `failure.json` in the stage folder; clear an old one first."""
    (stage_dir / FAILURE_FILE).unlink(missing_ok=True)
    try:
        yield
    except BaseException as e:
        ensure_dir(stage_dir)
        write_json(stage_dir / FAILURE_FILE, StageFailure.from_exception(stage, e).model_dump(mode="json"))
        raise


class EvaluateResult(StageResult):
    """Figures of the generated corpus, each beside the control's (held-out test records measured against the
    same training split), and the release gate's verdict. Counts, fractions and lengths only: no record text."""

    stage: Literal["evaluate"] = "evaluate"
    sizes: dict[str, int] = Field(description="Records in the generated corpus and the train and test splits.")
    validity: dict = Field(description="Valid fraction, rejections, Sex/Service adherence, markup, consistency.")
    fidelity: dict = Field(description="Length distribution (KS), section coverage, PHI per record per category.")
    diversity: dict = Field(description="distinct-n, compression ratio, near-duplicates within the corpus.")
    privacy: dict = Field(description="PHI reuse, verbatim overlap and near-duplicates of training records.")
    utility: Optional[dict] = Field(description="De-identification tagger F1, synthetic- vs train-trained; None "
                                    "when the generated records carry no PHI labels.")
    canaries: Optional[dict] = Field(None, description="Canary extraction; None until canaries are planted.")
    gate: dict = Field(description="{'passed': bool, 'reasons': [...]}: every threshold missed, with its figures.")
    timings_s: dict[str, float] = Field(description="Seconds spent on each part (index, validity, ... utility).")
    files: dict[str, str]

    def raise_for_gate(self) -> None:
        from medgen.errors import GateFailed

        if not self.gate["passed"]:
            raise GateFailed(self.gate["reasons"])
