"""safeguards: formal-specification safeguards for safe RL and safe LLM fine-tuning.

>>> import safeguards
>>> sg = safeguards.compile_ltl("G !lava")
>>> sg.accepts([{"wood"} - {"wood"}, {"lava"}])
False
"""

from safeguards.automata import Monitor, RuleInfo, Safeguard, StepResult, Verdict
from safeguards.compiler import compile, compile_ltl, compile_spec
from safeguards.errors import BackendUnavailable, SafeguardsError, SpecError, TraceError

__version__ = "0.1.0"

__all__ = [
    "compile", "compile_ltl", "compile_spec", "Safeguard", "Monitor", "StepResult", "Verdict",
    "RuleInfo", "SafeguardsError", "SpecError", "TraceError", "BackendUnavailable", "__version__",
]
