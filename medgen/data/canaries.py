"""Canaries: fake patients planted in the train split, whose PHI the `canaries` stage (medgen.evaluate.canaries)
then asks the model for.

The Secret Sharer test (Carlini et al., 2019). `prepare` plants `data.canaries.per_repeat` canaries for each
repeat count in `data.canaries.repeats`: each a full record from the synthetic engine whose patient gets a
rare made-up surname, an MRN and a phone number found nowhere in the data, copied that many times into the
train split only. It also registers `held_out` canaries built the same way but never planted. The registry
(prepare/canaries.json, owner-only) holds their Sex, Service and PHI values; the manifest holds counts only.

    medgen prepare --set data.canaries.per_repeat=3 && ... && medgen canaries
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from faker import Faker
from pydantic import BaseModel, ConfigDict

from medgen.core.config import DataConfig
from medgen.core.constants import CANARY_REGISTRY_FILE, INSTRUCTION
from medgen.core.errors import ConfigError, DataError
from medgen.core.io import write_json
from medgen.core.results import PrepareResult
from medgen.data.dataset import Example
from medgen.data.identity import phone_number
from medgen.data.prompts import make_input
from medgen.data.synthetic import Record, build_record

log = logging.getLogger(__name__)

REGISTRY_KIND = "medgen.canaries.registry"
HELD_OUT = "held_out"
# Surnames are built from these halves: English-looking, so a canary reads like any record, yet rare enough
# that a model has no reason to write one unless it saw it (the held-out canaries check that).
_PREFIXES = ("Alder", "Brack", "Carn", "Dray", "Ebb", "Farn", "Gilder", "Hask", "Ivor", "Kest", "Lisk", "Marl",
             "Nettle", "Orm", "Pell", "Quill", "Rook", "Stam", "Thrale", "Umber", "Vane", "Wex", "Yarr", "Zell")
_SUFFIXES = ("bury", "combe", "dale", "ford", "gate", "holt", "hurst", "ington", "ley", "mere", "more", "ridge",
             "stead", "thorpe", "ton", "well", "worth", "by", "croft", "field", "ham", "wood", "shaw", "wick")
_WORD_RE = re.compile(r"\w+")
# A phone as records write it, "(617) 555-0134", or with other separators; digit-bounded.
_PHONE_RE = re.compile(r"(?<!\d)\(?\d{3}\)?[\s.-]*\d{3}[\s.-]*\d{4}(?!\d)")


class Canary(BaseModel):
    """One canary as registered: its prompt metadata and its distinctive PHI values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    repeats: int  # copies in the train split; 0 for a held-out canary
    sex: str
    service: str
    first: str
    surname: str
    mrn: str
    phone: str

    @property
    def group(self) -> str:
        """'1', '5', '20' (copies planted) or 'held_out'."""
        return str(self.repeats) if self.repeats else HELD_OUT


@dataclass
class Planting:
    canaries: list[Canary]  # planted first (by repeat count), then held out
    copies: list[Example]  # the rows to add to the train split: each planted canary `repeats` times

    def summary(self, per_repeat: int, repeats: list[int]) -> dict:
        """What prepare's manifest says about the canaries: counts only."""
        planted = [c for c in self.canaries if c.repeats]
        return {"per_repeat": per_repeat, "repeats": list(repeats), "planted": len(planted),
                "held_out": len(self.canaries) - len(planted), "train_rows": len(self.copies),
                "registry": CANARY_REGISTRY_FILE}


# --- planting (prepare) ----------------------------------------------------------------------------------

def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _taken(examples: list[Example]) -> tuple[set[str], set[str]]:
    """Every word (casefolded) and every phone number (digits) of the data: a canary must use none of them."""
    words: set[str] = set()
    phones: set[str] = set()
    for ex in examples:
        words.update(_WORD_RE.findall(ex.output.casefold()))
        phones.update(_digits(m[0]) for m in _PHONE_RE.finditer(ex.output))
    return words, phones


def _surnames(rng: random.Random, n: int, words: set[str]) -> list[str]:
    from faker.providers.person.en_US import Provider

    common = {s.casefold() for s in Provider.last_names}
    pool = [p + s for p in _PREFIXES for s in _SUFFIXES
            if (p + s).casefold() not in words and (p + s).casefold() not in common]
    if len(pool) < n:
        raise ConfigError([f"data.canaries: {n} canaries need {n} unused surnames; only {len(pool)} are left; "
                           "lower per_repeat, held_out or the number of repeats"], "data.canaries")
    return rng.sample(pool, n)


