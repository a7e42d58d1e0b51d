"""The token index and the shield: exact agreement with the reward, and shielded generation."""

from __future__ import annotations

import codecs
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
from transformers import LogitsProcessor, TopKLogitsWarper

import safeguards
from safeguards.labels import LabelError
from safeguards.llm import (ClassifierEvent, Keywords, TextLabeler, TokenIndex, TokenIndexError,
                            default_text_labeler, make_reward_func, violated_rules)
from safeguards.llm.index import token_bytes
from safeguards.llm.shield import SafeguardLogitsProcessor, ShieldError, ShieldWarning
from tests.llm_tiny import EXTRA_LOGITS, tiny_model, tiny_tokenizer

SPEC = "G !pii & G !banned & (!medical U disclaimer | G !medical) & F sentence_end"
GRANULARITIES = ["sentence", "word", "char"]

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def safeguard():
    return safeguards.compile_ltl(SPEC)


@pytest.fixture(scope="module")
def indexes(safeguard, tokenizer):
    return {g: TokenIndex.build(safeguard, default_text_labeler(g), tokenizer)
            for g in GRANULARITIES}


def compliant(safeguard, labeler, text: str) -> bool:
    return not violated_rules(safeguard, labeler.trace(text))


def run(index: TokenIndex, ids) -> int:
    state = index.initial
    for t in ids:
        state = int(index.next[state, t])
    return state


FRAGMENTS = ["kill", " kill", "er", "skill", " bob", "@", "example", ".com", " 555", "-123-",
             "4567", " 200", " mg", "mg", " ibuprofen", " not a doctor", " consult", " a doctor",
             ".", "!", "? ", " ", "\n", "é", "🙂", "Hello", " there", ","]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from(GRANULARITIES))
def test_index_agrees_with_reward_on_every_prefix(indexes, safeguard, tokenizer, parts,
                                                  granularity) -> None:
    """For any text, split into tokens anyhow: the shield may end there iff the reward says
    compliant, after every token whose prefix is valid UTF-8."""
    index, labeler = indexes[granularity], default_text_labeler(granularity)
    vocab, _ = token_bytes(tokenizer)
    ids = tokenizer.encode("".join(parts))
    state = index.initial
    for k, t in enumerate(ids, start=1):
        state = int(index.next[state, t])
        try:
            text = b"".join(vocab[i] for i in ids[:k]).decode("utf-8")
        except UnicodeDecodeError:
            assert not index.good[state]        # never end inside a character
            continue
        assert bool(index.good[state]) == compliant(safeguard, labeler, text), text


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.integers(2, 299), max_size=10), st.sampled_from(GRANULARITIES))
def test_index_agrees_with_reward_on_random_token_sequences(indexes, safeguard, tokenizer, ids,
                                                            granularity) -> None:
    index, labeler = indexes[granularity], default_text_labeler(granularity)
    vocab, _ = token_bytes(tokenizer)
    data = b"".join(vocab[i] for i in ids)
    state = run(index, ids)
    assert state == index.automaton.run(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert not index.good[state]                 # never end inside or after broken UTF-8
        try:
            codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
        except UnicodeDecodeError:
            assert not index.live[state]             # broken UTF-8 is a dead end
        return
    assert bool(index.good[state]) == compliant(safeguard, labeler, text)


def test_allowed_tokens_are_exactly_those_with_a_compliant_ending() -> None:
    """Brute force on a small vocabulary: a token is allowed iff some continuation of at most
    three tokens then EOS is compliant according to the reward's labeler."""
    sg = safeguards.compile_ltl("G !banned & (!medical U disclaimer | G !medical)")
    labeler = default_text_labeler("word")
    vocab = [b"<eos>", b"kill", b" ", b"er", b".", b" dose", b" not a doctor", b"x"]
    index = TokenIndex.from_vocabulary(sg, labeler, vocab, eos_ids=[0])
    words = range(1, len(vocab))

    def can_end_compliantly(prefix: tuple[int, ...]) -> bool:
        return any(compliant(sg, labeler, b"".join(vocab[i] for i in prefix + rest).decode())
                   for n in range(4) for rest in itertools.product(words, repeat=n))

    checked = 0
    for prefix in itertools.chain.from_iterable(itertools.product(words, repeat=n)
                                                for n in range(3)):
        if not can_end_compliantly(prefix):
            continue
        state = run(index, prefix)
        assert index.good[state] == compliant(sg, labeler, b"".join(vocab[i] for i in prefix)
                                              .decode())
        for t in words:
            assert index.allowed[state, t] == can_end_compliantly(prefix + (t,)), (prefix, t)
            checked += 1
    assert checked > 200


class Tempt(LogitsProcessor):
    """Pushes the random model towards violations (runs before the shield)."""

    def __init__(self, tokenizer) -> None:
        bad = ["kill", "Ġ", "@", "Ġdoct", "m", "g", "5", "ð", "."]
        self.ids = tokenizer.convert_tokens_to_ids(bad)
        self.eos = tokenizer.eos_token_id

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.ids] += 4.0
        scores[:, self.eos] += 6.0
        return scores


