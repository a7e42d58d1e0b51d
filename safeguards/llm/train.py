"""Progressive safeguarded GRPO: fine-tune a language model through stages of text safeguards.

For each method of an :class:`~safeguards.llm.config.LLMExperiment` (``progressive``,
``final_spec``, ``no_finetune``) :func:`run_method` writes a run directory::

    config.json            the resolved experiment and the method
    metrics.jsonl / .csv   one row per GRPO step: stage, mean reward, completions judged,
                           violation rate of the stage's spec and of every rule, completion
                           length, loss, KL, seconds
    stage-K/trainer/       TRL checkpoints of stage K (``checkpoint-N``, marked complete)
    stage-K/final/         the model after stage K (``save_pretrained``; renamed into place)
    stage-K/eval.json      the held-out evaluation after stage K
    result.json            every evaluation, when the method finished

The model carries over from stage to stage (the next stage starts from ``stage-K/final``); with
``beta > 0`` the KL reference is the untrained model (``reference = "base"``) or the previous
stage's model (``"previous"``).  A killed run resumes (``resume=True``) from the last complete
checkpoint of the unfinished stage, with TRL restoring optimizer, scheduler and RNG states;
metrics logged after that checkpoint are dropped and recomputed.

Several processes (``torchrun --nproc_per_node N -m safeguards llm train``) train one run: see
:mod:`safeguards.llm.distributed`.

Per-rule violation rates use one monitor per rule (a trace can break several rules; the
conjunction's monitor stops at the first), read from the same labeler trace as the reward.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SafeguardsError
from safeguards.files import write_atomic
from safeguards.compiler import load_safeguard
from safeguards.llm.config import LLMExperiment, make_labeler
from safeguards.llm.distributed import (
    gather, is_main_process, main_process_first, num_processes, wait_for_everyone,
)
from safeguards.llm.rewards import completion_text, make_reward_func, violated_rules
from safeguards.runs import Progress, RunDir, read_metrics

__all__ = ["RuleJudge", "evaluate", "generate", "run_method", "train_llm", "stage_safeguards",
           "quiet_transformers", "summary_line", "make_shield"]


# -- judging completions ------------------------------------------------------------------------

class RuleJudge:
    """Which rules of a list of safeguards each text violates, one monitor per rule.

    >>> import safeguards
    >>> from safeguards.llm.events import default_text_labeler
    >>> judge = RuleJudge([safeguards.compile("llm/no_banned")], default_text_labeler())
    >>> judge.rules, [sorted(v) for v in judge.violations(["Call 555 123 4567, idiot.", "Ok."])]
    (('no_pii', 'no_banned'), [['no_banned', 'no_pii'], []])
    """

    def __init__(self, safeguards: Sequence[Safeguard], labeler: Any) -> None:
        self.labeler = labeler
        self.monitors: dict[str, Safeguard] = {}
        for safeguard in safeguards:
            parts = list(getattr(safeguard, "parts", None) or [safeguard])
            for rule, part in zip(safeguard.rules, parts):
                self.monitors.setdefault(rule.name, part)
        self.rules = tuple(self.monitors)

    def violations(self, texts: Sequence[str]) -> list[frozenset[str]]:
        """The violated rules of each text (broken on the way or pending at its end)."""
        return [frozenset(name for name, monitor in self.monitors.items()
                          if violated_rules(monitor, trace))
                for trace in self.labeler.traces(list(texts))]


def stage_safeguards(experiment: LLMExperiment) -> list[Safeguard]:
    """The compiled safeguard of every stage."""
    return [load_safeguard(stage.spec) for stage in experiment.stages]


def _rates(judged: Sequence[frozenset[str]], rules: Sequence[str],
           stage_rules: Sequence[Sequence[str]]) -> dict[str, Any]:
    n = max(1, len(judged))
    return {
        "violation_rate_by_stage": [sum(bool(j & set(r)) for j in judged) / n
                                    for r in stage_rules],
        "violation_rate_by_rule": {rule: sum(rule in j for j in judged) / n for rule in rules},
    }


# -- generation and evaluation ------------------------------------------------------------------

def generate(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 48,
             temperature: float = 1.0, seed: int = 0, logits_processors: Sequence[Any] = (),
             batch_size: int = 16) -> list[dict[str, Any]]:
    """Completions of chat ``prompts`` (one user message each): ``text``, ``tokens`` (ids,
    without EOS / padding) and ``truncated`` (no EOS within ``max_new_tokens``).
    ``temperature = 0`` decodes greedily.  Sampling is seeded per batch."""
    import torch
    from transformers import LogitsProcessorList

    eos = tokenizer.eos_token_id
    tokenizer.padding_side = "left"
    out: list[dict[str, Any]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [[{"role": "user", "content": p}] for p in prompts[start:start + batch_size]]
        inputs = tokenizer.apply_chat_template(chunk, add_generation_prompt=True, padding=True,
                                               return_tensors="pt", return_dict=True)
        for processor in logits_processors:
            if hasattr(processor, "reset"):
                processor.reset()
        torch.manual_seed(seed + start)
        sampling = {"do_sample": True, "temperature": temperature, "top_k": None, "top_p": None} \
            if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=eos,
                                 logits_processor=LogitsProcessorList(list(logits_processors)),
                                 **sampling)
        for row in ids[:, inputs["input_ids"].shape[1]:].tolist():
            end = row.index(eos) if eos in row else len(row)
            tokens = row[:end]
            out.append({"text": tokenizer.decode(tokens, skip_special_tokens=True),
                        "tokens": tokens, "truncated": eos not in row})
    return out


def evaluate(model: Any, tokenizer: Any, experiment: LLMExperiment, *,
             safeguards: Sequence[Safeguard] | None = None, labeler: Any = None,
             shield: bool = False, label: str = "") -> dict[str, Any]:
    """Held-out evaluation: ``samples_per_prompt`` completions of every ``[eval]`` prompt, the
    violation rate of each stage's spec and of each rule, length and truncation."""
    from safeguards.envs.text import load_prompts

    settings = experiment.eval
    safeguards = list(safeguards or stage_safeguards(experiment))
    labeler = labeler or make_labeler(experiment.labeler)
    judge = RuleJudge(safeguards, labeler)
    prompts = load_prompts(settings.prompts)
    rows = [(p, k) for p in prompts for k in range(settings.samples_per_prompt)]
    processors = ([make_shield(safeguards[-1], labeler, tokenizer, settings.max_new_tokens)]
                  if shield else [])
    started = time.perf_counter()
    completions = generate(model, tokenizer, [p.prompt for p, _ in rows],
                           max_new_tokens=settings.max_new_tokens,
                           temperature=settings.temperature, seed=experiment.seed,
                           logits_processors=processors)
    seconds = time.perf_counter() - started
    judged = judge.violations([c["text"] for c in completions])
    stage_rules = [[r.name for r in sg.rules] for sg in safeguards]
    return {
        "label": label, "n": len(rows), "shield": shield, "seconds": round(seconds, 2),
        "stage_specs": [sg.name for sg in safeguards],
        **_rates(judged, judge.rules, stage_rules),
        "mean_length_tokens": sum(len(c["tokens"]) for c in completions) / max(1, len(rows)),
        "truncated_rate": sum(c["truncated"] for c in completions) / max(1, len(rows)),
        "completions": [{"id": p.id, "category": p.category, "sample": k, "text": c["text"],
                         "truncated": c["truncated"], "violated_rules": sorted(j)}
                        for (p, k), c, j in zip(rows, completions, judged)],
    }


