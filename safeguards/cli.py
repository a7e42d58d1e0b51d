"""The ``safeguards`` command line: compile specs, check traces, train and report.

::

    safeguards compile minecraft/safeguard3              # a shipped spec, summarised as text
    safeguards compile my_spec.sg --format dot -o spec.dot
    safeguards compile --ltl "G(request -> F grant)"
    safeguards check my_spec.sg trace.jsonl              # exit 0 ok, 1 violated, 2 bad input
    safeguards check --ltl "G !lava" - < trace.jsonl     # TRACE `-` is stdin
    safeguards train --env safeguards/Minecraft-L1-v0 --spec minecraft/safeguard3
    safeguards curriculum minecraft_quick --jobs 2       # every method x seed of a file
    safeguards report runs/minecraft_quick               # plots + summary table

Exit codes: 0 success (``check``: no violation), 1 ``check``: the trace violates the spec,
``train`` / ``curriculum``: a run failed, 2 bad input (spec, formula, trace, experiment file,
options or files; for runs: every failed run met a damaged, busy or unwritable run folder),
70 internal error (a bug: the message asks for a report, with the
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from contextlib import closing, contextmanager, suppress
from typing import Any, Iterable, Iterator, Mapping, Sequence

from safeguards.files import write_atomic

EXIT_INTERNAL = 70
"""Exit status of an internal error (``EX_SOFTWARE``): never 1, which ``check`` uses for a
violated trace."""

__all__ = ["main", "build_parser"]

PROG = "safeguards"
_TEXT_FORMATS = ("text", "dot", "hoa", "json")
_IMAGE_FORMATS = ("png", "svg")

_MAIN_EPILOG = """\
examples:
  safeguards compile minecraft/safeguard3
  safeguards compile --ltl "G(request -> F grant)" --format dot -o monitor.dot
  safeguards check minecraft/safeguard0 trace.jsonl
  safeguards check --ltl "G !lava" - < trace.jsonl
  safeguards train --env safeguards/Minecraft-L1-v0 --spec minecraft/safeguard3
  safeguards curriculum minecraft_quick --jobs 2
  safeguards report runs/minecraft_quick

exit codes: 0 ok, 1 the checked trace violates the spec (check) or a run failed (train,
curriculum), 2 bad input, 70 internal error, 130 interrupted.
Run `safeguards COMMAND --help` for the options of a command.
"""

_SPEC_HELP = """\
SPEC is a spec file (*.sg), or the name of a spec shipped with the package, e.g.
`minecraft/safeguard3` or `patterns/absence.sg`: a SPEC that does not exist as a local
path is looked up in the package's specs (with and without a `.sg` suffix).
"""

_COMPILE_EPILOG = _SPEC_HELP + """
formats:
  text   a summary: propositions, rules, states with verdicts and guarded edges,
         the shortest violating and the shortest satisfying traces (default)
  dot    Graphviz source           hoa   Hanoi Omega-Automata format
  json   the whole automaton       png, svg   a rendered picture (needs -o and Graphviz)

examples:
  safeguards compile minecraft/safeguard3
  safeguards compile patterns/reach_avoid --format json -o reach_avoid.json
  safeguards compile my_spec.sg --semantics infinite --backend spot --format hoa
  safeguards compile --ltl "G(a -> X b)" --format svg -o monitor.svg
"""

_CHECK_EPILOG = _SPEC_HELP + """
TRACE is a JSON-lines file (`-` reads standard input); each non-blank line is one step:
either a JSON list of the propositions that are true, ["wood", "iron"], or an object
{"wood": true, "lava": false} (propositions left out are false).  Steps are numbered from 0.

For every step the state, its verdict and the rules the step violates are printed (as a
table, or with --format json as one JSON object per line with the fields event, step, line,
labels, state, verdict, accepting, violated_rules; a last line with "event": "end" sums up).

exit codes:
  0  no violation
  1  violated: some step entered the violation state, or the trace ended in a rejecting
     state, i.e. a finite-semantics obligation (e.g. `F goal`) is still unmet at the end
     (the end-of-trace line names these pending rules)
  2  bad input: the spec, the formula or a trace line is malformed

examples:
  safeguards check minecraft/safeguard0 trace.jsonl
  safeguards check my_spec.sg run.jsonl --format json > verdicts.jsonl
  printf '["wood"]\\n["creeper"]\\n' | safeguards check --ltl "G !creeper" -
