"""Draw a safeguard with Graphviz.

:func:`to_dot` gives DOT text: one circle per state labelled with its name (a double circle when
a trace may end there), the violation state red, satisfied states green, an arrow from an
invisible start node to the initial state, edges labelled with their guards and a tooltip with
each state's number, name and verdict.
:func:`render` turns it into a PNG/SVG/PDF file with the ``graphviz`` Python package or the
``dot`` program.

>>> import safeguards
>>> print(to_dot(safeguards.compile_ltl("G !lava")), end="")  # doctest: +ELLIPSIS
digraph "formula" {
  ...
  0 -> 0 [label="!lava"];
  0 -> 1 [label="lava"];
  1 -> 1 [label="true"];
}
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from safeguards.automata.analysis import Verdict
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import BackendUnavailable
from safeguards.files import write_atomic
from safeguards.spec import ast
from safeguards.spec.depth import deep_recursion

__all__ = ["to_dot", "render", "FORMATS"]

FORMATS = ("png", "svg", "pdf", "dot")
_INSTALL_HINT = ("install Graphviz (the `dot` program), e.g. `apt install graphviz`, "
                 "`brew install graphviz` or `conda install graphviz`; or save DOT text with "
                 "format='dot'")

_STYLE = {
    Verdict.VIOLATED: 'color="#c62828", fontcolor="#c62828", style=filled, fillcolor="#ffcdd2"',
    Verdict.SATISFIED: 'color="#2e7d32", fontcolor="#2e7d32", style=filled, fillcolor="#c8e6c9"',
}


def _q(text: str) -> str:
    """A DOT double-quoted string (backslashes kept literal, quotes and newlines escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@deep_recursion()
def to_dot(sg: Safeguard) -> str:
    """Graphviz DOT text for ``sg`` (titled with the spec name)."""
    title = sg.name
    lines = [
        f"digraph {_q(sg.name)} {{",
        "  rankdir=LR;",
        f"  label={_q(title)}; labelloc=t; fontsize=16;",
        '  node [shape=circle, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=11];',
        '  __start [shape=point, style=invis, width=0, height=0, label=""];',
        f"  __start -> {sg.initial};",
    ]
    for q in range(sg.n_states):
        verdict = sg.verdict(q)
        name = sg.state_names[q]
        about = f"state {q}" + (f" ({name})" if name != str(q) else "") + f": {verdict.value}"
        label = str(q) if name.isdigit() else name   # numeric names are internal numbers
        attrs = [f"shape={'doublecircle' if sg.is_accepting(q) else 'circle'}",
                 f"label={_q(label)}", f"tooltip={_q(about)}"]
        if verdict in _STYLE:
            attrs.append(_STYLE[verdict])
        lines.append(f"  {q} [{', '.join(attrs)}];")
    for q, guards in enumerate(sg.edge_guards(q) for q in range(sg.n_states)):
        for target, guard in guards:
            text = ("true" if guard.value else "false") if isinstance(guard, ast.Const) \
                else str(guard)
            lines.append(f"  {q} -> {target} [label={_q(text)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _run_graphviz(dot: str, fmt: str) -> bytes:
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(dot).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise BackendUnavailable(f"cannot render {fmt}: the Graphviz `dot` program is not "
                                     f"installed; {_INSTALL_HINT}") from None
        except graphviz.CalledProcessError as error:
            raise RuntimeError(f"Graphviz failed: {error.stderr!r}") from None
    binary = shutil.which("dot")
    if binary is None:
        raise BackendUnavailable(f"cannot render {fmt}: neither the `graphviz` Python package nor "
                                 f"the Graphviz `dot` program is available; {_INSTALL_HINT}")
    done = subprocess.run([binary, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True,
                          check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def render(sg: Safeguard, path: str | os.PathLike[str], format: str | None = None) -> Path:
    """Draw ``sg`` into ``path`` as ``png``, ``svg``, ``pdf`` or ``dot`` (default: from the file
    extension, else ``png``).  Needs Graphviz except for ``dot``; raises
    :class:`~safeguards.errors.BackendUnavailable` with an install hint when it is missing.
    The file is written atomically.  Returns the path written.
    """
    target = Path(path)
    fmt = format or (target.suffix[1:].lower() if target.suffix[1:].lower() in FORMATS
                     else "png")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    dot = to_dot(sg)
    data = dot.encode("utf-8") if fmt == "dot" else _run_graphviz(dot, fmt)
    write_atomic(target, data)
    return target
