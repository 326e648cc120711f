"""Plumbing every stage shares: one-line errors, manifests and atomic writes, option metadata for the
CLI, progress bars, tables, plots, statistics and the registries of pluggable kinds."""
