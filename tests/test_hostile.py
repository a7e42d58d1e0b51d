"""Hostile input: every generated spec, trace line and experiment file ends in a result or a
SafeguardsError within the budget — never a traceback, a hang or exit code 1 for an internal
error.  The larger corpus with timings and memory is ``benchmarks/bench_hostile.py``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import safeguards
from safeguards.automata import Safeguard
from safeguards.cli import main
from safeguards.config import ConfigError
from safeguards.errors import SafeguardsError
from safeguards.experiment import parse_experiment
from safeguards.traces import open_trace, read_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _hostile import config_texts, spec_cases, trace_lines  # noqa: E402

BUDGET = 0.5     # seconds per compile
SLACK = 2.0      # parsing, error formatting, a loaded machine


@pytest.mark.parametrize("kind, text", list(spec_cases(seed=0)),
                         ids=lambda value: value if len(value) < 40 else None)
def test_a_spec_compiles_or_fails_cleanly_within_the_budget(kind: str, text: str) -> None:
    started = time.perf_counter()
    try:
        result = safeguards.compile(text, max_seconds=BUDGET)
    except SafeguardsError as error:
        assert str(error)  # a message a user can read
    else:
        assert isinstance(result, Safeguard)
    assert time.perf_counter() - started < BUDGET + SLACK, kind


@pytest.mark.parametrize("kind, line", list(trace_lines(seed=0)),
                         ids=lambda value: value if isinstance(value, str) else None)
def test_a_trace_line_parses_or_fails_cleanly(kind: str, line: bytes, tmp_path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b'["a"]\n' + line + b"\n")
    try:
        with open_trace(str(path)) as (handle, name):
            steps = list(read_trace(handle, ("a", "b"), name))
    except SafeguardsError as error:
        assert error.line in (2, None) or kind == "not UTF-8"
    else:
        assert len(steps) == 2


@pytest.mark.parametrize("kind, text", list(config_texts(seed=0)),
                         ids=lambda value: value if len(value) < 40 else None)
def test_an_experiment_file_parses_or_fails_cleanly(kind: str, text: str) -> None:
    started = time.perf_counter()
    try:
        parse_experiment(text, "hostile.toml", check_envs=False)
    except ConfigError as error:
        assert str(error).startswith("hostile.toml")
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("kind, text", [case for case in spec_cases(seed=1)
                                        if case[0] in ("nested parentheses", "random tokens",
                                                       "long proposition name")][:12])
def test_the_cli_exits_0_or_2(kind: str, text: str, tmp_path, capsys) -> None:
    spec = tmp_path / "hostile.sg"
    spec.write_text(text if text.startswith("spec") else f"spec s\nrule r: ltl {text}\n")
    code = main(["compile", str(spec), "--max-seconds", str(BUDGET)])
    assert code in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
