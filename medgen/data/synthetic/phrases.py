"""The small phrase language of the section writers, and wording helpers.

A template is text with fields: {name} a value from the case (a patient word, a lab, or a keyword argument),
{a-b} a number in that range, {x|y|z} one of the words (an alternative may be empty). `vary` rewords the
stock phrases of the clinical tables, each occurrence independently."""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from medgen.data.synthetic.case import Case





FIELD_RE = re.compile(r"\{([^{}]+)\}")
_RANGE_RE = re.compile(r"(\d+)(?:\.(\d+))?-(\d+(?:\.\d+)?)")


# Phrases of the clinical tables that notes word several ways: each occurrence is reworded independently.
_PARAPHRASES = {
    "was started on": ("was started on", "was begun on", "was initiated on", "was placed on"),
    "underwent": ("underwent", "had", "was taken for"),
    "was treated with": ("was treated with", "received", "was managed with", "was given"),
    "showed": ("showed", "demonstrated", "revealed"),
    "was transitioned to": ("was transitioned to", "was switched to", "was changed to", "was converted to"),
    "remained": ("remained", "stayed"),
    "resolved": ("resolved", "abated", "cleared"),
    "was removed": ("was removed", "was pulled", "was discontinued"),
    "without complication": ("without complication", "without complications", "uneventfully", "without incident"),
    "consistent with": ("consistent with", "compatible with", "in keeping with"),
    "was continued": ("was continued", "was maintained"),
    "was arranged": ("was arranged", "was set up", "was scheduled"),
    "postoperative day": ("postoperative day", "POD", "post-op day"),
    "hospital day": ("hospital day", "HD"),
    "on presentation": ("on presentation", "on admission", "at presentation"),
    "IV": ("IV", "intravenous"),
    "was negative": ("was negative", "was unrevealing"),
    "was consulted": ("was consulted", "was involved", "followed along"),
    "was given": ("was given", "received"),
    "were drawn": ("were drawn", "were sent", "were obtained"),
    "was checked": ("was checked", "was measured", "was rechecked"),
    "was started": ("was started", "was begun", "was initiated"),
}
_PARAPHRASE_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _PARAPHRASES), key=len, reverse=True)) + r")\b")


def vary(c: Case, text: str) -> str:
    """`text` with each stock phrase reworded at random."""
    return _PARAPHRASE_RE.sub(lambda m: c.pick(_PARAPHRASES[m[1]]), text)


def draw_range(rng: random.Random, spec: str) -> str:
    m = _RANGE_RE.fullmatch(spec)
    if not m:
        raise KeyError(f"template field {{{spec}}}: not a patient word, lab or range")
    if m[2] is None:
        return str(rng.randint(int(m[1]), int(float(m[3]))))
    return f"{rng.uniform(float(m[1] + '.' + m[2]), float(m[3])):.{len(m[2])}f}"


def article(word: str) -> str:
    """'a' or 'an' before `word` as spoken ("an 88 year old", "an engineer")."""
    return "an" if word[:1].lower() in "aeiou8" or word in ("11", "18") else "a"


def days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


_PROPER = ("Guillain", "Crohn", "Fournier", "Helicobacter", "Escherichia", "Clostridioides", "Streptococcus",
           "Staphylococcus", "Proteus", "Enterococcus", "Kussmaul", "Murphy", "McBurney", "Hoffmann", "Kernig")


def lower_first(text: str) -> str:
    """'Chest pain' -> 'chest pain', but 'PSA elevated' and 'Crohn's ileitis' stay."""
    if len(text) < 2 or text[1].isupper() or text.startswith(_PROPER):
        return text
    return text[0].lower() + text[1:]


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def join(items: Sequence[str], conj: str = "and") -> str:
    items = list(items)
    if len(items) <= 2:
        return f" {conj} ".join(items)
    return ", ".join(items[:-1]) + f", {conj} " + items[-1]
