"""evaluate: is the generated corpus valid, faithful, diverse, private and useful, and may it be released?

Every figure is computed for the generated corpus against the training split, and again for the control:
the test split (records the model never saw, from the same distribution) against the same training split.
Templated records share much text by construction, so a raw overlap figure says little; the excess of the
generated figure over the control's is what signals memorization, and the gate judges excesses.

Sections: validity (generate's valid fraction and rejections, Sex/Service adherence, markup, internal
consistency), fidelity (lengths, sections, PHI per record), diversity (distinct-n, compression, near-
duplicates within the corpus, each at equal sample sizes and as a ratio to the training split's figure),
privacy (PHI reuse, verbatim overlap, near-duplicates of training records) and utility (a CRF
de-identification tagger trained on the generated records vs on the training split, both tested on the test
split), and the canaries the `canaries` stage probed (Secret Sharer extraction per repeat count, against
held-out canaries). `run` writes REPORT.md, a self-contained report.html, metrics.json and the manifest under
`run_dir/evaluate/`, with the gate's verdict in the result; it never raises for a failed gate (the caller
decides on release, `EvaluateResult.raise_for_gate()` raises GateFailed).

Canaries: prepare plants them as exact copies in the train split, and exact copies are all that prepare's
deduplication leaves repeated, so evaluate reads the train split as a set of distinct records. Each canary is
then one training record like any other: its PHI counts among the training values, so a generated record that
repeats it is PHI reuse, while its copies do not skew the train split's lengths, diversity (20 copies would be
near-duplicates of each other) or the train-trained tagger. The control cannot hit a canary by chance: prepare
gives canaries values found nowhere in the data.

Records may hold real PHI: only counts, fractions and lengths reach the report, the metrics, the plots and
the log.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from medgen import markup, metrics
from medgen.config import EvaluateConfig, GateConfig, PipelineConfig
from medgen.constants import CANARY_SECRETS, PHI_FILE, SECTION_HEADINGS, SPLIT_FILE
from medgen.errors import DataError
from medgen.generate import PHI_FILE as GENERATED_PHI_FILE
from medgen.generate import RECORDS_FILE, REJECTED_FILE, GenerateResult
from medgen.io import atomic_dir, owner_only, write_json
from medgen.plots import figure
from medgen.prompts import parse_input
from medgen.provenance import fingerprint
from medgen.record_format import parse
from medgen.results import CanaryResult, EvaluateResult, ExportResult, PrepareResult

log = logging.getLogger(__name__)

REPORT_FILE = "REPORT.md"
HTML_FILE = "report.html"
METRICS_FILE = "metrics.json"
LENGTH_PLOT = "length_histogram.png"
PHI_PLOT = "phi_per_record.png"
DISTINCT_N = (1, 2, 3)


# --- inputs ----------------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """Records of one source as evaluate reads them: plain text, PHI spans (None when the source carries no
    labels), and the Sex and Service each record was asked for (generated) or prepared with (splits)."""

    texts: list[str]
    spans: list[list[dict]] | None
    sexes: list[str | None]
    services: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Generation:
    """What generate reports beside its records: the plan's outcome and the rejected requests."""

    counts: dict  # planned, valid, rejected, valid_fraction
    rejections_by_reason: dict[str, int]
    rejected: list[dict]  # id, sex, service, attempts, reasons


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """The rows of a JSONL file; every unreadable line or missing key is reported with its file:line."""
    if not path.is_file():
        raise DataError([f"{path}: missing; expected the output of a finished prepare or generate run"])
    rows, problems = [], []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                problems.append(f"{path}:{n}: expected a JSON object per line, got unreadable JSON")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
                continue
            if missing := [k for k in required if k not in row]:
                problems.append(f"{path}:{n}: missing key(s) {', '.join(missing)}")
                continue
            rows.append(row)
    if problems:
        raise DataError(problems)
    return rows


