"""`medgen export-corpus`: a run's released corpus (generate/records.jsonl and its spans) in another format, for the
tools that train and test de-identification: i2b2 2014 XML, BRAT standoff, CoNLL BIO, or a Hugging Face DatasetDict.
The folder is written whole or not at all; a folder this command did not write is never replaced."""

from __future__ import annotations

from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.errors import ConfigError
from medgen.core.io import atomic_dir, owner_only, write_json
from medgen.core.results import GenerateResult
from medgen.data.formats import WRITERS, jsonl

MARKER = ".medgen-export.json"


def export_corpus(config: PipelineConfig, fmt: str, out: Path) -> dict:
    if fmt not in WRITERS:
        raise ConfigError([f"--format: expected one of {', '.join(WRITERS)}, got {fmt!r}"], "--format")
    gen_dir = config.stage_dir("generate")
    result = GenerateResult.from_manifest(gen_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise ConfigError([f"--out {out}: exists and was not written by medgen export-corpus; expected a new or "
                           "empty folder (or one an earlier export wrote, which is replaced)"], "--out")
    docs = jsonl.read(gen_dir)
    with owner_only(), atomic_dir(out) as tmp:
        summary = WRITERS[fmt](docs, tmp)
        summary = {"format": fmt, "source": str(gen_dir), "surrogates": result.surrogates,
                   "generate_fingerprint": result.fingerprint, **summary}
        write_json(tmp / MARKER, summary)
    return summary
