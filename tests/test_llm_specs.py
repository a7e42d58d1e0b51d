"""The shipped LLM specs (specs/llm) compile, nest, and mean what their comments say."""

from __future__ import annotations

import pytest

import safeguards
from safeguards.automata.analysis import Verdict
from safeguards.llm.events import default_text_labeler
from safeguards.llm.rewards import violated_rules

STAGES = ["llm/no_pii", "llm/no_banned", "llm/disclaimer_first", "llm/complete_sentence"]
RULES = ["no_pii", "no_banned", "disclaimer_first", "complete_sentence"]


@pytest.fixture(scope="module")
def stages() -> list[safeguards.Safeguard]:
    return [safeguards.compile(name) for name in STAGES]


def broken(sg: safeguards.Safeguard, trace: list[set[str]]) -> set[str]:
    return set(violated_rules(sg, trace))


def test_stages_nest_and_read_only_labeler_props(stages: list[safeguards.Safeguard]) -> None:
    labeler_props = set(default_text_labeler().props)
    for k, sg in enumerate(stages):
        assert [r.name for r in sg.rules] == RULES[:k + 1]
        assert set(sg.props) <= labeler_props
        assert sg.n_states <= 10  # small enough for the token index (<= 50 combined states)


def test_no_pii(stages: list[safeguards.Safeguard]) -> None:
    sg = stages[0]
    assert broken(sg, [set(), {"pii"}, set()]) == {"no_pii"}
    assert broken(sg, [set(), {"banned", "medical"}]) == set()
    assert broken(sg, []) == set()
    states = sg.run([set(), {"pii"}])
    assert sg.verdict(states[0]) == Verdict.PRESUMABLY_SATISFIED
    assert sg.verdict(states[1]) == Verdict.VIOLATED  # at the earliest bad prefix


def test_no_banned_adds_a_rule(stages: list[safeguards.Safeguard]) -> None:
    assert broken(stages[1], [{"banned"}]) == {"no_banned"}
    assert broken(stages[1], [{"pii"}]) == {"no_pii"}
    assert broken(stages[0], [{"banned"}]) == set()


def test_disclaimer_must_come_first(stages: list[safeguards.Safeguard]) -> None:
    sg = stages[2]
    assert broken(sg, [{"medical"}, {"disclaimer"}]) == {"disclaimer_first"}
    assert broken(sg, [{"disclaimer"}, {"medical"}, {"medical"}]) == set()
    assert broken(sg, [{"medical", "disclaimer"}]) == set()  # the same sentence counts
    assert broken(sg, [set(), set()]) == set()  # no advice, no disclaimer needed


def test_complete_sentence_is_judged_at_the_end(stages: list[safeguards.Safeguard]) -> None:
    sg = stages[3]
    assert broken(sg, [{"sentence_end"}]) == set()
    assert broken(sg, [{"sentence_end"}, set()]) == {"complete_sentence"}
    assert broken(sg, [set(), {"sentence_end"}]) == set()
    assert broken(sg, []) == {"complete_sentence"}  # the empty completion ends no sentence
    states = sg.run([set(), {"sentence_end"}, set()])
    assert [sg.verdict(q) for q in states] == [Verdict.PRESUMABLY_VIOLATED,
                                               Verdict.PRESUMABLY_SATISFIED,
                                               Verdict.PRESUMABLY_VIOLATED]


@pytest.mark.parametrize("text, rules", [
    ("Sure. Write to me at jane.doe@example.com.", {"no_pii"}),
    ("You are an idiot.", {"no_banned"}),
    ("Take 400 mg of ibuprofen. I am not a doctor.", {"disclaimer_first"}),
    ("I am not a doctor. Take 400 mg of ibuprofen.", set()),
    ("Photosynthesis turns light into sugar. It happens in the", {"complete_sentence"}),
    ("Photosynthesis turns light into sugar.", set()),
    ("Call 555 123 4567, idiot", {"no_pii", "no_banned", "complete_sentence"}),
])
def test_final_spec_on_real_text(text: str, rules: set[str]) -> None:
    from safeguards.llm.train import RuleJudge

    judge = RuleJudge([safeguards.compile(STAGES[-1])], default_text_labeler())
    assert judge.violations([text]) == [frozenset(rules)]
    assert bool(rules) == bool(violated_rules(safeguards.compile(STAGES[-1]),
                                              default_text_labeler().trace(text)))
