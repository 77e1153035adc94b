"""REPORT.md and the self-contained report.html: sections of tables and plots, figures only."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgen.core.constants import CANARY_SECRETS
from medgen.core.plots import figure
from medgen.data.phi.categories import BY_NAME
from medgen.evaluate import metrics

LENGTH_PLOT = "length_histogram.png"
PHI_PLOT = "phi_per_record.png"


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
    cons = v["consistency"]
    corpora = [k for k in ("generated", "raw", "control") if k in cons]
    consistency_rows = [[k, *(x for c in corpora for x in (cons[c][k]["failed_fraction"], cons[c][k]["checked"]))]
                        for k in metrics.CHECKS]
    consistency_rows.append(["any check failed (fraction of records)",
                             *(x for c in corpora for x in (cons[c]["records_with_any_failure"], ""))])
    consistency_head = ["check", *(x for c in corpora for x in (f"{_NAMES[c]} failed", "checked"))]
    services = sorted(set(v["adherence"]["generated"]) | set(v["adherence"]["control"]))
    adh = [[s, *(v["adherence"][k].get(s, {}).get(x) for k in ("generated", "control")
                 for x in ("requests", "sex", "service"))] for s in services]
    out = [scorecard(m, gate), Section(
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
         ("Internal consistency: the failed fraction of the records each check could read (the released corpus is "
          "judged by the gate; the model's own records, before surrogates, beside it)",
          (consistency_head, consistency_rows))], []))
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
                                                             ("generated", "control", "train"))]])),
         *_surface_form_tables(m.get("surface_forms"))],
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
        "The model's own records (before surrogates: what it would leak) against the training split, and the control "
        "(test records) against the same split; the excess over the control is what signals memorization. The last "
        "columns check the released corpus: after the surrogate pass it should repeat no training value.",
        [("PHI reuse: fraction of values found verbatim among training PHI values",
          (["kind", "model values", "model reused", "control values", "control reused", "excess", "released reused"],
           [[k, reuse["generated"][k]["values"], reuse["generated"][k]["fraction"], reuse["control"][k]["values"],
             reuse["control"][k]["fraction"], reuse["excess"][k], reuse.get("released", {}).get(k, {}).get("fraction")]
            for k in metrics.REUSE_KINDS])),
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
    out += external_sections(m.get("external_utility"))
    out.append(difficulty_section(m.get("difficulty")))
    return out


def difficulty_section(d: dict | None) -> Section:
    title = "7. Difficulty: is the corpus as hard to de-identify as real notes?"
    if not d:
        return Section(title, "Not measured: the released records carry no PHI labels.", [], [])
    rows = [[name, *(_ci(s[k]["micro"][x], s[k]["micro"][f"{x}_ci"]) for k in ("strict", "partial") for x in ("f1",)),
             _ci(s["strict"]["micro"]["f2"], s["strict"]["micro"]["f2_ci"]), _ci(s["token_recall"], s["token_recall_ci"])]
            for name, s in ((f"this corpus ({d['records']} records)", d["corpus"]),
                            (f"hand-written notes, leave-patients-out ({d['reference']['notes']} notes)",
                             d["reference"]))]
    return Section(title, f"A CRF trained on the {d['reference']['notes']} hand-written notes shipped with medgen, "
                   "scored on this corpus and, trained on the other patients' notes, on each held-out patient's. The gap "
                   f"(strict F1) is how much the corpus flatters a tool tested on it: {d['gap']:+.3f} "
                   "(gate.max_difficulty_gap gates on it where set).",
                   [("", (["tested on", "strict F1", "partial F1", "strict F2", "PHI tokens caught"], rows))], [])


def _ci(value, ci) -> str:
    return f"{_cell(value)} [{_cell(ci[0])}, {_cell(ci[1])}]" if value is not None and ci else _cell(value)


def _model_attempts(k: dict) -> str:
    """The model's own rate of inconsistent records, from every valid attempt generate checked."""
    if not k.get("checked_attempts"):
        return ""
    return (f"the model's own records {_cell(k['inconsistent_fraction'])} ({k['inconsistent_attempts']} of "
            f"{k['checked_attempts']} valid attempts{', retried' if k['reject_inconsistent'] else ''}); ")


def scorecard(m: dict, gate: dict) -> Section:
    """One screen: the verdict and the one figure of each family a reader needs first."""
    v, p, ext = m["validity"], m["privacy"], m.get("external_utility")
    cons = v["consistency"]
    excess = {k: e for k, e in p["phi_reuse"]["excess"].items() if e is not None}
    worst = max(excess, key=excess.get) if excess else None
    released = [x["fraction"] for x in p["phi_reuse"].get("released", {}).values() if x.get("fraction") is not None]
    rows = [
        ["gate", ("PASSED" if gate["passed"] else f"FAILED ({len(gate['reasons'])} reason(s), below)")],
        ["valid records", f"{v['valid']} of {v['planned']} ({_cell(v['valid_fraction'])})"],
        ["records failing a consistency check", f"released {_cell(cons['generated']['records_with_any_failure'])}; "
         + _model_attempts(v.get("model_attempts") or {})
         + f"control {_cell(cons['control']['records_with_any_failure'])}"],
        ["PHI reuse, largest excess over the control (model output)", f"{worst}: {_cell(excess[worst])}"
         if worst else "n/a"],
        ["PHI reuse in the released corpus (largest)", _cell(max(released)) if released else "n/a"],
        ["verbatim windows, excess over the control", _cell(p["verbatim"]["excess"]["window_fraction"])],
    ]
    for name, s in (ext or {}).get("test_sets", {}).items():
        for tagger in ("synthetic", "train", "both"):
            micro = s[tagger]["strict"]["micro"]
            rows.append([f"utility on {name} ({s['notes']} notes): tagger trained on {_TAGGER[tagger]}",
                         f"strict F1 {_ci(micro['f1'], micro['f1_ci'])}, F2 {_ci(micro['f2'], micro['f2_ci'])}, "
                         f"PHI tokens caught {_ci(s[tagger]['token_recall'], s[tagger]['token_recall_ci'])}"])
    if d := m.get("difficulty"):
        rows.append(["difficulty: a CRF trained on the shipped hand-written notes",
                     f"strict F1 {_ci(d['corpus']['strict']['micro']['f1'], d['corpus']['strict']['micro']['f1_ci'])} "
                     f"on this corpus vs {_ci(d['reference']['strict']['micro']['f1'], d['reference']['strict']['micro']['f1_ci'])} "
                     f"on hand-written notes (leave-patients-out): gap {d['gap']:+.3f}, how much the corpus flatters a "
                     "tool tested on it"])
    return Section("Scorecard", "The verdict and the first figure of each family; 95% bootstrap intervals over notes "
                   "in brackets. The sections below hold the rest.", [("", (["", ""], rows))], [])


