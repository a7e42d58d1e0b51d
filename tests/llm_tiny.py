"""A tiny, offline language model and tokenizer for the LLM tests.

``tiny_tokenizer()``: a byte-level BPE (like GPT-2 / SmolLM2) trained in memory on
:data:`CORPUS`, with ``<|endoftext|>`` as EOS and pad and a second special token
``<|tool|>``.  Its merges cut words, e-mail addresses and multi-byte characters across tokens
(e.g. ``" ki" + "ll"``, ``"bob" + "@" + "example"``, half of an emoji).

``tiny_model(tokenizer)``: a randomly initialised, seeded ``LlamaForCausalLM`` whose logits are
:data:`EXTRA_LOGITS` wider than the tokenizer (as for many real models).
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = [
    "I will kill the process and you will hate it. Don't be an idiot, stupid loser.",
    "Mail me at bob@example.com or alice.smith@mail.example.org today!",
    "Call +1 (555) 123-4567 or 555.987.6543 now? Thanks.",
    "Take 200 mg of ibuprofen or 500mg paracetamol, the usual dose for adults.",
    "I am not a doctor; please consult a doctor. This is not medical advice.",
    "Seek professional help. Talk to a doctor about your prescription and dosage.",
    "The café serves naïve crème brûlée 🙂 and tea. Skill, killer, hateful, skilled.",
    "Hello there. How are you? Fine, thanks! The weather is nice and the sky is blue.",
]
EOS = "<|endoftext|>"
EXTRA_LOGITS = 7


@functools.lru_cache(maxsize=1)
def _backend() -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, min_frequency=2, special_tokens=[EOS, "<|tool|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh byte-level BPE tokenizer (about 300 tokens), built offline in milliseconds."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_backend()), eos_token=EOS,
                                   pad_token=EOS, additional_special_tokens=["<|tool|>"],
                                   clean_up_tokenization_spaces=False)


def tiny_model(tokenizer: PreTrainedTokenizerFast | None = None, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer random Llama with logits ``EXTRA_LOGITS`` wider than the tokenizer."""
    tokenizer = tokenizer or tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer) + EXTRA_LOGITS, hidden_size=32,
                         intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
