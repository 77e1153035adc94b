import pytest
import torch

from medgen.data.prompts import probe_token_ids
from medgen.export import merge
from medgen.export.logits import compare_logits
from medgen.export.merge import probe_logits

pytestmark = pytest.mark.slow  # every test here trains or runs the pipeline


def test_merged_model_matches_base_plus_adapter(trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, train_result = trained
    # float32 isolates the merge itself from 16-bit rounding.
    cfg = cfg.model_copy(update={"merge": cfg.merge.model_copy(update={"dtype": "float32"})})
    result = merge.run(cfg)
    merged_dir = result.merged_dir
    assert (merged_dir / "model.safetensors").is_file()
    assert not list(merged_dir.glob("adapter_*")), "merged folder must be a plain model"
    tok = AutoTokenizer.from_pretrained(merged_dir)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template

    base = AutoModelForCausalLM.from_pretrained(train_result.resolved_base, dtype=torch.float32).eval()
    reference = PeftModel.from_pretrained(base, str(train_result.adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    prompts = probe_token_ids(tok, inline_markup=True)
    expected = probe_logits(reference, prompts)
    check = compare_logits(expected, probe_logits(merged, prompts))
    assert check["max_abs_diff"] < 1e-3, check
    assert check["top1_agreement"] == 1.0, check
    assert result.merged_vs_adapter["top1_agreement"] == 1.0
    # The adapter really changed the model: a merge that dropped it would match the base instead.
    with reference.disable_adapter():
        untouched = probe_logits(reference, prompts)
    assert compare_logits(expected, untouched)["max_abs_diff"] > 100 * check["max_abs_diff"]


def test_default_merge_saves_16_bit(trained, tmp_path):
    import json

    cfg, _ = trained
    result = merge.run(cfg)  # the config's default dtype: bfloat16
    assert json.loads((result.merged_dir / "config.json").read_text())["dtype"] == "bfloat16"
    assert result.merged_vs_adapter["top1_agreement"] >= 0.95
