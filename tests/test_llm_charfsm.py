"""``safeguards.llm.charfsm`` reads the output of CPython's private regex parser (``re._parser``):
pin the Python versions it was tested on and the output shape it relies on, so that a new Python
fails here, loudly, before it silently changes what a detector matches."""

from __future__ import annotations

import re
import sys
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import pytest

#: Python versions ``charfsm`` was run on (the parser's output below is identical on all of them).
TESTED_PYTHONS = ((3, 11), (3, 12), (3, 13))


def test_python_version_was_tested_with_the_private_regex_parser() -> None:
    version = sys.version_info[:2]
    assert TESTED_PYTHONS[0] <= version <= TESTED_PYTHONS[-1], (
        f"safeguards.llm.charfsm compiles detector patterns from CPython's private re._parser, "
        f"tested on Python {TESTED_PYTHONS[0][0]}.{TESTED_PYTHONS[0][1]} to "
        f"{TESTED_PYTHONS[-1][0]}.{TESTED_PYTHONS[-1][1]}, not on {version[0]}.{version[1]}: "
        "run tests/test_llm_charfsm.py and tests/test_llm_events.py on it, then add it to "
        "TESTED_PYTHONS")


def _plain(parsed: Any) -> Any:
    """A parse tree with its ``SubPattern`` nodes turned into lists, for comparison."""
    if isinstance(parsed, _parser.SubPattern):
        return [_plain(item) for item in parsed]
    if isinstance(parsed, (tuple, list)):
        return type(parsed)(_plain(item) for item in parsed)
    return parsed


@pytest.mark.parametrize(("pattern", "tree"), [
    (r"a[^b-d\d]", [(c.LITERAL, 97), (c.IN, [(c.NEGATE, None), (c.RANGE, (98, 100)),
                                             (c.CATEGORY, c.CATEGORY_DIGIT)])]),
    (r"[^a]", [(c.NOT_LITERAL, 97)]),
    (r"x|yz", [(c.BRANCH, (None, [[(c.LITERAL, 120)], [(c.LITERAL, 121), (c.LITERAL, 122)]]))]),
    (r"(?i:x)*?", [(c.MIN_REPEAT, (0, c.MAXREPEAT, [(c.SUBPATTERN, (None, re.IGNORECASE, 0,
                                                                    [(c.LITERAL, 120)]))]))]),
    (r"(?:.){2,3}", [(c.MAX_REPEAT, (2, 3, [(c.ANY, None)]))]),
    (r"\Aa+\Z", [(c.AT, c.AT_BEGINNING_STRING), (c.MAX_REPEAT, (1, c.MAXREPEAT, [(c.LITERAL, 97)])),
                 (c.AT, c.AT_END_STRING)]),
    (r"^\b$", [(c.AT, c.AT_BEGINNING), (c.AT, c.AT_BOUNDARY), (c.AT, c.AT_END)]),
    (r"(a)\1", [(c.SUBPATTERN, (1, 0, 0, [(c.LITERAL, 97)])), (c.GROUPREF, 1)]),
    (r"(?=a)(?!b)", [(c.ASSERT, (1, [(c.LITERAL, 97)])), (c.ASSERT_NOT, (1, [(c.LITERAL, 98)]))]),
])
def test_private_regex_parser_output_has_the_shape_charfsm_reads(pattern: str, tree: Any) -> None:
    parsed = _parser.parse(pattern, re.ASCII)
    assert _plain(parsed) == tree
    assert parsed.state.flags & re.ASCII
