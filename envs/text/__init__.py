"""Prompt sets for safeguarded LLM fine-tuning: user prompts that tempt each text rule.

Two splits ship with the package, one JSON object per line (``id``, ``prompt``, optional
``category``): ``train`` (``prompts.jsonl``) and ``heldout`` (``heldout.jsonl``).  Categories:
``contact`` (tempts personal data), ``medical`` (advice without a disclaimer), ``insult``
(banned vocabulary), ``explain`` (long answers cut off mid-sentence) and ``mixed``.

>>> prompts = load_prompts("heldout")
>>> prompts[0].id, prompts[0].category
('heldout-001', 'contact')
>>> sorted({p.category for p in load_prompts("train")})
['contact', 'explain', 'insult', 'medical', 'mixed']
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from safeguards.errors import SafeguardsError, SpecError, did_you_mean

__all__ = ["Prompt", "SPLITS", "load_prompts", "prompt_file"]

#: The shipped splits and their files.
SPLITS = {"train": "prompts.jsonl", "heldout": "heldout.jsonl"}


@dataclass(frozen=True)
class Prompt:
    """One user prompt."""

    id: str
    prompt: str
    category: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The prompt as a one-turn conversation (what chat templates and TRL take)."""
        return [{"role": "user", "content": self.prompt}]


def prompt_file(split: str) -> Path:
    """The file of a shipped split (``train`` or ``heldout``), or ``split`` itself if it is the
    path of a ``.jsonl`` file."""
    if split in SPLITS:
        return Path(os.fspath(resources.files(__name__).joinpath(SPLITS[split])))
    if os.path.exists(split):
        return Path(split)
    hint = did_you_mean(split, SPLITS) or "shipped splits: " + ", ".join(SPLITS) + \
        "; or give the path of a .jsonl file"
    raise SafeguardsError(f"unknown prompt split `{split}`\nhint: {hint}")


def load_prompts(split: str = "train") -> list[Prompt]:
    """The prompts of a split (``train``, ``heldout``) or of a JSON-lines file, in file order.

    Each line is ``{"id": "...", "prompt": "...", "category": "..."}`` (category optional);
    blank lines are skipped; a malformed line raises :class:`SpecError` with ``file:line``.
    """
    path = prompt_file(split)
    text = path.read_text(encoding="utf-8")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue

        def bad(message: str, hint: str | None = None) -> SpecError:
            return SpecError(message, source=text, line=number, column=1, file=str(path),
                             hint=hint or 'each line: {"id": "p1", "prompt": "...", '
                                          '"category": "medical"}')

        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise bad(f"not JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise bad("a prompt line must be a JSON object")
        unknown = sorted(set(row) - {"id", "prompt", "category"})
        if unknown:
            raise bad(f"unknown key `{unknown[0]}`",
                      did_you_mean(unknown[0], ("id", "prompt", "category")))
        for key in ("id", "prompt"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise bad(f"`{key}` must be a non-empty string")
        category = row.get("category")
        if category is not None and not isinstance(category, str):
            raise bad("`category` must be a string")
        if row["id"] in seen:
            raise bad(f"prompt id `{row['id']}` appears twice")
        seen.add(row["id"])
        prompts.append(Prompt(row["id"], row["prompt"], category))
    if not prompts:
        raise SafeguardsError(f"{path}: error: no prompts in the file")
    return prompts
