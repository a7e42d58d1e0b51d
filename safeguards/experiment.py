"""Experiment files: a curriculum of (environment, safeguard) stages and the methods to compare.

An experiment file is TOML (or YAML, when PyYAML is installed and the file ends in ``.yaml`` /
``.yml``); ``safeguards curriculum FILE`` runs every (method, seed) of it.  The schema::

    name = "minecraft"                  # optional; the default run directory is runs/<name>
    description = "..."                 # optional
    seeds = [0, 1, 2]                   # or a count: seeds = 3 means [0, 1, 2]; default [0]
    imports = ["my_package.envs"]       # optional: modules to import first (register envs)
    env = "safeguards/Minecraft-L1-v0"  # optional: the default `env` of every stage
    env_kwargs = { layout = 1 }         # optional: the default `env_kwargs` of every stage

    [train]                             # optional: learner settings shared by every method
    max_steps = 1000                    # episode length limit (training and test)
    alpha = 0.9                         # learning rate, in (0, 1]
    gamma = 0.9                         # discount, in [0, 1]
    epsilon = 0.1                       # exploration probability, in [0, 1]
    update = "standard"                 # or "paper": the authors' greedy-action update
    reward = "paper"                    # paper | penalty | task | potential
    q_init = 0.0
    checkpoint_every = 100              # episodes; 0: only at the end of every stage
    # also: fear_radius, fear_penalty, semantic_horizon, labeler ("module:Name"), fast_env

    [test]                              # optional
    episodes = 100                      # greedy test episodes after training (0: none)
    spec = "minecraft/safeguard3"       # default: the last stage's spec
    env = "..."                         # default: the last stage's env
    env_kwargs = {}                     # default: the last stage's env_kwargs
    fallback = "auto"                   # auto | paper | none (unseen product states at test)

    [[stages]]                          # one table per stage, in training order (required)
    env = "safeguards/Minecraft-L1-v0"  # a Gymnasium id (required unless given at top level)
    env_kwargs = {}                     # optional keyword arguments of gymnasium.make
    spec = "minecraft/safeguard0"       # shipped spec name, .sg path (relative to this file),
                                        # or an LTL formula
    episodes = 1666                     # training episodes of this stage (tabular learner)

    [methods.paper]                     # one table per method; the name is its directory
    transfer = "paper"                  # none | warm | paper | semantic (default paper)
    [methods.zero_shot]
    baseline = "scratch"                # or no_safeguard | intrinsic_fear (ignores transfer)
    # any [train] key overrides the shared value for this method

``methods`` may also be a list of names that are themselves transfers or baselines:
``methods = ["paper", "warm", "scratch"]``; without ``methods`` the one method is ``paper``.

The deep learner (PPO from pixels, :mod:`safeguards.learn.deep`) is chosen in ``[train]``; its
stages give ``frames`` (agent steps, i.e. policy decisions summed over the vector
environments; one agent step is ``frame_skip`` game tics) instead of ``episodes``, and it has
its own settings (the :class:`~safeguards.learn.config.DeepConfig` fields of the same names)::

    [train]
    learner = "ppo"                     # "tabular" (default) | "ppo"
    violation_penalty = 1.0             # task reward minus this on a violating step
    terminate_on_violation = true       # the paper's VizDoom mode
    n_envs = 4                          # also n_steps, batch_size, n_epochs, learning_rate,
    ent_coef = 0.01                     # gamma, gae_lambda, clip_range, vf_coef, max_grad_norm
    transfer_ent_coef = 0.03            # reuse: entropy coefficient from stage 2 on
    load_optimizer = false              # reuse: keep Adam's state across stages
    noise_mult = 0.0                    # reuse: parameter noise at stage switches
    observe_safeguard = true            # the policy sees the (padded, one-hot) safeguard state
    checkpoint_every = 20000            # agent steps (0: stage ends only)
    # also: max_steps, labeler, torch_threads

    [[stages]]
    env = "safeguards/DoomSafeRL-v0"
    spec = "doom/safeguard0"
    frames = 50000

    methods = ["reuse", "reset", "scratch", "no_safeguard"]   # transfers: reuse | reset

Every table is validated by the learner's configuration class
(:mod:`safeguards.learn.config`, pydantic; the ``[train]`` keys are its fields, the same ones
the Python API takes), and a new learner registers in
:data:`safeguards.learn.curriculum.LEARNERS`.  Errors name the file and the line (found by
searching the key in the text, :func:`safeguards.config.locate`) and exit with status 2 on the
command line:

>>> text = '''
... [[stages]]
... env = "safeguards/Minecraft-L1-v0"
... spec = "minecraft/safeguard0"
... episodes = 10
... [methods.paper]
... transferr = "paper"
... '''
>>> try:
...     parse_experiment(text, "demo.toml")
... except ConfigError as error:
...     print(error)
demo.toml:7: error: unknown key `transferr` in [methods.paper]
    transferr = "paper"
hint: did you mean `transfer`?
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from safeguards.config import (
    Checker, ConfigError, describe, in_range, locate, one_of, parse_config_text, schema_fields,
)
from safeguards.errors import SafeguardsError, did_you_mean

__all__ = ["ConfigError", "Experiment", "MethodSpec", "load_experiment", "parse_experiment",
           "build_experiment", "find_experiment", "shipped_experiments", "parse_seeds", "MAX_SEEDS",
           "MAX_SEED",
           "locate"]

_TOP_KEYS = ("name", "description", "seeds", "imports", "env", "env_kwargs", "train", "test",
             "stages", "methods")
#: ``[test]`` keys -> the learner configuration's fields.
_TEST_FIELDS = {"episodes": "test_episodes", "spec": "test_spec", "env": "test_env_id",
                "env_kwargs": "test_env_kwargs", "fallback": "test_fallback"}
#: ``[[stages]]`` keys -> the stage class's fields (and the learner's budget unit).
_STAGE_FIELDS = {"env": "env_id", "env_kwargs": "env_kwargs", "spec": "spec"}
_METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


# -- the experiment -----------------------------------------------------------------------------

@dataclass
class MethodSpec:
    """One method of an experiment: its name and its :class:`CurriculumConfig` settings."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    """``transfer`` / ``baseline`` and learner settings overriding the shared ``[train]``."""


@dataclass
class Experiment:
    """A parsed, validated experiment file (see the module docstring)."""

    name: str
    stages: list[Any]
    """:class:`~safeguards.learn.config.Stage` list (spec paths made absolute);
    :class:`~safeguards.learn.config.DeepStage` for the PPO learner."""
    methods: list[MethodSpec]
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    """``CurriculumConfig`` test settings: ``test_episodes``, ``test_spec``, ``test_env_id``,
    ``test_env_kwargs``, ``test_fallback``."""
    description: str = ""
    imports: list[str] = field(default_factory=list)
    path: Path | None = None
    source: str | None = None
    learner: str = "tabular"
    """``tabular`` (:mod:`safeguards.learn.tabular`) or ``ppo`` (:mod:`safeguards.learn.deep`)."""

    def budget(self) -> str:
        """The training budget of one run, e.g. ``"5000 episodes"`` or ``"30000 frames"``."""
        unit = _learner(self.learner).budget
        return f"{sum(getattr(s, unit) for s in self.stages)} {unit}"

    def method(self, name: str) -> MethodSpec:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def config(self, method: MethodSpec | str, seed: int) -> Any:
        """The :class:`~safeguards.learn.config.CurriculumConfig` (or, for the PPO learner,
        :class:`~safeguards.learn.config.DeepConfig`) of one (method, seed)."""
        spec = self.method(method) if isinstance(method, str) else method
        return _learner_config(self.learner, self.stages, spec.name, seed,
                               {**self.train, **self.test, **spec.options})

    def runs(self, seeds: Iterable[int] | None = None, methods: Iterable[str] | None = None
             ) -> list[tuple[str, int, Any]]:
        """``(method, seed, config)`` of every run, method by method."""
        chosen = [self.method(m) for m in methods] if methods is not None else self.methods
        seed_list = list(seeds) if seeds is not None else self.seeds
        return [(m.name, s, self.config(m, s)) for m in chosen for s in seed_list]

    def import_modules(self) -> None:
        for module in self.imports:
            importlib.import_module(module)


def _learner(name: str) -> Any:
    """The :class:`~safeguards.learn.curriculum.Learner` called ``name``."""
    from safeguards.learn.curriculum import LEARNERS

    return LEARNERS[name]


def _learner_config(learner: str, stages: Sequence[Any], method: str, seed: int,
                    options: Mapping[str, Any]) -> Any:
    """The learner's configuration object (a copy of the stages; raises pydantic's
    ``ValidationError``, a ValueError, on bad settings)."""
    copies = [replace(s, env_kwargs=dict(s.env_kwargs)) for s in stages]
    return _learner(learner).config(stages=copies, method=method, seed=seed, **options)


MAX_SEEDS = 10_000
"""The most seeds one experiment runs (``seeds = N``, ``--seeds 0-N``)."""
MAX_SEED = 2**32 - 1
"""The largest seed (NumPy's and Gymnasium's seeds are 32-bit)."""


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) or a mix, as a list of distinct seeds (at most
    :data:`MAX_SEEDS` of them, each at most :data:`MAX_SEED`).

    >>> parse_seeds("0,1,5-7")
    [0, 1, 5, 6, 7]
    >>> parse_seeds("0-1000000000")
    Traceback (most recent call last):
    ...
    ValueError: 1,000,000,001 seeds; at most 10,000 are run at once
    """
    bounds: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,12})(?:\s*-\s*(\d{1,12}))?", part)
        lo = int(match.group(1)) if match else 0
        hi = int(match.group(2) or lo) if match else -1
        if hi < lo:
            raise ValueError(f"bad seed `{_clip(part)}`: give seeds as 0,1,2 or 0-4")
        if hi > MAX_SEED:
            raise ValueError(f"seed {hi:,} is too large: seeds are at most {MAX_SEED:,}")
        bounds.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in bounds)
    if count > MAX_SEEDS:
        raise ValueError(f"{count:,} seeds; at most {MAX_SEEDS:,} are run at once")
    if not bounds:
        raise ValueError("no seeds given: give seeds as 0,1,2 or 0-4")
    return list(dict.fromkeys(seed for lo, hi in bounds for seed in range(lo, hi + 1)))


