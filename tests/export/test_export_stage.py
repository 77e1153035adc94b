"""The export stage on the trained tiny run: the gate passes a faithful GGUF and rejects with figures."""

import json

import pytest

from medgen.core.errors import ParityError
from medgen.export import merge
from medgen.export import stage as export

pytestmark = pytest.mark.slow  # every test here trains or runs the pipeline


def test_export_stage_records_parity_and_rejects_with_figures(trained):
    cfg, _ = trained
    merge.run(cfg)
    result = export.run(cfg)
    assert result.gguf.is_file() and result.parity["tokenizer_agrees"]
    assert result.parity["top1_agreement"] == 1.0 and result.parity["kl_mean"] <= result.parity["required_max_kl_mean"]
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["environment"]["libraries"]["xllamacpp"] and manifest["fingerprint"]
    accepted = result.gguf.read_bytes()
    # An impossible bar fails the stage with the figures; the rejected file is kept aside, and the
    # previously accepted GGUF is neither replaced nor removed.
    strict = cfg.model_copy(update={"export": cfg.export.model_copy(update={"max_kl_mean": 1e-12})})
    with pytest.raises(ParityError, match="mean KL divergence") as e:
        export.run(strict)
    assert e.value.parity["positions"] > 100
    assert result.gguf.with_suffix(".rejected.gguf").is_file()
    assert result.gguf.read_bytes() == accepted
    assert not list(result.out_dir.glob(".*.tmp"))