_TAGGER = {"synthetic": "the released corpus", "train": "the training split", "both": "both"}


def external_sections(ext: dict | None) -> list[Section]:
    if not ext:
        return [Section("6. Utility on external notes", "Not measured: no external test set "
                        "(evaluate.utility_test_sets), or the records carry no PHI labels.", [], [])]
    out = []
    for name, s in ext["test_sets"].items():
        rows = []
        for tagger in TAGGER_ORDER:
            for strategy in ("strict", "partial"):
                micro = s[tagger][strategy]["micro"]
                rows.append([_TAGGER[tagger], strategy, _ci(micro["precision"], micro["precision_ci"]),
                             _ci(micro["recall"], micro["recall_ci"]), _ci(micro["f1"], micro["f1_ci"]),
                             _ci(micro["f2"], micro["f2_ci"]), _ci(s[tagger][strategy]["macro_f1"],
                                                                    s[tagger][strategy]["macro_f1_ci"])])
        cats = sorted(set().union(*(s[t]["strict"]["per_category"] for t in TAGGER_ORDER)))
        per = [[c, *(_ci(s[t]["strict"]["per_category"].get(c, {}).get("f1"),
                         s[t]["strict"]["per_category"].get(c, {}).get("f1_ci")) for t in TAGGER_ORDER),
                max(s[t]["strict"]["per_category"].get(c, {}).get("support", 0) for t in TAGGER_ORDER)]
               for c in cats]
        tokens = [[_TAGGER[t], _ci(s[t]["token_recall"], s[t]["token_recall_ci"])] for t in TAGGER_ORDER]
        out.append(Section(
            f"6. Utility on external notes: {name}",
            f"{s['notes']} notes, {s['entities']} gold PHI entities the engine never wrote. CRF taggers trained on "
            f"{ext['records_per_tagger']} released records, as many training records, and both; entity-level scores "
            "(strict: exact span and category; partial: overlapping span, half credit), micro and macro over the "
            f"categories in the gold set; F2 weighs recall four times precision. Utility ratio (strict F1, released "
            f"over training): {_cell(s['ratio'])}.",
            [("Micro and macro scores", (["tagger", "match", "precision", "recall", "F1", "F2", "macro F1"], rows)),
             ("Strict F1 per category", (["category", *(_TAGGER[t] for t in TAGGER_ORDER), "support"], per)),
             ("PHI tokens a tool would not leak (token-level recall)", (["tagger", "recall"], tokens))], []))
    return out


TAGGER_ORDER = ("synthetic", "train", "both")


_NAMES = {"generated": "released", "raw": "model output", "control": "control"}


def _surface_form_tables(forms: dict | None) -> list:
    if not forms:
        return []
    rows = []
    for category, by in forms.items():
        g, tr = by.get("generated", {}), by.get("train", {})
        top = ", ".join(f"{k} ({n})" for k, n in g.get("top", {}).items())
        rows.append([category, g.get("spans", 0), g.get("forms", 0), tr.get("spans", 0), tr.get("forms", 0), top])
    return [("Surface forms per PHI category (how many distinct ways the corpus writes it)",
             (["category", "released spans", "released forms", "train spans", "train forms", "commonest released forms"],
              rows))]


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


def highlighted(text: str, spans: list[dict]) -> str:
    """A record as HTML with each PHI span marked and named by its category (hover for it)."""
    esc = html.escape
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        code = BY_NAME[s["category"]].code if s["category"] in BY_NAME else "other"
        out += [esc(text[pos:s["start"]]), f'<mark class="{code}" title="{esc(s["category"])}">{esc(s["text"])}'
                f'<sub>{esc(code)}</sub></mark>']
        pos = s["end"]
    out.append(esc(text[pos:]))
    return "<pre class='record'>" + "".join(out) + "</pre>"


def html_report(sections: list[Section], title: str, images: dict[str, bytes],
                sample: tuple[str, list[dict]] | None = None) -> str:
    """One file to mail or archive: the plots are embedded as base64 PNG. With `sample`, one released record with its
    PHI spans highlighted closes it (this file is owner-only; REPORT.md and the metrics carry figures only)."""
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
    if sample is not None:
        body.append("<h2>A released record, its PHI spans marked</h2>" + highlighted(*sample))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
             ".record{white-space:pre-wrap;background:#fafafa;padding:1em;border:1px solid #ddd}"
             "mark{background:#ffe08a;padding:0 2px}mark sub{color:#7a5b00;font-size:.7em;margin-left:2px}")
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
