"""Scoring: embedding caches, pair scores, metrics, plots and results tables (stage 8)."""
