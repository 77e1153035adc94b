import torch

from medgen import merge
from medgen.merge import compare_logits, probe_ids


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

    base = AutoModelForCausalLM.from_pretrained(train_result.manifest["resolved_base"], dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(train_result.adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    ids = probe_ids(tok)
    with torch.no_grad():
        check = compare_logits(reference(ids).logits[0], merged(ids).logits[0])
    assert check["max_abs_diff"] < 1e-3, check
    assert check["top1_agreement"] == 1.0, check
    assert result.manifest["merged_vs_adapter"]["top1_agreement"] == 1.0


def test_default_merge_saves_16_bit(trained, tmp_path):
    import json

    cfg, _ = trained
    result = merge.run(cfg)  # the config's default dtype: bfloat16
    assert json.loads((result.merged_dir / "config.json").read_text())["dtype"] == "bfloat16"
    assert result.manifest["merged_vs_adapter"]["top1_agreement"] >= 0.95
