"""Leave the doctest modules of a missing optional extra uncollected.

A core-only install (``pip install -e .``) has no gymnasium, torch, transformers, ...: modules such
as ``safeguards.gym`` or ``safeguards.envs.doom`` cannot be imported there, so pytest could not
collect their doctests.  This hook leaves exactly those modules out; a module that fails to import
for any other reason is still collected, and its error reported.  With every extra installed (CI)
the hook does nothing.  Test files skip themselves with ``pytest.importorskip``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

# Top-level modules brought by an extra of pyproject.toml rather than by the core.
OPTIONAL_MODULES = ("gymnasium", "minigrid", "matplotlib", "vizdoom", "stable_baselines3", "torch",
                    "transformers", "tokenizers", "trl", "gguf", "accelerate", "spot")
MISSING = frozenset(name for name in OPTIONAL_MODULES if importlib.util.find_spec(name) is None)

ROOT = Path(__file__).parent
# Source folders that pytest collects doctests from, and the package each one is installed as.
PACKAGES = {ROOT / "safeguards": "safeguards", ROOT / "envs": "safeguards.envs"}


def module_name(path: Path) -> str | None:
    """The dotted name the source file ``path`` is installed as; None outside the package."""
    for folder, package in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join((package, *parts))
    return None


def needs_a_missing_extra(module: str) -> bool:
    """Whether importing ``module`` fails only because an optional extra is not installed."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        return (error.name or "").partition(".")[0] in MISSING
    return False


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if not MISSING or collection_path.suffix != ".py":
        return None
    module = module_name(collection_path)
    return True if module is not None and needs_a_missing_extra(module) else None
