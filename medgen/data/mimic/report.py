"""The import report: masks per rule, PHI spans per category, skipped notes, and the fraction of masks typed
by a specific rule rather than the fallback."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from medgen.data.mimic.rules import FALLBACK_RULE, NON_PHI, RULES


@dataclass
class ImportReport:
    notes: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> CSV line numbers
    categories: Counter = field(default_factory=Counter)  # PHI spans per i2b2 category
    rules: Counter = field(default_factory=Counter)  # masks per rule
    non_phi: str = "filler"

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)

    def as_dict(self) -> dict:
        total = sum(self.rules.values())
        fallback = self.rules.get(FALLBACK_RULE.name, 0)
        non_phi_rules = {r.name for r in RULES if r.category == NON_PHI}
        return {
            "notes": self.notes,
            "skipped": {k: {"count": len(v), "lines": v[:50]} for k, v in self.skipped.items()},
            "masks": total,
            "categories": dict(self.categories.most_common()),
            "rules": dict(self.rules.most_common()),
            "non_phi_masks": sum(n for r, n in self.rules.items() if r in non_phi_rules),
            "non_phi_treatment": self.non_phi,
            "fallback_masks": fallback,
            "resolved_by_specific_rule": round(1 - fallback / total, 4) if total else None,
        }
