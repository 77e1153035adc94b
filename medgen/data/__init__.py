"""The prepare stage and the record data it owns: the stage (`prepare`), dedup and patient splits (`dataset`), the
dataset card (`card`), inline PHI markup (`markup`), the prompt layout (`prompts`), the record layout
(`record_format`), synthetic identities (`identity`), canary planting and its registry (`canaries`), the user's
Alpaca JSONL (`alpaca`), and the sources: the synthetic engine (`synthetic/`) and the MIMIC-IV-Note import (`mimic/`).

Declared interfaces other stages use: `prompts`, `markup`, `record_format`, `dataset`, `card`, `canaries`.
"""
