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

import logging
import time
from typing import Callable

from medgen.core.config import PipelineConfig
from medgen.core.errors import DataError
from medgen.core.io import atomic_dir, owner_only, write_json
from medgen.core.provenance import fingerprint
from medgen.core.results import EvaluateResult, GenerateResult, PrepareResult
from medgen.evaluate.corpus import distinct, index, load_generated, load_split
from medgen.evaluate.figures import diversity, fidelity, privacy, surface_forms, utility, validity
from medgen.evaluate.gate import canary_figures, judge
from medgen.evaluate.report import LENGTH_PLOT, PHI_PLOT, html_report, markdown, plots, sections_of
from medgen.evaluate.utility import difficulty, external_utility

log = logging.getLogger(__name__)

REPORT_FILE = "REPORT.md"
HTML_FILE = "report.html"
METRICS_FILE = "metrics.json"


def _timed(timings: dict[str, float], name: str, fn: Callable, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[name] = round(time.perf_counter() - t0, 2)
    log.info("evaluate: %s in %.1f s", name, timings[name])
    return out


def inputs(config: PipelineConfig) -> dict:
    """What the report depends on (medgen/core/skip.py): evaluate and gate settings, the splits, the corpus and,
    where current, the canary figures."""
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    generated = GenerateResult.from_manifest(config.stage_dir("generate"))
    _, canaries_fp = canary_figures(config, prepared)
    return fingerprint({"evaluate": config.evaluate.model_dump(mode="json"), "gate": config.gate.model_dump(mode="json")},
                       {"prepare": prepared.identity, "generate": generated.identity,
                        **({"canaries": canaries_fp} if canaries_fp else {})})


def run(config: PipelineConfig) -> EvaluateResult:
    """Evaluate `generate/` against `prepare/`'s splits and write the report; the gate's verdict is in the
    result (see `EvaluateResult.raise_for_gate`)."""
    t0 = time.perf_counter()
    ev = config.evaluate
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    gen_dir = config.stage_dir("generate")
    generated, raw, generation, _ = load_generated(gen_dir, prepared.phi_markup == "inline")
    train, test = distinct(load_split(prepared, "train")), load_split(prepared, "test")
    if not len(test) or not len(train):
        raise DataError([f"{prepared.out_dir}: evaluate needs records in the train and test splits, got "
                         f"{len(train)} and {len(test)}; prepare with data.split.test > 0"])
    timings: dict[str, float] = {}
    gen_x, raw_x, ctl_x, train_x = _timed(timings, "index", index, [generated, raw, test, train], ev)
    figures = {
        "validity": _timed(timings, "validity", validity, generated, raw, test, train, generation),
        "fidelity": _timed(timings, "fidelity", fidelity, gen_x, ctl_x, train_x),
        "diversity": _timed(timings, "diversity", diversity, gen_x, ctl_x, train_x, ev),
        # Memorization is the model's: measured on its own output; the released corpus is checked beside it.
        "privacy": _timed(timings, "privacy", privacy, raw_x, gen_x, ctl_x, train_x, ev),
        "utility": _timed(timings, "utility", utility, generated, train, test, ev),
        "external_utility": _timed(timings, "external utility", external_utility, generated, train, ev),
        "difficulty": _timed(timings, "difficulty", difficulty, list(zip(generated.texts, generated.spans))
                             if generated.spans is not None else [], ev),
    }
    figures["canaries"], _ = canary_figures(config, prepared)
    gate = judge(figures["validity"], figures["privacy"], figures["external_utility"] or figures["utility"],
                 figures["canaries"], config.gate, figures["difficulty"])
    sizes = {"generated": len(generated), "train": len(train), "test": len(test)}
    figures["surface_forms"] = surface_forms(generated, train)
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
        sample = (generated.texts[0], generated.spans[0]) if generated.spans and len(generated) else None
        (tmp / HTML_FILE).write_text(html_report(secs, title, images, sample), encoding="utf-8")
        write_json(tmp / METRICS_FILE, {"sizes": sizes, **figures, "gate": gate})
        result = EvaluateResult(out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp, sizes=sizes,
                                **figures, gate=gate, timings_s=timings, files=files)
        result.write(config.to_yaml(), tmp)
    log.info("evaluate: gate %s (%d reason(s)); %d generated vs %d train, %d test records, in %.1f s",
             "passed" if gate["passed"] else "FAILED", len(gate["reasons"]), *sizes.values(), result.wall_s)
    return result


def report(m: EvaluateResult) -> list[str]:
    verdict = "passes" if m.gate["passed"] else "FAILS"
    return [f"gate {verdict}" + "".join(f"\n  - {r}" for r in m.gate["reasons"]),
            f"report: {m.files.get('report')}  {m.files.get('html')}"]
