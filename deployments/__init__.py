"""Deployment templates shipped with medgen as package data (installed as `medgen.deployments`)."""
