"""The section writers of a synthetic record, one module per group of sections, in record order."""
