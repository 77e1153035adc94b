"""MIMIC-IV-Note import: every `___` of a discharge note becomes a typed, realistic surrogate.

Owns the mask rules (`rules`), the surrogate makers (`surrogates`), filling a note so it reads naturally
(`fixups`), the CSV reader (`reader`) and the import report (`report`). Exports `read_notes` and `Note`.
"""

from medgen.data.mimic.reader import Note, read_notes

__all__ = ["Note", "read_notes"]
