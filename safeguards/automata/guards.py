"""Boolean guards: formulas over propositions <-> Boolean decision diagrams.

>>> from safeguards.spec.parser import parse_boolean
>>> m = MTBDD(2)
>>> g = guard_to_bdd(m, parse_boolean("a -> b"), {"a": 0, "b": 1})
>>> str(bdd_to_formula(m, g, ["a", "b"]))
'!a | b'
"""

from __future__ import annotations

from typing import Mapping, Sequence

from safeguards.automata.mtbdd import MTBDD
from safeguards.spec import ast
from safeguards.spec.depth import deep_recursion

__all__ = ["guard_to_bdd", "bdd_to_formula", "cube_to_formula", "conjoin", "disjoin"]


def guard_to_bdd(m: MTBDD, formula: ast.Formula, index: Mapping[str, int]) -> int:
    """The Boolean diagram of a Boolean formula (variables numbered by ``index``); iterative,
    so that any nesting the parser allows converts."""
    if isinstance(formula, ast.Const):
        return m.true if formula.value else m.false
    if isinstance(formula, ast.Prop):
        return m.var(index[formula.name])
    done: list[int] = []
    stack: list[tuple[ast.Formula, bool]] = [(formula, False)]
    while stack:
        node, ready = stack.pop()
        if isinstance(node, ast.Const):
            done.append(m.true if node.value else m.false)
        elif isinstance(node, ast.Prop):
            done.append(m.var(index[node.name]))
        elif not isinstance(node, (ast.Unary, ast.Binary)) or node.op not in ast.BOOLEAN_OPS:
            raise ValueError(f"temporal operator {getattr(node, 'op', node)} in a Boolean guard")
        elif not ready:
            stack.append((node, True))
            stack.extend([(node.arg, False)] if isinstance(node, ast.Unary)
                         else [(node.right, False), (node.left, False)])
        elif isinstance(node, ast.Unary):
            done.append(m.bool_not(done.pop()))
        else:
            right = done.pop()
            done.append(m.boolean(node.op, done.pop(), right))
    return done[0]


def conjoin(parts: Sequence[ast.Formula]) -> ast.Formula:
    """``a & b & …`` (``true`` when empty)."""
    if not parts:
        return ast.Const(True)
    result = parts[0]
    for part in parts[1:]:
        result = ast.Binary("&", result, part)
    return result


def disjoin(parts: Sequence[ast.Formula]) -> ast.Formula:
    """``a | b | …`` (``false`` when empty)."""
    if not parts:
        return ast.Const(False)
    result = parts[0]
    for part in parts[1:]:
        result = ast.Binary("|", result, part)
    return result


def cube_to_formula(cube: Mapping[int, bool], names: Sequence[str]) -> ast.Formula:
    """A conjunction of literals, variables in index order."""
    return conjoin([ast.Prop(names[v]) if value else ast.Unary("!", ast.Prop(names[v]))
                    for v, value in sorted(cube.items())])


@deep_recursion()
def bdd_to_formula(m: MTBDD, node: int, names: Sequence[str]) -> ast.Formula:
    """A readable formula for a Boolean diagram (factored on the top variable)."""
    memo: dict[int, ast.Formula] = {}

    def go(current: int) -> ast.Formula:
        if current in memo:
            return memo[current]
        if m.is_terminal(current):
            result: ast.Formula = ast.Const(bool(m.value(current)))
        else:
            var = ast.Prop(names[m.top(current)])
            low, high = m.low(current), m.high(current)
            if high == m.true:
                result = disjoin([var, go(low)]) if low != m.false else var
            elif high == m.false:
                result = conjoin([ast.Unary("!", var), go(low)]) if low != m.true else \
                    ast.Unary("!", var)
            elif low == m.false:
                result = conjoin([var, go(high)])
            elif low == m.true:
                result = disjoin([ast.Unary("!", var), go(high)])
            else:
                result = disjoin([conjoin([var, go(high)]),
                                  conjoin([ast.Unary("!", var), go(low)])])
        memo[current] = result
        return result

    return go(node)
