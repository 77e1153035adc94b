"""The figure families of evaluate, each computed for the generated corpus and for the control (the test split)
against the training split: validity, fidelity, diversity, privacy and utility. Counts, fractions and lengths only."""

from __future__ import annotations

from collections import Counter

import numpy as np

from medgen.core.config import EvaluateConfig
from medgen.core.constants import SECTION_HEADINGS
from medgen.data.phi.forms import count_forms
from medgen.data.record_format import parse
from medgen.evaluate import metrics
from medgen.evaluate.corpus import Corpus, Generation, Indexed, diff, frac, ratio, sample

DISTINCT_N = (1, 2, 3)


# --- 1. validity -----------------------------------------------------------------------------------------

def _adherence(corpus: Corpus, rejected: list[dict]) -> dict[str, dict]:
    """Per requested service: requests, and the fractions whose record had the requested Sex and Service.
    A rejected request counts against a check when its last attempt failed that check."""
    planned: Counter = Counter()
    wrong_sex: Counter = Counter()
    wrong_service: Counter = Counter()
    for text, sex, service in zip(corpus.texts, corpus.sexes, corpus.services):
        key = service or "(unknown)"
        planned[key] += 1
        layout = parse(text)
        got_sex, got_service = layout.fields["Sex"] or "", layout.fields["Service"] or ""
        wrong_sex[key] += not (sex and got_sex and got_sex[0].upper() == sex[0].upper())
        wrong_service[key] += not (service and got_service.upper() == service.upper())
    for r in rejected:
        planned[r["service"]] += 1
        wrong_sex[r["service"]] += "wrong sex" in r["reasons"]
        wrong_service[r["service"]] += "wrong service" in r["reasons"]
    return {s: {"requests": n, "sex": frac(n - wrong_sex[s], n), "service": frac(n - wrong_service[s], n)}
            for s, n in sorted(planned.items())}


def _aligned(corpus: Corpus) -> float | None:
    """Fraction of labelled records whose every span matches the text at its offsets."""
    if corpus.spans is None or not len(corpus):
        return None
    ok = sum(all(0 <= s["start"] < s["end"] <= len(t) and t[s["start"]:s["end"]] == s["text"] for s in spans)
             for t, spans in zip(corpus.texts, corpus.spans))
    return frac(ok, len(corpus))


def validity(generated: Corpus, raw: Corpus, control: Corpus, train: Corpus, generation: Generation) -> dict:
    """generate's valid fraction and rejections, Sex/Service adherence, markup and internal consistency (the
    service check against the diagnoses the training split shows under each service)."""
    diagnoses = metrics.diagnosis_services(train.texts)
    planned = generation.counts.get("planned", 0)
    bad_markup = generation.rejections_by_reason.get("bad markup", 0)
    return {
        "valid_fraction": generation.counts.get("valid_fraction"),
        "planned": planned, "valid": generation.counts.get("valid"), "rejected": generation.counts.get("rejected"),
        "rejections_by_reason": dict(generation.rejections_by_reason),
        "adherence": {"generated": _adherence(generated, generation.rejected), "control": _adherence(control, [])},
        "markup": {
            "generated": {"bad_markup_rejections": bad_markup,
                          "well_formed_fraction": diff(1.0, frac(bad_markup, planned)),
                          "spans_aligned_fraction": _aligned(generated)},
            "control": {"bad_markup_rejections": 0, "well_formed_fraction": 1.0 if len(control) else None,
                        "spans_aligned_fraction": _aligned(control)}},
        # The released corpus is judged; the model's own output (before surrogates) and the control beside it.
        "consistency": {name: metrics.consistency_summary([metrics.consistency(t, diagnoses) for t in c.texts])
                        for name, c in (("generated", generated), ("raw", raw), ("control", control))},
        # Every attempt the model made that passed the validity checks, as generate checked it before release
        # (inconsistent ones were retried where generate.reject_inconsistent holds): the model's own rate.
        "model_attempts": generation.consistency,
    }


# --- 2. fidelity -----------------------------------------------------------------------------------------

def _phi_per_record(corpus: Corpus) -> dict[str, float] | None:
    if corpus.spans is None or not len(corpus):
        return None
    counts = Counter(s["category"] for spans in corpus.spans for s in spans)
    return {k: round(v / len(corpus), 3) for k, v in sorted(counts.items())}


def fidelity(generated: Indexed, control: Indexed, train: Indexed) -> dict:
    """Length distribution (KS against train), section coverage and PHI spans per record, for all three corpora."""
    trio = {"generated": generated, "control": control, "train": train}
    lengths = {k: x.tokens.seqs.lengths for k, x in trio.items()}
    coverage: dict[str, dict[str, float | None]] = {h: {} for h in SECTION_HEADINGS}
    mean_fraction: dict[str, float | None] = {}
    for k, x in trio.items():
        found = Counter(h for t in x.corpus.texts for h in parse(t).sections)
        for h in SECTION_HEADINGS:
            coverage[h][k] = frac(found[h], len(x))
        mean_fraction[k] = frac(sum(found.values()), len(x) * len(SECTION_HEADINGS))

    def gap(k: str) -> float | None:
        diffs = [abs(c[k] - c["train"]) for c in coverage.values() if c[k] is not None and c["train"] is not None]
        return round(sum(diffs) / len(diffs), 4) if diffs else None

    phi = {k: _phi_per_record(x.corpus) for k, x in trio.items()}
    categories = sorted(set().union(*(p or {} for p in phi.values())))
    return {
        "length_tokens": {**{k: {"n": int(len(v)), **metrics.summary(v)} for k, v in lengths.items()},
                          "ks_vs_train": {"generated": metrics.ks_statistic(lengths["generated"], lengths["train"]),
                                          "control": metrics.ks_statistic(lengths["control"], lengths["train"])}},
        "sections": {"coverage": coverage, "mean_fraction": mean_fraction,
                     "mean_abs_gap_to_train": {"generated": gap("generated"), "control": gap("control")}},
        "phi_per_record": {c: {k: p.get(c, 0.0) if p is not None else None for k, p in phi.items()}
                           for c in categories},
        "phi_spans_per_record": {k: round(sum(p.values()), 3) if p is not None else None for k, p in phi.items()},
    }


