"""Automata: construction (LTL progression, regex derivatives, machines), product, analysis, I/O."""

from safeguards.automata.analysis import Verdict
from safeguards.automata.build import RuleInfo
from safeguards.automata.safeguard import Monitor, Safeguard, StepResult

__all__ = ["Verdict", "RuleInfo", "Safeguard", "Monitor", "StepResult"]
