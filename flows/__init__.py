"""Prefect flows composing the medgen tasks."""
