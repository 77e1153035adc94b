"""Typed stage results: what each stage's manifest holds, written and read back in one place.

Stages return these; tasks, flows and the CLI read their fields, never string keys of a dict. A failed
stage leaves a `StageFailure` record instead, so the kind of failure (OOM, timeout, data, …) crosses a
process or Slurm-job boundary as data.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from medgen.core.config import Rung
from medgen.core.constants import (
    CORPUS_FILES,
    CORPUS_PHI_FILE,
    FAILURE_FILE,
    MANIFEST_FILE,
    RAW_DIR,
    RECORDS_FILE,
    RESOLVED_CONFIG_FILE,
)
from medgen.core.errors import (
    FailureKind,
    GateFailed,
    MedgenError,
    MissingUpstream,
    ParityError,
    RemoteStageFailed,
    SmokeTestFailed,
    TrainInterrupted,
    TrainOOM,
    failure_kind,
)
from medgen.core.faults import crash_point
from medgen.core.integrity import FileDigest, damage, digest, identity
from medgen.core.io import atomic_write_text, ensure_dir, write_json
from medgen.core.provenance import environment


class StageResult(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    stage: str
    out_dir: Path
    wall_s: float
    fingerprint: str = Field("", description="Hash of everything the outputs depend on (see provenance.py).")
    inputs: dict = Field(default_factory=dict, description="What the fingerprint was computed from.")
    environment: dict = Field(default_factory=environment, description="medgen, git SHA, library versions.")
    outputs: dict[str, FileDigest] = Field(
        default_factory=dict, description="Every file the stage wrote (folders expanded): size, mtime, xxh3-128.")
    _skipped: bool = PrivateAttr(default=False)

    @property
    def skipped(self) -> bool:
        """True when this result was reused instead of run (medgen/core/skip.py); not part of the manifest."""
        return self._skipped

    @skipped.setter
    def skipped(self, value: bool) -> None:
        self._skipped = value

    def complete(self) -> bool:
        """Whether every output the manifest names is still there as written (a reused result must be whole)."""
        return not self.damage()

    def damage(self, deep: bool = False) -> list[str]:
        """Why the outputs are not what the stage wrote (missing, truncated, changed), one reason per file; [] when
        intact. `deep` hashes every file; otherwise only those whose size or mtime moved."""
        missing = [f"{p} is missing" for p in self._outputs() if not Path(p).exists()]
        return missing + [r for r in damage(self.outputs, deep) if r not in missing]

    @property
    def identity(self) -> str:
        """What a downstream stage's fingerprint takes from this one: its inputs and the bytes it wrote."""
        return identity(self.fingerprint, self.outputs)

    def _outputs(self) -> list:
        return []

    def to_manifest(self) -> dict:
        """The manifest's content, its paths inside the run folder written relative to the manifest's own folder, so
        that a run folder can be moved or copied (`from_manifest` anchors them where it finds the manifest)."""
        home = Path(os.path.abspath(self.out_dir))
        run = home.parent

        def relative(path: str) -> str:
            p = Path(os.path.abspath(path))
            return os.path.relpath(p, home) if p == run or run in p.parents else path

        return _map_paths(type(self), self.model_dump(mode="json", by_alias=True), relative)

    def write(self, config_yaml: str, out_dir: Path | None = None) -> Path:
        """Leave the resolved config and the manifest beside the outputs; the manifest goes last."""
        where = out_dir or self.out_dir
        self.outputs = digest(self._outputs())
        atomic_write_text(where / RESOLVED_CONFIG_FILE, config_yaml)
        crash_point(f"{self.stage}:manifest")
        return write_json(where / MANIFEST_FILE, self.to_manifest())

    @classmethod
    def from_manifest(cls, stage_dir: Path):
        path = stage_dir / MANIFEST_FILE
        if not path.is_file():
            raise MissingUpstream(cls.model_fields["stage"].default, str(path))

        def anchored(p: str) -> str:
            return p if os.path.isabs(p) else os.path.normpath(stage_dir / p)

        return cls.model_validate(_map_paths(cls, json.loads(path.read_text(encoding="utf-8")), anchored))


