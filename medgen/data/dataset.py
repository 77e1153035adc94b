"""Examples and what prepare does to them: near-duplicate removal, splitting by patient, token lengths."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from medgen.core.constants import SPLITS
from medgen.core.errors import DataError
from medgen.data.prompts import chat_messages


@dataclass
class Example:
    instruction: str
    input: str
    output: str
    group: str  # the patient: examples of one group never straddle splits
    spans: list[dict] | None = None

    def row(self, output: str | None = None) -> dict:
        return {"instruction": self.instruction, "input": self.input,
                "output": self.output if output is None else output}


def _near_key(text: str) -> str:
    """Records that differ only in digits, case, punctuation or spacing share this key."""
    words = re.sub(r"[\d\W_]+", " ", text.lower()).split()
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def dedupe(examples: list[Example]) -> tuple[list[Example], dict[str, int]]:
    """Drop exact duplicates, then near duplicates (same words once digits and punctuation are gone)."""
    exact: set[str] = set()
    near: set[str] = set()
    kept, removed = [], {"exact": 0, "near": 0}
    for ex in examples:
        e = hashlib.sha256(" ".join(ex.output.split()).encode()).hexdigest()
        n = _near_key(ex.output)
        if e in exact:
            removed["exact"] += 1
        elif n in near:
            removed["near"] += 1
        else:
            exact.add(e)
            near.add(n)
            kept.append(ex)
    return kept, removed


def split_by_group(examples: list[Example], val: float, test: float, seed: int) -> dict[str, list[Example]]:
    """Assign whole patients to splits, so that no patient's records leak across them."""
    groups = sorted({ex.group for ex in examples})
    random.Random(seed).shuffle(groups)
    n = len(groups)
    n_val = max(1, round(n * val)) if val > 0 else 0
    n_test = max(1, round(n * test)) if test > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError([f"{n} patient(s) cannot fill train/val/test with val={val}, test={test}; add data"])
    which = {g: "val" for g in groups[:n_val]}
    which.update({g: "test" for g in groups[n_val:n_val + n_test]})
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in examples:
        out[which.get(ex.group, "train")].append(ex)
    return out


def token_lengths(tok, rows: dict[str, list[dict]]) -> dict[str, list[int]]:
    """Tokens per example (chat-formatted prompt + record) with the model's own tokenizer and template."""
    out = {}
    for name, split_rows in rows.items():
        texts = [tok.apply_chat_template(chat_messages(r["instruction"], r["input"], r["output"]), tokenize=False)
                 for r in split_rows]
        out[name] = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []
    return out


def length_stats(lengths: list[int], max_len: int) -> dict:
    if not lengths:
        return {"n": 0}
    s = sorted(lengths)
    return {"n": len(s), "mean": round(sum(s) / len(s), 1), "p50": s[len(s) // 2],
            "p95": s[min(len(s) - 1, int(len(s) * 0.95))], "max": s[-1],
            "truncated_fraction": round(sum(x > max_len for x in s) / len(s), 4), "max_seq_length": max_len}
