"""Compile the four Minecraft safeguards of the Progressive Safeguards paper and monitor traces.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import safeguards

TRACES = Path(__file__).parent / "traces"
MINECRAFT = resources.files("safeguards.specs") / "minecraft"


def main() -> None:
    for k in range(4):
        sg = safeguards.compile(MINECRAFT / f"safeguard{k}.sg")
        witness = [sorted(step) for step in sg.shortest_violation() or []]
        print(f"{sg.name}: {sg.n_states} states, {sg.n_letters} letter classes, "
              f"shortest violation {witness}")

    sg = safeguards.compile(MINECRAFT / "safeguard3.sg")
    for path in sorted(TRACES.glob("*.jsonl")):
        print(f"\n{path.name} under {sg.name}:")
        monitor = sg.monitor()
        for line in path.read_text().splitlines():
            step = monitor.step(json.loads(line))
            broken = ", ".join(sorted(step.violated_rules)) or "-"
            print(f"  step {step.step}: {line:<24} -> {sg.state_names[step.state]:<9} "
                  f"{step.verdict.value:<21} violated: {broken}")


if __name__ == "__main__":
    main()