def generate(model, tokenizer, processors, n=12, seed=0, max_new_tokens=32, **kwargs):
    prompt = torch.tensor([tokenizer.encode("Hello there.")] * n)
    torch.manual_seed(seed)
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                         max_new_tokens=max_new_tokens, logits_processor=processors,
                         **{"top_k": None, "top_p": None, **kwargs})
    return prompt.shape[1], out


@pytest.mark.parametrize("granularity", ["sentence", "char"])
def test_shielded_generation_never_violates(safeguard, tokenizer, indexes, granularity) -> None:
    model = tiny_model(tokenizer)
    labeler = default_text_labeler(granularity)
    reward = make_reward_func(safeguard, labeler)
    eos = tokenizer.eos_token_id

    start, free = generate(model, tokenizer, [Tempt(tokenizer)])
    texts = tokenizer.batch_decode(free[:, start:], skip_special_tokens=True)
    assert min(reward(completions=texts)) < 0          # unshielded, it does violate

    shield = SafeguardLogitsProcessor(safeguard, labeler, index=indexes[granularity])
    start, out = generate(model, tokenizer, [Tempt(tokenizer), shield])
    completions = out[:, start:]
    assert int(completions.max()) < len(tokenizer)     # never an id beyond the tokenizer
    shield.observe(out)
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    rewards = reward(completions=texts)
    ended = (completions == eos).any(dim=1).numpy()
    assert ended.sum() >= 3
    for row, (text, r) in enumerate(zip(texts, rewards)):
        if ended[row]:
            assert r == 0.0, text                      # the guarantee
        if "\ufffd" not in text:
            assert bool(shield.can_end()[row]) == (r == 0.0), text   # exact agreement
    assert shield.stats["fallbacks"] == 0


def test_sampling_warpers_run_after_the_shield_and_keep_its_mask(safeguard, tokenizer,
                                                                 indexes) -> None:
    """``generate`` applies temperature/top-k/top-p after the ``logits_processor=`` list: they
    choose among the allowed tokens and never bring a masked one back.  Listed before the shield,
    a top-k warper does empty the allowed set."""
    model = tiny_model(tokenizer)
    reward = make_reward_func(safeguard, default_text_labeler())
    warpers = {"top_k": 3, "top_p": 0.8, "temperature": 0.7}
    shield = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShieldWarning)
        start, out = generate(model, tokenizer, [Tempt(tokenizer), shield], **warpers)
    completions = out[:, start:]
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    for ended, text, r in zip((completions == tokenizer.eos_token_id).any(dim=1), texts,
                              reward(completions=texts)):
        assert r == 0.0 or not ended, text
    assert shield.stats["warper_conflicts"] == shield.stats["fallbacks"] == 0

    late = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    with pytest.warns(ShieldWarning, match="ran before the shield"):
        generate(model, tokenizer, [Tempt(tokenizer), TopKLogitsWarper(1), late])
    assert late.stats["warper_conflicts"] > 0