def _clip(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[:most] + "..."


def find_experiment(name: str) -> Path:
    """An experiment file: a path, else a shipped curriculum (``minecraft_quick``,
    ``curricula/minecraft``; with or without ``.toml``)."""
    path = Path(name)
    if path.exists():
        return path
    stem = name.replace("\\", "/").split("/")[-1]
    for candidate in ([stem] if stem.endswith((".toml", ".yaml", ".yml")) else
                      [stem + ".toml", stem + ".yaml", stem + ".yml"]):
        try:
            target = resources.files("safeguards.specs").joinpath("curricula", candidate)
            if target.is_file() and isinstance(target, os.PathLike):
                return Path(os.fspath(target))
        except (OSError, ModuleNotFoundError):
            break
    shipped = shipped_experiments()
    hint = did_you_mean(stem.rsplit(".", 1)[0], shipped)
    if hint is None and shipped:
        hint = "shipped experiments: " + ", ".join(shipped)
    raise ConfigError(f"experiment file `{name}` does not exist", file=name, hint=hint)


def shipped_experiments() -> list[str]:
    """Names of the experiment files shipped in ``specs/curricula``."""
    try:
        folder = resources.files("safeguards.specs").joinpath("curricula")
        return sorted(c.name.rsplit(".", 1)[0] for c in folder.iterdir()
                      if c.name.endswith((".toml", ".yaml", ".yml")))
    except (OSError, ModuleNotFoundError):
        return []


def load_experiment(path: str | os.PathLike[str], *, check_envs: bool = True) -> Experiment:
    """Read and validate an experiment file (see the module docstring); raises
    :class:`ConfigError`."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"experiment file `{path}` does not exist", file=os.fspath(path)
                          ) from None
    except UnicodeDecodeError:
        raise ConfigError("the experiment file is not UTF-8 text", file=os.fspath(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the experiment file: {exc.strerror or exc}",
                          file=os.fspath(path)) from None
    return parse_experiment(text, os.fspath(path), base=target.resolve().parent,
                            check_envs=check_envs)


def parse_experiment(text: str, file: str = "<config>", *,
                     base: str | os.PathLike[str] | None = None, yaml: bool | None = None,
                     check_envs: bool = True) -> Experiment:
    """Parse and validate the text of an experiment file.

    Args:
        text: the file's text.
        file: its name in messages.
        base: folder that relative spec paths start from (default: the current one).
        yaml: parse as YAML (default: when ``file`` ends in ``.yaml`` or ``.yml``).
        check_envs: also import ``imports``, make every environment once and compile every
            spec, so that a typo fails now rather than hours into a run.
    """
    is_yaml = file.endswith((".yaml", ".yml")) if yaml is None else yaml
    data = parse_config_text(text, file, is_yaml)
    return build_experiment({} if data is None else data, file=file, text=text, base=base,
                            yaml=is_yaml, check_envs=check_envs)


def build_experiment(data: Any, *, file: str = "<config>", text: str = "",
                     base: str | os.PathLike[str] | None = None, yaml: bool = False,
                     check_envs: bool = True) -> Experiment:
    """Validate the parsed data of an experiment file (``text``, if given, locates errors);
    see :func:`parse_experiment`."""
    c = Checker(text, file, yaml)
    if not isinstance(data, dict):
        raise c.error((), "the experiment file must be a table of keys (name, seeds, stages, "
                          "methods, ...)")
    if "model" in data:
        raise c.error(("model",), "this is an LLM fine-tuning experiment (it names a `model`), "
                                  "not an RL curriculum",
                      hint=f"run it with `safeguards llm train {file}`")
    c.keys(data, _TOP_KEYS, (), "the experiment")
    base_dir = Path(base) if base is not None else Path.cwd()
    name = _parse_name(c, data, file)
    description = data.get("description", "")
    if not isinstance(description, str):
        c.typed(description, str, ("description",), "description")
        description = ""
    seeds = _parse_seeds(c, data)
    imports = _parse_imports(c, data)
    learner = _parse_learner(c, data)
    c.raise_if_any()  # the learner decides which keys are allowed
    train: dict[str, Any] = {}
    if "train" in data:
        if c.typed(data["train"], dict, ("train",), "train") is not None:
            _settings_keys(c, data["train"], ("train",), "[train]", learner, ("learner",))
            train = _settings(c, data["train"], ("train",), learner)
    test, test_spec = _parse_test(c, data, learner)
    stage_rows = _parse_stages(c, data, learner)
    methods = _parse_methods(c, data, learner)
    c.raise_if_any()

    # specs: resolve paths (relative to the file's folder)
    specs: list[str] = []
    for k, row in enumerate(stage_rows):
        specs.append(c.spec(row.spec, base_dir, ("stages", k, "spec")) or "")
    if test_spec is not None:
        test["test_spec"] = c.spec(test_spec, base_dir, ("test", "spec"))
    c.raise_if_any()

    stage_class = _learner(learner).stage
    stages = [stage_class(row.env, row.env_kwargs, spec, row.budget)
              for row, spec in zip(stage_rows, specs)]
    experiment = Experiment(name=name, stages=stages, methods=methods, seeds=seeds, train=train,
                            test=test, description=description, imports=imports,
                            path=Path(file) if text and file not in ("<config>", "-") else None,
                            source=text or None, learner=learner)
    for m in methods:  # the configuration's checks across settings, located at the method
        c.build(_learner(learner).config,
                dict(stages=stages, method=m.name, seed=0, **{**train, **test, **m.options}),
                ("methods", m.name), f"[methods.{m.name}]", prefix=f"method `{m.name}`: ")
    c.raise_if_any()
    if check_envs:
        _check_semantics(c, experiment, [row.own_env for row in stage_rows])
    return experiment


def _parse_name(c: Checker, data: Mapping[str, Any], file: str) -> str:
    name = Path(file).stem if file not in ("<config>", "-") else "experiment"
    if "name" in data:
        value = c.typed(data["name"], str, ("name",), "name")
        if value is not None:
            if _METHOD_NAME.fullmatch(value):
                return value
            c.add(("name",), f"`name` must be usable as a directory name, not \"{value}\"",
                  "use letters, digits, _ . + -")
    return name if _METHOD_NAME.fullmatch(name) else "experiment"


def _parse_seeds(c: Checker, data: Mapping[str, Any]) -> list[int]:
    if "seeds" not in data:
        return [0]
    raw = data["seeds"]
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= MAX_SEEDS:
            c.add(("seeds",), f"`seeds` as a count must be in [1, {MAX_SEEDS:,}], not {raw:,}",
                  "or give the seeds as a list: seeds = [0, 1, 2]")
        return list(range(min(max(raw, 1), MAX_SEEDS)))
    if isinstance(raw, list) and len(raw) > MAX_SEEDS:
        c.add(("seeds",), f"`seeds` lists {len(raw):,} seeds; at most {MAX_SEEDS:,} are run")
        return [0]
    if isinstance(raw, list) and raw:
        seeds = [v for k, s in enumerate(raw)
                 if (v := c.typed(s, int, ("seeds",), f"seeds[{k}]", in_range(0, MAX_SEED)))
                 is not None]
        if len(set(seeds)) != len(seeds):
            c.add(("seeds",), "`seeds` lists a seed twice")
        return seeds
    c.add(("seeds",), f"`seeds` must be a non-empty list of integers or a count, not "
                      f"{describe(raw)}", "seeds = [0, 1, 2]")
    return [0]


def _parse_imports(c: Checker, data: Mapping[str, Any]) -> list[str]:
    raw = data.get("imports", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        c.add(("imports",), f"`imports` must be a list of module names, not {describe(raw)}")
        return []
    return [v for k, v in enumerate(raw)
            if c.typed(v, str, ("imports",), f"imports[{k}]") is not None]


def _parse_test(c: Checker, data: Mapping[str, Any], learner: str
                ) -> tuple[dict[str, Any], str | None]:
    """The learner configuration's test settings, and the raw test spec."""
    raw = data.get("test")
    if raw is None or c.typed(raw, dict, ("test",), "test") is None:
        return {}, None
    config = _learner(learner).config
    known = {k: f for k, f in _TEST_FIELDS.items() if f in schema_fields(config)}
    for key in raw:
        if key in _TEST_FIELDS and key not in known:
            c.add(("test", key), f"`{key}` is a setting of the tabular learner's test, not of "
                                 f'learner = "{learner}"', "remove it")
    c.keys({k: v for k, v in raw.items() if k not in _TEST_FIELDS}, tuple(known), ("test",),
           "[test]")
    test: dict[str, Any] = {}
    for key, name in known.items():
        if key in raw:
            test[name] = c.field(config, name, raw[key], ("test", key), key)
    spec = test.pop("test_spec", None)
    return {k: v for k, v in test.items() if v is not None}, spec


@dataclass
class _StageRow:
    env: str
    env_kwargs: dict[str, Any]
    spec: str
    budget: int
    """Episodes (tabular learner) or frames (PPO learner)."""
    own_env: bool
    """Does the stage name its env (else the top-level default)?"""


def _parse_stages(c: Checker, data: Mapping[str, Any], learner: str) -> list[_StageRow]:
    default_env = data.get("env")
    if default_env is not None:
        default_env = c.typed(default_env, str, ("env",), "env")
    default_kwargs = data.get("env_kwargs", {})
    if c.typed(default_kwargs, dict, ("env_kwargs",), "env_kwargs") is None:
        default_kwargs = {}
    raw_stages = data.get("stages")
    if raw_stages is None:
        c.add((), "the experiment has no stages",
              'add one [[stages]] table per stage, e.g.\n      [[stages]]\n      '
              'env = "safeguards/Minecraft-L1-v0"\n      spec = "minecraft/safeguard0"\n'
              f'      {_learner(learner).budget} = 1000')
        return []
    if not isinstance(raw_stages, list) or not raw_stages:
        c.add(("stages",), "`stages` must be a non-empty array of tables",
              "write one [[stages]] table per stage")
        return []
    stage_class, unit = _learner(learner).stage, _learner(learner).budget
    others = _other_budgets(learner)
    rows: list[_StageRow] = []
    ok = True
    for k, stage in enumerate(raw_stages):
        path = ("stages", k)
        if not isinstance(stage, dict):
            c.add(path, f"stage {k + 1} must be a table (env, spec, {unit}), not "
                        f"{describe(stage)}")
            ok = False
            continue
        for budget_key, other in others.items():
            if budget_key in stage:
                c.add(path + (budget_key,), f"stage {k + 1}: `{budget_key}` is the budget of "
                      f"learner = \"{other}\"; with learner = \"{learner}\" give `{unit}`",
                      f"write {unit} = N ({'agent steps' if unit == 'frames' else 'training '}"
                      f"{'' if unit == 'frames' else 'episodes'}), or set learner = \"{other}\" "
                      "in [train]")
        c.keys({key: v for key, v in stage.items() if key not in others},
               (*_STAGE_FIELDS, unit), path, f"stage {k + 1}")
        env = stage.get("env", default_env)
        if env is None:
            c.add(path, f"stage {k + 1} has no `env`",
                  'give env = "<gymnasium id>" in the stage, or once at the top of the file')
        elif "env" in stage:
            env = c.field(stage_class, "env_id", env, path + ("env",), "env")
        kwargs = stage.get("env_kwargs", default_kwargs)
        if "env_kwargs" in stage and c.field(stage_class, "env_kwargs", kwargs,
                                             path + ("env_kwargs",)) is None:
            kwargs = {}
        spec = stage.get("spec")
        if spec is None:
            c.add(path, f"stage {k + 1} has no `spec`",
                  'e.g. spec = "minecraft/safeguard0" (a shipped spec, a .sg path or an LTL '
                  'formula)')
        else:
            spec = c.field(stage_class, "spec", spec, path + ("spec",))
        budget = stage.get(unit)
        if budget is None:
            if not any(key in stage for key in others):
                c.add(path, f"stage {k + 1} has no `{unit}`", f"e.g. {unit} = 1000")
        else:
            budget = c.field(stage_class, unit, budget, path + (unit,))
        if env is None or spec is None or budget is None:
            ok = False
            continue
        rows.append(_StageRow(env, dict(kwargs), spec, budget, "env" in stage))
    if ok and rows and all(row.budget == 0 for row in rows):
        c.add(("stages",), f"every stage has 0 {unit}: nothing to train")
    return rows


def _parse_methods(c: Checker, data: Mapping[str, Any], learner: str) -> list[MethodSpec]:
    spec = _learner(learner)
    transfers, baselines = spec.transfers, spec.baselines
    default = spec.config.__dataclass_fields__["transfer"].default
    raw = data.get("methods")
    if raw is None:
        return [MethodSpec(default, {"transfer": default})]
    methods: list[MethodSpec] = []
    if isinstance(raw, list):
        for k, m in enumerate(raw):
            if not isinstance(m, str):
                c.add(("methods",), f"methods[{k}] must be a method name, not {describe(m)}",
                      "list names of transfers or baselines, or write [methods.NAME] tables")
            elif m in transfers:
                methods.append(MethodSpec(m, {"transfer": m}))
            elif m in baselines:
                methods.append(MethodSpec(m, {"baseline": m}))
            else:
                hint = did_you_mean(m, transfers + baselines) or (
                    "a listed method must be a transfer (" + ", ".join(transfers) +
                    ") or a baseline (" + ", ".join(baselines) + "); for other names write "
                    f"a [methods.{m}] table with transfer = ... or baseline = ...")
                c.add(("methods",), f"unknown method `{m}`", hint)
        if len({m.name for m in methods}) != len(methods):
            c.add(("methods",), "`methods` lists a method twice")
        return methods
    if not isinstance(raw, dict):
        c.add(("methods",), f"`methods` must be a list of names or [methods.NAME] tables, not "
                            f"{describe(raw)}")
        return methods
    if not raw:
        c.add(("methods",), "`methods` is empty", "add a [methods.NAME] table")
    for m, options in raw.items():
        path = ("methods", m)
        if not _METHOD_NAME.fullmatch(m):
            c.add(path, f"method name `{m}` is not usable as a directory name",
                  "use letters, digits, _ . + -")
        if not isinstance(options, dict):
            c.add(path, f"[methods.{m}] must be a table (transfer, baseline, settings), not "
                        f"{describe(options)}")
            continue
        _settings_keys(c, options, path, f"[methods.{m}]", learner, ("transfer", "baseline"))
        opts = _settings(c, options, path, learner)
        for key in ("transfer", "baseline"):
            if key in options:
                value = c.field(spec.config, key, options[key], path + (key,))
                if value is not None:
                    opts[key] = value
        if "transfer" in options and "baseline" in options:
            c.add(path + ("transfer",), f"[methods.{m}] gives both `transfer` and `baseline`",
                  "a baseline replaces the curriculum; drop `transfer`")
        elif "transfer" not in options and "baseline" not in options:
            if m in transfers:
                opts["transfer"] = m
            elif m in baselines:
                opts["baseline"] = m
            else:
                c.add(path, f"[methods.{m}] needs `transfer` or `baseline`",
                      f'e.g. transfer = "{default}" or baseline = "scratch"')
        methods.append(MethodSpec(m, opts))
    return methods


def _parse_learner(c: Checker, data: Mapping[str, Any]) -> str:
    train = data.get("train")
    if not isinstance(train, dict) or "learner" not in train:
        return "tabular"
    learner = c.typed(train["learner"], str, ("train", "learner"), "learner",
                      one_of(tuple(_learners())))
    return learner or "tabular"


def _learners() -> tuple[str, ...]:
    from safeguards.learn.curriculum import LEARNERS

    return tuple(LEARNERS)


def _other_budgets(learner: str) -> dict[str, str]:
    """The budget keys of the other learners -> the first learner of each."""
    others: dict[str, str] = {}
    for name in _learners():
        if _learner(name).budget != _learner(learner).budget:
            others.setdefault(_learner(name).budget, name)
    return others


def _settings_keys(c: Checker, table: Mapping[str, Any], path: tuple[Any, ...], where: str,
                   learner: str, structural: Sequence[str]) -> None:
    """Unknown keys of a settings table, and settings of another learner."""
    from safeguards.learn.config import settings_of

    own = settings_of(_learner(learner).config)
    others = {name: settings_of(_learner(name).config) for name in _learners()
              if name != learner}
    for key in table:
        if key in own or key in structural:
            continue
        other = next((name for name, keys in others.items() if key in keys), None)
        if other is not None:
            c.add(path + (key,), f"`{key}` is a setting of learner = \"{other}\", not of "
                                 f"learner = \"{learner}\"",
                  f"settings of the {learner} learner: " + ", ".join(own))
        elif key == "learner":
            c.add(path + (key,), f"`learner` is set once, in [train], not in {where}")
        else:
            allowed = [*structural, *own]
            hint = did_you_mean(key, allowed) or ("allowed keys: " + ", ".join(allowed))
            c.add(path + (key,), f"unknown key `{key}` in {where}", hint)


def _settings(c: Checker, table: Mapping[str, Any], path: tuple[Any, ...],
              learner: str) -> dict[str, Any]:
    """The learner settings of a table, each validated by the learner's configuration."""
    from safeguards.learn.config import settings_of

    config = _learner(learner).config
    out = {}
    for key in settings_of(config):
        if key in table:
            value = c.field(config, key, table[key], path + (key,))
            if value is not None:
                out[key] = value
    return out


def _check_semantics(c: Checker, experiment: Experiment, own_env: Sequence[bool]) -> None:
    """Import the modules, make every environment, compile every spec, check the labels."""
    for module in experiment.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            c.add(("imports",), f"cannot import `{module}`: {exc}",
                  "imports lists modules that register Gymnasium environments")
    c.raise_if_any()

    try:
        import gymnasium as gym
    except ImportError:
        raise ConfigError("curricula need Gymnasium: pip install 'safeguards[gridworld]'",
                          file=c.file) from None
    from safeguards.labels import check_coverage
    from safeguards.compiler import load_safeguard
    from safeguards.learn.common import make_env, resolve_labeler

    compiled: dict[str, Any] = {}

    def compile_at(path: tuple[Any, ...], spec: str) -> Any:
        if spec in compiled:
            return compiled[spec]
        try:
            compiled[spec] = load_safeguard(spec)
        except SafeguardsError as exc:
            c.add(path, f"spec `{_short(spec)}` does not compile", detail=str(exc))
            compiled[spec] = None
        return compiled[spec]

    envs: list[tuple[tuple[Any, ...], str, dict[str, Any], str, tuple[Any, ...]]] = []
    for k, stage in enumerate(experiment.stages):
        env_path = ("stages", k, "env") if own_env[k] else ("env",)
        envs.append((env_path, stage.env_id, stage.env_kwargs, stage.spec,
                     ("stages", k, "spec")))
    test = experiment.test
    if "test_env_id" in test or "test_env_kwargs" in test or "test_spec" in test:
        last = experiment.stages[-1]
        envs.append((("test", "env"), test.get("test_env_id", last.env_id),
                     test.get("test_env_kwargs", last.env_kwargs),
                     test.get("test_spec", last.spec), ("test", "spec")))
    labelers = {m.options.get("labeler", experiment.train.get("labeler"))
                for m in experiment.methods}
    made: dict[str, Any] = {}
    learner = _learner(experiment.learner)
    for env_path, env_id, kwargs, spec, spec_path in envs:
        sg = compile_at(spec_path, spec)
        key = repr((env_id, sorted(kwargs.items())))
        if key not in made:
            made[key] = _make(c, env_path, env_id, kwargs, gym, make_env)
            problem = learner.env_problem(made[key]) if made[key] is not None else None
            if problem is not None:
                c.add(env_path, f"learner = \"{learner.name}\" cannot train on `{env_id}`: "
                                f"{problem}")
        env = made[key]
        if env is None or sg is None:
            continue
        for spec_labeler in labelers:
            try:
                labeler = resolve_labeler(spec_labeler, env)
                check_coverage(sg.props, labeler)
            except SafeguardsError as exc:
                c.add(spec_path, f"spec `{_short(spec)}` does not fit environment "
                                 f"`{env_id}`", detail=str(exc))
            except (ValueError, ImportError, AttributeError) as exc:
                path = ("train", "labeler") if spec_labeler else env_path
                c.add(path, f"no labeler for `{env_id}`: {exc}",
                      'set [train] labeler = "module:Name"')
    for env in made.values():
        if env is not None:
            env.close()
    c.raise_if_any()


def _short(spec: str) -> str:
    return spec if "\n" not in spec else spec.strip().splitlines()[0] + " …"


def _make(c: Checker, path: tuple[Any, ...], env_id: str, kwargs: Mapping[str, Any], gym: Any,
          make_env: Callable[..., Any]) -> Any:
    from safeguards import envs

    if env_id.startswith("safeguards/"):
        try:
            envs.register(env_id)
        except ImportError as exc:
            c.add(path, f"cannot load the safeguards environments: {exc}",
                  "install the extra of the environment suite: pip install "
                  "'safeguards[gridworld]' or 'safeguards[doom]'")
            return None
    if ":" not in env_id and env_id not in gym.registry:
        envs.register_all()
        ids = sorted(gym.registry)
        hint = did_you_mean(env_id, ids)
        if hint is None:
            ours = [i for i in ids if i.startswith("safeguards/")]
            hint = ("registered safeguards environments: " + ", ".join(ours)) if ours else \
                "register the environment, and list its module in `imports`"
        c.add(path, f"unknown environment id `{env_id}`", hint)
        return None
    try:
        return make_env(env_id, kwargs)
    except Exception as exc:  # noqa: BLE001 - any constructor error is a config problem
        where = path[:-1] + ("env_kwargs",) if kwargs else path
        c.add(where, f"cannot make environment `{env_id}` with env_kwargs "
                     f"{dict(kwargs)}: {type(exc).__name__}: {exc}")
        return None
