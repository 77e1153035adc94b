"""The merge and export stages: merging the adapter into the 16-bit base (`merge`), the HF-to-GGUF converter
(`gguf_convert`), logit comparison and the GGUF parity check on llama.cpp (`logits`), and the export stage with
its KL gate (`stage`).
"""
