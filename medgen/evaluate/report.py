"""REPORT.md and the self-contained report.html: sections of tables and plots, figures only."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgen.core.constants import CANARY_SECRETS
from medgen.core.plots import figure
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
