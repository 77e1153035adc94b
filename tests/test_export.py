"""GGUF round trip on the embedded model: F16 and Q8_0 against transformers, through llama.cpp."""

from pathlib import Path

import pytest

from medgen.export import THRESHOLDS, verify
from medgen.gguf_convert import convert


@pytest.fixture(scope="module")
def embedded_hf(trained):
    return Path(trained[1].manifest["resolved_base"])


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_parity_with_the_merged_model(embedded_hf, tmp_path, outtype):
    out = tmp_path / f"m-{outtype}.gguf"
    summary = convert(embedded_hf, out, outtype)
    assert summary["tokenizer_pre"] == "smollm" and out.stat().st_size == summary["bytes"]
    check = verify(embedded_hf, out)
    min_top1, max_diff = THRESHOLDS[outtype]
    assert check["tokenizer_agrees"]
    assert check["top1_agreement"] >= min_top1, check
    if max_diff is not None:
        assert check["max_abs_diff"] < max_diff, check
    assert check["positions"] > 100


def test_export_stage_records_parity_and_fails_loudly(trained, tmp_path):
    from medgen import export, merge
    from medgen.errors import ExportError

    cfg, _ = trained
    merge.run(cfg)
    result = export.run(cfg)
    m = result.manifest
    assert result.gguf_path.is_file() and m["parity"]["top1_agreement"] == 1.0
    assert (result.out_dir / "manifest.json").is_file() and (result.out_dir / "config.resolved.yaml").is_file()
    # An impossible bar fails the stage with the figures and leaves no accepted GGUF behind.
    strict = cfg.model_copy(update={"export": cfg.export.model_copy(update={"max_abs_diff": 1e-9})})
    with pytest.raises(ExportError, match="max abs logit diff"):
        export.run(strict)
    assert not result.gguf_path.exists()
