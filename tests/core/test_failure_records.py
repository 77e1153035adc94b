"""A stage's failure crosses a job boundary as data and comes back as the error it was."""

import pytest

from medgen.core.config import Rung
from medgen.core.errors import (
    ConfigError,
    FailureKind,
    GateFailed,
    MedgenError,
    ParityError,
    RemoteStageFailed,
    SmokeTestFailed,
    TrainOOM,
)
from medgen.core.results import StageFailure, failure_recorded, read_failure

SCORES = [{"sex": "Female", "service": "PSYCHIATRY", "passed": False, "reasons": ["no stop token", "missing fields"]},
          {"sex": "Male", "service": "CARDIOLOGY", "passed": True, "reasons": []}]
PARITY = {"top1_agreement": 0.41, "kl_mean": 0.7, "positions": 334}


@pytest.mark.parametrize("raised,check", [
    (TrainOOM(Rung(r=64, max_seq_length=1024), "CUDA out of memory"),
     lambda e: isinstance(e, TrainOOM) and e.rung == Rung(r=64, max_seq_length=1024)),
    (ParityError("model-q4.gguf disagrees: top-1 agreement 0.410 < 0.75", PARITY),
     lambda e: isinstance(e, ParityError) and e.parity == PARITY and "top-1 agreement 0.410 < 0.75" in str(e)),
    (SmokeTestFailed.from_scores(SCORES),
     lambda e: isinstance(e, SmokeTestFailed) and e.scores == SCORES
     and "1/2 records passed; Female/PSYCHIATRY: no stop token, missing fields" in str(e)),
    (GateFailed(["valid fraction 0.40 < 0.90"]),
     lambda e: isinstance(e, GateFailed) and e.reasons == ["valid fraction 0.40 < 0.90"]),
    (ConfigError(["train.lr: unknown key"]),
     lambda e: isinstance(e, RemoteStageFailed) and e.kind is FailureKind.CONFIG and "ConfigError" in str(e)),
    (ValueError("Name: Jane Doe"),  # a foreign message may quote a record: only its type crosses
     lambda e: isinstance(e, RemoteStageFailed) and e.kind is FailureKind.OTHER and "Jane" not in str(e)),
])
def test_failure_record_rebuilds_the_error(tmp_path, raised, check):
    with pytest.raises(type(raised)):
        with failure_recorded(tmp_path, "stage"):
            raise raised
    record = read_failure(tmp_path)
    assert record == StageFailure.model_validate_json((tmp_path / "failure.json").read_text())
    rebuilt = record.to_exception("stage flow run x ended Failed")
    assert check(rebuilt), rebuilt
    if isinstance(raised, MedgenError):
        assert rebuilt.kind is raised.kind
