"""The release gate: every threshold of `gate:` judged on the figures, and the canary figures it reads."""

from __future__ import annotations

from medgen.core.config import GateConfig, PipelineConfig
from medgen.core.results import CanaryResult, ExportResult, PrepareResult


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
        exported = ExportResult.from_manifest(config.stage_dir("export")).identity
    except FileNotFoundError:
        exported = upstream.get("export")  # nothing here to compare with (a copied run folder)
    if upstream.get("prepare") != prepared.identity or upstream.get("export") != exported:
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


def judge(valid: dict, privacy_: dict, utility_: dict | None, canaries: dict | None, gate: GateConfig,
          difficulty: dict | None = None) -> dict:
    """{'passed', 'reasons'}: every threshold missed, with its figures. What cannot be measured fails: a corpus
    is released on evidence, not on its absence."""
    reasons: list[str] = []
    vf = valid["valid_fraction"]
    if vf is None or vf < gate.min_valid_fraction:
        reasons.append(f"valid fraction {vf} < gate.min_valid_fraction {gate.min_valid_fraction}")
    consistency = valid.get("consistency", {}).get("generated", {})
    inconsistent = consistency.get("records_with_any_failure")
    if inconsistent is None:
        reasons.append("consistency not measured: no released records")
    elif inconsistent > gate.max_inconsistent_fraction:
        worst = sorted((k for k, v in consistency.items() if isinstance(v, dict) and v.get("failed")),
                       key=lambda k: -consistency[k]["failed"])
        reasons.append(f"consistency: {inconsistent} of released records fail a check > "
                       f"gate.max_inconsistent_fraction {gate.max_inconsistent_fraction} (most often: "
                       + ", ".join(f"{k} {consistency[k]['failed']}" for k in worst[:3]) + ")")

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
        if "test_sets" in utility_:  # external gold sets
            f1 = "; ".join(f"{name}: strict F1 {s['synthetic']['strict']['micro']['f1']} trained on released records vs "
                           f"{s['train']['strict']['micro']['f1']} on training records" for name, s in
                           utility_["test_sets"].items())
        else:
            f1 = (f"F1 {utility_['synthetic']['micro']['f1']} trained on generated records vs "
                  f"{utility_['train']['micro']['f1']} on training records (test split)")
        reasons.append(f"utility: {f1} (ratio {utility_['ratio']} < gate.min_utility_ratio {gate.min_utility_ratio})")
    if gate.max_difficulty_gap is not None:
        if difficulty is None:
            reasons.append("difficulty not measured: the released records carry no PHI labels")
        elif difficulty["gap"] > gate.max_difficulty_gap:
            reasons.append(f"difficulty: a CRF trained on the hand-written notes scores strict F1 "
                           f"{difficulty['corpus']['strict']['micro']['f1']} on the released corpus vs "
                           f"{difficulty['reference']['strict']['micro']['f1']} on hand-written notes it never saw "
                           f"(gap {difficulty['gap']} > gate.max_difficulty_gap {gate.max_difficulty_gap}): the corpus "
                           "is easier than real notes")
    return {"passed": not reasons, "reasons": reasons}