def _with_identity(record: Record, new: dict[tuple[str, str], str], surname: tuple[str, str]) -> tuple[str, list[dict]]:
    """The record's text and spans with each (category, value) in `new` replaced, and the patient's surname
    (old, new) wherever a patient name span writes it ("Ms. Surname", "SURNAME, FIRST"), offsets recomputed."""
    old_last, new_last = surname
    parts: list[str] = []
    spans: list[dict] = []
    pos = length = 0
    for s in record.spans:
        value = new.get((s.category, s.text), s.text)
        if s.category == "NAME:PATIENT":
            value = re.sub(rf"\b{re.escape(old_last)}\b", lambda m: new_last.upper() if m.group().isupper() else new_last,
                           value, flags=re.IGNORECASE)
        parts += [record.text[pos:s.start], value]
        length += s.start - pos
        spans.append({"start": length, "end": length + len(value), "category": s.category, "text": value})
        length += len(value)
        pos = s.end
    parts.append(record.text[pos:])
    return "".join(parts), spans


def _patient(record: Record) -> tuple[str, str, str]:
    """The engine's own full name, MRN and phone of the record's patient."""
    name = next(s.text for s in record.spans if s.category == "NAME:PATIENT")
    phones = [s.text for s in record.spans if s.category == "CONTACT:PHONE"]
    # A full record also lists the primary care office's phone, once; the patient's appears in several places.
    return name, record.patient_id, max(phones, key=phones.count)


def plant(dc: DataConfig, examples: list[Example]) -> Planting:
    """Build the canaries for `dc.canaries`, unlike anything in `examples`, and the train rows that plant them."""
    cc = dc.canaries
    plan = [r for r in cc.repeats for _ in range(cc.per_repeat)] + [0] * cc.held_out
    words, phones = _taken(examples)
    rng = random.Random(f"medgen-canaries/{dc.seed}")
    surnames = _surnames(rng, len(plan), words)
    labelled = any(ex.spans is not None for ex in examples)
    canaries: list[Canary] = []
    copies: list[Example] = []
    used: set[str] = set()
    for i, (repeats, surname) in enumerate(zip(plan, surnames)):
        # Seeds of their own: an ordinary record's seed would make the canary that record's twin.
        seed = f"medgen-canary/{dc.seed}/{i}"
        fake = Faker("en_US")
        fake.seed_instance(seed)
        # In the MIMIC layout: a canary's identity is then written where the registry expects it.
        record = build_record(fake, random.Random(seed), dc.profile, layout="mimic")
        name, mrn, phone = _patient(record)
        new_mrn = new_phone = ""
        while not new_mrn or new_mrn in words or new_mrn in used:
            new_mrn = str(rng.randint(1_000_000, 9_999_999))
        while not new_phone or _digits(new_phone) in phones or _digits(new_phone) in used:
            new_phone = phone_number(fake)
        used |= {new_mrn, _digits(new_phone)}
        first = name.split()[0]
        canary = Canary(id=f"c{i:03d}", repeats=repeats, sex=record.sex, service=record.service, first=first,
                        surname=surname, mrn=new_mrn, phone=new_phone)
        canaries.append(canary)
        if repeats:
            text, spans = _with_identity(record, {("ID:MEDICALRECORD", mrn): new_mrn, ("CONTACT:PHONE", phone): new_phone},
                                         (name.split()[-1], surname))
            ex = Example(INSTRUCTION, make_input(record.sex, record.service), text, f"canary-{canary.id}",
                         spans if labelled else None)
            copies += [ex] * repeats
    return Planting(canaries, copies)


def write_registry(folder: Path, planting: Planting, seed: int) -> Path:
    return write_json(folder / CANARY_REGISTRY_FILE, {
        "kind": REGISTRY_KIND, "seed": seed, "canaries": [c.model_dump() for c in planting.canaries]})


def read_registry(prepared: PrepareResult) -> list[Canary]:
    path = prepared.out_dir / CANARY_REGISTRY_FILE
    if prepared.canaries is None or not path.is_file():
        raise ConfigError([f"{prepared.out_dir}: prepare planted no canaries; set data.canaries.per_repeat (e.g. 3) "
                           "and rerun prepare and train"], "data.canaries")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != REGISTRY_KIND:
        raise DataError([f"{path}: expected a canary registry (kind {REGISTRY_KIND!r}), got another file"])
    return [Canary.model_validate(c) for c in data["canaries"]]


# --- scoring ---------------------------------------------------------------------------------------------

def emitted(text: str, canary: Canary) -> set[str]:
    """Which of the canary's distinctive values (`CANARY_SECRETS`) `text` contains: the surname as a whole word
    in any case, the MRN not inside a longer number, the phone in any common layout. Markup around a value
    does not hide it."""
    found = set()
    if re.search(rf"(?<!\w){re.escape(canary.surname)}(?!\w)", text, re.IGNORECASE):
        found.add("name")
    if re.search(rf"(?<!\d){re.escape(canary.mrn)}(?!\d)", text):
        found.add("mrn")
    phone = _digits(canary.phone)
    if any(_digits(m[0]) == phone for m in _PHONE_RE.finditer(text)):
        found.add("phone")
    return found