# --- 3. diversity ----------------------------------------------------------------------------------------

def _diversity_figures(x: Indexed, docs: np.ndarray, ev: EvaluateConfig) -> dict[str, float | None]:
    out: dict[str, float | None] = {f"distinct_{n}": metrics.distinct_n(x.words, n, docs) for n in DISTINCT_N}
    out["compression_ratio"] = metrics.compression_ratio(x.corpus.texts[i] for i in docs)
    out["near_duplicate_rate"] = metrics.near_duplicate_rate_within(x.signatures, ev.near_duplicate_jaccard,
                                                                    docs.tolist())
    return out


def diversity(generated: Indexed, control: Indexed, train: Indexed, ev: EvaluateConfig) -> dict:
    """Each corpus beside an equally large sample of the training split: distinct-n falls and within-corpus
    near-duplicates rise with corpus size, so only equal sizes compare."""
    out = {}
    for name, x in (("generated", generated), ("control", control)):
        m = min(len(x), len(train))
        own = _diversity_figures(x, sample(len(x), m, ev.seed), ev)
        ref = _diversity_figures(train, sample(len(train), m, ev.seed), ev)
        out[name] = {"sample": m, "figures": own, "train": ref,
                     "ratio_to_train": {k: ratio(own[k], ref[k]) for k in own}}
    return out


# --- 4. privacy ------------------------------------------------------------------------------------------

def _phi_values(x: Indexed) -> list[dict[str, set[str]]]:
    spans = x.corpus.spans or [None] * len(x)
    return [metrics.phi_values(t, s) for t, s in zip(x.corpus.texts, spans)]


def privacy(generated: Indexed, released: Indexed, control: Indexed, train: Indexed, ev: EvaluateConfig) -> dict:
    """PHI reuse, verbatim overlap and near-duplicates of training records, each with its excess over the control.

    `generated` is the model's own output (what it would leak); `released` the corpus after the surrogate pass,
    whose PHI reuse shows what reaches users (the same corpus when generate kept the model's values)."""
    train_values = _phi_values(train)
    reuse = {name: metrics.phi_reuse(_phi_values(x), train_values) for name, x in
             (("generated", generated), ("control", control), ("released", released))}
    verbatim = {name: metrics.verbatim_overlap(x.tokens, train.tokens, ev.window) for name, x in
                (("generated", generated), ("control", control))}
    near = {name: metrics.near_duplicate_rate(x.signatures, train.signatures, ev.near_duplicate_jaccard)
            for name, x in (("generated", generated), ("control", control))}
    return {
        "phi_reuse": {**reuse, "excess": {k: diff(reuse["generated"][k]["fraction"], reuse["control"][k]["fraction"])
                                          for k in metrics.REUSE_KINDS},
                      "released_excess": {k: diff(reuse["released"][k]["fraction"], reuse["control"][k]["fraction"])
                                          for k in metrics.REUSE_KINDS}},
        "verbatim": {**verbatim, "excess": {k: diff(verbatim["generated"][k], verbatim["control"][k]) for k in
                                            ("window_fraction", "records_with_window_fraction", "longest_run_max",
                                             "longest_run_median")}},
        "near_duplicates_of_train": {**near, "excess": diff(near["generated"], near["control"]),
                                     "jaccard": ev.near_duplicate_jaccard, "shingle_words": ev.shingle},
    }


# --- 5. utility ------------------------------------------------------------------------------------------

def utility(generated: Corpus, train: Corpus, test: Corpus, ev: EvaluateConfig) -> dict | None:
    """F1 of a CRF tagger trained on generated records over F1 of the same tagger trained on as many training
    records, both tested on the test split. None when the generated or prepared records carry no labels."""
    n = min(len(generated), len(train), ev.utility_max_records)
    if generated.spans is None or train.spans is None or test.spans is None or n == 0 or not len(test):
        return None
    test_records = list(zip(test.texts, test.spans))
    scores = {}
    for name, c in (("synthetic", generated), ("train", train)):
        picked = sample(len(c), n, ev.seed)
        scores[name] = metrics.tagger_scores([(c.texts[i], c.spans[i]) for i in picked], test_records,
                                             ev.crf_max_iterations)
    return {"records_per_tagger": n, "test_records": len(test), **scores,
            "ratio": ratio(scores["synthetic"]["micro"]["f1"], scores["train"]["micro"]["f1"])}


# --- surface forms ----------------------------------------------------------------------------------------

def surface_forms(generated: Corpus, train: Corpus) -> dict[str, dict] | None:
    """Per category: spans, how many surface forms, and the commonest forms (with counts), in the released corpus
    and the training split: a corpus with one date format teaches and tests nothing about the others."""
    if generated.spans is None:
        return None
    out: dict[str, dict] = {}
    for name, c in (("generated", generated), ("train", train)):
        if c.spans is None:
            continue
        for category, forms in count_forms(zip(c.texts, c.spans)).items():
            out.setdefault(category, {})[name] = {"spans": sum(forms.values()), "forms": len(forms),
                                                  "top": dict(forms.most_common(4))}
    return dict(sorted(out.items()))