def _map_paths(cls: type[StageResult], data: dict, fn: Callable[[str], str]) -> dict:
    """`data` with `fn` applied to every path a manifest holds: its Path fields, the values of `files` and the keys of
    `outputs`."""
    out = dict(data)
    for name, field in cls.model_fields.items():
        key = field.alias or name
        if out.get(key) is None:
            continue
        if field.annotation in (Path, Optional[Path]):
            out[key] = fn(out[key])
    if isinstance(out.get("files"), dict):
        out["files"] = {k: fn(v) for k, v in out["files"].items()}
    if isinstance(out.get("outputs"), dict):
        out["outputs"] = {fn(k): v for k, v in out["outputs"].items()}
    return out


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
    phi_surface_forms: dict[str, dict] = Field(
        default_factory=dict, description="Per category: spans, how many surface forms, and the commonest ones.")
    token_stats: dict[str, dict]
    import_report: Optional[dict] = Field(None, alias="import")
    files: dict[str, str]
    warnings: list[str] = Field(default_factory=list)
    canaries: Optional[dict] = Field(
        None, description="Canaries planted in the train split (counts only; `counts` and `token_stats` cover the "
        "source's records without them); None when data.canaries is off.")

    def _outputs(self) -> list:
        return [Path(f) for f in self.files.values()]


class TrainResult(StageResult):
    stage: Literal["train"] = "train"
    base: str
    resolved_base: str
    device: str
    quantization: str
    precision: str = Field(description="What training computed in: bf16, fp16 (mixed, loss-scaled) or fp32.")
    precision_reason: str = Field(description="Why: the setting, and what the hardware computes natively.")
    hardware: str = Field(description="The CPU or GPU that trained.")
    hardware_features: str = Field(description="What the native-bf16 verdict rests on (medgen/model/precision.py).")
    native_bf16: bool
    bf16_slowdown: Optional[float] = Field(
        None, description="A probe matmul's bf16/fp32 time, measured where bf16 was asked for without native bf16.")
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
    # How a step was laid out (packing.Layout); None in manifests written before packing.
    max_seq_length: Optional[int] = Field(None, description="Row length: train.max_seq_length resolved ('auto').")
    truncated_examples: Optional[int] = Field(None, description="Training examples longer than a row, cut.")
    packing: Optional[bool] = None
    micro_batch_rows: Optional[int] = Field(None, description="Rows (packed) or examples per micro-batch, per rank.")
    grad_accum: Optional[int] = None
    world_size: int = Field(1, description="Data-parallel ranks (train.launcher=torchrun); a step's rows are "
                            "micro_batch_rows x grad_accum x world_size.")
    gradient_checkpointing: Optional[bool] = None
    attention: Optional[str] = Field(None, description="transformers attn_implementation.")
    kernels: Optional[str] = Field(None, description="'liger' or 'none'.")
    estimated_peak_gb: Optional[float] = Field(None, description="The planner's estimate (packing.memory_model).")
    resumed_from_step: Optional[int] = Field(None, description="The checkpoint step this run resumed from; None "
                                             "when it started at step 0.")

    def _outputs(self) -> list:
        return [self.adapter_dir]


class MergeResult(StageResult):
    stage: Literal["merge"] = "merge"
    base: str
    adapter: Path
    dtype: str = Field(description="The saved checkpoint's dtype (merge.dtype).")
    compute_dtype: str = Field(description="What the merge and its logit check computed in "
                               "(medgen/model/precision.py).")
    compute_reason: str
    parameters: int
    merged_vs_adapter: dict
    merged_dir: Path

    def _outputs(self) -> list:
        return [self.merged_dir]


