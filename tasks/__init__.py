"""Prefect tasks: one thin wrapper per medgen stage, with retries for transient errors only."""
