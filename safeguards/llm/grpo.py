"""TRL's ``GRPOTrainer`` with shielded rollouts and checkpoints that a kill cannot corrupt.

Shielded rollouts.  On its transformers backend TRL builds a ``GenerationConfig`` from
``GRPOConfig`` (``max_new_tokens``, ``temperature``, ``top_p``, ...; ``generation_kwargs`` are
merged into it) and calls ``unwrapped_model.generate(**inputs, generation_config=...)`` in
``GRPOTrainer._generate_single_turn``.  A ``GenerationConfig`` cannot hold ``LogitsProcessor``
objects (it refuses a ``logits_processor`` field) and TRL has no public generation hook (its
``rollout_func`` is experimental and replaces the whole rollout), so :class:`SafeguardGRPOTrainer`
overrides the private ``_generate_single_turn`` and, for the duration of that call only, gives
the policy's ``generate`` an extra ``logits_processor=`` argument with fresh processors from
``logits_processors()`` (a factory, called once per rollout batch).  Nothing else of TRL's
rollout changes: padding, EOS masking, reward calls, logging.  vLLM and continuous batching are
refused with a shield (they never call ``generate``).

What shielding does to GRPO.  The completions are sampled from the *masked* distribution, while
GRPO's ratio and KL use the policy's unmasked log-probabilities.  With one optimisation step per
rollout (TRL's default, ``num_iterations = 1``) the ratio is 1 and the update is the policy
gradient of the masked samples under the unmasked policy: mass is moved toward the compliant
completions that were sampled; masked tokens are never sampled, so the policy gets no direct
signal against them (it learns to need the shield less only insofar as compliant completions are
rewarded).  The rewards still come from the full safeguard (obligations such as "end with a
complete sentence" are judged at the end; a completion cut by the length limit can violate them).

Checkpoints.  ``Trainer._save_checkpoint`` writes ``checkpoint-N/`` file by file, so a kill leaves a
partial folder that ``get_last_checkpoint`` would pick.  :class:`SafeguardGRPOTrainer` writes a
``COMPLETE`` marker (atomically) after the whole folder is written; :func:`last_complete_checkpoint`
only returns marked folders and deletes unmarked ones.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from trl import GRPOTrainer

from safeguards.errors import SafeguardsError
from safeguards.files import write_atomic

__all__ = ["SafeguardGRPOTrainer", "last_complete_checkpoint", "COMPLETE_MARKER"]

COMPLETE_MARKER = "COMPLETE"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


@contextmanager
def _extra_logits_processors(model: Any, processors: Sequence[Any]) -> Iterator[None]:
    """Make ``model.generate`` pass ``logits_processor=processors`` while the block runs."""
    from transformers import LogitsProcessorList

    generate = model.generate

    def shielded_generate(*args: Any, **kwargs: Any) -> Any:
        extra = LogitsProcessorList(list(kwargs.pop("logits_processor", None) or []))
        extra.extend(processors)
        return generate(*args, logits_processor=extra, **kwargs)

    model.generate = shielded_generate
    try:
        yield
    finally:
        del model.generate  # back to the class's method


class SafeguardGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with optional shielded rollouts and marked checkpoints (see the module
    docstring).  ``logits_processors``: a callable returning the ``LogitsProcessor`` objects to
    apply to one rollout batch (e.g. ``lambda: [SafeguardLogitsProcessor(...)]``), or None.
    Every other argument is ``GRPOTrainer``'s."""

    def __init__(self, *args: Any,
                 logits_processors: Callable[[], Sequence[Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logits_processors = logits_processors
        if logits_processors is not None and (self.use_vllm or
                                              self.use_transformers_continuous_batching):
            raise SafeguardsError("a shield needs TRL's transformers generation path: set "
                                  "use_vllm=False and leave continuous batching off")

    # TRL's private rollout step: tested with TRL 1.13 and 1.16 (its parameters differ between
    # them, hence *args).  tests/test_llm_grpo.py pins what this relies on: the method exists, is
    # called for every rollout, and calls the policy's ``generate`` on the transformers path.
    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        if self.logits_processors is None:
            return super()._generate_single_turn(*args, **kwargs)
        policy = self.accelerator.unwrap_model(self.model_wrapped)
        with _extra_logits_processors(policy, self.logits_processors()):
            return super()._generate_single_turn(*args, **kwargs)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()  # every process has written its part (RNG states)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        if self.accelerator.is_main_process and folder.is_dir():
            write_atomic(folder / COMPLETE_MARKER, f"{self.state.global_step}\n")


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of ``output_dir`` that was written completely; partial
    folders (no ``COMPLETE`` marker: the run was killed while writing) are deleted."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for child in folder.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        if not match or not child.is_dir():
            continue
        if not (child / COMPLETE_MARKER).is_file():
            shutil.rmtree(child, ignore_errors=True)
            continue
        step = int(match.group(1))
        if best is None or step > best[0]:
            best = (step, child)
    return best[1] if best else None
