"""Synthetic request traffic as landing files, for demos, tests and benchmarks."""

from telemetry_synth.generate import GenerationSummary, generate_landing
from telemetry_synth.model import Incident

__all__ = ["GenerationSummary", "Incident", "generate_landing"]