def test_a_length_budget_makes_every_completion_comply(safeguard, tokenizer, indexes) -> None:
    model = tiny_model(tokenizer)
    reward = make_reward_func(safeguard, default_text_labeler())
    index = indexes["sentence"]
    assert 0 < index.distance[index.initial] < 8

    unbudgeted = SafeguardLogitsProcessor(safeguard, index=index)
    start, out = generate(model, tokenizer, [Tempt(tokenizer), unbudgeted], max_new_tokens=8)
    assert min(reward(completions=tokenizer.batch_decode(out[:, start:],
                                                         skip_special_tokens=True))) < 0

    shield = SafeguardLogitsProcessor(safeguard, index=index, max_new_tokens=8)
    start, out = generate(model, tokenizer, [Tempt(tokenizer), shield], max_new_tokens=8)
    texts = tokenizer.batch_decode(out[:, start:], skip_special_tokens=True)
    assert reward(completions=texts) == [0.0] * len(texts)
    assert (out[:, start:] == tokenizer.eos_token_id).any(dim=1).all()
    assert shield.stats["fallbacks"] == 0


def test_logits_wider_and_narrower_than_the_tokenizer(safeguard, tokenizer, indexes) -> None:
    shield = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    wide = shield(torch.tensor([[5, 6]]), torch.zeros(1, len(tokenizer) + EXTRA_LOGITS))
    assert torch.isinf(wide[0, len(tokenizer):]).all()
    assert not torch.isinf(wide[0, :len(tokenizer)]).all()
    narrow = shield(torch.tensor([[5, 6]]), torch.zeros(1, len(tokenizer) - 10))
    assert narrow.shape == (1, len(tokenizer) - 10)


def test_eos_allowed_only_when_ending_complies(safeguard, tokenizer, indexes) -> None:
    shield = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    eos = tokenizer.eos_token_id
    prompt = tokenizer.encode("Q:")
    assert torch.isinf(shield(torch.tensor([prompt]), torch.zeros(1, 300))[0, eos])
    done = prompt + tokenizer.encode("Hello there.")
    assert not torch.isinf(shield(torch.tensor([done]), torch.zeros(1, 300))[0, eos])
    tool = tokenizer.convert_tokens_to_ids("<|tool|>")
    assert torch.isinf(shield(torch.tensor([done]), torch.zeros(1, 300))[0, tool])


def test_unsatisfiable_spec_falls_back_loudly(tokenizer) -> None:
    sg = safeguards.compile_ltl("F banned & G !banned")
    index = TokenIndex.build(sg, default_text_labeler(), tokenizer)
    shield = SafeguardLogitsProcessor(sg, index=index)
    with pytest.warns(ShieldWarning, match="no token keeps 2 completion"):
        scores = shield(torch.tensor([[5], [6]]), torch.zeros(2, 300))
    assert (torch.isfinite(scores).sum(dim=1) == 1).all()
    assert torch.isfinite(scores[:, tokenizer.eos_token_id]).all()
    assert shield.stats["fallbacks"] == 2
    strict = SafeguardLogitsProcessor(sg, index=index, fallback="raise")
    with pytest.raises(ShieldError):
        strict(torch.tensor([[5]]), torch.zeros(1, 300))
    loose = SafeguardLogitsProcessor(sg, index=index, fallback="unshielded")
    with pytest.warns(ShieldWarning):
        assert torch.isfinite(loose(torch.tensor([[5]]), torch.zeros(1, 300))).all()
    with pytest.raises(ShieldError, match="fallback"):
        SafeguardLogitsProcessor(sg, index=index, fallback="ignore")