"""


# --------------------------------------------------------------------------------------------
# argument parsing


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``safeguards`` command."""
    from safeguards import __version__
    from safeguards.llm.cli import add_llm_commands

    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, epilog=_MAIN_EPILOG,
        description="Formal-specification safeguards: compile specs to monitors, check traces, "
                    "train progressive-safeguard curricula, report.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--ltl", metavar="FORMULA",
                         help="use this LTL formula instead of a SPEC file (its propositions "
                              "are those it mentions)")
        sub.add_argument("--semantics", choices=("finite", "infinite"),
                         help="override the semantics of every LTL rule (default: as written "
                              "in the spec; finite for --ltl)")
        sub.add_argument("--backend", choices=("native", "spot"), default="native",
                         help="automaton construction: native (pure Python, default) or spot "
                              "(needs pip install 'safeguards[spot]')")
        sub.add_argument("--max-seconds", type=_seconds, metavar="S",
                         help="compile budget in seconds (default 10); past it, the rule that "
                              "outgrows it is named")
        sub.add_argument("--max-states", type=_positive, metavar="N",
                         help="most states an automaton may have (default 50000)")
        sub.add_argument("--include-path", action="append", default=[], metavar="DIR",
                         help="a folder includes may also come from (searched after the "
                              "including file's folder; repeatable). Without it, includes "
                              "stay inside the SPEC's folder")

    compile_cmd = commands.add_parser(
        "compile", formatter_class=_Formatter, epilog=_COMPILE_EPILOG,
        help="compile a spec (or an LTL formula) and show or export its monitor",
        description="Compile a spec file or an LTL formula to a deterministic monitor and print "
                    "a summary, or export it.")
    compile_cmd.add_argument("spec", nargs="?", metavar="SPEC",
                             help="spec file or shipped spec name (omit with --ltl)")
    common(compile_cmd)
    compile_cmd.add_argument("--format", "-f", choices=_TEXT_FORMATS + _IMAGE_FORMATS,
                             default="text", help="output format (default: text)")
    compile_cmd.add_argument("-o", "--output", metavar="FILE",
                             help="write to FILE (atomically) instead of standard output")
    compile_cmd.set_defaults(func=_cmd_compile, subparser=compile_cmd)

    check_cmd = commands.add_parser(
        "check", formatter_class=_Formatter, epilog=_CHECK_EPILOG,
        help="check a trace (JSON lines) against a spec",
        description="Run the monitor of a spec (or an LTL formula) over a trace and report the "
                    "verdict of every step.")
    check_cmd.add_argument("spec", nargs="?", metavar="SPEC",
                           help="spec file or shipped spec name (omit with --ltl)")
    check_cmd.add_argument("trace", metavar="TRACE", help="JSON-lines trace file, or - for stdin")
    common(check_cmd)
    check_cmd.add_argument("--format", "-f", choices=("text", "json"), default="text",
                           help="text table (default) or one JSON object per line")
    check_cmd.set_defaults(func=_cmd_check, subparser=check_cmd)
    _add_learning_commands(commands)
    add_llm_commands(commands, _Formatter)
    return parser


def _validate(args: argparse.Namespace) -> None:
    """Cross-option checks argparse cannot express; errors exit with status 2."""
    parser = args.subparser
    if args.command == "curriculum" and args.executor != "ray":
        if args.address is not None:
            parser.error("--address needs --executor ray")
        if args.max_retries != 3:
            parser.error("--max-retries needs --executor ray")
    if args.command not in ("compile", "check"):
        return
    if args.ltl is not None and args.spec is not None:
        parser.error("give either SPEC or --ltl FORMULA, not both")
    if args.ltl is None and args.spec is None:
        if args.command == "compile":
            parser.error("give a SPEC file (or a shipped spec name) or --ltl FORMULA")
        parser.error("give SPEC and TRACE, or --ltl FORMULA and TRACE")
    if args.command == "compile" and args.format in _IMAGE_FORMATS and not args.output:
        parser.error(f"--format {args.format} writes a picture; give the file with -o FILE")