class ExportResult(StageResult):
    stage: Literal["export"] = "export"
    merged_dir: Path
    gguf: Path
    outtype: str
    bytes: int
    conversion: dict = Field(default_factory=dict, description="The converter's summary (tensors, tokenizer).")
    parity: Optional[dict] = None
    convert_s: float

    def _outputs(self) -> list:
        return [self.gguf]


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
        from medgen.core.errors import SmokeTestFailed

        if not self.smoke["passed"]:
            raise SmokeTestFailed.from_scores(self.smoke_scores)

    def complete(self) -> bool:
        # A kept server is gone once its run ends; only a passed smoke test of a stopped server is reusable.
        return bool(self.smoke.get("passed")) and not self.kept_running and super().complete()

    def _outputs(self) -> list:
        return [self.modelfile, self.gguf]


class GenerateResult(StageResult):
    stage: Literal["generate"] = "generate"
    mix: str
    seed: int
    shard: Optional[int] = Field(description="The shard this run covered; None for shards merged by merge_shards.")
    shards: int
    backend: Optional[str] = Field(None, description="The backend's name; None for merged shards, or when every "
                                   "request was already journaled.")
    counts: dict[str, Union[int, float]] = Field(description="planned, valid, rejected, valid_fraction.")
    sex_service_counts: dict[str, int] = Field(description="Valid records per 'Sex/SERVICE'.")
    rejections_by_reason: dict[str, int] = Field(description="Failed checks of each rejected request's last attempt.")
    failed_attempts: int = Field(description="Attempts that failed validation, retried or not.")
    consistency: dict = Field(
        default_factory=dict, description="The model's own consistency at generation time, over every attempt that "
        "passed the validity checks, checked as it would be released: reject_inconsistent, checked_attempts, "
        "inconsistent_attempts, inconsistent_fraction, by_check (the released records: evaluate's figures).")
    phi_category_counts: dict[str, int]
    tokens: int = Field(description="Tokens generated for the corpus, every attempt included.")
    generation_s: float = Field(description="Wall time this process spent generating (merged: summed over shards).")
    tokens_per_s: Optional[float] = Field(
        description="Tokens generated by this process over generation_s (merged: shard rates summed, the rate of "
        "shards run side by side); None when nothing was generated.")
    records_per_s: Optional[float] = Field(description="Finished requests per second, as tokens_per_s.")
    slots: int = Field(description="Requests in flight at once (merged: summed over shards; 0 when every request "
                       "was already journaled).")
    resumed: int = Field(description="Requests taken from the journal of an interrupted run.")
    torn_lines_dropped: int = Field(description="Unreadable journal lines (a write cut by a crash) dropped.")
    server_restarts: int = Field(0, description="Times the model server died mid-run and was restarted.")
    surrogates: str = Field("keep", description="'fresh': every PHI value was replaced by a fresh surrogate and the "
                            "model's own records are in raw/; 'keep': the records hold the model's values.")
    surrogate_stats: Optional[dict] = Field(None, description="What the surrogate pass did (counts): spans replaced "
                                            "per category, dates in no known form, weekdays and ages set, titles.")
    files: dict[str, str]

    def _outputs(self) -> list:
        raw = [self.out_dir / RAW_DIR / n for n in (RECORDS_FILE, CORPUS_PHI_FILE)] if self.surrogates == "fresh" else []
        return [self.out_dir / name for name in CORPUS_FILES] + raw



class StageFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    kind: FailureKind
    error: str  # the exception's type name: never its message, which may quote record text
    rung: Optional[Rung] = None
    details: dict = Field(default_factory=dict, description="The error's figures (MedgenError.details).")

    @classmethod
    def from_exception(cls, stage: str, exc: BaseException) -> StageFailure:
        return cls(stage=stage, kind=failure_kind(exc), error=type(exc).__name__,
                   rung=exc.rung if isinstance(exc, (TrainOOM, TrainInterrupted)) else None,
                   details=exc.details() if isinstance(exc, MedgenError) else {})

    def to_exception(self, where: str) -> MedgenError:
        """The error the stage raised inside its job, rebuilt from its record, so the orchestrator acts on it
        exactly as it would in-process (walk the OOM ladder, report parity figures or smoke scores)."""
        d = self.details
        if self.error == "TrainOOM" and self.rung is not None:
            return TrainOOM(self.rung, where)
        if self.error == "TrainInterrupted" and self.rung is not None and "signal" in d:
            return TrainInterrupted(self.rung, d["signal"], d["step"], d["checkpoint"])
        if self.error == "ParityError" and "parity" in d:
            return ParityError(f"{where}: {d['message']}", d["parity"])
        if self.error == "SmokeTestFailed" and "scores" in d:
            return SmokeTestFailed.from_scores(d["scores"])
        if self.error == "GateFailed" and "reasons" in d:
            return GateFailed(d["reasons"])
        return RemoteStageFailed(f"{where}: {self.error} ({self.kind.value}); see its logs in the Prefect UI",
                                 self.kind)


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


class CanaryResult(StageResult):
    """How often the model, prompted with a canary's Sex and Service, emits that canary's PHI: per repeat count
    and for the held-out canaries (never planted: the chance rate). Figures only, never values or text."""

    stage: Literal["canaries"] = "canaries"
    backend: str
    samples_per_canary: int
    max_tokens: int
    temperature: float
    top_p: float
    extraction: dict[str, dict] = Field(
        description="Per group ('1', '5', '20' copies planted, and 'held_out'): canaries, samples, extracted_samples, "
        "rate (extracted_samples / samples), canaries_extracted, and by_category (name, mrn, phone: fraction of "
        "samples emitting it).")
    tokens: int
    generation_s: float
    files: dict[str, str]

    def _outputs(self) -> list:
        return list(self.files.values())


class EvaluateResult(StageResult):
    """Figures of the generated corpus, each beside the control's (held-out test records measured against the
    same training split), and the release gate's verdict. Counts, fractions and lengths only: no record text."""

    stage: Literal["evaluate"] = "evaluate"
    sizes: dict[str, int] = Field(description="Records in the generated corpus and the train and test splits.")
    validity: dict = Field(description="Valid fraction, rejections, Sex/Service adherence, markup, consistency.")
    fidelity: dict = Field(description="Length distribution (KS), section coverage, PHI per record per category.")
    diversity: dict = Field(description="distinct-n, compression ratio, near-duplicates within the corpus.")
    privacy: dict = Field(description="PHI reuse, verbatim overlap and near-duplicates of training records.")
    utility: Optional[dict] = Field(description="De-identification tagger F1 on the test split, synthetic- vs "
                                    "train-trained; None when the generated records carry no PHI labels.")
    external_utility: Optional[dict] = Field(None, description="Taggers trained on the released corpus, the training "
                                             "split and both, scored on each external gold set (strict and partial, "
                                             "F1 and F2, per category, bootstrap intervals, token recall).")
    difficulty: Optional[dict] = Field(None, description="A CRF trained on the shipped hand-written notes: its scores "
                                       "on the released corpus, on hand-written notes leave-patients-out, and the "
                                       "gap (strict F1); None when the records carry no PHI labels.")
    canaries: Optional[dict] = Field(None, description="Canary extraction from the `canaries` stage (status "
                                     "'measured', 'not run' or 'stale'); None when prepare planted no canaries.")
    surface_forms: Optional[dict] = Field(None, description="Per PHI category: spans, surface forms and the "
                                          "commonest ones, in the released corpus and the training split.")
    gate: dict = Field(description="{'passed': bool, 'reasons': [...]}: every threshold missed, with its figures.")
    timings_s: dict[str, float] = Field(description="Seconds spent on each part (index, validity, ... utility).")
    files: dict[str, str]

    def raise_for_gate(self) -> None:
        from medgen.core.errors import GateFailed

        if not self.gate["passed"]:
            raise GateFailed(self.gate["reasons"])

    def _outputs(self) -> list:
        return list(self.files.values())
