"""The model library every stage that runs the model in torch shares: resolving and loading the base (`loading`:
'embedded', an HF folder, a hub id or a GGUF file) and the dtype to compute in, from what the hardware computes
natively (`precision`). Train, merge, export and vLLM's engine use it; it imports only `core`.
"""
