"""The spec files shipped in the package (``safeguards.specs``), found by name.

>>> "minecraft/safeguard3" in shipped_specs()
True
>>> shipped_spec("minecraft/safeguard3").name
'safeguard3.sg'
"""

from __future__ import annotations

import os
import re
from importlib import resources
from importlib.abc import Traversable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from safeguards.spec.ast import Spec

__all__ = ["shipped_specs", "shipped_spec", "load_shipped_spec"]

_NAME = re.compile(r"[\w.\-/\\]{1,200}")


def shipped_specs() -> list[str]:
    """Names of the shipped specs, e.g. ``minecraft/safeguard3`` (without ``.sg``)."""
    names: list[str] = []

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".sg"):
                names.append(prefix + child.name[:-3])

    walk(resources.files("safeguards.specs"), "")
    return names


def shipped_spec(name: str) -> Traversable | None:
    """The shipped spec file called ``name`` (``.sg`` optional), or None."""
    if not _NAME.fullmatch(name):
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    if not parts[-1].endswith(".sg"):
        parts[-1] += ".sg"
    target = resources.files("safeguards.specs").joinpath(*parts)
    return target if target.is_file() else None


def load_shipped_spec(name: str) -> "Spec | None":
    """Load the shipped spec called ``name``, or None if there is none.

    >>> load_shipped_spec("minecraft/safeguard0").name
    'minecraft_safeguard0'
    """
    from safeguards.spec.loader import load_spec, load_spec_text

    target = shipped_spec(name)
    if target is None:
        return None
    if isinstance(target, os.PathLike):
        return load_spec(os.fspath(target))
    return load_spec_text(target.read_text(encoding="utf-8"), file=name)