def test_a_processor_before_the_shield_that_removed_every_allowed_token(safeguard, tokenizer,
                                                                       indexes) -> None:
    shield = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    prompt = tokenizer.encode("Q:")
    shield(torch.tensor([prompt]), torch.zeros(1, 300))
    scores = torch.full((1, 300), float("-inf"))
    period = tokenizer.convert_tokens_to_ids(".")
    scores[0, period] = 1.0                              # an earlier top-1 kept a forbidden token
    with pytest.warns(ShieldWarning, match="ran before the shield"):
        out = shield(torch.tensor([prompt + tokenizer.encode("you kill")]), scores)
    assert torch.isinf(out[0, period])
    assert torch.equal(torch.isfinite(out[0]),
                       torch.from_numpy(indexes["sentence"].allowed[shield.states[0]]))


def test_state_tracking_beams_and_new_generations(safeguard, tokenizer, indexes) -> None:
    model = tiny_model(tokenizer)
    shield = SafeguardLogitsProcessor(safeguard, index=indexes["sentence"])
    labeler = default_text_labeler()
    for seed in range(2):                               # the same processor, two generations
        start, out = generate(model, tokenizer, [Tempt(tokenizer), shield], n=4, seed=seed)
        shield.observe(out)
        for row, ids in enumerate(out[:, start:].tolist()):
            assert shield.states[row] == run(indexes["sentence"], ids[:ids.index(0)]
                                             if 0 in ids else ids)
    prompt = torch.tensor([tokenizer.encode("Hello there.")] * 2)
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                         num_beams=3, max_new_tokens=12,
                         logits_processor=[TopKLogitsWarper(300), shield])
    for ids in out[:, prompt.shape[1]:].tolist():
        if tokenizer.eos_token_id in ids:
            text = tokenizer.decode(ids, skip_special_tokens=True)
            assert compliant(safeguard, labeler, text), text


def test_classifier_labelers_are_refused(safeguard, tokenizer) -> None:
    labeler = TextLabeler([Keywords("banned", ["x"]), ClassifierEvent("pii", lambda t, **k: [],
                                                                      "PII")])
    with pytest.raises(LabelError, match="classifier"):
        SafeguardLogitsProcessor(safeguards.compile_ltl("G !pii"), labeler, tokenizer)
    with pytest.raises(LabelError, match="the spec reads `"):
        SafeguardLogitsProcessor(safeguard, TextLabeler([Keywords("banned", ["x"])]), tokenizer)


def test_index_cache_round_trip(safeguard, tokenizer, tmp_path) -> None:
    labeler = default_text_labeler()
    cache = tmp_path / "new" / "cache"
    first = TokenIndex.build(safeguard, labeler, tokenizer, cache_dir=cache)
    files = list(cache.glob("token-index-*.npz"))
    assert len(files) == 1
    again = TokenIndex.build(safeguard, labeler, tokenizer, cache_dir=cache)
    for name in ["next", "allowed", "good", "live"]:
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert (again.initial, again.eos_ids, again.key) == (first.initial, first.eos_ids, first.key)
    with pytest.raises(TokenIndexError, match="another"):
        TokenIndex.load(files[0], expected_key="0" * 32)
    other = safeguards.compile_ltl("G !banned")
    assert TokenIndex.build(other, labeler, tokenizer).key != first.key
    files[0].write_bytes(b"not an index")
    with pytest.raises(TokenIndexError, match="cannot read"):
        TokenIndex.load(files[0])


def test_tiny_tokenizer_cuts_words_and_characters(tokenizer) -> None:
    vocab, special = token_bytes(tokenizer)
    assert special == {0, 1}
    pieces = [vocab[i] for i in tokenizer.encode("bob@example.com 🙂")]
    assert len(pieces) > 5 and any(p[:1] >= b"\x80" and len(p) < 4 for p in pieces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TokenIndex.build(safeguards.compile_ltl("G !pii"), default_text_labeler(), tokenizer)
