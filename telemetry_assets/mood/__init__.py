"""Burn-rate mood of each scenario, and the outbox that notifies its changes once."""
