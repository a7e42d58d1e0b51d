"""Timing worker for LTLf2DFA + MONA, run inside a separate venv that has ``ltlf2dfa``.

Protocol: one JSON request per stdin line ``{"formula": "<LTLf2DFA syntax>", "timeout": s}``,
one JSON reply per stdout line ``{"ok": bool, "total": s, "mona": s, "states": n, "error": str}``.
The first line written is a hello ``{"ready": true, "version": ...}``.

``total`` is LTLf2DFA's whole ``to_dfa`` pipeline as the library runs it: parse the formula,
generate the MONA program, write it to a file, run ``mona -q -u -w`` through the shell, and turn
MONA's output into a DOT graph (guards simplified with sympy).  ``mona`` stops after MONA returns
(parse + program generation + MONA process).  The work mirrors ``ltlf2dfa.ltlf2dfa.to_dfa``
except that the ``.mona`` file lives in a private temporary folder and the MONA timeout is ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def main() -> None:
    from importlib.metadata import version

    from ltlf2dfa.base import MonaProgram
    from ltlf2dfa.ltlf2dfa import output2dot
    from ltlf2dfa.parser.ltlf import LTLfParser

    parser = LTLfParser()
    folder = tempfile.mkdtemp(prefix="ltlf2dfa-bench-")
    path = os.path.join(folder, "automa.mona")
    print(json.dumps({"ready": True, "version": version("ltlf2dfa")}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        reply: dict[str, object] = {"ok": False}
        try:
            start = time.perf_counter()
            formula = parser(request["formula"])
            program = MonaProgram(formula).mona_program()
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(program)
            process = subprocess.Popen(f"mona -q -u -w {path}", stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, shell=True, encoding="utf-8",
                                       start_new_session=True)
            try:
                output, _ = process.communicate(timeout=float(request.get("timeout", 30)))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                reply["error"] = "timeout"
                print(json.dumps(reply), flush=True)
                continue
            after_mona = time.perf_counter()
            dot = output2dot(output.strip())
            end = time.perf_counter()
            states = set()
            for dot_line in dot.splitlines():
                parts = dot_line.strip().split()
                if len(parts) >= 3 and parts[1] == "->" and parts[0] != "init":
                    states.add(parts[0])
                    states.add(parts[2].rstrip(";"))
            reply = {"ok": True, "total": end - start, "mona": after_mona - start,
                     "states": len(states)}
        except Exception as error:  # noqa: BLE001 - report anything to the driver
            reply["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
