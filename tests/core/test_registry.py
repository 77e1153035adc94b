"""The stage registry is the one list of stages: the CLI, skipping, the pool flows, the retrain flow and the
generated deployments all follow it."""

from pathlib import Path

import pytest
import yaml

from medgen.cluster import deployments
from medgen.core import registry
from medgen.core.results import StageResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", registry.STAGES, ids=[s.name for s in registry.STAGES])
def test_each_stage_names_a_module_with_run_and_inputs(spec):
    module = spec.load()
    assert callable(module.run) and callable(module.inputs)
    assert issubclass(spec.result, StageResult) and spec.result.model_fields["stage"].default == spec.name
    assert set(spec.upstream) < set(registry.BY_NAME), spec.upstream
    order = [s.name for s in registry.STAGES]
    assert all(order.index(u) < order.index(spec.name) for u in spec.upstream), "upstream stages come first"
    assert set(spec.summary) <= set(spec.result.model_fields), set(spec.summary) - set(spec.result.model_fields)


def test_an_unknown_stage_names_the_known_ones():
    with pytest.raises(KeyError, match="expected one of prepare, train"):
        registry.stage("trian")


def test_the_cli_has_a_subcommand_per_stage():
    from typer.main import get_command

    from medgen.cli import app

    commands = set(get_command(app).commands)
    assert {s.name for s in registry.STAGES} <= commands


def test_prefect_yaml_deploys_every_stage_at_its_registered_size():
    path = ROOT / "prefect.yaml"
    assert deployments.is_current(path), "run `medgen deployments` to regenerate prefect.yaml's stage deployments"
    spec = yaml.safe_load(path.read_text())
    jobs = {d["entrypoint"].split(":")[1].removesuffix("_flow"): d["work_pool"]["job_variables"]
            for d in spec["deployments"] if d["entrypoint"].startswith("flows/pool.py:")}
    assert set(jobs) == set(registry.BY_NAME)
    for name, jv in jobs.items():
        job = registry.BY_NAME[name].job
        assert (jv["time_limit"], jv["mem"]) == (job.time_limit, job.mem)
        assert (jv["gres"] is None) == (job.gpus == 0)


def test_deployments_write_replaces_only_the_generated_part(tmp_path):
    path = tmp_path / "prefect.yaml"
    path.write_text(f"name: x\ndeployments:\n  - name: mine\n{deployments.BEGIN}\n  - name: stale\n{deployments.END}\n"
                    "# after\n")
    assert deployments.write(path) and deployments.is_current(path)
    text = path.read_text()
    assert "  - name: mine\n" in text and text.endswith("# after\n") and "stale" not in text
    assert not deployments.write(path)


def test_pool_flows_exist_for_every_stage():
    pool = pytest.importorskip("medgen.flows.pool")
    for spec in registry.STAGES:
        assert getattr(pool, f"{spec.name}_flow").name == spec.name
