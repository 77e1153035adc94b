"""A stand-in model server for the tests (engine records for the requested Sex and Service, marked up as the trained
model writes them, and ways to make it misbehave), and a prepared run for it to generate from."""

import json
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from faker import Faker

from medgen.core.constants import SPLIT_FILE
from medgen.core.results import PrepareResult
from medgen.data import markup
from medgen.data.prompts import make_input, parse_input
from medgen.data.synthetic import Record, build_record
from medgen.serve.backends import Backend, Generation


@dataclass
class FakeBackend(Backend):
    """Engine records for the requested Sex/Service, marked up as the trained model writes them.

    `cut_seeds` end on the length limit (no stop token), `wrong_services` answer with another service,
    `before_chat` runs first on every call (a test's assertion about the outside world), `rewrite` changes each
    record before it is marked up (a memorizing model, a model that cannot count), `dies_after` calls the server
    is killed: it answers no more and reads as killed by SIGKILL; `layout` names the one layout to write."""

    delay: float = 0.0
    cut_seeds: frozenset = frozenset()
    wrong_services: frozenset = frozenset()
    before_chat: Callable[[], None] | None = None
    rewrite: Callable[[Record, int], Record] | None = None
    profile: str = "compact"
    layout: str | None = None  # every record in this layout (the tests that edit MIMIC's labels), else drawn
    dies_after: int | None = None
    calls: list = field(default_factory=list)
    stopped_server: bool = False
    killed: bool = False

    @property
    def pid(self) -> int | None:
        return None

    def chat(self, messages, *, max_tokens, temperature, top_p, seed, stop) -> Generation:
        if self.before_chat:
            self.before_chat()
        if self.killed or self.dies_after is not None and len(self.calls) >= self.dies_after:
            self.killed = True
            raise ConnectionRefusedError(111, "Connection refused")
        self.calls.append(seed)
        sex, service = parse_input(messages[-1]["content"])
        if service in self.wrong_services:
            service = "MEDICINE"
        fake = Faker("en_US")
        fake.seed_instance(seed)
        rec = build_record(fake, random.Random(seed), self.profile, sex, service, layout=self.layout)
        if self.rewrite:
            rec = self.rewrite(rec, seed)
        time.sleep(self.delay)
        return Generation(markup.markup(rec.text, rec.spans), seed not in self.cut_seeds, len(rec.text) // 4,
                          self.delay)

    def stop(self) -> None:
        self.stopped_server = True

    def ended(self) -> str | None:
        return "was killed by signal 9 (SIGKILL)" if self.killed else "exited with code 0" if self.stopped_server \
            else None


def fake(**kw) -> FakeBackend:
    return FakeBackend("fake", "fake://", "fake", 3, **kw)


# Keys as prepare writes them: services may hold '/', and an unparsed input is counted apart.
TRAIN_COUNTS = {"Female/OBSTETRICS/GYNECOLOGY": 6, "Female/PSYCHIATRY": 2, "Male/CARDIOLOGY": 3,
                "Male/NEUROLOGY": 1, "(unparsed)": 1}


def write_prepare_manifest(cfg, train: list | None = None) -> None:
    """A prepared run: its manifest, and a train split of engine records (or `train`, [(record, input)])."""
    folder = cfg.stage_dir("prepare")
    folder.mkdir(parents=True, exist_ok=True)
    if train is None:
        train = [(build_record(Faker("en_US"), random.Random(i), "compact", "Female", "PSYCHIATRY"),
                  make_input("Female", "PSYCHIATRY")) for i in range(3)]
    (folder / SPLIT_FILE.format(split="train")).write_text("".join(
        json.dumps({"instruction": "i", "input": inp, "output": markup.markup(r.text, r.spans)}) + "\n"
        for r, inp in train))
    PrepareResult(out_dir=folder, wall_s=0.0, fingerprint="prepare-fp", source="synthetic", seed=0,
                  phi_markup="inline", counts={"train": 12}, duplicates_removed={}, sex_service_counts=TRAIN_COUNTS,
                  phi_category_counts={}, token_stats={}, files={}).write(cfg.to_yaml())