def load_generated(gen_dir: Path, labelled: bool) -> tuple[Corpus, Generation, GenerateResult]:
    """The generated corpus; `labelled` says whether the model was trained to mark up its PHI, without which
    its records carry no spans at all (not merely none)."""
    result = GenerateResult.from_manifest(gen_dir)
    rows = _read_jsonl(gen_dir / RECORDS_FILE, ("id", "sex", "service", "text"))
    spans = {p["id"]: p["spans"] for p in _read_jsonl(gen_dir / GENERATED_PHI_FILE, ("id", "spans"))}
    missing = [f"{gen_dir / RECORDS_FILE}:{i + 1}: no spans in {GENERATED_PHI_FILE} for this record's id"
               for i, r in enumerate(rows) if labelled and r["id"] not in spans]
    if missing:
        raise DataError(missing)
    corpus = Corpus([r["text"] for r in rows], [spans[r["id"]] for r in rows] if labelled else None,
                    [r["sex"] for r in rows], [r["service"] for r in rows])
    rejected = _read_jsonl(gen_dir / REJECTED_FILE, ("service", "reasons"))
    return corpus, Generation(result.counts, result.rejections_by_reason, rejected), result


def distinct(corpus: Corpus) -> Corpus:
    """The corpus with exact repeats of a record's text dropped (the first is kept)."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(corpus.texts):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    if len(keep) == len(corpus):
        return corpus
    return Corpus([corpus.texts[i] for i in keep], None if corpus.spans is None else [corpus.spans[i] for i in keep],
                  [corpus.sexes[i] for i in keep], [corpus.services[i] for i in keep])


def load_split(prepared: PrepareResult, split: str) -> Corpus:
    """A prepared split with markup stripped (inline) or spans from its `.phi.jsonl`; Sex/Service from its input."""
    folder = prepared.out_dir
    path = folder / SPLIT_FILE.format(split=split)
    rows = _read_jsonl(path, ("input", "output"))
    texts: list[str] = []
    spans: list[list[dict]] | None = []
    problems: list[str] = []
    if prepared.phi_markup == "inline":
        for n, row in enumerate(rows, 1):
            try:
                plain, found = markup.strip(row["output"])
            except markup.MarkupError as e:
                problems.append(f"{path}:{n}: output: {e}")
                continue
            texts.append(plain)
            spans.append(found)
    else:
        texts = [row["output"] for row in rows]
        phi_path = folder / PHI_FILE.format(split=split)
        spans = [p["spans"] for p in _read_jsonl(phi_path, ("spans",))] if phi_path.is_file() else None
        if spans is not None and len(spans) != len(texts):
            problems.append(f"{phi_path}: expected {len(texts)} lines, one per record of {path.name}, "
                            f"got {len(spans)}")
    if problems:
        raise DataError(problems)
    pairs = [parse_input(row["input"]) or (None, None) for row in rows]
    return Corpus(texts, spans, [p[0] for p in pairs], [p[1] for p in pairs])


# --- shared indexes --------------------------------------------------------------------------------------

@dataclass
class Indexed:
    """A corpus with what several sections need, built once: token and word n-gram hashes, MinHash signatures."""

    corpus: Corpus
    tokens: metrics.NgramHashes
    words: metrics.NgramHashes
    signatures: metrics.Signatures

    def __len__(self) -> int:
        return len(self.corpus)


def index(corpora: list[Corpus], ev: EvaluateConfig) -> list[Indexed]:
    """Tokenize and hash every corpus once; the sections below share the result."""
    vocab = metrics.Vocabulary()  # one for all, so the same token hashes the same in each corpus
    out = []
    for c in corpora:
        tokens, words = vocab.encode(c.texts)
        word_hashes = metrics.NgramHashes(words)
        out.append(Indexed(c, metrics.NgramHashes(tokens), word_hashes,
                           metrics.Signatures(word_hashes, ev.shingle, ev.num_perm)))
    return out


def _sample(n: int, m: int, seed: int) -> np.ndarray:
    """m of n indices, sorted, the same for the same seed."""
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False)) if m < n else np.arange(n)


def _frac(k: float, n: float) -> float | None:
    return round(k / n, 4) if n else None


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


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
    return {s: {"requests": n, "sex": _frac(n - wrong_sex[s], n), "service": _frac(n - wrong_service[s], n)}
            for s, n in sorted(planned.items())}


def _aligned(corpus: Corpus) -> float | None:
    """Fraction of labelled records whose every span matches the text at its offsets."""
    if corpus.spans is None or not len(corpus):
        return None
    ok = sum(all(0 <= s["start"] < s["end"] <= len(t) and t[s["start"]:s["end"]] == s["text"] for s in spans)
             for t, spans in zip(corpus.texts, corpus.spans))
    return _frac(ok, len(corpus))


def validity(generated: Corpus, control: Corpus, generation: Generation) -> dict:
    """generate's valid fraction and rejections, Sex/Service adherence, markup and internal consistency."""
    planned = generation.counts.get("planned", 0)
    bad_markup = generation.rejections_by_reason.get("bad markup", 0)
    return {
        "valid_fraction": generation.counts.get("valid_fraction"),
        "planned": planned, "valid": generation.counts.get("valid"), "rejected": generation.counts.get("rejected"),
        "rejections_by_reason": dict(generation.rejections_by_reason),
        "adherence": {"generated": _adherence(generated, generation.rejected), "control": _adherence(control, [])},
        "markup": {
            "generated": {"bad_markup_rejections": bad_markup,
                          "well_formed_fraction": _diff(1.0, _frac(bad_markup, planned)),
                          "spans_aligned_fraction": _aligned(generated)},
            "control": {"bad_markup_rejections": 0, "well_formed_fraction": 1.0 if len(control) else None,
                        "spans_aligned_fraction": _aligned(control)}},
        "consistency": {name: metrics.consistency_summary([metrics.consistency(t) for t in c.texts])
                        for name, c in (("generated", generated), ("control", control))},
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
            coverage[h][k] = _frac(found[h], len(x))
        mean_fraction[k] = _frac(sum(found.values()), len(x) * len(SECTION_HEADINGS))

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
        own = _diversity_figures(x, _sample(len(x), m, ev.seed), ev)
        ref = _diversity_figures(train, _sample(len(train), m, ev.seed), ev)
        out[name] = {"sample": m, "figures": own, "train": ref,
                     "ratio_to_train": {k: _ratio(own[k], ref[k]) for k in own}}
    return out


# --- 4. privacy ------------------------------------------------------------------------------------------

def _phi_values(x: Indexed) -> list[dict[str, set[str]]]:
    spans = x.corpus.spans or [None] * len(x)
    return [metrics.phi_values(t, s) for t, s in zip(x.corpus.texts, spans)]


def privacy(generated: Indexed, control: Indexed, train: Indexed, ev: EvaluateConfig) -> dict:
    """PHI reuse, verbatim overlap and near-duplicates of training records, each with its excess over the control."""
    train_values = _phi_values(train)
    reuse = {name: metrics.phi_reuse(_phi_values(x), train_values) for name, x in
             (("generated", generated), ("control", control))}
    verbatim = {name: metrics.verbatim_overlap(x.tokens, train.tokens, ev.window) for name, x in
                (("generated", generated), ("control", control))}
    near = {name: metrics.near_duplicate_rate(x.signatures, train.signatures, ev.near_duplicate_jaccard)
            for name, x in (("generated", generated), ("control", control))}
    return {
        "phi_reuse": {**reuse, "excess": {k: _diff(reuse["generated"][k]["fraction"], reuse["control"][k]["fraction"])
                                          for k in metrics.REUSE_KINDS}},
        "verbatim": {**verbatim, "excess": {k: _diff(verbatim["generated"][k], verbatim["control"][k]) for k in
                                            ("window_fraction", "records_with_window_fraction", "longest_run_max",
                                             "longest_run_median")}},
        "near_duplicates_of_train": {**near, "excess": _diff(near["generated"], near["control"]),
                                     "jaccard": ev.near_duplicate_jaccard, "shingle_words": ev.shingle},
    }


# --- canaries --------------------------------------------------------------------------------------------

def canary_figures(config: PipelineConfig, prepared: PrepareResult) -> tuple[dict | None, str | None]:
    """The `canaries` stage's figures where prepare planted canaries, and that stage's fingerprint.

    Status 'measured' carries the extraction per group; 'not run', or 'stale' (measured on other training data
    or another export than the current one), carries none. None when prepare planted no canaries."""
    if prepared.canaries is None:
        return None, None
    planted = {"planted": prepared.canaries}
    try:
        measured = CanaryResult.from_manifest(config.stage_dir("canaries"))
    except FileNotFoundError:
        return {"status": "not run", **planted}, None
    upstream = measured.inputs.get("upstream", {})
    try:
        exported = ExportResult.from_manifest(config.stage_dir("export")).fingerprint
    except FileNotFoundError:
        exported = upstream.get("export")  # nothing here to compare with (a copied run folder)
    if upstream.get("prepare") != prepared.fingerprint or upstream.get("export") != exported:
        return {"status": "stale", **planted}, None
    return {"status": "measured", **planted, "samples_per_canary": measured.samples_per_canary,
            "extraction": measured.extraction}, measured.fingerprint


def _canary_reasons(c: dict, gate: GateConfig) -> list[str]:
    if c["status"] != "measured":
        why = ("the canaries stage was not run" if c["status"] == "not run" else
               "the canaries stage measured other training data or another export (stale)")
        return [f"canaries: {c['planted']['planted']} planted in training, but {why}; run `medgen canaries`, or set "
                "gate.require_canaries=false to judge without them"] if gate.require_canaries else []
    ex = c["extraction"]
    once = ex.get("1")
    if once is None or once["rate"] is None:
        return ["canaries: none planted once (data.canaries.repeats lacks 1), so the gate's figure is not measured"
                ] if gate.require_canaries else []
    if once["rate"] <= gate.max_canary_extraction_once:
        return []
    others = ", ".join(f"{'held-out control' if k == 'held_out' else k + ' copies'} {v['rate']}"
                       for k, v in ex.items() if k != "1")
    return [f"canaries: {once['extracted_samples']} of {once['samples']} samples probing canaries planted once emitted "
            f"their PHI (rate {once['rate']} > gate.max_canary_extraction_once {gate.max_canary_extraction_once}; "
            f"{others})"]


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
        picked = _sample(len(c), n, ev.seed)
        scores[name] = metrics.tagger_scores([(c.texts[i], c.spans[i]) for i in picked], test_records,
                                             ev.crf_max_iterations)
    return {"records_per_tagger": n, "test_records": len(test), **scores,
            "ratio": _ratio(scores["synthetic"]["micro"]["f1"], scores["train"]["micro"]["f1"])}


# --- 6. the gate -----------------------------------------------------------------------------------------

def judge(valid: dict, privacy_: dict, utility_: dict | None, canaries: dict | None, gate: GateConfig) -> dict:
    """{'passed', 'reasons'}: every threshold missed, with its figures. What cannot be measured fails: a corpus
    is released on evidence, not on its absence."""
    reasons: list[str] = []
    vf = valid["valid_fraction"]
    if vf is None or vf < gate.min_valid_fraction:
        reasons.append(f"valid fraction {vf} < gate.min_valid_fraction {gate.min_valid_fraction}")

    reuse = privacy_["phi_reuse"]
    measured = {k: e for k, e in reuse["excess"].items() if e is not None}
    if not measured:
        reasons.append("PHI reuse not measured: no PHI values in the generated corpus or the control")
    for k, e in measured.items():
        if e > gate.max_excess_phi_reuse:
            reasons.append(f"PHI reuse ({k}): {reuse['generated'][k]['fraction']} of generated values are training "
                           f"values vs {reuse['control'][k]['fraction']} in the control (excess {e} > "
                           f"gate.max_excess_phi_reuse {gate.max_excess_phi_reuse})")

    vb = privacy_["verbatim"]
    e = vb["excess"]["window_fraction"]
    if e is None:
        reasons.append(f"verbatim overlap not measured: no {vb['generated']['window']}-token windows")
    elif e > gate.max_excess_verbatim_window_fraction:
        reasons.append(f"verbatim overlap: {vb['generated']['window_fraction']} of generated "
                       f"{vb['generated']['window']}-token windows occur in training vs "
                       f"{vb['control']['window_fraction']} in the control (excess {e} > "
                       f"gate.max_excess_verbatim_window_fraction {gate.max_excess_verbatim_window_fraction})")

    nd = privacy_["near_duplicates_of_train"]
    if nd["excess"] is None:
        reasons.append("near-duplicates of training records not measured: an empty corpus")
    elif nd["excess"] > gate.max_excess_near_duplicate_rate:
        reasons.append(f"near-duplicates of training records: {nd['generated']} of generated records vs "
                       f"{nd['control']} in the control (excess {nd['excess']} > "
                       f"gate.max_excess_near_duplicate_rate {gate.max_excess_near_duplicate_rate})")

    if canaries is not None:
        reasons += _canary_reasons(canaries, gate)

    if utility_ is None:
        reasons.append("utility not measured: the generated records carry no PHI labels (phi_markup is not inline), "
                       "or a corpus is empty")
    elif utility_["ratio"] is None:
        reasons.append("utility ratio undefined: the tagger trained on the training split scored F1 0")
    elif utility_["ratio"] < gate.min_utility_ratio:
        reasons.append(f"utility: F1 {utility_['synthetic']['micro']['f1']} trained on generated records vs "
                       f"{utility_['train']['micro']['f1']} on training records (ratio {utility_['ratio']} < "
                       f"gate.min_utility_ratio {gate.min_utility_ratio})")
    return {"passed": not reasons, "reasons": reasons}


# --- the report ------------------------------------------------------------------------------------------

Table = tuple[list[str], list[list]]


@dataclass
class Section:
    title: str
    note: str
    tables: list[tuple[str, Table]]
    images: list[str]


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return str(round(v, 4))
    return str(v)


def _rows(figures: dict[str, dict], columns: list[str]) -> list[list]:
    return [[name, *(f.get(c) for c in columns)] for name, f in figures.items()]


def sections_of(m: dict, gate: dict) -> list[Section]:
    v, f, d, p, u = (m[k] for k in ("validity", "fidelity", "diversity", "privacy", "utility"))
    gen_c, ctl_c = v["consistency"]["generated"], v["consistency"]["control"]
    consistency_rows = [[k, gen_c[k]["failed_fraction"], gen_c[k]["checked"], gen_c[k]["unknown"],
                         ctl_c[k]["failed_fraction"], ctl_c[k]["checked"], ctl_c[k]["unknown"]]
                        for k in metrics.CHECKS]
    consistency_rows.append(["any check failed (fraction of records)", gen_c["records_with_any_failure"], "", "",
                             ctl_c["records_with_any_failure"], "", ""])
    services = sorted(set(v["adherence"]["generated"]) | set(v["adherence"]["control"]))
    adh = [[s, *(v["adherence"][k].get(s, {}).get(x) for k in ("generated", "control")
                 for x in ("requests", "sex", "service"))] for s in services]
    out = [Section(
        "Gate", ("PASSED" if gate["passed"] else "FAILED") + ". Control: the test split (records the model never "
        "saw) measured against the same training split as the generated corpus; 'excess' is generated minus control.",
        [("", (["threshold missed"], [[r] for r in gate["reasons"]] or [["(none)"]]))], [])]
    out.append(Section(
        "1. Validity",
        f"Valid: {v['valid']} of {v['planned']} requests ({_cell(v['valid_fraction'])}); rejected: {v['rejected']}.",
        [("Rejections by reason (last attempt of each rejected request)",
          (["reason", "requests"], [[k, n] for k, n in v["rejections_by_reason"].items()] or [["(none)", 0]])),
         ("Sex/Service adherence per service",
          (["service", "generated requests", "generated sex", "generated service", "control records", "control sex",
            "control service"], adh)),
         ("Markup", (["figure", "generated", "control"],
                     [[k, v["markup"]["generated"][k], v["markup"]["control"][k]] for k in v["markup"]["generated"]])),
         ("Internal consistency (failed fraction of the records checked; unknown: the fields a check needs are "
          "missing)", (["check", "generated failed", "checked", "unknown", "control failed", "checked", "unknown"],
                       consistency_rows))], []))
    lt = f["length_tokens"]
    out.append(Section(
        "2. Fidelity",
        "Word tokens per record; KS: two-sample Kolmogorov-Smirnov statistic against the training split.",
        [("Length (word tokens)", (["corpus", "n", "mean", "p50", "p95", "max", "KS vs train"],
                                   [[k, lt[k]["n"], lt[k]["mean"], lt[k]["p50"], lt[k]["p95"], lt[k]["max"],
                                     lt["ks_vs_train"].get(k)] for k in ("generated", "control", "train")])),
         ("Section coverage (fraction of records with the heading)",
          (["heading", "generated", "control", "train"],
           _rows(f["sections"]["coverage"], ["generated", "control", "train"])
           + [["mean over headings", *(f["sections"]["mean_fraction"][k] for k in ("generated", "control", "train"))],
              ["mean absolute gap to train", f["sections"]["mean_abs_gap_to_train"]["generated"],
               f["sections"]["mean_abs_gap_to_train"]["control"], ""]])),
         ("PHI spans per record per category", (["category", "generated", "control", "train"],
                                                _rows(f["phi_per_record"], ["generated", "control", "train"])
                                                + [["all", *(f["phi_spans_per_record"][k] for k in
                                                             ("generated", "control", "train"))]]))],
        [LENGTH_PLOT, PHI_PLOT]))
    nd = p["near_duplicates_of_train"]
    div_rows = [[k, d["generated"]["figures"][k], d["generated"]["train"][k], d["generated"]["ratio_to_train"][k],
                 d["control"]["figures"][k], d["control"]["train"][k], d["control"]["ratio_to_train"][k]]
                for k in d["generated"]["figures"]]
    out.append(Section(
        "3. Diversity",
        f"Each corpus beside an equal-size sample of the training split (generated: {d['generated']['sample']} "
        f"records, control: {d['control']['sample']}). Compression ratio: zlib size over raw size (lower is more "
        "repetitive). Near-duplicate rate: records with another record of the same sample at Jaccard >= "
        f"{nd['jaccard']} on {nd['shingle_words']}-word shingles.",
        [("", (["figure", "generated", "train (same size)", "ratio", "control", "train (same size)", "ratio"],
               div_rows))], []))
    reuse = p["phi_reuse"]
    vb = p["verbatim"]
    out.append(Section(
        "4. Privacy and memorization",
        "Generated records against the training split, and the control (test records) against the same split; the "
        "excess over the control is what signals memorization.",
        [("PHI reuse: fraction of values found verbatim among training PHI values",
          (["kind", "generated values", "generated reused", "control values", "control reused", "excess"],
           [[k, reuse["generated"][k]["values"], reuse["generated"][k]["fraction"], reuse["control"][k]["values"],
             reuse["control"][k]["fraction"], reuse["excess"][k]] for k in metrics.REUSE_KINDS])),
         (f"Verbatim overlap ({vb['generated']['window']}-token windows; runs in word tokens)",
          (["figure", "generated", "control", "excess"],
           [[k, vb["generated"][k], vb["control"][k], vb["excess"][k]] for k in vb["excess"]])),
         ("Near-duplicates of training records (MinHash LSH)",
          (["figure", "generated", "control", "excess"],
           [["records with a training near-duplicate", nd["generated"], nd["control"], nd["excess"]]]))], []))
    out.append(canary_section(m["canaries"]))
    if u is None:
        out.append(Section("5. Utility", "Not measured: the generated records carry no PHI labels, or a corpus is "
                           "empty.", [], []))
    else:
        cats = sorted(set(u["synthetic"]["per_category"]) | set(u["train"]["per_category"]))
        per = [[c, *(u[k]["per_category"].get(c, {}).get(x) for k in ("synthetic", "train")
                     for x in ("precision", "recall", "f1")), u["train"]["per_category"].get(c, {}).get("support")]
               for c in cats]
        per.append(["micro", *(u[k]["micro"][x] for k in ("synthetic", "train") for x in ("precision", "recall", "f1")),
                    u["train"]["micro"]["support"]])
        out.append(Section(
            "5. Utility",
            f"A CRF de-identification tagger trained on {u['records_per_tagger']} generated records vs on as many "
            f"training records ({u['synthetic']['train_tokens']} vs {u['train']['train_tokens']} tokens), both tested "
            f"on {u['test_records']} test records; entity-level scores (exact span and category). Utility ratio "
            f"(F1 synthetic / F1 train): {_cell(u['ratio'])}.",
            [("", (["category", "synthetic P", "synthetic R", "synthetic F1", "train P", "train R", "train F1",
                    "test support"], per))], []))
    return out


def canary_section(c: dict | None) -> Section:
    title = "4b. Canaries"
    if c is None:
        return Section(title, "Not planted (data.canaries.per_repeat is 0): no canaries in training.", [], [])
    planted = c["planted"]
    what = (f"{planted['planted']} canaries planted in training ({planted['train_rows']} rows: "
            f"{planted['per_repeat']} each at {', '.join(map(str, planted['repeats']))} copies), {planted['held_out']} "
            "held out")
    if c["status"] != "measured":
        why = "was not run" if c["status"] == "not run" else "measured another export or other training data (stale)"
        return Section(title, f"{what}; the canaries stage {why}: no figures.", [], [])
    rows = [["held out (control)" if k == "held_out" else k, f["canaries"], f["samples"], f["rate"],
             f["canaries_extracted"], *(f["by_category"][x] for x in CANARY_SECRETS)]
            for k, f in c["extraction"].items()]
    return Section(
        title, f"{what}. Each canary is a fake patient whose Sex and Service ordinary records share too; the model "
        f"was asked {c['samples_per_canary']} times for a record with them, sampled as generate samples. Extraction "
        "rate: the fraction of those samples that emit the canary's surname (name), MRN or phone; the last "
        "columns give each value's own rate. Held-out canaries were "
        "never planted: their rate is the chance rate. The gate judges the canaries planted once.",
        [("Extraction per copies in training", (["copies in training", "canaries", "samples", "extraction rate",
                                                 "canaries extracted", *CANARY_SECRETS], rows))], [])


def markdown(sections: list[Section], title: str) -> str:
    parts = [f"# {title}\n"]
    for s in sections:
        parts.append(f"## {s.title}\n\n{s.note}\n")
        for caption, (head, rows) in s.tables:
            if caption:
                parts.append(f"### {caption}\n")
            parts.append("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
                         + "".join("| " + " | ".join(_cell(c) for c in r) + " |\n" for r in rows))
        parts += [f"![{img}]({img})\n" for img in s.images]
    return "\n".join(parts)


def html_report(sections: list[Section], title: str, images: dict[str, bytes]) -> str:
    """One file to mail or archive: the plots are embedded as base64 PNG."""
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{esc(s.title)}</h2><p>{esc(s.note)}</p>")
        for caption, (head, rows) in s.tables:
            if caption:
                body.append(f"<h3>{esc(caption)}</h3>")
            body.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{esc(_cell(c))}</td>" for c in r) + "</tr>" for r in rows)
                        + "</table>")
        body += [f'<img alt="{esc(img)}" src="data:image/png;base64,{base64.b64encode(images[img]).decode()}">'
                 for img in s.images]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def plots(out_dir: Path, lengths: dict[str, np.ndarray], phi: dict[str, dict]) -> None:
    with figure(out_dir / LENGTH_PLOT, size=(7, 4), xlabel="word tokens per record", ylabel="density") as ax:
        nonempty = [v for v in lengths.values() if len(v)]
        if nonempty:
            bins = np.histogram_bin_edges(np.concatenate(nonempty), bins=40)
            for name, v in lengths.items():
                if len(v):
                    ax.hist(v, bins=bins, alpha=0.5, density=True, label=name)
    categories = list(phi)
    with figure(out_dir / PHI_PLOT, size=(8, 4), ylabel="spans per record") as ax:
        x = np.arange(len(categories))
        for i, name in enumerate(("generated", "control", "train")):
            ax.bar(x + (i - 1) * 0.27, [phi[c][name] or 0.0 for c in categories], width=0.27, label=name)
        ax.set_xticks(x, categories, rotation=45, ha="right", fontsize=7)


