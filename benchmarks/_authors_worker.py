"""Run the authors' ``minecraft.py`` (grockious/safeguardedRL) once, in this process, and print
one JSON line with its results; a child process of ``bench_authors.py``.

Usage: ``python _authors_worker.py AUTHORS_DIR VARIANT SEED [EPISODES]`` with VARIANT
``progressive`` or ``zero_shot``.  The script is executed from its checkout, never copied:

* ``progressive`` runs the file's text unchanged (``runpy`` semantics: ``__main__``, its folder
  on ``sys.path``), in a fresh temporary working directory (it writes ``results/`` there);
* ``zero_shot`` applies two substitutions to the text in memory first: ``DFAs = [DFA4]`` (only
  safeguard 3) and stage index ``int(episode/number_of_episodes)`` (always 0), so all episodes
  train under safeguard 3 and the safety-bias transfer never fires;
* ``EPISODES`` (for smoke tests) replaces ``number_of_episodes = 5000`` and the stage length
  ``1666`` with ``EPISODES`` and ``max(1, EPISODES // 3)``.

From the outside: ``random`` and ``numpy.random`` are seeded with SEED, matplotlib draws with
the non-interactive Agg backend (``plt.show()`` is a no-op), ``dill`` is a stub whose ``dump``
does nothing (the script's pickle of all its globals is not read), and the script's per-episode
prints go to ``/dev/null``.  CPU time is ``time.process_time()`` around the whole script
(training, the 100 test episodes, its plots).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

STAGE_LENGTH = 1666
ZERO_SHOT_EDITS = (("DFAs = [DFA, DFA2, DFA3, DFA4]", "DFAs = [DFA4]"),
                   ("int(episode/1666)", "int(episode/number_of_episodes)"))


def substitute(text: str, old: str, new: str) -> str:
    """Replace every occurrence of ``old``, which must occur at least once."""
    if old not in text:
        raise ValueError(f"the authors' minecraft.py no longer contains {old!r}")
    return text.replace(old, new)


def script_text(path: Path, variant: str, episodes: int | None) -> str:
    text = path.read_text(encoding="utf-8")
    if variant == "zero_shot":
        for old, new in ZERO_SHOT_EDITS:
            text = substitute(text, old, new)
    elif variant != "progressive":
        raise ValueError(f"unknown variant {variant!r}")
    if episodes is not None:
        text = substitute(text, "number_of_episodes = 5000", f"number_of_episodes = {episodes}")
        text = text.replace("1666", str(max(1, episodes // 3)))
    return text


def stage_bounds(episodes: int, stage_length: int, stages: int) -> list[tuple[int, int]]:
    """Episode ranges ``[start, end)`` of the authors' stages (the last one takes the rest)."""
    starts = [min(i * stage_length, episodes) for i in range(stages)] + [episodes]
    return [(starts[i], starts[i + 1]) for i in range(stages)]


def run(authors: Path, variant: str, seed: int, episodes: int | None) -> dict[str, Any]:
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np

    sys.modules["dill"] = types.SimpleNamespace(dump=lambda *args, **kwargs: None)
    sys.path.insert(0, str(authors))
    script = authors / "minecraft.py"
    code = compile(script_text(script, variant, episodes), str(script), "exec")
    scope: dict[str, Any] = {"__name__": "__main__", "__file__": str(script)}
    random.seed(seed)
    np.random.seed(seed)
    with tempfile.TemporaryDirectory() as work, open(os.devnull, "w") as sink:
        os.chdir(work)
        start = time.process_time()
        with contextlib.redirect_stdout(sink):
            exec(code, scope)
        cpu = time.process_time() - start
    total = int(scope["number_of_episodes"])
    violations = scope["safety_violation_counter"][0]
    stages = len(scope["DFAs"])  # 1 in the zero-shot variant
    stage_length = STAGE_LENGTH if episodes is None else max(1, episodes // 3)
    bounds = stage_bounds(total, total if stages == 1 else stage_length, stages)
    tests = int(scope["number_of_tests"])
    return {
        "code": "authors", "variant": variant, "seed": seed, "cpu_seconds": cpu,
        "stage_episodes": [end - start for start, end in bounds],
        "train_violations": [int(violations[start:end].sum()) for start, end in bounds],
        "test_success": scope["successes_in_test"] / tests,
        "test_violations": scope["number_of_safety_violations"] / tests,
        "test_queries": int(scope["number_of_metalearning"]),
        "final_value_s0": float(scope["q_at_initial_state"][-1]),
    }


def main(argv: list[str]) -> None:
    authors, variant, seed = Path(argv[0]).resolve(), argv[1], int(argv[2])
    episodes = int(argv[3]) if len(argv) > 3 else None
    print(json.dumps(run(authors, variant, seed, episodes)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