def make_shield(safeguard: Safeguard, labeler: Any, tokenizer: Any,
                max_new_tokens: int | None = None) -> Any:
    """A :class:`~safeguards.llm.shield.SafeguardLogitsProcessor` for ``safeguard`` (its token
    index cached under the safeguards cache folder, so a second run loads it).  Give it the
    generation's ``max_new_tokens``: then every completion ends with EOS in time, compliant."""
    from safeguards.llm.model import cache_dir
    from safeguards.llm.shield import SafeguardLogitsProcessor

    folder = cache_dir() / "token-index"
    folder.mkdir(parents=True, exist_ok=True)
    return SafeguardLogitsProcessor(safeguard, labeler, tokenizer, cache_dir=folder,
                                    max_new_tokens=max_new_tokens)


# -- one GRPO stage -----------------------------------------------------------------------------

@dataclass
class _StepLog:
    """Per-step violations the reward function saw, collected for the metrics row."""

    judged: list[frozenset[str]]


def _metric_fields(rules: Sequence[str]) -> tuple[str, ...]:
    return ("method", "stage", "spec", "stage_step", "step", "reward_mean", "reward_std",
            "completions", "violation_rate", *(f"violated/{r}" for r in rules), "completion_length",
            "clipped_ratio", "loss", "kl", "entropy", "step_seconds")


