import pytest

from medgen.core.config import load_config, parse_override
from medgen.core.errors import ConfigError


@pytest.mark.parametrize(
    "overrides, expected",
    [
        # wrong type: key path, what was got
        (["train.lora.r=abc"], ["--set train.lora.r", "got 'abc'"]),
        # unknown key: named, with the fix
        (["train.bogus=1"], ["--set train.bogus: unknown key"]),
        # out of range
        (["serve.port=99999"], ["serve.port", "less than or equal to 65535"]),
        # cross-field: alpaca needs a path
        (["data.source=alpaca"], ["data.path"]),
        # enum
        (["train.quantization=int3"], ["train.quantization", "'int3'"]),
        # a layout the engine does not write: the known ones listed
        (["data.layouts=[mimic, soap]"], ["--set data.layouts", "expected one or more of mimic, narrative", "['soap']"]),
        (["data.layouts=[]"], ["--set data.layouts", "got []"]),
    ],
)
def test_single_problem_is_reported_with_key_path(repo_root, overrides, expected):
    with pytest.raises(ConfigError) as e:
        load_config("configs/default.yaml", overrides)
    for text in expected:
        assert text in str(e.value)


def test_every_problem_is_reported_at_once(repo_root):
    with pytest.raises(ConfigError) as e:
        load_config("configs/default.yaml", ["train.lora.r=abc", "train.bogus=1", "serve.port=-1"])
    assert len(e.value.problems) == 3


def test_yaml_problems_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# comment\ntrain:\n  lora:\n    r: many\n  max_steps: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert f"{bad}:4: train.lora.r" in str(e.value)

    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError) as e:
        load_config(broken)
    assert f"{broken}:2" in str(e.value) and "invalid YAML" in str(e.value)


def test_missing_file_says_what_was_expected(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text, path, value",
    [
        ("train.max_steps=10", ["train", "max_steps"], 10),
        ("train.learning_rate=2e-4", ["train", "learning_rate"], 2e-4),
        ("model.base=/models/llama", ["model", "base"], "/models/llama"),
        ("train.fallback=[{r: 8, max_seq_length: 64}]", ["train", "fallback"], [{"r": 8, "max_seq_length": 64}]),
    ],
)
def test_override_values_are_read_as_yaml(text, path, value):
    assert parse_override(text) == (path, value)


def test_shipped_configs_are_valid(repo_root):
    prod = load_config("configs/llama31-8b-qlora.yaml")
    assert prod.train.quantization == "nf4" and prod.train.double_quant
    assert prod.train.lora.r == 64 and len(prod.train.lora.target_modules) == 7
    # Packed whole records planned to the card (issue 13); the seed's rungs stay as the fallback.
    assert [(r.r, r.max_seq_length) for r in prod.ladder()] == [(64, "auto"), (64, 1024), (32, 512)]
    assert prod.train.packing and prod.train.tokens_per_step == 16384 and prod.train.memory_budget_gb == 22
    default = load_config("configs/default.yaml")
    assert default.model.base == "embedded"


def test_each_config_starts_with_the_command_that_runs_it(repo_root):
    import glob

    for path in glob.glob("configs/*.yaml"):
        head = open(path).read().splitlines()[:3]
        assert head[0].startswith("#") and any("medgen" in line for line in head), path
