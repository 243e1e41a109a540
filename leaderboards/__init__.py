"""Leaderboards: run records and published MTEB results → ranked markdown tables."""
