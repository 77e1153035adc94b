"""Every bad input the `medgen` command meets gets one clear line, exit code 2, no traceback, nothing written.

The real console script runs in a subprocess, from an empty folder holding only the case's inputs. Each line
must name where the problem is (file:line, a config key or the option) and what to do. The MIMIC tables'
cases are in test_mimic.py.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medgen.core.constants import LOCK_FILE

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "configs" / "default.yaml")
# Words that tell the reader what to do (pydantic's "should be" included).
FIX_WORDS = ("expected", "use ", "set ", "remove", "re-encode", "check", "fix", "give", "should be", "did you mean",
             "add ", "Try ")

GOOD = {"instruction": "Create a record.", "input": "Generate discharge record for: Sex: Female, Medical Service: "
        "MEDICINE", "output": "Name: ___  Unit No: ___"}


def _jsonl(bad_line: str) -> str:
    """Three good examples around one bad line 2, so the bad line is the only problem."""
    good = json.dumps(GOOD)
    return "\n".join([good, bad_line, good, good]) + "\n"


def _obj(**changes) -> str:
    row = {**GOOD, **changes}
    return json.dumps({k: v for k, v in row.items() if v is not None})


# (id, files to create {name: text | bytes | None (a directory) | ("unreadable", text)}, medgen arguments,
#  fragments the one error line must hold; "{tmp}" is the case's folder). Arguments name --config explicitly.
CASES = [
    # config files
    ("config-missing", {}, ["prepare", "-c", "{tmp}/nope.yaml"], ["{tmp}/nope.yaml", "no such file"]),
    ("config-directory", {"conf.yaml": None}, ["prepare", "-c", "{tmp}/conf.yaml"],
     ["{tmp}/conf.yaml", "is a directory"]),
    ("config-unreadable", {"c.yaml": ("unreadable", "train: {}\n")}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml", "not readable"]),
    ("config-not-utf8", {"c.yaml": b"train:\n  optimizer: adam\xe9\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:2", "not UTF-8", "re-encode"]),
    ("config-yaml-syntax", {"c.yaml": "train:\n  lora: [1, 2\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:3", "invalid YAML"]),
    ("config-top-level-list", {"c.yaml": "- train\n- serve\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml", "mapping at the top level"]),
    ("config-unknown-key", {"c.yaml": "train:\n  max_step: 3\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:2", "train.max_step", "unknown key"]),
    ("config-wrong-type", {"c.yaml": "train:\n  lora:\n    r: many\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:3", "train.lora.r", "valid integer", "'many'"]),
    ("config-out-of-range", {"c.yaml": "serve:\n  port: 99999\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:2", "serve.port", "65535"]),
    ("config-lr-scheduler", {"c.yaml": "train:\n  lr_scheduler: cosin\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:2", "train.lr_scheduler", "'cosin'", "did you mean 'cosine'"]),
    ("config-optimizer", {"c.yaml": "train:\n  optimizer: adamw\n"}, ["prepare", "-c", "{tmp}/c.yaml"],
     ["{tmp}/c.yaml:2", "train.optimizer", "'adamw'", "adamw_torch"]),
    ("config-target-modules", {"c.yaml": "train:\n  lora:\n    target_modules: [q_proj, v proj]\n"},
     ["prepare", "-c", "{tmp}/c.yaml"], ["{tmp}/c.yaml:3", "train.lora.target_modules", "'v proj'", "q_proj"]),
    # --set
    ("set-without-equals", {}, ["prepare", "-c", DEFAULT, "--set", "train.max_steps"],
     ["--set", "train.max_steps", "KEY.PATH=VALUE"]),
    ("set-empty-key", {}, ["prepare", "-c", DEFAULT, "--set", "=3"], ["--set", "empty key", "KEY.PATH=VALUE"]),
    ("set-unknown-key", {}, ["prepare", "-c", DEFAULT, "--set", "train.max_step=3"],
     ["--set train.max_step", "unknown key"]),
    ("set-bad-value", {}, ["prepare", "-c", DEFAULT, "--set", "train.lora.r=abc"],
     ["--set train.lora.r", "valid integer", "'abc'"]),
    ("set-into-a-value", {}, ["prepare", "-c", DEFAULT, "--set", "train.lora.r.x=1"],
     ["--set", "train.lora.r", "not a section"]),
    ("set-unparsable-list", {}, ["prepare", "-c", DEFAULT, "--set", "train.fallback=[{r: 8"],
     ["--set train.fallback", "valid list"]),
    ("set-optimizer", {}, ["prepare", "-c", DEFAULT, "--set", "train.optimizer=adam_w"],
     ["--set train.optimizer", "'adam_w'", "adamw_torch"]),
    ("set-target-modules-shorthand", {}, ["prepare", "-c", DEFAULT, "--set", "train.lora.target_modules=[all-linear]"],
     ["--set train.lora.target_modules", "'all-linear'", "q_proj"]),
    ("set-shard-out-of-range", {}, ["generate", "-c", DEFAULT, "--set", "generate.shards=2", "--set", "generate.shard=2"],
     ["generate.shard", "expected 0..1"]),
    # command-line options
    ("option-unknown", {}, ["prepare", "--bogus"], ["--bogus"]),
    ("option-out-of-range", {}, ["automation", "--max-retries", "-1"], ["--max-retries", "greater than or equal to 0"]),
    ("option-bad-source", {}, ["prepare", "-c", DEFAULT, "--source", "alpacca"],
     ["data.source", "'synthetic', 'alpaca', 'mimic', 'i2b2' or 'brat'", "'alpacca'"]),
    ("option-alpaca-without-path", {}, ["prepare", "-c", DEFAULT, "--source", "alpaca"],
     ["data.path", "--set data.path=FILE"]),
    # the user's Alpaca JSONL
    ("alpaca-missing", {}, ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/nope.jsonl"],
     ["{tmp}/nope.jsonl", "no such file"]),
    ("alpaca-directory", {"d.jsonl": None}, ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl", "is a directory"]),
    ("alpaca-unreadable", {"d.jsonl": ("unreadable", _jsonl(_obj()))},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"], ["{tmp}/d.jsonl", "not readable"]),
    ("alpaca-not-utf8", {"d.jsonl": _jsonl(_obj(output="x")).encode().replace(b'"x"', b'"caf\xe9"')},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "not UTF-8", "re-encode"]),
    ("alpaca-lone-surrogate", {"d.jsonl": _jsonl(_obj(output="x")).replace('"x"', '"Name: \\ud800"')},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "field 'output'", "lone surrogate", "\\ud800"]),
    ("alpaca-invalid-json", {"d.jsonl": _jsonl('{"instruction": "x",')},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "invalid JSON"]),
    ("alpaca-not-an-object", {"d.jsonl": _jsonl('["x", "y", "z"]')},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "JSON object", "got list"]),
    ("alpaca-missing-field", {"d.jsonl": _jsonl(_obj(output=None))},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "missing field 'output'"]),
    ("alpaca-wrong-type", {"d.jsonl": _jsonl(_obj(output=["a", "b"]))},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "field 'output'", "expected a string, got list"]),
    ("alpaca-empty-output", {"d.jsonl": _jsonl(_obj(output="  \n"))},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "field 'output' is empty"]),
    ("alpaca-input-without-sex-service", {"d.jsonl": _jsonl(_obj(input="a 54 year old man"))},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl:2", "field 'input'", "Sex", "Service", "Medical Service: MEDICINE"]),
    ("alpaca-too-few", {"d.jsonl": json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n"},
     ["prepare", "-c", DEFAULT, "--source", "alpaca", "--path", "{tmp}/d.jsonl"],
     ["{tmp}/d.jsonl", "2 example(s)", "at least 3"]),
]


def _unreadable_prefix() -> list[str] | None:
    """A command prefix under which a mode-000 file cannot be read: as root, drop the capabilities that bypass
    file permissions; None where that is not possible here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line_exit_2_and_nothing_written(case, tmp_path):
    name, files, args, fragments = case
    prefix: list[str] = []
    for file, content in files.items():
        path = tmp_path / file
        if content is None:
            path.mkdir()
        elif isinstance(content, tuple):
            path.write_text(content[1])
            path.chmod(0)
            prefix = _unreadable_prefix()
            if prefix is None:
                pytest.skip("running as root without setpriv: no file is unreadable here")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] != "automation" and "--bogus" not in args:
        args += ["--set", f"run_dir={tmp_path / 'run'}"]
    env = {**os.environ, "COLUMNS": "80", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run([*prefix, sys.executable, "-m", "medgen.flows.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr

    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    written = sorted(set(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) - set(before))
    # The one thing a stage command may leave: run_dir's lock, released (empty), taken before inputs are read.
    lock = Path("run") / LOCK_FILE
    if written == [Path("run"), lock] and (tmp_path / lock).stat().st_size == 0:
        written = []
    assert written == [], f"written: {written}"
    lines = [line for line in output.splitlines() if line.strip()]
    if name.startswith("option-") and not any(line.startswith("error:") for line in lines):
        # click's own usage errors: the usage line, the error, and where to look
        error = next(line for line in lines if "Invalid value" in line or "No such option" in line)
        assert any("--help" in line for line in lines), output
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), output
        error = lines[0]
    for fragment in fragments:
        assert fragment.replace("{tmp}", str(tmp_path)) in error, (fragment, output)
    assert any(word in error or word in output for word in FIX_WORDS), output


def test_the_table_covers_enough_distinct_bad_inputs():
    assert len({c[0] for c in CASES}) == len(CASES) >= 24


def test_free_string_settings_are_read_from_the_installed_libraries():
    """The accepted names come from the installed transformers' source without importing it; they must be the
    very values its enums hold, and peft's shorthand must still be the one the config refers to."""
    import peft.utils.constants
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    from medgen.core.config import PEFT_ALL_LINEAR, transformers_choices

    assert transformers_choices("trainer_utils.py", "SchedulerType") == tuple(m.value for m in SchedulerType)
    assert transformers_choices("training_args.py", "OptimizerNames") == tuple(m.value for m in OptimizerNames)
    assert PEFT_ALL_LINEAR == peft.utils.constants.INCLUDE_LINEAR_LAYERS_SHORTHAND