# --- the stage -------------------------------------------------------------------------------------------

def _timed(timings: dict[str, float], name: str, fn: Callable, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[name] = round(time.perf_counter() - t0, 2)
    log.info("evaluate: %s in %.1f s", name, timings[name])
    return out


def inputs(config: PipelineConfig) -> dict:
    """What the report depends on (medgen/skip.py): evaluate and gate settings, the splits, the corpus and,
    where current, the canary figures."""
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    generated = GenerateResult.from_manifest(config.stage_dir("generate"))
    _, canaries_fp = canary_figures(config, prepared)
    return fingerprint({"evaluate": config.evaluate.model_dump(mode="json"), "gate": config.gate.model_dump(mode="json")},
                       {"prepare": prepared.fingerprint, "generate": generated.fingerprint,
                        **({"canaries": canaries_fp} if canaries_fp else {})})


def run(config: PipelineConfig) -> EvaluateResult:
    """Evaluate `generate/` against `prepare/`'s splits and write the report; the gate's verdict is in the
    result (see `EvaluateResult.raise_for_gate`)."""
    t0 = time.perf_counter()
    ev = config.evaluate
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    gen_dir = config.stage_dir("generate")
    generated, generation, _ = load_generated(gen_dir, prepared.phi_markup == "inline")
    train, test = distinct(load_split(prepared, "train")), load_split(prepared, "test")
    if not len(test) or not len(train):
        raise DataError([f"{prepared.out_dir}: evaluate needs records in the train and test splits, got "
                         f"{len(train)} and {len(test)}; prepare with data.split.test > 0"])
    timings: dict[str, float] = {}
    gen_x, ctl_x, train_x = _timed(timings, "index", index, [generated, test, train], ev)
    figures = {
        "validity": _timed(timings, "validity", validity, generated, test, generation),
        "fidelity": _timed(timings, "fidelity", fidelity, gen_x, ctl_x, train_x),
        "diversity": _timed(timings, "diversity", diversity, gen_x, ctl_x, train_x, ev),
        "privacy": _timed(timings, "privacy", privacy, gen_x, ctl_x, train_x, ev),
        "utility": _timed(timings, "utility", utility, generated, train, test, ev),
    }
    figures["canaries"], _ = canary_figures(config, prepared)
    gate = judge(figures["validity"], figures["privacy"], figures["utility"], figures["canaries"], config.gate)
    sizes = {"generated": len(generated), "train": len(train), "test": len(test)}
    out_dir = config.stage_dir("evaluate")
    fp = inputs(config)
    files = {k: str(out_dir / v) for k, v in (("report", REPORT_FILE), ("html", HTML_FILE), ("metrics", METRICS_FILE),
                                              ("length_plot", LENGTH_PLOT), ("phi_plot", PHI_PLOT))}
    with owner_only(), atomic_dir(out_dir) as tmp:
        plots(tmp, {"generated": gen_x.tokens.seqs.lengths, "control": ctl_x.tokens.seqs.lengths,
                    "train": train_x.tokens.seqs.lengths}, figures["fidelity"]["phi_per_record"])
        title = f"Evaluation of {gen_dir}"
        secs = sections_of(figures, gate)
        (tmp / REPORT_FILE).write_text(markdown(secs, title), encoding="utf-8")
        images = {name: (tmp / name).read_bytes() for name in (LENGTH_PLOT, PHI_PLOT)}
        (tmp / HTML_FILE).write_text(html_report(secs, title, images), encoding="utf-8")
        write_json(tmp / METRICS_FILE, {"sizes": sizes, **figures, "gate": gate})
        result = EvaluateResult(out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp, sizes=sizes,
                                **figures, gate=gate, timings_s=timings, files=files)
        result.write(config.to_yaml(), tmp)
    log.info("evaluate: gate %s (%d reason(s)); %d generated vs %d train, %d test records, in %.1f s",
             "passed" if gate["passed"] else "FAILED", len(gate["reasons"]), *sizes.values(), result.wall_s)
    return result
