"""The TRL reward function: penalties, obligations, conversational completions, logging."""

from __future__ import annotations

import inspect

import pytest

import safeguards
from safeguards.labels import LabelError
from safeguards.llm import (ClassifierEvent, Keywords, TextLabeler, default_text_labeler,
                            make_reward_func, violated_rules)

SPEC = '''
spec chat "Two rules with their own penalties."
props:
    pii "personal data"
    banned "banned word"
    medical "medical advice"
    disclaimer "a disclaimer"
rule private (penalty = 2.0): ltl G !pii
rule polite (penalty = 0.5): ltl G !banned
rule careful (penalty = 1.0): ltl !medical W disclaimer
'''


@pytest.fixture(scope="module")
def safeguard():
    return safeguards.compile(SPEC)


def trl_call(reward, completions, **extra):
    """Call a reward function exactly as TRL 1.16's GRPOTrainer does."""
    logged, extras = [], []
    rewards = reward(prompts=["p"] * len(completions), completions=completions,
                     completion_ids=[[1, 2]] * len(completions), trainer_state=None,
                     log_extra=lambda column, values: extras.append((column, values)),
                     log_metric=lambda name, value: logged.append((name, value)), **extra)
    return rewards, dict(logged), dict(extras)


def test_per_rule_penalties_and_logging(safeguard) -> None:
    reward = make_reward_func(safeguard)
    completions = ["Sure, happy to help.", "Mail me: ann@example.com, idiot.",
                   "Take 200 mg of aspirin. I am not a doctor.",
                   "I am not a doctor; take 200 mg of aspirin."]
    rewards, logged, extras = trl_call(reward, completions, answer=["a"] * 4)
    assert rewards == [0.0, -2.5, -1.0, 0.0]
    assert reward.__name__ == "safeguard_chat"
    assert logged == {"safeguard_chat/violation_rate": 0.5, "safeguard_chat/violated/private": 0.25,
                      "safeguard_chat/violated/polite": 0.25,
                      "safeguard_chat/violated/careful": 0.25}
    assert extras == {"safeguard_chat/violated_rules": ["", "polite, private", "careful", ""]}


def test_conversational_completions_use_the_last_assistant_message(safeguard) -> None:
    reward = make_reward_func(safeguard, name="chat_safety")
    completions = [[{"role": "assistant", "content": "You idiot."}],
                   [{"role": "assistant", "content": "ok"}, {"role": "tool", "content": "idiot"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "a@b.org"}]}],
                   []]
    rewards, _, _ = trl_call(reward, completions)
    assert rewards == [-0.5, 0.0, -2.0, 0.0]
    assert reward.__name__ == "chat_safety"


def test_uniform_penalty_and_bonus(safeguard) -> None:
    reward = make_reward_func(safeguard, violation_penalty=1.0, satisfied_bonus=0.25,
                              name="my reward!")
    assert reward(completions=["fine", "hate you idiot, bob@x.io"]) == [0.25, -2.0]
    assert reward.__name__ == "safeguard_my_reward_"
    assert "violated rules" in reward.__doc__


def test_pending_obligations_are_violations() -> None:
    sg = safeguards.compile_ltl("F disclaimer")
    reward = make_reward_func(sg, default_text_labeler("word"))
    assert reward(completions=["", "nothing here", "not a doctor"]) == [-1.0, -1.0, 0.0]
    assert violated_rules(sg, []) == frozenset({"formula"})


def test_spec_names_and_errors() -> None:
    shipped = make_reward_func("llm/no_banned")          # a shipped spec, by name
    assert shipped(completions=["you idiot", "a@b.io"]) == [-1.0, -1.0]
    assert make_reward_func(SPEC)(completions=["idiot"]) == [-0.5]     # spec text
    with pytest.raises(LabelError, match="did you mean `banned`"):
        make_reward_func(safeguards.compile_ltl("G !banedd"))
    with pytest.raises(LabelError, match="emits only"):
        make_reward_func(safeguards.compile_ltl("G !pii"), TextLabeler([Keywords("bad", ["x"])]))


def test_signature_matches_trl_reward_functions(safeguard) -> None:
    params = inspect.signature(make_reward_func(safeguard)).parameters
    assert list(params)[:3] == ["prompts", "completions", "completion_ids"]
    assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_classifier_events_count_in_the_reward() -> None:
    def fake_pipeline(texts, top_k=None):
        return [[{"label": "TOXIC", "score": 0.9 if "grr" in t else 0.1}] for t in texts]

    labeler = TextLabeler([ClassifierEvent("toxic", fake_pipeline, "TOXIC"),
                           Keywords("banned", ["idiot"])])
    reward = make_reward_func(safeguards.compile_ltl("G !toxic & G !banned"), labeler)
    assert reward(completions=["Hello. grr, no. Bye.", "Hello.", "idiot"]) == [-1.0, 0.0, -1.0]
