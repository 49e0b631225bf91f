"""What every part of the platform shares, below all of them: where data lives, the landing
layout and the raw stage's event rules, durable file writes, and the SQL plumbing.

Nothing here imports Dagster or another package of the platform.
"""