def _save_model_atomically(model: Any, tokenizer: Any, target: Path) -> None:
    """``save_pretrained`` into a temporary sibling folder, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _train_stage(*, experiment: LLMExperiment, method: str, index: int, spec: Safeguard,
                 steps: int, offset: int, model: Any, tokenizer: Any, reference: str,
                 judge: RuleJudge, labeler: Any, stage_dir: Path, run: RunDir,
                 progress: Progress, callbacks: Sequence[Any]) -> Any:
    """Run GRPO for one stage (resuming from its last complete checkpoint); returns the model."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig

    from safeguards.envs.text import load_prompts
    from safeguards.llm.grpo import SafeguardGRPOTrainer, last_complete_checkpoint

    settings = experiment.train
    dataset = Dataset.from_list([{"prompt": p.messages(), "prompt_id": p.id}
                                 for p in load_prompts(experiment.prompts)])
    core = make_reward_func(spec, labeler)
    seen = _StepLog([])

    def reward(prompts: Any = None, completions: Any = None, completion_ids: Any = None,
               **kwargs: Any) -> list[float]:
        rewards = core(prompts=prompts, completions=completions, completion_ids=completion_ids,
                       **kwargs)
        seen.judged.extend(judge.violations([completion_text(c) for c in completions or []]))
        return rewards

    reward.__name__ = core.__name__
    stage_rules = {r.name for r in spec.rules}

    class Metrics(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if not logs or "reward" not in logs:
                return
            judged, seen.judged = gather(seen.judged), []  # every process's completions
            if not is_main_process():
                return
            n = max(1, len(judged))
            row = {"method": method, "stage": index + 1, "spec": spec.name,
                   "stage_step": state.global_step, "step": offset + state.global_step,
                   "reward_mean": logs.get("reward"), "reward_std": logs.get("reward_std"),
                   "completions": len(judged), "violation_rate": sum(bool(j & stage_rules) for j in judged) / n,
                   **{f"violated/{r}": sum(r in j for j in judged) / n for r in judge.rules},
                   "completion_length": logs.get("completions/mean_length"),
                   "clipped_ratio": logs.get("completions/clipped_ratio"),
                   "loss": logs.get("loss"), "kl": logs.get("kl"), "entropy": logs.get("entropy"),
                   "step_seconds": round(time.perf_counter() - getattr(self, "started", 0.0), 2)}
            run.log(row)
            progress.update(1, f"stage {index + 1} reward {row['reward_mean']:.3f} "
                               f"violations {row['violation_rate']:.2f}")

    model.config._name_or_path = reference  # TRL builds its KL reference model from this path
    args = GRPOConfig(
        output_dir=os.fspath(stage_dir / "trainer"), max_steps=steps,
        per_device_train_batch_size=_per_process_batch(settings),
        num_generations=settings.num_generations, gradient_accumulation_steps=1,
        max_completion_length=settings.max_completion_length,
        learning_rate=settings.learning_rate, lr_scheduler_type="constant",
        beta=settings.beta, temperature=settings.temperature, top_k=0, top_p=1.0,
        logging_steps=1, save_strategy="steps", save_steps=settings.checkpoint_every,
        save_total_limit=2, report_to="none", use_cpu=True, bf16=False, fp16=False,
        seed=experiment.seed + index, data_seed=experiment.seed + index, disable_tqdm=True,
        dataloader_num_workers=0)
    processors: Callable[[], list[Any]] | None = None
    if settings.shield:
        with main_process_first():  # the others load the token index it cached
            shield = make_shield(spec, labeler, tokenizer, settings.max_completion_length)

        def fresh_shield() -> list[Any]:
            shield.reset()
            return [shield]

        processors = fresh_shield

    trainer = SafeguardGRPOTrainer(model=model, reward_funcs=[reward], args=args,
                                   train_dataset=dataset, processing_class=tokenizer,
                                   callbacks=[Metrics(), *callbacks],
                                   logits_processors=processors)
    trainer.remove_callback(PrinterCallback)  # our metrics rows and progress bar replace it
    checkpoint = last_complete_checkpoint(stage_dir / "trainer")
    trainer.train(resume_from_checkpoint=os.fspath(checkpoint) if checkpoint else None)
    return trainer.model


def _per_process_batch(settings: Any) -> int:
    """Completions each process generates per step: the step's batch (``prompts_per_step`` x
    ``num_generations``) split over the processes, so that a step is the same with any number
    of them."""
    total, processes = settings.prompts_per_step * settings.num_generations, num_processes()
    if total % processes:
        raise SafeguardsError(f"a step's {total} completions (prompts_per_step x "
                              f"num_generations) do not split over {processes} processes\n"
                              "hint: make prompts_per_step x num_generations a multiple of "
                              "the number of processes")
    return total // processes


# -- a method -----------------------------------------------------------------------------------

def _stage_done(stage_dir: Path) -> bool:
    return (stage_dir / "final" / "config.json").is_file() and (stage_dir / "eval.json").is_file()


def _resume_point(stage_dirs: Sequence[Path], steps: Sequence[int]) -> int:
    """Global steps already covered by finished stages and the last complete checkpoint."""
    from safeguards.llm.grpo import last_complete_checkpoint

    covered = 0
    for stage_dir, n in zip(stage_dirs, steps):
        if _stage_done(stage_dir):
            covered += n
            continue
        checkpoint = last_complete_checkpoint(stage_dir / "trainer")
        if checkpoint is not None:
            covered += int(checkpoint.name.split("-")[1])
        break
    return covered


def quiet_transformers() -> None:
    """No per-shard progress bars and no deprecation notices from transformers' own internals
    (they are not about this package's calls)."""
    import warnings

    from transformers.utils import logging

    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def run_method(experiment: LLMExperiment, method: str, run_dir: str | os.PathLike[str], *,
               resume: bool = False, progress: bool = True,
               callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train (and evaluate) one method into ``run_dir`` (locked meanwhile,
    :meth:`~safeguards.runs.RunDir.lock`); returns its result (also written to
    ``result.json``).  ``callbacks``: extra ``TrainerCallback`` objects for every stage."""
    import torch

    torch.set_num_threads(experiment.train.threads)
    quiet_transformers()
    safeguards = stage_safeguards(experiment)
    labeler = make_labeler(experiment.labeler)
    judge = RuleJudge(safeguards, labeler)
    run = RunDir(run_dir, fields=_metric_fields(judge.rules))
    with run.lock() if is_main_process() else nullcontext():  # the main process writes
        return _train_method(experiment, method, run, safeguards, labeler, judge,
                             resume=resume, progress=progress, callbacks=callbacks)


def _train_method(experiment: LLMExperiment, method: str, run: RunDir,
                  safeguards: Sequence[Safeguard], labeler: Any, judge: RuleJudge, *,
                  resume: bool, progress: bool, callbacks: Sequence[Any]) -> dict[str, Any]:
    """:func:`run_method` in its run directory (locked)."""
    import json

    from safeguards.llm.model import load_model, load_tokenizer, model_location

    config = {"experiment": experiment.to_json(), "method": method}
    if run.has_run() or (run.path / "stage-1").exists():
        previous = run.read_config()
        if not resume:
            raise SafeguardsError(f"{run.path} already holds a run\nhint: pass --resume to "
                                  "continue it, or choose another --run-dir")
        if previous is not None and previous != json.loads(json.dumps(config)):
            raise SafeguardsError(f"{run.path} holds a run of another configuration\nhint: "
                                  "resume with the same file, or choose another --run-dir")
    stages = experiment.method_stages(method)
    stage_dirs = [run.path / f"stage-{k + 1}" for k in range(len(stages))]
    done = _resume_point(stage_dirs, [s.steps for s in stages]) if resume else 0
    main = is_main_process()
    wait_for_everyone()  # every process has looked at the folder before the main one writes
    kept = []
    if main:
        run.write_config(config)
        kept = [r for r in read_metrics(run.path) if int(r["step"]) <= done] if resume else []
        run.start_metrics()
        for row in kept:
            run.log(row)

    started = time.perf_counter()
    base = model_location(experiment.model)
    tokenizer = load_tokenizer(base)
    stage_specs = safeguards if method == "progressive" else safeguards[-1:]
    evals: list[dict[str, Any]] = []
    bar = Progress(sum(s.steps for s in stages), enabled=progress and main, desc=method,
                   initial=len(kept))
    try:
        if not stages and main:
            evals.append(evaluate(load_model(base), tokenizer, experiment, safeguards=safeguards,
                                  labeler=labeler, label="no fine-tuning"))
        current, offset = base, 0
        for k, (stage, sg, stage_dir) in enumerate(zip(stages, stage_specs, stage_dirs)):
            stage_dir.mkdir(parents=True, exist_ok=True)
            eval_path = stage_dir / "eval.json"
            if not _stage_done(stage_dir):
                model = load_model(current)
                model.train()
                reference = base if experiment.train.reference == "base" or k == 0 else current
                model = _train_stage(
                    experiment=experiment, method=method, index=k, spec=sg, steps=stage.steps,
                    offset=offset, model=model, tokenizer=tokenizer, reference=reference,
                    judge=judge, labeler=labeler, stage_dir=stage_dir, run=run, progress=bar,
                    callbacks=callbacks)
                model.eval()
                if main:
                    _save_model_atomically(model, tokenizer, stage_dir / "final")
                    result = evaluate(model, tokenizer, experiment, safeguards=safeguards,
                                      labeler=labeler, label=f"after stage {k + 1} ({sg.name})")
                    result.update(stage=k + 1, spec=sg.name, steps=stage.steps)
                    write_atomic(eval_path, json.dumps(result, indent=1) + "\n")
                    shutil.rmtree(stage_dir / "trainer", ignore_errors=True)
                wait_for_everyone()  # the model and the evaluation are on disk
            evals.append(json.loads(eval_path.read_text(encoding="utf-8")))
            current, offset = os.fspath(stage_dir / "final"), offset + stage.steps
    finally:
        bar.close()
        run.close()
    result = {"method": method, "model": experiment.model, "seed": experiment.seed,
              "steps": sum(s.steps for s in stages), "evaluations": evals,
              "wall_seconds_this_session": round(time.perf_counter() - started, 1)}
    if main:
        run.write_result(result)
    return result


def train_llm(experiment: LLMExperiment, run_root: str | os.PathLike[str], *,
              methods: Sequence[str] | None = None, resume: bool = False, progress: bool = True,
              callbacks: Sequence[Any] = (),
              report: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run every method of ``experiment`` (or ``methods``) into ``run_root/<method>``."""
    results = {}
    for method in methods or experiment.methods:
        results[method] = run_method(experiment, method, Path(run_root) / method, resume=resume,
                                     progress=progress, callbacks=callbacks)
        if report is not None:
            report(summary_line(results[method]))
    return results


def summary_line(result: dict[str, Any]) -> str:
    """One line per evaluation: the violation rate of every stage spec."""
    lines = []
    for e in result["evaluations"]:
        rates = " ".join(f"{name}={rate:.2f}" for name, rate in
                         zip(e["stage_specs"], e["violation_rate_by_stage"]))
        lines.append(f"{result['method']}: {e['label']}: violation rate {rates}; "
                     f"mean length {e['mean_length_tokens']:.1f} tokens")
    return "\n".join(lines)

