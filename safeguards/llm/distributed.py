"""Fine-tuning across processes: ``torchrun --nproc_per_node N -m safeguards llm train …`` or
``accelerate launch --multi_gpu --num_processes N -m safeguards llm train …`` (on a machine without
GPUs too: accelerate's ``--cpu`` flag starts a single process).

Every process runs the same command; accelerate (through TRL's trainer) shards the prompts, runs
data-parallel GRPO and gathers the rewards.  What this package adds keeps the run directory one
run: the **main process** alone locks it and writes (config, metrics rows, models, evaluations,
``result.json``); the others wait for it at the points where they read what it wrote.  The
violations every process's reward function judged are gathered for the main process's metrics
row, and the shield's token index is built by the main process first and loaded by the others
from the shared cache.  In one process (no launcher) every function here is a no-op.

>>> is_main_process(), num_processes(), gather([1, 2])
(True, 1, [1, 2])
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Sequence

__all__ = ["num_processes", "is_main_process", "wait_for_everyone", "gather",
           "main_process_first"]


def _launched() -> bool:
    """Started by a launcher with more than one process (``accelerate launch``, ``torchrun``)?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _state() -> Any:
    """accelerate's process state, on the CPU as the trainer's ``use_cpu=True`` (the first
    call settles it for the trainer's ``Accelerator`` too)."""
    from accelerate import PartialState

    return PartialState(cpu=True)


def num_processes() -> int:
    """How many processes take part in training."""
    return _state().num_processes if _launched() else 1


def is_main_process() -> bool:
    """Is this the process that writes the run directory?"""
    return _state().is_main_process if _launched() else True


def wait_for_everyone() -> None:
    """A barrier across the processes."""
    if _launched():
        _state().wait_for_everyone()


def gather(items: Sequence[Any]) -> list[Any]:
    """The items of every process, in process order (a collective: every process calls it)."""
    if not _launched():
        return list(items)
    from accelerate.utils import gather_object

    return list(gather_object(list(items)))


@contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block in the main process first, then in the others (they find its cache)."""
    with _state().main_process_first() if _launched() else nullcontext():
        yield
