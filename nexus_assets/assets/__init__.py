"""Dagster asset definitions, one module per pipeline stage."""
