"""A safeguard as the reward of your own TRL GRPO run.

``make_reward_func(spec)`` is a plain TRL reward function: each completion is turned into a trace
of text events (e-mail addresses, phone numbers, banned words, disclaimers, medical advice,
sentence ends) and scored ``-(sum of the penalties of the rules it violates)``.  Here it drives
TRL's ``GRPOTrainer`` on the shipped training prompts; the trainer logs the violation rate of
every rule.  (``safeguards llm train`` runs whole progressive curricula with checkpoints.)

    python examples/llm_reward_grpo.py                          # tiny random model, 2 steps
    python examples/llm_reward_grpo.py --model smollm2 --steps 10 --max-completion-length 48
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from datasets import Dataset
from transformers import PrinterCallback
from trl import GRPOConfig, GRPOTrainer

import safeguards
from safeguards.envs.text import load_prompts
from safeguards.llm.rewards import make_reward_func


def load(name: str):
    if name == "tiny":  # a random 2-layer model with a small tokenizer, built offline
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.llm_tiny import tiny_model, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
                                   "{% if add_generation_prompt %}Answer:{% endif %}")
        return tiny_model(tokenizer), tokenizer
    from safeguards.llm.model import load_model, load_tokenizer

    return load_model(name), load_tokenizer(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny (default), smollm2, a folder or id")
    parser.add_argument("--spec", default="llm/complete_sentence")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-completion-length", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    model, tokenizer = load(args.model)
    reward = make_reward_func(safeguards.compile(args.spec))
    dataset = Dataset.from_list([{"prompt": p.messages()} for p in load_prompts("train")])
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="grpo-"), max_steps=args.steps,
        per_device_train_batch_size=8, num_generations=4,
        max_completion_length=args.max_completion_length, learning_rate=1e-5,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        seed=args.seed, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # we print our own summary below
    trainer.train()
    rules = [r.name for r in reward.safeguard.rules]
    print(f"reward {reward.__name__}: rules {', '.join(rules)}")
    for log in trainer.state.log_history:
        if "reward" not in log:
            continue
        rates = ", ".join(f"{rule} {log[f'{reward.__name__}/violated/{rule}']:.2f}"
                          for rule in rules)
        print(f"step {log['step']}: mean reward {log['reward']:.3f}; violation rate "
              f"{log[f'{reward.__name__}/violation_rate']:.2f} ({rates})")


if __name__ == "__main__":
    main()
