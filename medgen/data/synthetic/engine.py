"""Synthetic PHI-bearing discharge records in several institutions' layouts (`layouts.py`).

`records(n, seed, profile)` yields `Record`s: sex, service, text, layout, and every PHI value inserted as a
character span with an i2b2-2014-style category. One consistent identity per record; the same seed
gives the same records.

A record is drawn in two steps: `draw_case` picks the patient, condition, comorbidities, stay and how the
note is written (its detail, abbreviations, list style, how dense its PHI, how messy), then the layout writes
its header and one function per section writes that section, drawing its incidental details (wording, vitals,
times, relatives) as it goes. Every draw from `rng` and `fake` happens in a fixed order, which is what makes a
seed reproduce its records.

Profiles: `full` varies its length the way MIMIC-IV discharge notes do (detail, stay length, comorbidities
and optional sub-sections all scale it); `compact` writes one short line under each heading, for training
runs with a short `max_seq_length`.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence

from faker import Faker

from medgen.data.synthetic import layouts
from medgen.data.synthetic.case import draw_case
from medgen.data.synthetic.text import Record


def build_record(fake: Faker, rng: random.Random, profile: str, sex: str | None = None,
                 service: str | None = None, layout: str | Sequence[str] | None = None) -> Record:
    """One record with one identity, in one of the layouts (`layout` names one or several to draw among, else it is
    drawn among all)."""
    c = draw_case(fake, rng, profile, sex, service)
    chosen = layouts.BY_LAYOUT[layout] if isinstance(layout, str) else layouts.draw(c, layout)
    d = layouts.write(c, chosen)
    return Record(sex=c.person.sex, service=c.service, text=d.text().rstrip("\n"), patient_id=c.person.mrn,
                  spans=d.spans, layout=chosen.name)


def records(n: int, seed: int = 0, profile: str = "compact", layout: str | Sequence[str] | None = None
            ) -> Iterator[Record]:
    """Yield `n` records (all in `layout` where it names one, among those it names where several); the same
    arguments always give the same records."""
    fake = Faker("en_US")
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        fake.seed_instance(seed * 1_000_003 + i)
        yield build_record(fake, rng, profile, layout=layout)
