"""Readers and writers of annotated notes: round trips (write, read back, identical spans), the bad inputs each
refused in one line naming the file and the tag, the HF export's BIO tags, and importing notes as training data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medgen.data.formats import WRITERS, Document, bio, brat, detect, i2b2, jsonl, read
from medgen.data.formats.export import export_corpus
from medgen.data.phi.categories import category
from medgen.data.synthetic import records

ROOT = Path(__file__).resolve().parents[2]
HANDWRITTEN = ROOT / "medgen" / "evaluate" / "testsets" / "handwritten"


def _docs(n: int = 6) -> list[Document]:
    out = []
    for i, r in enumerate(records(n, seed=8, profile="full")):
        spans = [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans]
        out.append(Document(f"{100 + i}-01", r.text, spans, str(100 + i), {"sex": r.sex, "service": r.service}))
    return out


def _plain(spans) -> list[tuple]:
    return [(s["start"], s["end"], s["category"], s["text"]) for s in spans if category(s["category"]).i2b2]


@pytest.mark.parametrize("fmt, reader", [("i2b2", i2b2.read), ("brat", brat.read), ("jsonl", jsonl.read)])
def test_write_then_read_gives_back_the_same_spans(tmp_path, fmt, reader):
    docs = _docs()
    WRITERS[fmt](docs, tmp_path)
    assert detect(tmp_path) == fmt
    back = {d.id: d for d in reader(tmp_path)}
    assert set(back) == {d.id for d in docs}
    for d in docs:
        assert back[d.id].text == d.text and _plain(back[d.id].spans) == _plain(d.spans), d.id
    if fmt == "i2b2":
        assert back["100-01"].patient == "100"  # NNN-NN: patient, record


def test_i2b2_text_holding_the_cdata_end_survives():
    doc = Document("200-01", "odd ]]> text Ana Ruiz", [{"start": 13, "end": 21, "category": "NAME:PATIENT",
                                                       "text": "Ana Ruiz"}])
    xml, skipped = i2b2.render(doc)
    import xml.etree.ElementTree as ET

    assert ET.fromstring(xml).find("TEXT").text == doc.text and skipped == 0


def test_the_handwritten_set_reads_clean_with_every_i2b2_type():
    docs = read(HANDWRITTEN)
    assert len(docs) >= 40 and len({d.patient for d in docs}) < len(docs)
    types = {s["category"] for d in docs for s in d.spans}
    assert len(types) == 30
    for d in docs:
        for s in d.spans:
            assert d.text[s["start"]:s["end"]] == s["text"]


def test_hf_export_loads_and_its_bio_tags_align_with_the_spans(tmp_path):
    from datasets import load_from_disk

    docs = _docs(4)
    WRITERS["hf"](docs, tmp_path / "hf")
    ds = load_from_disk(str(tmp_path / "hf"))
    names = ds["train"].features["ner_tags"].feature.names
    assert list(ds) == ["train"] and names[0] == "O" and len(names) == len(bio.LABELS)
    for row, d in zip(ds["train"], docs):
        tags = [names[i] for i in row["ner_tags"]]
        # The entities the tags mark are exactly the spans, token for token.
        words, offsets = row["tokens"], bio.tokens(d.text, [x for s in d.spans for x in (s["start"], s["end"])])
        assert words == [d.text[a:b] for a, b in offsets]
        found, current = [], None
        for (a, b), tag in zip(offsets, tags):
            if tag.startswith("B-") or tag == "O" or (current and tag[2:] != current[2]):
                if current:
                    found.append(tuple(current))
                current = [a, b, tag[2:]] if tag != "O" else None
            else:
                current[1] = b
        if current:
            found.append(tuple(current))
        assert found == [(s["start"], s["end"], s["category"]) for s in d.spans]


def test_conll_export_has_one_token_per_line(tmp_path):
    docs = _docs(2)
    summary = WRITERS["bio"](docs, tmp_path)
    lines = (tmp_path / bio.CONLL_FILE).read_text().splitlines()
    assert lines[0] == "# id = 100-01" and summary["tokens"] == sum(1 for x in lines if "\t" in x)
    assert {x.split("\t")[1] for x in lines if "\t" in x} >= {"O", "B-NAME:PATIENT", "B-DATE"}


# --- bad inputs: one line naming the file and the tag, exit 2, nothing written ----------------------------

def _xml(text: str, tags: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n<TEXT><![CDATA[{text}]]></TEXT>\n<TAGS>\n{tags}\n</TAGS>\n</deIdi2b2>\n'


GOOD = "Seen by Dr. Ana Ruiz on 03/10/2091."
GOOD_TAGS = ('<NAME id="P0" start="12" end="20" text="Ana Ruiz" TYPE="DOCTOR" comment="" />\n'
             '<DATE id="P1" start="24" end="34" text="03/10/2091" TYPE="DATE" comment="" />')


def _good_i2b2(folder: Path) -> None:
    for i in range(3):
        (folder / f"30{i}-01.xml").write_text(_xml(GOOD, GOOD_TAGS))


# (case, the files written into a fresh folder beside good ones, the format, what the line must say)
BAD = [
    ("malformed XML", {"399-01.xml": _xml(GOOD, GOOD_TAGS).replace("</TAGS>", "</TAG>")}, "i2b2",
     r"399-01.xml:\d+: malformed XML"),
    ("offsets disagree", {"399-01.xml": _xml(GOOD, GOOD_TAGS.replace('start="24" end="34"', 'start="23" end="33"'))},
     "i2b2", r"399-01.xml: P1 at 23-33: expected its text '03/10/2091', got ' 03/10/209'"),
    ("unknown TYPE", {"399-01.xml": _xml(GOOD, GOOD_TAGS.replace('TYPE="DOCTOR"', 'TYPE="NURSE"'))}, "i2b2",
     r"399-01.xml: P0: unknown TYPE <NAME TYPE='NURSE'>: expected one of DOCTOR, PATIENT, USERNAME"),
    ("non-UTF-8", {"399-01.xml": _xml(GOOD, GOOD_TAGS).encode().replace(b"Ruiz", b"Ru\xedz")}, "i2b2",
     r"399-01.xml:\d+: not UTF-8 \(byte 0xed\)"),
    ("discontinuous BRAT span", {"a.txt": GOOD, "a.ann": "T1\tDOCTOR 12 15;16 20\tAna Ruiz\n"}, "brat",
     r"a.ann:1: T1 is a discontinuous span \(12 15;16 20\)"),
    ("an .ann without its .txt", {"b.ann": "T1\tDOCTOR 12 20\tAna Ruiz\n"}, "brat", r"b.ann: no b.txt beside it"),
    ("BRAT offsets disagree", {"a.txt": GOOD, "a.ann": "T1\tDOCTOR 11 19\tAna Ruiz\n"}, "brat",
     r"a.ann:1: T1 at 11-19: expected its text 'Ana Ruiz'"),
]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "medgen.flows.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("case, files, fmt, expected", BAD, ids=[b[0] for b in BAD])
def test_a_bad_input_is_one_line_with_file_and_tag_exit_2_nothing_written(tmp_path, case, files, fmt, expected):
    import re

    notes = tmp_path / "notes"
    notes.mkdir()
    if fmt == "i2b2":
        _good_i2b2(notes)
    else:
        for i in range(3):
            (notes / f"g{i}.txt").write_text(GOOD)
            (notes / f"g{i}.ann").write_text("T1\tDOCTOR 12 20\tAna Ruiz\n")
    for name, content in files.items():
        (notes / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    out = _run(["prepare", "--config", str(ROOT / "configs" / "default.yaml"), "--source", fmt, "--path", str(notes),
                "--set", f"run_dir={tmp_path / 'run'}"], tmp_path)
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "run" / "prepare").exists()


# --- as training data, and as output -------------------------------------------------------------------------

@pytest.mark.slow  # loads the embedded model's tokenizer for the token lengths
def test_prepare_imports_annotated_notes_with_every_tag_a_span(tmp_path, repo_root):
    from medgen.core.config import load_config
    from medgen.data import prepare
    from medgen.data.splits import read_split

    cfg = load_config("configs/default.yaml", [f"run_dir={tmp_path / 'run'}", "data.source=i2b2",
                                               f"data.path={HANDWRITTEN}", "data.surrogates=keep"])
    result = prepare.run(cfg)
    docs = read(HANDWRITTEN)
    assert result.import_report["notes"] == len(docs) and result.import_report["skipped"] == {}
    got = []
    for split in ("train", "val", "test"):
        s = read_split(result, split)
        got += [(sp["category"], sp["text"]) for spans in s.spans for sp in spans]
    want = [(sp["category"], piece.strip(" \t]")) for d in docs for sp in d.spans for piece in sp["text"].split("\n")
            if piece.strip(" \t]")]
    assert sorted(got) == sorted(want)
    # Splits are by patient: a patient's notes never straddle two.
    patients = {}
    for split in ("train", "val", "test"):
        rows = [json.loads(x) for x in (tmp_path / "run" / "prepare" / f"phi_training_alpaca_{split}.jsonl")
                .read_text().splitlines()]
        patients[split] = len(rows)
    assert sum(patients.values()) == len(docs)


def test_export_corpus_writes_the_released_corpus_whole_and_refuses_a_foreign_folder(tmp_path, repo_root):
    from medgen.core.config import GenerateConfig
    from medgen.generate import stage as generate

    from conftest import tiny_config
    from fakes import fake

    sys.path.insert(0, str(ROOT / "tests" / "generate"))
    from fakes import write_prepare_manifest

    cfg = tiny_config(tmp_path / "run")
    write_prepare_manifest(cfg)
    generate.run(cfg, GenerateConfig(n=4, seed=2), fake())
    summary = export_corpus(cfg, "i2b2", tmp_path / "xml")
    assert summary["documents"] == 4 and summary["surrogates"] == "fresh"
    back = read(tmp_path / "xml")
    released = jsonl.read(cfg.stage_dir("generate"))
    assert [(d.text, _plain(d.spans)) for d in back] == [(d.text, _plain(d.spans)) for d in released]
    assert export_corpus(cfg, "brat", tmp_path / "xml")["documents"] == 4  # an earlier export is replaced
    out = _run(["export-corpus", "--config", str(ROOT / "configs" / "default.yaml"), "--set",
                f"run_dir={cfg.run_dir}", "--format", "hf", "--out", str(tmp_path / "hf")], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "hf"))["train"].num_rows == 4
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    from medgen.core.errors import ConfigError

    with pytest.raises(ConfigError, match="was not written by medgen export-corpus"):
        export_corpus(cfg, "hf", foreign)
    assert (foreign / "keep.txt").read_text() == "x"
