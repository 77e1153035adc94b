"""Metrics of a synthetic corpus against its training data: pure functions over texts, PHI spans and arrays.

Every figure here is a count, a fraction or a length: none returns record text, since records may hold real
PHI. `medgen.evaluate` calls these on the generated corpus and on the control (held-out test records), each
against the training split.

Scaling: nothing compares records pairwise. Token n-grams are hashed with a polynomial rolling hash over
random 64-bit token values, vectorized with numpy (`NgramHashes`): the hashes of every window of any length
cost O(tokens) array work, and membership in the training set is a search in a sorted array. Near-duplicates
go through MinHash LSH (datasketch), which only ever compares records that share a band.
"""

from medgen.data.formats.bio import bio
from medgen.evaluate.metrics.consistency import (
                                                 CHECKS,
                                                 consistency,
                                                 consistency_summary,
                                                 diagnosis_services,
                                                 parse_date,
                                                 primary_diagnosis,
                                                 sections,
)
from medgen.evaluate.metrics.diversity import compression_ratio, distinct_n, ks_statistic, summary
from medgen.evaluate.metrics.neardup import Signatures, near_duplicate_rate, near_duplicate_rate_within
from medgen.evaluate.metrics.ngrams import TOKEN_RE, NgramHashes, Sequences, Vocabulary, verbatim_overlap
from medgen.evaluate.metrics.phi import REUSE_KINDS, phi_reuse, phi_values
from medgen.evaluate.metrics.tagger import entities, entity_scores, tagger_scores

__all__ = ["CHECKS", "REUSE_KINDS", "TOKEN_RE", "NgramHashes", "Sequences", "Signatures", "Vocabulary", "bio",
           "compression_ratio", "consistency", "consistency_summary", "diagnosis_services", "distinct_n", "entities", "entity_scores",
           "ks_statistic", "near_duplicate_rate", "near_duplicate_rate_within", "parse_date", "phi_reuse",
           "phi_values", "primary_diagnosis", "sections", "summary", "tagger_scores", "verbatim_overlap"]
