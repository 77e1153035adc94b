"""The pipeline's shared core: config schema and `--set` overrides (`config`), names and tables (`constants`),
typed errors and failure kinds (`errors`), stage results and failure records (`results`), provenance and
fingerprints (`provenance`), owner-only atomic files (`io`), the run lock (`lock`), stage skipping (`skip`),
crash-point injection (`faults`), plots (`plots`) and the stage registry (`registry`).

Stages meet here: a stage reads another's outputs through its typed result (a manifest), never its code.
"""
