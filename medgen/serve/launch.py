"""Start a model server on the exported GGUF: the interface other stages (generate, the canary probe) use to
reach a model, so that none of them depends on the serve stage itself.

`serve_export` writes the Modelfile into the caller's folder, starts the configured backend (Ollama through
that Modelfile, else llama.cpp) and returns it with the end-of-turn stops of the model's chat format.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable

from medgen.core.config import PipelineConfig
from medgen.core.constants import MODELFILE, MODELFILE_TEMPLATE, SERVE_LOG_FILE
from medgen.core.errors import ServeError
from medgen.core.io import atomic_write_text
from medgen.core.results import ExportResult
from medgen.data.prompts import instruction
from medgen.serve import backends
from medgen.serve.modelfile import chat_format, gguf_adds_bos, read_template, render

# Starts a model server: the backend and the end-of-turn stops of its chat format.
StartServer = Callable[[], tuple[backends.Backend, tuple[str, ...]]]


def modelfile_template() -> str:
    return resources.files("medgen.serve").joinpath(MODELFILE_TEMPLATE).read_text(encoding="utf-8")


def write_modelfile(config: PipelineConfig, exported: ExportResult, path: Path):
    """Render the Modelfile for the exported GGUF; return the chat format it uses."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(exported.merged_dir)
    fmt = chat_format(tok, add_bos=gguf_adds_bos(exported.gguf))
    sc = config.serve
    atomic_write_text(path, render(
        modelfile_template(), gguf=exported.gguf.resolve(), name=sc.model_name, modelfile=path.resolve(),
        system=instruction(config.data.markup_mode() == "inline"), fmt=fmt,
        temperature=sc.temperature, top_p=sc.top_p, num_ctx=sc.num_ctx))
    return fmt


def check_stored_template(backend: backends.OllamaBackend, expected: str) -> None:
    """Fail unless Ollama stored the TEMPLATE the Modelfile gave it (a Modelfile parser may alter text)."""
    got = backend.stored_template()
    if got != expected:
        at = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
        raise ServeError(
            f"Ollama at {backend.url} stored a different TEMPLATE for {backend.model!r}: expected {expected!r}, got "
            f"{got!r}; first difference at character {at}: expected {expected[at:at + 40]!r}, got {got[at:at + 40]!r}")


def start(config: PipelineConfig, exported: ExportResult, modelfile: Path, out_dir: Path,
          run_command: backends.RunCommand | None = None, outlive: bool = False) -> backends.Backend:
    """Start the configured backend on the exported model (Ollama through its Modelfile). The server stops when this
    process ends, however it ends, unless it is to `outlive` it (a server kept running)."""
    log_path = out_dir / SERVE_LOG_FILE
    if backends.choose(config) == "ollama":
        backend = backends.start_ollama(config, modelfile, log_path, run_command or backends.subprocess_run, outlive)
        try:
            check_stored_template(backend, read_template(modelfile.read_text(encoding="utf-8")))
        except BaseException:
            backend.stop()
            raise
        return backend
    from transformers import AutoTokenizer

    chat_template = AutoTokenizer.from_pretrained(exported.merged_dir).chat_template
    backend = backends.start_llamacpp(config, exported.gguf, log_path, chat_template, outlive)
    backend.notes.append("`ollama` is not on PATH: served with llama.cpp's own server (xllamacpp), the engine "
                         "Ollama embeds; the Modelfile is written for when Ollama is available")
    return backend


def serve_export(config: PipelineConfig, out_dir: Path,
                 run_command: backends.RunCommand | None = None) -> tuple[backends.Backend, tuple[str, ...]]:
    """The exported model behind the configured backend, its Modelfile and server log in `out_dir`, and the
    stop strings of its chat format. The caller stops it."""
    exported = ExportResult.from_manifest(config.stage_dir("export"))
    modelfile = out_dir / MODELFILE
    fmt = write_modelfile(config, exported, modelfile)
    return start(config, exported, modelfile, out_dir, run_command), fmt.stops
