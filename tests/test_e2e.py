"""The README's run command on the embedded default: prepare → train → merge → export → serve + smoke test.

Minutes on 2 cores; it is the proof that the 135M model learns the record format well enough to pass
the smoke test with the default thresholds.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_medgen_run_on_the_embedded_default(repo_root, tmp_path):
    medgen = Path(sys.executable).parent / "medgen"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run([str(medgen), "run", "--config", "configs/default.yaml", "--set", f"run_dir={tmp_path}"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    serve = json.loads((tmp_path / "serve" / "manifest.json").read_text())
    assert serve["smoke"]["passed"] and serve["smoke"]["n"] == 3
    assert Path(serve["gguf"]).is_file() and Path(serve["modelfile"]).is_file()
    assert "smoke test: 3/3 passed" in proc.stderr
    assert serve["modelfile"] in proc.stderr.replace("\n", "")
    train = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert train["final_val_loss"] < 1.0
    for stage in ("prepare", "train", "merge", "export", "serve"):
        assert (tmp_path / stage / "manifest.json").is_file()
    print(json.dumps({s: json.loads((tmp_path / s / "manifest.json").read_text()).get("wall_s")
                      for s in ("prepare", "train", "merge", "export", "serve")}))
