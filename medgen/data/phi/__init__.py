"""PHI: the one category table (`categories`: i2b2 2014 category, HIPAA identifier, markup code, surrogate maker),
how notes write dates (`dates`) and the other categories (`forms`), and the surrogate pass that replaces every PHI
value of a record with a fresh, consistent one (`surrogates`).

A declared interface: the markup, the engines, the importers, generate and evaluate all read it.
"""
