"""medgen: fine-tune an instruct LLM into a generator of synthetic PHI-bearing discharge records.

Stage logic lives here and never imports Prefect; `tasks/` and `flows/` wrap it.
"""

__version__ = "0.1.0"
