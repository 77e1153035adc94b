"""Where PHI names come from: the first names and surnames of a US patient population, not one locale's.

US notes name people of every origin, and a de-identification tagger that has only seen one locale's names learns
the names, not where names go. The pool mixes Faker's name lists of many Latin-script locales (US, Mexican, Irish,
Italian, Indian, Nigerian, Ghanaian, Brazilian, German, French, Polish, Swedish, Finnish, Czech, Turkish, Swahili,
Zulu...) and romanized East Asian names, each weighted roughly as US hospital populations are, folded to ASCII as US
records print them. Drawn with the caller's `random.Random`, so a seed reproduces its names.
"""

from __future__ import annotations

import functools
import importlib
import random
import unicodedata

# Locale -> share of names drawn from it.
_MIX = {"en_US": 0.52, "es_MX": 0.13, "en_IE": 0.04, "it_IT": 0.03, "en_IN": 0.05, "yo_NG": 0.015, "ig_NG": 0.01,
        "tw_GH": 0.01, "pt_BR": 0.025, "de_DE": 0.02, "fr_FR": 0.02, "pl_PL": 0.01, "sv_SE": 0.01, "fi_FI": 0.005,
        "cs_CZ": 0.01, "tr_TR": 0.01, "sw": 0.01, "zu_ZA": 0.005, "vi_VN": 0.02, "en_GB": 0.02, "nl_NL": 0.01,
        "east_asian": 0.04}
_EAST_ASIAN = {
    "last": ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
             "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon",
             "Jang", "Lim", "Tanaka", "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
             "Chan", "Wong", "Leung", "Lau", "Cheung", "Ng", "Tsang", "Yip"),
    "male": ("Wei", "Jun", "Hao", "Jian", "Ming", "Lei", "Tao", "Yong", "Jie", "Feng", "Min-jun", "Seo-jun",
             "Ji-ho", "Hyun-woo", "Jae-won", "Hiroshi", "Takeshi", "Kenji", "Daichi", "Kai", "Chun", "Kwan"),
    "female": ("Fang", "Jing", "Lina", "Xiu", "Mei", "Yan", "Ling", "Hui", "Ying", "Xin", "Ji-woo", "Seo-yeon",
               "Min-seo", "Ha-eun", "Soo-jin", "Yuki", "Haruka", "Aiko", "Sakura", "Mei-ling", "Ka-wai"),
}


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


@functools.lru_cache(maxsize=None)
def _lists(locale: str) -> dict[str, tuple[str, ...]]:
    """A locale's surnames and first names by sex, ASCII, without the lists' placeholders."""
    if locale == "east_asian":
        return _EAST_ASIAN
    p = importlib.import_module(f"faker.providers.person.{locale}").Provider

    def clean(names) -> tuple[str, ...]:
        out = []
        for n in names or ():
            a = _ascii(n).strip()
            # One word (hyphens and apostrophes allowed): a record's name parts are its first and last words.
            if len(a) > 1 and a.replace("-", "").replace("'", "").isalpha() and a != "Doe":
                out.append(a)
        return tuple(dict.fromkeys(out))

    general = clean(getattr(p, "first_names", ()))
    out = {"last": clean(getattr(p, "last_names", ())),
           "male": clean(getattr(p, "first_names_male", ())) or general,
           "female": clean(getattr(p, "first_names_female", ())) or general}
    if not out["last"]:  # a locale without surnames lends its first names only
        out["last"] = _lists("en_US")["last"]
    return out


@functools.lru_cache(maxsize=None)
def first_names_by_sex() -> tuple[frozenset[str], frozenset[str]]:
    """Every first name the pool draws, lower case: (female, male). A name in both says nothing of sex."""
    lists = [_lists(locale) for locale in _MIX]
    return (frozenset(n.lower() for x in lists for n in x["female"]),
            frozenset(n.lower() for x in lists for n in x["male"]))


def _locale(rng: random.Random) -> str:
    return rng.choices(list(_MIX), list(_MIX.values()))[0]


def first_name(rng: random.Random, sex: str | None = None) -> str:
    kind = {"Male": "male", "Female": "female"}.get(sex or "", rng.choice(("male", "female")))
    return rng.choice(_lists(_locale(rng))[kind])


def last_name(rng: random.Random) -> str:
    return rng.choice(_lists(_locale(rng))["last"])


def full_name(rng: random.Random, sex: str | None = None) -> str:
    """First and last name from one origin mostly (a surname from another now and then, as in life)."""
    locale = _locale(rng)
    lists = _lists(locale)
    kind = {"Male": "male", "Female": "female"}.get(sex or "", rng.choice(("male", "female")))
    last = rng.choice(lists["last"]) if rng.random() < 0.85 else last_name(rng)
    return f"{rng.choice(lists[kind])} {last}"
