"""The train stage: LoRA/QLoRA fine-tuning with TRL (`stage`), the OOM fallback ladder (`ladder`), packing and the
memory planner (`packing`) and keyed checkpoints and resume (`resume`). The base model is loaded, and its compute
dtype chosen, by the model library (`medgen.model`).
"""
