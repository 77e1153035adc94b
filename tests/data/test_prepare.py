import json
import os
import stat

import pytest

from medgen.core.constants import INSTRUCTION, INSTRUCTION_INLINE_MARKUP, SPLIT_FILE, SPLITS
from medgen.core.errors import DataError
from medgen.data import markup, prepare
from medgen.data.alpaca import read_alpaca
from medgen.data.dataset import Example, dedupe
from medgen.data.prompts import parse_input
from medgen.data.record_format import header_value

from conftest import tiny_config

GOOD = {"instruction": INSTRUCTION, "input": "Generate discharge record for: Sex: Male, Medical Service: UROLOGY",
        "output": "Name: John Doe  Unit No: 1234567"}


def _line(**changes):
    row = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            row.pop(k)
        else:
            row[k] = v
    return json.dumps(row)


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ('{"instruction": "x", "input": ', "invalid JSON at column"),  # truncated line
        ("[1, 2, 3]", "expected a JSON object with instruction, input, output, got list"),
        (_line(output=...), "missing field 'output'"),
        (_line(output="   "), "field 'output' is empty"),
        (_line(instruction=7), "field 'instruction': expected a string, got int"),
        (_line(input=None), "field 'input': expected a string, got NoneType"),
    ],
)
def test_bad_alpaca_lines_are_reported_with_file_and_line(tmp_path, bad_line, expected):
    src = tmp_path / "user.jsonl"
    src.write_text("\n".join([_line(), _line(), bad_line, _line()]) + "\n")
    with pytest.raises(DataError) as e:
        read_alpaca(src)
    assert f"{src}:3: {expected}" in str(e.value)


def test_all_problems_at_once_and_nothing_written(tmp_path, repo_root):
    src = tmp_path / "user.jsonl"
    src.write_bytes(b"\n".join([_line().encode(), b"not json", b"\xff\xfe bad bytes", _line(output=1).encode()]))
    cfg = tiny_config(tmp_path / "run", "data.source=alpaca", f"data.path={src}")
    with pytest.raises(DataError) as e:
        prepare.run(cfg)
    assert len(e.value.problems) == 3 and ":3: not UTF-8" in str(e.value)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.jsonl"))


def test_user_alpaca_is_split_and_written(tmp_path, repo_root):
    src = tmp_path / "user.jsonl"
    src.write_text("\n".join(_line(output=f"record {chr(97 + i) * 3}") for i in range(10)) + "\n")
    cfg = tiny_config(tmp_path / "run", "data.source=alpaca", f"data.path={src}")
    result = prepare.run(cfg)
    assert sum(result.counts.values()) == 10 and all(result.counts.values())


def test_synthetic_splits_have_seed_format_and_owner_only_files(tmp_path, repo_root):
    cfg = tiny_config(tmp_path / "run", "data.n_records=20")
    result = prepare.run(cfg)
    outputs = {}
    for split in SPLITS:
        path = result.out_dir / SPLIT_FILE.format(split=split)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows, split
        for row in rows:
            assert set(row) == {"instruction", "input", "output"}
            assert row["instruction"] == INSTRUCTION_INLINE_MARKUP
            assert parse_input(row["input"]) is not None
            assert row["input"].startswith("Generate discharge record for: Sex: ")
        outputs[split] = {header_value(markup.strip(r["output"])[0], "Unit No") for r in rows}
    # Splits are by patient: no unit number in two splits.
    assert not (outputs["train"] & outputs["val"] or outputs["train"] & outputs["test"] or outputs["val"] & outputs["test"])
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["counts"] == result.counts and (result.out_dir / "config.resolved.yaml").is_file()
    assert manifest["phi_markup"] == "inline" and manifest["fingerprint"] and manifest["environment"]["medgen"]
    # The PHI spans written beside each split point at exactly their text in that split's plain records,
    # and they are exactly what the inline markup of the training target says.
    for split in SPLITS:
        rows = [json.loads(x) for x in (result.out_dir / SPLIT_FILE.format(split=split)).read_text().splitlines()]
        phi = [json.loads(x) for x in (result.out_dir / f"phi_training_alpaca_{split}.phi.jsonl").read_text().splitlines()]
        assert len(phi) == len(rows)
        for entry in phi:
            out, spans = markup.strip(rows[entry["index"]]["output"])
            assert entry["spans"] and all(out[s["start"]:s["end"]] == s["text"] for s in entry["spans"])
            assert spans == [{k: s[k] for k in ("start", "end", "category", "text")} for s in entry["spans"]]
    stats = manifest["token_stats"]["train"]
    assert stats["n"] == result.counts["train"] and 0 <= stats["truncated_fraction"] <= 1
    assert "NAME:PATIENT" in manifest["phi_category_counts"]
    card = (result.out_dir / "DATASET_CARD.md").read_text()
    assert "Records per service and sex" in card and "PHI categories" in card
    assert (result.out_dir / "length_histogram.png").read_bytes()[:4] == b"\x89PNG"


def test_synthetic_records_come_in_the_configured_layouts(tmp_path, repo_root):
    result = prepare.run(tiny_config(tmp_path / "run", "data.n_records=12", "data.layouts=[letter]"))
    rows = [json.loads(line) for split in SPLITS
            for line in (result.out_dir / SPLIT_FILE.format(split=split)).read_text().splitlines()]
    assert len(rows) == 12
    assert all("\nDear Dr. " in markup.strip(row["output"])[0] for row in rows)  # the letter to the PCP


def test_truncation_above_5_percent_warns(tmp_path, repo_root):
    result = prepare.run(tiny_config(tmp_path / "run", "data.n_records=10"))  # max_seq_length 128 in TINY
    assert result.token_stats["train"]["truncated_fraction"] == 1.0
    assert "max_seq_length=128" in result.warnings[0]


@pytest.mark.parametrize(
    "texts, exact, near",
    [
        (["same text", "same   text", "other"], 1, 0),  # whitespace only: exact
        (["Seen 01/02/2020, MRN 1234", "Seen 03/04/2021, MRN 9876", "other"], 0, 1),  # digits only: near
        (["Chest pain.", "chest pain", "other"], 0, 1),  # case and punctuation: near
        (["a b c", "a b d", "a b e"], 0, 0),  # different words: kept
    ],
)
def test_duplicates_are_removed(texts, exact, near):
    kept, removed = dedupe([Example("i", "in", t, f"p{i}") for i, t in enumerate(texts)])
    assert removed == {"exact": exact, "near": near} and len(kept) == len(texts) - exact - near
