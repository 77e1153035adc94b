"""Surface forms of PHI: how notes write a name, an age, a phone or an identifier, for the engines that write
them (`draw_*`) and for the counts of forms per category (`surface_form`) in the dataset card and the report.

A de-identification tool is judged on the forms real notes use; a corpus with one date format teaches and tests
nothing about the others. Dates have their own module (`dates`).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Iterable, Mapping

from medgen.data.phi import dates as D
from medgen.data.phi.categories import category

# --- ages: the span is the number; the form is the text around it ---------------------------------------------

# (before, after) the number, e.g. ("", "-year-old"); {letter} is the patient's M or F
AGE_FORMS = {
    "N year old": ("", " year old"), "N-year-old": ("", "-year-old"), "N y/o": ("", " y/o"), "N yo": ("", " yo"),
    "N y.o.": ("", " y.o."), "NF": ("", "{letter}"), "aged N": ("aged ", ""),
}
_AGE_CONTEXT = [(re.compile(r"\A\s?-year-old", re.I), "N-year-old"), (re.compile(r"\A\s(?:year|yr)s?\s+old", re.I), "N year old"),
                (re.compile(r"\A\s?y/o\b", re.I), "N y/o"), (re.compile(r"\A\s?y\.o\.", re.I), "N y.o."),
                (re.compile(r"\A\s?yo\b", re.I), "N yo"), (re.compile(r"\A\s?[MF]\b"), "NF"),
                (re.compile(r"\A\s?(?:months?|mos?|weeks?|wks?|days?)\b", re.I), "N months/weeks"),
                (re.compile(r"\A'?s\b"), "Ns (decade)")]
_AGE_LEAD = [(re.compile(r"\baged\s*\Z", re.I), "aged N"), (re.compile(r"\bage:?\s*\Z", re.I), "age N")]

# --- phones -----------------------------------------------------------------------------------------------

PHONE_FORMS = ("(NNN) NNN-NNNN", "NNN-NNN-NNNN", "NNN.NNN.NNNN", "+1 NNN NNN NNNN", "NNN-NNN-NNNN xNNNN",
               "(NNN) NNN-NNNN ext. NNN")
PHONE_WEIGHTS = (0.42, 0.3, 0.1, 0.05, 0.08, 0.05)


def draw_phone(rng: random.Random, form: str | None = None) -> str:
    """A phone number in `form` (one of PHONE_FORMS; drawn by weight when None), area code and exchange 2-9."""
    form = form or rng.choices(PHONE_FORMS, PHONE_WEIGHTS)[0]
    out, n = [], 0
    for ch in form:
        if ch == "N":
            out.append(str(rng.randint(2, 9) if n in (0, 3) else rng.randint(0, 9)))
            n += 1
        else:
            out.append(ch)
    return "".join(out)


# --- identifiers: one shape per kind, as notes write them ---------------------------------------------------

ID_SHAPES = {
    "ID:MEDICALRECORD": ("#######", "########", "###-##-##", "MR########"),
    "ID:SSN": ("###-##-####", "#########"),
    "ID:HEALTHPLAN": ("@@@#########", "#########@", "@@@-#####-##"),
    "ID:ACCOUNT": ("##-####-##", "#########", "@########", "@@-######", "####-####-##"),
    "ID:LICENSE": ("@@#######", "@@-#####", "@#######"),
    "ID:VEHICLE": ("#@@@###", "@@@-####", "#@@@@####@#######"),
    "ID:DEVICE": ("@@@######@", "SN ########", "@@#########"),
    "ID:BIOID": ("BIO-####-##", "@@######"),
    "ID:IDNUM": ("##########", "@##-####", "########", "@@@-##-####", "@@##-####", "@##-#####", "#####",
                 "@@@@-####", "##-@-####"),
    "LOCATION:ZIP": ("#####", "#####-####"),
}


def draw_code(rng: random.Random, kind: str) -> str:
    """An identifier of `kind` (ID_SHAPES) in one of its shapes: # a digit, @ a capital letter."""
    shape = rng.choice(ID_SHAPES[kind])
    out = []
    for i, ch in enumerate(shape):
        if ch == "#":
            out.append(str(rng.randint(1 if i == 0 else 0, 9)))
        elif ch == "@":
            out.append(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ"))
        else:
            out.append(ch)
    return "".join(out)


# --- surface forms of spans, for counting --------------------------------------------------------------------

def _shape(text: str) -> str:
    """'MRN 0045872' -> 'AAA 9999+': letters A, digits 9, runs past three cut."""
    s = re.sub(r"\d", "9", re.sub(r"[A-Za-z]", "A", text))
    return re.sub(r"([A9])\1{3,}", r"\1\1\1+", s)


def surface_form(category_name: str, text: str, before: str = "", after: str = "") -> str:
    """The form a span's value is written in, read from the value and the text around it."""
    cat = category(category_name)
    if cat.maker == "date":
        parsed = D.parse(text)
        return D.form_name(parsed.template) if parsed else "other"
    if cat.maker == "age":
        if re.search(r"\+|>|over", text):
            return "90+"
        for pattern, name in _AGE_LEAD:
            if pattern.search(before):
                return name
        return next((name for pattern, name in _AGE_CONTEXT if pattern.match(after)), "N")
    if cat.maker == "name":
        return _name_form(text, before)
    if cat.name in ("CONTACT:PHONE", "CONTACT:FAX"):
        return re.sub(r"(x|ext\.?)\s*N+", r"\1N…", re.sub(r"\d", "N", text), flags=re.IGNORECASE)
    if cat.maker in ("email", "url", "ip"):
        return {"email": "email address", "url": "URL " + ("with scheme" if "//" in text else "bare"),
                "ip": "IPv4" if re.fullmatch(r"[\d.]+", text) else "IPv6"}[cat.maker]
    if cat.maker == "code":
        return _shape(text)
    if cat.maker == "state":
        return "abbreviation" if re.fullmatch(r"[A-Z]{2}", text) else "name"
    return "UPPER" if text.isupper() and len(text) > 3 else "words" if " " in text else "one word"


def _name_form(text: str, before: str) -> str:
    words = re.findall(r"[A-Za-z][A-Za-z'.-]*", text)
    upper = text.isupper() and len(text) > 2
    titled = re.search(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s*\Z", before)
    if all(len(w.rstrip(".")) == 1 for w in words) or re.fullmatch(r"[A-Z]{2,3}|(?:[A-Z]\.){2,3}", text.strip()):
        form = "initials"
    elif "," in text:
        form = "Last, First"
    elif len(words) == 1:
        form = "Title Last" if titled else "one name"
    elif len(words[0].rstrip(".")) == 1:
        form = "F. Last"
    elif len(words) >= 3:
        form = "First M. Last" if len(words[1].rstrip(".")) == 1 else "First Middle Last"
    else:
        form = "Title First Last" if titled else "First Last"
    return f"{form} (upper case)" if upper else form


def count_forms(records: Iterable[tuple[str, list[Mapping]]]) -> dict[str, Counter]:
    """Per category: how many spans are written in each surface form."""
    out: dict[str, Counter] = {}
    for text, spans in records:
        for s in spans:
            form = surface_form(s["category"], s["text"], text[max(0, s["start"] - 12):s["start"]],
                                text[s["end"]:s["end"] + 12])
            out.setdefault(category(s["category"]).name, Counter())[form] += 1
    return dict(sorted(out.items()))


_AN_DIGITS = re.compile(r"(?:8|11|18)(?:\d?|\d{3})(?!\d)")


def wants_an(word: str) -> bool:
    """Whether "an" rather than "a" goes before `word` (by its sound: "an 81", "an MRI", "a unit")."""
    if word[:1].isdigit():
        return bool(_AN_DIGITS.match(word))
    first = re.match(r"[A-Za-z]+", word)
    if not first:
        return False
    w = first.group(0)
    if w.isupper() and len(w) <= 4:
        return w[0] in "AEFHILMNORSX"
    return w[0].lower() in "aeiou" and not re.match(r"(?i)u[nrs][aeiou]|eu|one|use", w)