# --------------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    from safeguards.errors import SafeguardsError

    try:
        parser = build_parser()
        try:
            args = _parse(parser, argv)
            _validate(args)
            return int(args.func(args))
        except SystemExit as exit_:  # --help, --version and usage errors
            code = exit_.code
            return code if isinstance(code, int) else (0 if code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except SafeguardsError as error:
        print(_error_message(error), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly
        with suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as error:
        print(_os_error_message(error), file=sys.stderr)
        return 2
    except Exception:  # a bug of ours; never exit 1, which `check` uses for "violated"
        print(f"{PROG}: internal error (please report it with the traceback below)",
              file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; ``check SPEC --option TRACE`` (an option between the two
    positionals, which argparse cannot place) is accepted too."""
    args, extras = parser.parse_known_args(argv)
    if (getattr(args, "command", None) == "check" and args.spec is None and args.ltl is None
            and len(extras) == 1 and not extras[0].startswith("-")):
        args.spec, args.trace, extras = args.trace, extras[0], []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _error_message(error: Exception) -> str:
    """A SafeguardsError as printed: located errors as they are, others after ``safeguards:``."""
    text = str(error)
    first = text.partition("\n")[0]
    return text if ": error:" in first or ": note:" in first else f"{PROG}: error: {text}"


def _os_error_message(error: OSError) -> str:
    reason = error.strerror or str(error)
    if error.filename is not None:
        return f"{error.filename}: error: {reason}"
    return f"{PROG}: error: {reason}"


# --------------------------------------------------------------------------------------------
# loading


def _load_spec(name: str, include_path: Sequence[str]) -> Any:
    """Load SPEC: a local path, a spec shipped with the package, or spec text (no formula:
    that is ``--ltl``)."""
    from safeguards.spec.resolve import resolve_spec

    return resolve_spec(name, formulas=False).load(include_path=include_path)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (for --max-seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _compile(args: argparse.Namespace) -> Any:
    """The safeguard that SPEC or --ltl describes, within the compile budget."""
    from safeguards.automata.budget import compile_budget

    with compile_budget(args.max_seconds, args.max_states):
        return _compile_within_budget(args)


def _compile_within_budget(args: argparse.Namespace) -> Any:
    from safeguards.compiler import compile_ltl, compile_spec
    from safeguards.errors import SpecError
    from safeguards.spec.parser import parse_ltl

    if args.ltl is not None:
        try:
            formula = parse_ltl(args.ltl, file="--ltl")
            return compile_ltl(formula, semantics=args.semantics or "finite",
                               backend=args.backend)
        except SpecError as error:  # show the formula under the message
            if error.source is None and error.file == "--ltl" and error.line is not None:
                error.source = args.ltl
            raise
    return compile_spec(_load_spec(args.spec, args.include_path), semantics=args.semantics, backend=args.backend)


# --------------------------------------------------------------------------------------------
# compile


def _cmd_compile(args: argparse.Namespace) -> int:
    sg = _compile(args)
    fmt = args.format
    if fmt in _IMAGE_FORMATS:
        from safeguards.automata.io import render

        render(sg, args.output, fmt)
        return 0
    if fmt == "text":
        text = summary(sg)
    else:
        from safeguards.automata import io as sg_io

        exporter = {"dot": sg_io.to_dot, "hoa": sg_io.to_hoa, "json": sg_io.to_json}[fmt]
        out = exporter(sg)
        text = out if isinstance(out, str) else json.dumps(out, indent=2)
    if not text.endswith("\n"):
        text += "\n"
    if args.output:
        write_atomic(args.output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


def _fmt_valuation(props: Iterable[str], order: Sequence[str]) -> str:
    rank = {p: i for i, p in enumerate(order)}
    return "{" + ", ".join(sorted(props, key=lambda p: (rank.get(p, len(rank)), p))) + "}"


def _fmt_trace(title: str, trace: list[frozenset[str]] | None, order: Sequence[str],
               none: str) -> list[str]:
    if trace is None:
        return [f"{title}: none: {none}"]
    if not trace:
        return [f"{title}: the empty trace (the initial state already has this verdict)"]
    steps = "1 step" if len(trace) == 1 else f"{len(trace)} steps"
    return [f"{title} ({steps}):"] + [f"  step {i}: {_fmt_valuation(v, order)}"
                                      for i, v in enumerate(trace)]


def _fmt_guard(guard: Any) -> str:
    text = str(guard)
    return {"1": "true", "0": "false"}.get(text, text)


def summary(sg: Any) -> str:
    """The ``--format text`` summary of a safeguard."""
    lines = [f"spec {sg.name}"]
    if sg.description:
        lines.append(f"  {sg.description}")
    lines.append(f"semantics: {sg.semantics}")
    lines.append("")
    lines.append(f"propositions ({len(sg.props)}):")
    width = max((len(p) for p in sg.props), default=0)
    for p in sg.props:
        doc = sg.prop_docs.get(p, "")
        lines.append(f"  {p:<{width}}  {doc}".rstrip())
    if not sg.props:
        lines.append("  (none)")
    lines.append("")
    lines.append(f"rules ({len(sg.rules)}):")
    for rule in sg.rules:
        fragment = getattr(rule, "fragment", "")
        extra = f" ({fragment})" if fragment and fragment != rule.semantics else ""
        lines.append(f"  {rule.name}: {rule.kind}, {rule.semantics} semantics{extra}, "
                     f"penalty {rule.penalty:g}")
        source = str(rule.source).strip()
        if source:
            for k, text in enumerate(source.splitlines()):
                lines.append(("    source: " if k == 0 else "            ") + text)
    lines.append("")
    lines.append(f"automaton: {sg.n_states} states, {sg.n_letters} letter classes, "
                 f"initial state {sg.initial}")
    def named(q: int) -> str:
        name = sg.state_names[q]
        return f"{q}" if name == str(q) else f"{q} {name}"

    for q in range(sg.n_states):
        tags = " (initial)" if q == sg.initial else ""
        accepting = "accepting" if sg.is_accepting(q) else "rejecting"
        lines.append(f"  state {named(q)}{tags}: {sg.verdict(q).value}, {accepting}")
        for target, guard in sg.edge_guards(q):
            lines.append(f"    -> {named(target)} on {_fmt_guard(guard)}")
    lines.append("")
    lines += _fmt_trace("shortest violating trace", sg.shortest_violation(), sg.props,
                        "the spec cannot be violated")
    lines += _fmt_trace("shortest satisfying trace", sg.shortest_satisfaction(), sg.props,
                        "no non-empty trace satisfies the spec")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# check

def _cmd_check(args: argparse.Namespace) -> int:
    from safeguards.traces import TraceCheck, open_trace, read_trace

    sg = _compile(args)
    as_json = args.format == "json"
    out = sys.stdout
    check = TraceCheck(sg)
    with open_trace(args.trace) as (handle, name):
        if not as_json:
            out.write(f"{'step':>5}  {'line':>5}  {'state':>5}  {'verdict':<20}  "
                      f"{'violated rules':<16}  labels\n")
        for lineno, labels in read_trace(handle, sg.props, name):
            result, rules = check.step(lineno, labels)
            ordered = [p for p in sg.props if p in labels]
            names = sorted(rules)
            if as_json:
                out.write(json.dumps({"event": "step", "step": result.step, "line": lineno,
                                      "labels": ordered, "state": result.state,
                                      "verdict": result.verdict.value,
                                      "accepting": result.accepting,
                                      "violated_rules": names}) + "\n")
            else:
                out.write(f"{result.step:>5}  {lineno:>5}  {result.state:>5}  "
                          f"{result.verdict.value:<20}  {', '.join(names) or '-':<16}  "
                          f"{_fmt_valuation(labels, sg.props)}\n")
            if args.trace == "-":
                out.flush()
    end = check.end()
    if as_json:
        out.write(json.dumps({
            "event": "end", "steps": end.steps, "state": end.state,
            "verdict": end.verdict.value, "accepting": end.accepting, "violated": end.failed,
            "first_violation_step": end.first_violation[0] if end.first_violation else None,
            "violated_rules": end.violated_rules, "pending_rules": end.pending_rules}) + "\n")
    else:
        plural = "step" if end.steps == 1 else "steps"
        out.write(f"end of trace after {end.steps} {plural}: state {end.state}, "
                  f"verdict {end.verdict.value}\n")
        if end.first_violation is not None:
            step, lineno = end.first_violation
            out.write(f"VIOLATED at step {step} (line {lineno}): "
                      f"{_rules_phrase(end.violated_rules)}\n")
        elif end.verdict.value == "violated":
            out.write(f"VIOLATED before any step: {_rules_phrase(end.violated_rules)} "
                      f"cannot be satisfied\n")
        elif not end.accepting:
            out.write(f"VIOLATED: the trace ends with unmet obligations of "
                      f"{_rules_phrase(end.pending_rules)}\n")
        else:
            out.write(f"OK: no rule violated ({end.verdict.value})\n")
    out.flush()
    return 1 if end.failed else 0


def _rules_phrase(names: Sequence[str]) -> str:
    if not names:
        return "the spec"
    return ("rule " if len(names) == 1 else "rules ") + ", ".join(names)


# --------------------------------------------------------------------------------------------
# train, curriculum, report

_TRAIN_EPILOG = """\
One environment, one spec, tabular Q-learning on the product MDP (a one-stage curriculum,
see `safeguards curriculum`), then a greedy test.  With --learner ppo: Stable-Baselines3 PPO
from pixels for --frames agent steps, then a greedy and a stochastic test.  The run directory
gets config.json, metrics.jsonl / metrics.csv (one row per episode), checkpoints and
result.json; an interrupted run continues with --resume.

examples:
  safeguards train --env safeguards/Minecraft-L1-v0 --spec minecraft/safeguard3
  safeguards train --env safeguards/Minecraft-L1-v0 --spec my_spec.sg --episodes 2000 \\
      --seed 1 --run-dir runs/mine
  safeguards train --env safeguards/Minecraft-L1-v0 --spec minecraft/safeguard3 \\
      --baseline intrinsic_fear
  safeguards train --learner ppo --env safeguards/DoomSafeRL-v0 --spec doom/safeguard2 \\
      --frames 20000 --labeler safeguards.envs.doom.labels:DoomLabeler
"""

_CURRICULUM_EPILOG = """\
CONFIG is an experiment file (TOML; YAML when PyYAML is installed), or the name of a
shipped one: minecraft (the paper's run) or minecraft_quick.  It lists the stages
(env, env_kwargs, spec, episodes), the methods to compare (a transfer: none, warm, paper,
semantic; or a baseline: scratch, no_safeguard, intrinsic_fear), the seeds and the test;
see specs/curricula/minecraft.toml and `python -m pydoc safeguards.experiment`.

Every (method, seed) runs into RUN_DIR/<method>/seed<k>/ (default RUN_DIR: runs/<name>);
at the end the summary table is printed and written to RUN_DIR/summary.md.  Plots:
`safeguards report RUN_DIR`.

exit codes: 0 every run finished, 1 some run failed (the others still ran),
2 bad input (the file, an option, an occupied run directory), 130 interrupted
(continue with --resume).

examples:
  safeguards curriculum minecraft_quick --jobs 2
  safeguards curriculum minecraft --seeds 0-4 --methods paper,zero_shot --run-dir runs/mc
  safeguards curriculum my_experiment.toml --check
  safeguards curriculum minecraft --run-dir runs/minecraft --resume
"""

_REPORT_EPILOG = """\
RUN_DIR is a run directory (holding metrics.jsonl) or any folder above run directories, such
as the RUN_DIR of `safeguards curriculum`.  Runs of one method are averaged over their seeds.

writes (atomically) into OUT_DIR (default: the first RUN_DIR/report):
  summary.md                  the table printed on standard output
  summary.json                the same numbers
  value_s0.png                value at the start state per episode (3 % moving average,
                              mean ± std over seeds, one line per method)
  violations_per_stage.png    training violations per stage and method
  cumulative_violations.png   cumulative violations of the final spec during training
  test.png                    success and violation rate of the greedy test

examples:
  safeguards report runs/minecraft_quick
  safeguards report runs/layout1 runs/layout2 -o reports/compare
"""


def _add_learning_commands(commands: Any) -> None:
    train_cmd = commands.add_parser(
        "train", formatter_class=_Formatter, epilog=_TRAIN_EPILOG,
        help="tabular Q-learning of one environment under one spec",
        description="Train a tabular Q-learner on the product of an environment and a "
                    "safeguard, then test it greedily.")
    train_cmd.add_argument("--env", required=True, metavar="ID",
                           help="Gymnasium id, e.g. safeguards/Minecraft-L1-v0")
    train_cmd.add_argument("--env-kwargs", metavar="JSON", default="{}",
                           help='keyword arguments of gymnasium.make, e.g. \'{"slip": 0}\'')
    train_cmd.add_argument("--spec", required=True, metavar="SPEC",
                           help="spec file, shipped spec name (minecraft/safeguard3) or LTL "
                                "formula")
    train_cmd.add_argument("--learner", choices=("tabular", "ppo", "rllib_ppo"),
                           default="tabular",
                           help="tabular Q-learning (default), PPO from pixels "
                                "(Stable-Baselines3), or PPO on RLlib")
    train_cmd.add_argument("--episodes", type=_count, default=None, metavar="N",
                           help="training episodes (tabular; default: 1000)")
    train_cmd.add_argument("--frames", type=_positive, default=None, metavar="N",
                           help="training agent steps (ppo; required with --learner ppo)")
    train_cmd.add_argument("--transfer", default=None,
                           choices=("none", "warm", "paper", "semantic"),
                           help="tabular transfer strategy; with one stage it only selects the "
                                "test fallback at unseen states (paper, semantic: Q[s, q0]; "
                                "default: paper)")
    train_cmd.add_argument("--baseline", choices=("scratch", "no_safeguard", "intrinsic_fear"),
                           help="train a baseline instead (no_safeguard only monitors the spec)")
    train_cmd.add_argument("--seed", type=_count, default=0, metavar="S",
                           help="random seed (default: 0)")
    train_cmd.add_argument("--max-steps", type=_positive, default=None, metavar="N",
                           help="episode length limit (default: tabular 1000; ppo: the "
                                "environment's own)")
    train_cmd.add_argument("--test-episodes", type=_count, default=None, metavar="N",
                           help="test episodes after training (default: tabular 100, ppo 10 "
                                "greedy and 10 stochastic; 0: none)")
    train_cmd.add_argument("--test-spec", metavar="SPEC",
                           help="spec of the test (default: --spec)")
    train_cmd.add_argument("--checkpoint-every", type=_count, default=None, metavar="N",
                           help="checkpoint every N episodes (tabular; default: 100) or agent "
                                "steps (ppo; default: 0, at the end only)")
    train_cmd.add_argument("--labeler", metavar="MODULE:NAME",
                           help="labeler of the environment (default: the environment's own)")
    _run_options(train_cmd, "run directory (default: runs/train-<spec>-<method>-seed<S>)")
    train_cmd.set_defaults(func=_cmd_train, subparser=train_cmd)

    cur_cmd = commands.add_parser(
        "curriculum", formatter_class=_Formatter, epilog=_CURRICULUM_EPILOG,
        help="run the methods x seeds of an experiment file (progressive safeguards)",
        description="Train every method of an experiment file with every seed through its "
                    "stages of (environment, safeguard), test, and summarise.")
    cur_cmd.add_argument("config", metavar="CONFIG", help="experiment file or shipped name")
    cur_cmd.add_argument("--seeds", metavar="LIST",
                         help="seeds to run instead of the file's: 0,1,2 or 0-4")
    cur_cmd.add_argument("--methods", metavar="LIST",
                         help="comma-separated subset of the file's methods")
    cur_cmd.add_argument("--jobs", "-j", type=_positive, default=None, metavar="N",
                         help="runs in parallel processes (default: 1; with --executor ray "
                              "and no --address: the CPUs of the local Ray instance)")
    cur_cmd.add_argument("--executor", choices=("local", "ray"), default="local",
                         help="local processes (default) or a Ray cluster, every run a task "
                              "(needs pip install 'safeguards[ray]')")
    cur_cmd.add_argument("--address", metavar="ADDR",
                         help="the Ray cluster to join (host:port, or auto); default: start a "
                              "local Ray instance")
    cur_cmd.add_argument("--max-retries", type=_count, default=3, metavar="N",
                         help="Ray: times a run whose worker died is retried, resuming from "
                              "its last checkpoint (default: 3)")
    cur_cmd.add_argument("--check", action="store_true",
                         help="validate the file and list the runs; train nothing")
    _run_options(cur_cmd, "where the runs go (default: runs/<name of the experiment>)")
    cur_cmd.set_defaults(func=_cmd_curriculum, subparser=cur_cmd)

    report_cmd = commands.add_parser(
        "report", formatter_class=_Formatter, epilog=_REPORT_EPILOG,
        help="plots and a summary table of runs",
        description="Summarise runs: a Markdown table (printed and written) and PNG plots.")
    report_cmd.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                            help="run directories, or folders holding them")
    report_cmd.add_argument("-o", "--output", metavar="OUT_DIR",
                            help="output folder (default: RUN_DIR/report of the first RUN_DIR)")
    report_cmd.add_argument("--window", type=_fraction, default=0.03, metavar="FRACTION",
                            help="moving-average window of value_s0.png as a fraction of the "
                                 "episodes (default: 0.03, the paper's 3 %%)")
    report_cmd.add_argument("--no-plots", action="store_true",
                            help="only the table (summary.md, summary.json)")
    report_cmd.set_defaults(func=_cmd_report, subparser=report_cmd)


def _run_options(sub: argparse.ArgumentParser, run_dir_help: str) -> None:
    sub.add_argument("--run-dir", metavar="DIR", help=run_dir_help)
    sub.add_argument("--resume", action="store_true",
                     help="continue interrupted runs from their last checkpoint (runs not "
                          "started start; finished ones are only tested again)")
    sub.add_argument("--no-progress", action="store_true", help="no progress bars")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], not {value}")
    return value


def _need_training_extra() -> None:
    """Training needs Gymnasium: a clear error without it."""
    from safeguards.errors import SafeguardsError

    try:
        import safeguards.learn.common  # noqa: F401
    except ImportError as exc:
        raise SafeguardsError(f"{PROG}: error: training needs the gridworld extra "
                              f"(pip install 'safeguards[gridworld]'): {exc}") from None


def _occupied(path: Any) -> bool:
    from pathlib import Path

    folder = Path(path)
    return any((folder / name).exists()
               for name in ("metrics.jsonl", "checkpoint.npz", "result.json"))


def _report_failure(method: str, seed: int, exc: BaseException) -> None:
    """A failed run: its message; with the traceback unless it is a usage problem."""
    from safeguards.errors import SafeguardsError

    expected = isinstance(exc, (SafeguardsError, ValueError, OSError))
    text = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    print(f"{PROG}: error: {method} seed {seed} failed: {text}", file=sys.stderr)
    if not expected:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)


def _slug(text: str) -> str:
    stem = text.strip().replace("\\", "/").rstrip("/").split("/")[-1]
    stem = stem[:-3] if stem.endswith(".sg") else stem
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", stem).strip("_.")
    return slug[:40] or "spec"


def _train_experiment(args: argparse.Namespace, env_kwargs: dict[str, Any]
                      ) -> tuple[dict[str, Any], str]:
    """The one-stage experiment of ``safeguards train`` (as parsed data) and its method."""
    ppo = args.learner in ("ppo", "rllib_ppo")
    misplaced = [option for option, value, wanted in (
        ("--episodes", args.episodes, False), ("--transfer", args.transfer, False),
        ("--frames", args.frames, True)) if value is not None and ppo != wanted]
    if misplaced:
        args.subparser.error(f"{misplaced[0]} is an option of --learner "
                             f"{'tabular' if ppo else 'ppo (or rllib_ppo)'}")
    if ppo and args.frames is None:
        args.subparser.error(f"--learner {args.learner} needs --frames N (agent steps)")
    if ppo and args.baseline == "intrinsic_fear":
        args.subparser.error("--baseline intrinsic_fear is tabular only")
    transfer = "reuse" if ppo else args.transfer or "paper"
    method = args.baseline or (args.learner if ppo else transfer)
    options: dict[str, Any] = {"baseline": args.baseline} if args.baseline else \
        {"transfer": transfer}
    stage = {"env": args.env, "env_kwargs": env_kwargs, "spec": args.spec}
    train: dict[str, Any] = {"learner": args.learner}
    if ppo:
        stage["frames"] = args.frames
    else:
        stage["episodes"] = 1000 if args.episodes is None else args.episodes
        train["max_steps"] = 1000
        train["checkpoint_every"] = 100
    if args.max_steps is not None:
        train["max_steps"] = args.max_steps
    if args.checkpoint_every is not None:
        train["checkpoint_every"] = args.checkpoint_every
    test_episodes = args.test_episodes if args.test_episodes is not None else (10 if ppo else 100)
    data: dict[str, Any] = {"seeds": [args.seed], "stages": [stage], "train": train,
                            "test": {"episodes": test_episodes}, "methods": {method: options}}
    return data, method


def _cmd_train(args: argparse.Namespace) -> int:
    from safeguards.experiment import ConfigError, build_experiment

    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as exc:
        args.subparser.error(f"--env-kwargs: invalid JSON ({exc.msg})")
    if not isinstance(env_kwargs, dict):
        args.subparser.error('--env-kwargs must be a JSON object, e.g. \'{"slip": 0}\'')
    _need_training_extra()
    data, method = _train_experiment(args, env_kwargs)
    if args.test_spec is not None:
        data["test"]["spec"] = args.test_spec
    if args.labeler is not None:
        data["train"]["labeler"] = args.labeler
    try:
        experiment = build_experiment(data, file=f"{PROG} train")
    except ConfigError as error:  # name the option, not a key of a file
        for problem in error.problems:
            problem.message = _as_option(problem.message)
            problem.hint = problem.hint and _as_option(problem.hint)
        raise
    run_dir = args.run_dir or os.path.join(
        "runs", f"train-{_slug(args.spec)}-{method}-seed{args.seed}")
    if _occupied(run_dir) and not args.resume:
        raise _busy([run_dir])
    from pathlib import Path

    from safeguards.executor import RunSpec

    name, seed, config = experiment.runs()[0]
    with _resume_hint(run_dir):
        status = _run_all([RunSpec(name, seed, config, Path(run_dir))], resume=args.resume,
                          jobs=1, imports=(), progress=not args.no_progress)
    _print_summary([run_dir])
    print(f"plots: {PROG} report {run_dir}", file=sys.stderr)
    return status


@contextmanager
def _resume_hint(run_dir: Any) -> Iterator[None]:
    """On Ctrl-C, say how to continue."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\n{PROG}: the runs continue from their last checkpoint with the same command, "
              f"--run-dir {run_dir} and --resume", file=sys.stderr)
        raise


_OPTION_NAMES = {"`episodes`": "--episodes", "`frames`": "--frames", "`spec`": "--spec",
                 "`env`": "--env",
                 "`env_kwargs`": "--env-kwargs", "`max_steps`": "--max-steps",
                 "`labeler`": "--labeler", 'set [train] labeler = "module:Name"':
                 "give --labeler MODULE:NAME"}


def _as_option(message: str) -> str:
    for key, option in _OPTION_NAMES.items():
        message = message.replace(key, option)
    return message


def _busy(dirs: Sequence[Any]) -> Exception:
    from safeguards.errors import SafeguardsError

    shown = ", ".join(str(d) for d in dirs[:3]) + (f" and {len(dirs) - 3} more"
                                                  if len(dirs) > 3 else "")
    return SafeguardsError(f"{PROG}: error: {shown} already hold{'s' if len(dirs) == 1 else ''} "
                           f"a run\nhint: add --resume to continue (finished runs are only "
                           f"tested again), or choose another --run-dir")


def _cmd_curriculum(args: argparse.Namespace) -> int:
    from pathlib import Path

    from safeguards.errors import did_you_mean
    from safeguards.experiment import find_experiment, load_experiment, parse_seeds

    seeds = None
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            args.subparser.error(f"--seeds: {exc}")
    path = find_experiment(args.config)
    _need_training_extra()
    experiment = load_experiment(path)
    methods = None
    if args.methods is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        names = [m.name for m in experiment.methods]
        for m in methods:
            if m not in names:
                hint = did_you_mean(m, names)
                args.subparser.error(f"--methods: `{m}` is not a method of {path} "
                                     f"({', '.join(names)})" + (f"; {hint}" if hint else ""))
        if not methods:
            args.subparser.error("--methods: give at least one method")
    root = Path(args.run_dir or os.path.join("runs", experiment.name))
    from safeguards.executor import RunSpec

    runs = [RunSpec(m, s, c, root / m / f"seed{s}") for m, s, c in experiment.runs(seeds, methods)]
    if args.check:
        print(f"{path}: ok: {len(experiment.stages)} stages, "
              f"{experiment.budget()} per run")
        for run in runs:
            print(f"  {run.method:<16} seed {run.seed:<4} -> {run.run_dir}")
        return 0
    busy = [run.run_dir for run in runs if _occupied(run.run_dir)]
    if busy and not args.resume:
        raise _busy(busy)
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "experiment.json", json.dumps({
        "name": experiment.name, "description": experiment.description,
        "config": os.path.abspath(path), "methods": [m.name for m in experiment.methods],
        "seeds": experiment.seeds}, indent=1) + "\n")
    with _resume_hint(root):
        status = _run_all(runs, resume=args.resume, jobs=args.jobs, imports=experiment.imports,
                          progress=not args.no_progress, executor=args.executor,
                          address=args.address, max_retries=args.max_retries)
    markdown = _print_summary([run.run_dir for run in runs])
    if markdown:
        write_atomic(root / "summary.md", markdown)
    print(f"plots: {PROG} report {root}", file=sys.stderr)
    return status


def _describe_result(result: Mapping[str, Any]) -> str:
    text = (f"train violations {result.get('train_violations')} "
            f"(final spec {result.get('train_violations_final')})")
    test = result.get("test")
    if test:
        text += (f", test success {100 * test['success_rate']:.0f}% violations "
                 f"{100 * test['violation_rate']:.0f}%")
    return text + f", {result.get('wall_seconds', 0):.1f} s"


def _run_all(runs: Sequence[Any], *, resume: bool, jobs: int | None, imports: Sequence[str],
             progress: bool, executor: str = "local", address: str | None = None,
             max_retries: int = 3) -> int:
    """Run every :class:`~safeguards.executor.RunSpec` here or on Ray, printing each outcome;
    the exit status (:func:`_print_outcomes`)."""
    from safeguards.executor import run_local

    def started(k: int, run: Any) -> None:
        print(f"[{k}/{len(runs)}] {run.method} seed {run.seed} -> {run.run_dir}", file=sys.stderr)

    if executor == "ray":
        from safeguards.ray_executor import run_ray

        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        print(f"{len(runs)} runs as tasks on {where}", file=sys.stderr)
        outcomes = run_ray(runs, resume=resume, address=address, jobs=jobs, imports=imports,
                           max_retries=max_retries)
        parallel = True
    else:
        jobs = jobs or 1
        parallel = jobs > 1 and len(runs) > 1
        if parallel:
            print(f"{len(runs)} runs on {min(jobs, len(runs))} processes", file=sys.stderr)
        outcomes = run_local(runs, resume=resume, jobs=jobs, imports=imports,
                             progress=progress, on_start=started)
    with closing(outcomes):
        return _print_outcomes(outcomes, len(runs), parallel)


def _print_outcomes(outcomes: Iterable[Any], n_runs: int, parallel: bool) -> int:
    """Print each outcome as it comes; the exit status: 0 every run succeeded, 2 the failed
    ones all met bad input or files (a damaged, busy or unwritable run folder), 1 otherwise."""
    from safeguards.errors import SafeguardsError

    failures: list[BaseException] = []
    for done, outcome in enumerate(outcomes, 1):
        run = outcome.run
        if outcome.error is not None:
            failures.append(outcome.error)
            _report_failure(run.method, run.seed, outcome.error)
        elif parallel:
            print(f"[{done}/{n_runs}] {run.method} seed {run.seed} ({run.run_dir}): "
                  f"{_describe_result(outcome.result or {})}", file=sys.stderr)
        else:
            print(f"      {_describe_result(outcome.result or {})}", file=sys.stderr)
    if not failures:
        return 0
    return 2 if all(isinstance(f, (SafeguardsError, OSError)) for f in failures) else 1


def _print_summary(run_dirs: Sequence[Any]) -> str:
    """Print the summary table of these runs (those that logged anything); returns it."""
    from safeguards.report import ReportError, load_run, summarize, summary_markdown

    runs = []
    for run_dir in run_dirs:
        if os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
            with suppress(ReportError):  # a damaged run: its failure was reported already
                runs.append(load_run(run_dir))
    if not runs:
        return ""
    markdown = summary_markdown(summarize(runs))
    sys.stdout.write(markdown)
    sys.stdout.flush()
    return markdown


def _cmd_report(args: argparse.Namespace) -> int:
    from safeguards.report import write_report

    out_dir = args.output or os.path.join(args.run_dirs[0], "report")
    report = write_report(args.run_dirs, out_dir, fraction=args.window,
                          plots=not args.no_plots)
    sys.stdout.write(report.markdown)
    sys.stdout.flush()
    if report.plots_skipped:
        print(f"{PROG}: warning: no plots: {report.plots_skipped}", file=sys.stderr)
    n_methods = len(report.summaries)
    print(f"{len(report.runs)} runs of {n_methods} method{'s' if n_methods != 1 else ''}; "
          f"wrote {', '.join(str(f) for f in report.files)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
