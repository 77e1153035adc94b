"""The train stage: LoRA/QLoRA fine-tuning with TRL (`stage`), the OOM fallback ladder (`ladder`), packing and the
memory planner (`packing`), keyed checkpoints and resume (`resume`), and base-model resolution and loading
(`modeling`, a declared interface: prepare, merge and export load the base through it).
"""
