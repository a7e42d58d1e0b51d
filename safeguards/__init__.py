"""safeguards: formal-specification safeguards for safe RL and safe LLM fine-tuning.

>>> import safeguards
>>> sg = safeguards.compile_ltl("G !lava")
>>> sg.accepts([{"wood"} - {"wood"}, {"lava"}])
False
"""

from safeguards.automata import Monitor, RuleInfo, Safeguard, StepResult, Verdict
from safeguards.compiler import compile, compile_ltl, compile_spec, load_safeguard
from safeguards.errors import BackendUnavailable, SafeguardsError, SpecError, TraceError
from safeguards.spec.resolve import resolve_spec

__version__ = "0.1.0"

__all__ = [
    "compile", "compile_ltl", "compile_spec", "load_safeguard", "resolve_spec", "Safeguard", "Monitor", "StepResult", "Verdict",
    "RuleInfo", "SafeguardsError", "SpecError", "TraceError", "BackendUnavailable", "__version__",
]
