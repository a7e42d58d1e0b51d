"""Text events: the byte automata agree with Python's ``re``; units and the default labeler."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguards.labels import LabelError
from safeguards.llm import (ClassifierEvent, Keywords, PatternError, Regex, TextLabeler,
                            default_text_labeler)
from safeguards.llm.events import BANNED_WORDS, DISCLAIMERS

ALPHABET = "ab c.1-@é🙂\nA!?"
PATTERNS = [
    r"ab", r"a+b", r"(?:ab|ba)c?", r"[a-c]{2,3}", r"a.b", r"[^a ]b", r"\d+ ?a", r"\w@\w",
    r"(?i)AB", r"é+", r"\W\w", r"[^\W\d]{2}", r"a|b+?", r"\s\S", r"(a|)b", r"(?:a{1,2}){2}",
]


def reference_events(pattern: str, text: str) -> list[bool]:
    """Python's re: does some match of ``pattern`` end at each character?"""
    compiled = re.compile(pattern, re.ASCII)
    return [any(compiled.fullmatch(text, j, i + 1) for j in range(i + 1))
            for i in range(len(text))]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(PATTERNS), st.text(alphabet=ALPHABET, max_size=14))
def test_regex_automaton_matches_python_re(pattern: str, text: str) -> None:
    labeler = TextLabeler([Regex("hit", pattern)], granularity="char")
    assert [bool(step) for step in labeler.trace(text)] == reference_events(pattern, text)


WORDS = ["kill", "not a doctor", "dose", "dosage"]


def reference_keywords(text: str) -> list[bool]:
    """Whole-word, case-insensitive occurrences; each fires on the character after it (the last
    character if the text ends there)."""
    fired = [False] * len(text)
    for word in WORDS:
        body = r"\s+".join(map(re.escape, word.split()))
        for m in re.finditer(rf"(?<!\w)(?=({body})(?!\w))", text, re.ASCII | re.IGNORECASE):
            end = m.end(1)
            fired[min(end, len(text) - 1)] = True
    return fired


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(["kill", "KiLL", "skill", "killer", "not", "a", "doctor", "dose",
                                 "dosage", " ", "  ", "\n", ".", "!", "é", "x"]), max_size=10))
def test_keywords_whole_word_matches_reference(parts: list[str]) -> None:
    text = "".join(parts)
    labeler = TextLabeler([Keywords("kw", WORDS)], granularity="char")
    assert [bool(step) for step in labeler.trace(text)] == reference_keywords(text)


def test_keywords_case_sensitive_and_substrings() -> None:
    sensitive = TextLabeler([Keywords("kw", ["Kill"], case_sensitive=True)], granularity="word")
    assert sensitive.trace("kill Kill") == [frozenset(), frozenset({"kw"})]
    anywhere = TextLabeler([Keywords("kw", ["kill"], whole_word=False)], granularity="word")
    assert anywhere.trace("skills x") == [frozenset({"kw"}), frozenset()]


@pytest.mark.parametrize("granularity, expected", [
    ("sentence", [" Hi there. ", "Bye?! ", "ok"]),
    ("word", [" Hi ", "there. ", "Bye?! ", "ok"]),
    ("char", list(" Hi there. Bye?! ok")),
    ("completion", [" Hi there. Bye?! ok"]),
])
def test_units_per_granularity(granularity: str, expected: list[str]) -> None:
    labeler = TextLabeler([Regex("end", r"[.!?](?:\s|\Z)")], granularity=granularity)
    assert [u.text for u in labeler.units(" Hi there. Bye?! ok")] == expected
    assert labeler.trace("") == []


def test_end_of_text_events_join_the_last_unit() -> None:
    labeler = default_text_labeler("word")
    assert labeler.trace("you idiot") == [frozenset(), frozenset({"banned"})]
    assert labeler.trace("Done.") == [frozenset({"sentence_end"})]
    assert labeler.trace("Done. ") == [frozenset({"sentence_end"})]
    assert labeler.trace("e.g.x") == [frozenset()]


@pytest.mark.parametrize("text, props", [
    ("write to jane.doe@example.org", {"email", "pii"}),
    ("my number is 555-123-4567", {"phone", "pii"}),
    ("call (555) 123 4567", {"phone", "pii"}),
    ("Take 400mg now", {"medical"}),
    ("the usual dosage", {"medical"}),
    ("I am NOT a doctor", {"disclaimer"}),
    ("Please seek professional help", {"disclaimer"}),
    ("I hate mondays", {"banned"}),
    ("It ends here!", {"sentence_end"}),
    ("skills, hateful, killer, 12 mgs, dosed, a@b", set()),
])
def test_default_labeler_contract(text: str, props: set[str]) -> None:
    labeler = default_text_labeler("completion")
    assert set().union(*labeler.trace(text)) == props
    assert set(labeler.props) == {"email", "phone", "pii", "banned", "disclaimer", "medical",
                                  "sentence_end"}


def test_documented_vocabularies_fire() -> None:
    labeler = default_text_labeler("completion")
    for word in BANNED_WORDS:
        assert "banned" in labeler.trace(f"so {word}")[0], word
    for phrase in DISCLAIMERS:
        assert "disclaimer" in labeler.trace(f"{phrase.upper()}.")[0], phrase


@pytest.mark.parametrize("pattern, fragment", [
    ("^a", "use \\A"), ("a$", "use \\A"), (r"\bkill", "whole_word"), ("a(?=b)", "lookaround"),
    (r"(a)\1", "back-reference"), ("a*", "empty string"), ("[é-ü]", "beyond ASCII"),
    ("a{500}", "repeat count"), ("(", "missing"),
])
def test_unsupported_patterns_are_clear_errors(pattern: str, fragment: str) -> None:
    with pytest.raises(PatternError, match=re.escape(fragment)):
        Regex("x", pattern)


def test_bad_labeler_arguments() -> None:
    with pytest.raises(LabelError, match="granularity"):
        TextLabeler([], granularity="paragraph")
    with pytest.raises(LabelError, match="identifier"):
        Regex("not a name", "a")
    with pytest.raises(LabelError, match="non-empty"):
        Keywords("x", [" "])


@pytest.fixture(scope="module")
def classifier():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertForSequenceClassification, pipeline

    from tests.llm_tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=2,
                        id2label={0: "SAFE", 1: "TOXIC"}, label2id={"SAFE": 0, "TOXIC": 1},
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    return pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")


def test_classifier_events_follow_the_pipeline(classifier) -> None:
    texts = ["Hello there. ", "You idiot! ", "Fine, thanks."]
    scores = {t: {s["label"]: s["score"] for s in out}
              for t, out in zip(texts, classifier(texts, top_k=None))}
    threshold = sorted(scores[t]["TOXIC"] for t in texts)[1]   # fires on two of three sentences
    event = ClassifierEvent("toxic", classifier, "TOXIC", threshold=threshold)
    labeler = TextLabeler([event, Keywords("banned", ["idiot"])], granularity="sentence")
    units = labeler.units("".join(texts))
    assert [u.text for u in units] == texts
    assert [("toxic" in u.props) for u in units] == [scores[t]["TOXIC"] >= threshold
                                                     for t in texts]
    assert ["banned" in u.props for u in units] == [False, True, False]
    assert labeler.traces(["".join(texts), "Hi"])[0] == [u.props for u in units]
