"""Timing worker for the native compiler and Spot, run as a child process of bench_compile.py so
that a run that explodes can be stopped (Spot's C++ cannot be interrupted in-process).

Protocol: one JSON request per stdin line ``{"competitor": "native"|"spot", "formula": str,
"semantics": "finite"|"infinite"}``; one JSON reply per line ``{"ok": bool, "seconds": s,
"states": n, "letters": n, "error": str}``.  The first line written is ``{"ready": true}``, after a
warm-up of both competitors.  Only the compile call itself is timed.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import safeguards

    try:
        import spot
    except ImportError:
        spot = None

    def native(formula: str, semantics: str):
        return safeguards.compile_ltl(formula, semantics=semantics)

    def spot_run(formula: str, semantics: str):
        if semantics == "finite":
            return spot.to_finite(spot.translate(spot.from_ltlf(formula), "buchi", "sbacc",
                                                 "deterministic"))
        return spot.translate(formula, "monitor", "det")

    native("G(a -> X b) & F c", "finite")
    native("G(a -> X b)", "infinite")
    if spot is not None:
        spot_run("G(a -> X b) & F c", "finite")
        spot_run("G(a -> X b)", "infinite")
    print(json.dumps({"ready": True, "spot": spot is not None}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        fn = native if request["competitor"] == "native" else spot_run
        reply: dict[str, object] = {"ok": False}
        try:
            start = time.perf_counter()
            result = fn(request["formula"], request["semantics"])
            seconds = time.perf_counter() - start
            if request["competitor"] == "native":
                reply = {"ok": True, "seconds": seconds, "states": result.n_states,
                         "letters": result.n_letters}
            else:  # count states once completed with a rejecting sink, as ours are complete
                reply = {"ok": True, "seconds": seconds,
                         "states": spot.complete(result).num_states()}
        except Exception as error:  # noqa: BLE001 - reported to the driver
            reply["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
