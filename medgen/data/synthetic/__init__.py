"""The synthetic engine: PHI-bearing discharge records in the MIMIC-IV layout, with gold spans.

Owns the clinical tables (`clinical`), case drawing (`case`), the phrase language (`phrases`), the section
writers (`sections/`) and the engine (`engine`). Exports `records(n, seed, profile)`, `build_record`, `Record`
and `Span`.
"""

from medgen.data.synthetic.engine import build_record, records
from medgen.data.synthetic.text import Record, Span

__all__ = ["Record", "Span", "build_record", "records"]
