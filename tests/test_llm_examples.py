"""The LLM examples run offline on the tiny model and print what their docstrings say."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Token indexes and converted models go to a temporary cache, not the user's."""
    monkeypatch.setenv("SAFEGUARDS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def run_example(name: str, args: list[str], capsys: pytest.CaptureFixture,
                monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out.splitlines()


def test_reward_grpo_example(capsys: pytest.CaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = run_example("llm_reward_grpo.py", ["--steps", "2", "--max-completion-length", "6"],
                        capsys, monkeypatch)
    assert lines[0] == ("reward safeguard_llm_complete_sentence: rules no_pii, no_banned, "
                        "disclaimer_first, complete_sentence")
    assert [line.split(":")[0] for line in lines[1:]] == ["step 1", "step 2"]
    assert all("violation rate" in line and "complete_sentence" in line for line in lines[1:])


def test_shielded_generation_example(capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.llm_tiny import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    tiny_model(tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lines = run_example("llm_shielded_generation.py",
                        ["--model", str(tmp_path), "--max-new-tokens", "12",
                         "--spec", "llm/no_banned"], capsys, monkeypatch)
    assert lines[0].startswith("spec llm_no_banned: rules no_pii, no_banned; token index ")
    shielded = [line for line in lines if line.strip().startswith("shielded")]
    assert len(shielded) == 3
    verdicts = [lines[lines.index(line) + 1] for line in shielded]
    assert all(v.strip() == "violated: nothing" for v in verdicts)  # safety rules: never broken
