"""Save, load, exchange and draw safeguards.

* JSON (:func:`to_json` / :func:`from_json`): everything a :class:`Safeguard` holds, versioned;
* HOA v1 (:func:`to_hoa` / :func:`from_hoa`): exchange with Spot and other automata tools;
* Graphviz (:func:`to_dot` / :func:`render`): pictures.

>>> import safeguards
>>> sg = safeguards.compile_ltl("G !lava")
>>> from_json(to_json(sg)).accepts([{"lava"}])
False
>>> from_hoa(to_hoa(sg)).accepts([set(), set()])
True
"""

from safeguards.automata.io_dot import FORMATS, render, to_dot
from safeguards.automata.io_hoa import from_hoa, guard_to_hoa, to_hoa
from safeguards.automata.io_json import FORMAT, VERSION, from_dict, from_json, to_dict, to_json

__all__ = ["to_json", "from_json", "to_dict", "from_dict", "FORMAT", "VERSION",
           "to_hoa", "from_hoa", "guard_to_hoa", "to_dot", "render", "FORMATS"]
