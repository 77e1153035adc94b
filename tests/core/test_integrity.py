"""A manifest records what its stage wrote; outputs deleted, truncated or changed since are found and named."""

import os

import pytest
from typer.testing import CliRunner

from medgen.core import skip
from medgen.core.results import PrepareResult

from conftest import tiny_config


def _prepared(tmp_path):
    cfg = tiny_config(tmp_path / "run")
    out = cfg.stage_dir("prepare")
    out.mkdir(parents=True)
    files = {}
    for split in ("train", "val"):
        (out / f"{split}.jsonl").write_text(f'{{"split": "{split}"}}\n' * 50)
        files[split] = str(out / f"{split}.jsonl")
    result = PrepareResult(out_dir=out, wall_s=0.0, fingerprint="fp", source="synthetic", seed=0, counts={},
                           duplicates_removed={}, sex_service_counts={}, phi_category_counts={}, token_stats={},
                           files=files)
    result.write(cfg.to_yaml())
    return cfg, out / "train.jsonl"


def _truncate(p):
    with open(p, "r+b") as f:
        f.truncate(10)


def _same_size_edit(p):
    data = bytearray(p.read_bytes())
    data[3] ^= 1
    p.write_bytes(bytes(data))


def _same_size_edit_mtime_kept(p):
    st = p.stat()
    _same_size_edit(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def _touch(p):
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))


@pytest.mark.parametrize("harm,quick,deep", [
    (lambda p: None, None, None),
    (_touch, None, None),  # a copy without -p: the content is hashed and found the same
    (lambda p: p.unlink(), "is missing", "is missing"),
    (_truncate, "expected 950 bytes as written, got 10 (truncated)", "(truncated)"),
    (lambda p: p.write_text(p.read_text() + "x"), "expected 950 bytes as written, got 951", "got 951"),
    (_same_size_edit, "its content changed after it was written", "content changed"),
    (_same_size_edit_mtime_kept, None, "its content changed after it was written"),  # only a deep check sees it
])
def test_each_kind_of_damage_is_found_and_named(tmp_path, harm, quick, deep):
    cfg, train = _prepared(tmp_path)
    before = PrepareResult.from_manifest(cfg.stage_dir("prepare"))
    assert set(before.outputs) == {str(train), str(train.with_name("val.jsonl"))}
    harm(train)
    after = PrepareResult.from_manifest(cfg.stage_dir("prepare"))
    for found, expected in ((after.damage(), quick), (after.damage(deep=True), deep)):
        if expected is None:
            assert found == []
        else:
            assert len(found) == 1 and found[0].startswith(str(train)) and expected in found[0], found


def test_a_damaged_stage_is_not_reused_and_the_log_says_why(tmp_path, caplog, monkeypatch):
    cfg, train = _prepared(tmp_path)
    from medgen.core import registry

    spec = registry.stage("prepare")
    monkeypatch.setattr(type(spec), "inputs", lambda self, config: {"fingerprint": "fp"})
    assert skip.reusable(cfg, "prepare") is not None
    _truncate(train)
    assert skip.reusable(cfg, "prepare") is None
    assert f"prepare: running it again: its outputs are not what it wrote: {train}: expected 950" in caplog.text


def test_downstream_depends_on_the_bytes_upstream_wrote_not_only_its_inputs(tmp_path):
    cfg, train = _prepared(tmp_path)

    def rerun() -> PrepareResult:  # the same inputs, written again
        PrepareResult.from_manifest(cfg.stage_dir("prepare")).write(cfg.to_yaml())
        return PrepareResult.from_manifest(cfg.stage_dir("prepare"))

    first = PrepareResult.from_manifest(cfg.stage_dir("prepare"))
    assert rerun().identity == first.identity  # the same bytes: what follows stands
    _same_size_edit(train)
    other = rerun()
    assert other.fingerprint == first.fingerprint and other.identity != first.identity


def test_verify_lists_every_stage_and_exits_1_on_damage(tmp_path):
    from medgen.cli import app

    cfg, train = _prepared(tmp_path)
    ok = CliRunner().invoke(app, ["verify", "--set", f"run_dir={cfg.run_dir}"])
    assert ok.exit_code == 0, ok.output
    assert "prepare   intact    2 files" in ok.output and "train     not run" in ok.output
    _same_size_edit(train)
    os.utime(train, ns=(train.stat().st_atime_ns, PrepareResult.from_manifest(
        cfg.stage_dir("prepare")).outputs[str(train)].mtime_ns))
    assert CliRunner().invoke(app, ["verify", "--set", f"run_dir={cfg.run_dir}"]).exit_code == 0
    deep = CliRunner().invoke(app, ["verify", "--deep", "--set", f"run_dir={cfg.run_dir}"])
    assert deep.exit_code == 1 and "prepare   damaged" in deep.output and "content changed" in deep.output
