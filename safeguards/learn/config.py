"""The settings of the progressive-safeguards learners: one schema for files and the API.

:class:`CurriculumConfig` (tabular Q-learning, :mod:`safeguards.learn.tabular`) and
:class:`DeepConfig` (Stable-Baselines3 PPO, :mod:`safeguards.learn.deep`) are pydantic
dataclasses: constructing one validates it, and an experiment file's ``[train]``, ``[test]``,
``[[stages]]`` and ``[methods.NAME]`` tables are validated by the same classes
(:mod:`safeguards.experiment`).  The learner settings a file may give in ``[train]`` are the
fields that are not :data:`STRUCTURAL`.  Importing this module needs neither Gymnasium nor
torch.

>>> config = CurriculumConfig.paper(transfer="paper", seed=0)
>>> [s.episodes for s in config.stages]                 # switches at 1666, 3332, 4998
[1666, 1666, 1666, 2]
>>> config.stages[3].spec, config.stages[3].env_id
('minecraft/safeguard3', 'safeguards/Minecraft-L1-v0')
>>> CurriculumConfig(stages=config.stages, alpha=2)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for CurriculumConfig
alpha
  must be in (0, 1] [type=safeguards_constraint, input_value=2, input_type=int]
>>> config = DeepConfig(stages=[DeepStage("safeguards/DoomSafeRL-v0", {}, "doom/safeguard0", 256),
...                             DeepStage("safeguards/DoomSafeRL-v0", {}, "doom/safeguard2", 512)],
...                     n_envs=2, n_steps=64, batch_size=64)
>>> config.method_name, config.rollout_frames, [s.frames for s in config.stages]
('reuse', 128, [256, 512])
"""

from __future__ import annotations

import typing
from dataclasses import asdict, field, fields
from typing import Annotated, Any, ClassVar, Literal, Mapping, Sequence

from pydantic.dataclasses import dataclass

from safeguards.config import SCHEMA, at_least, in_range, module_name, one_of, positive
from safeguards.runs import to_json

__all__ = ["Stage", "CurriculumConfig", "DeepStage", "DeepConfig", "RLlibConfig", "SQRLConfig",
           "LearnerConfig", "SQRL_TRANSFERS", "SQRL_BASELINES",
           "STRUCTURAL", "settings_of", "TRANSFERS", "BASELINES", "UPDATES", "REWARDS",
           "FALLBACKS", "DEEP_TRANSFERS", "DEEP_BASELINES", "LearningRate", "Probability"]

#: What a stage inherits from the earlier ones (:mod:`safeguards.learn.transfer`).
Transfer = Literal["none", "warm", "paper", "semantic"]
#: Baselines of the tabular learner (:mod:`safeguards.learn.tabular`).
Baseline = Literal["no_safeguard", "scratch", "intrinsic_fear"]
#: ``standard`` Q-learning, or ``paper``: the authors' update of the greedy action.
Update = Literal["standard", "paper"]
#: Reward modes on the product MDP (:mod:`safeguards.gym.rewards`).
Reward = Literal["paper", "penalty", "task", "potential"]
#: Test decisions at never-visited product states.
Fallback = Literal["auto", "paper", "none"]
#: What a PPO stage inherits from the previous one: ``reuse`` the network (the paper's
#: VizDoom code: same checkpoint, fresh optimizer, optional parameter noise, exploration bump)
#: or ``reset`` it (a fresh network every stage).
DeepTransfer = Literal["reuse", "reset"]
#: ``scratch``: the final spec only, for the whole budget (the paper's "zero-shot");
#: ``no_safeguard``: task reward only, the final spec monitored (the paper's "baseline").
DeepBaseline = Literal["no_safeguard", "scratch"]

#: SQRL's methods (:mod:`safeguards.learn.sqrl`): what pre-training hands to fine-tuning and
#: how fine-tuning stays safe.
SQRLMethod = Literal["sqrl", "sac", "sac_lagrangian"]
#: ``scratch``: SAC on the fine-tuning task only, for the whole budget.
SQRLBaseline = Literal["scratch"]

TRANSFERS: tuple[str, ...] = typing.get_args(Transfer)
BASELINES: tuple[str, ...] = typing.get_args(Baseline)
UPDATES: tuple[str, ...] = typing.get_args(Update)
REWARDS: tuple[str, ...] = typing.get_args(Reward)
FALLBACKS: tuple[str, ...] = typing.get_args(Fallback)
DEEP_TRANSFERS: tuple[str, ...] = typing.get_args(DeepTransfer)
DEEP_BASELINES: tuple[str, ...] = typing.get_args(DeepBaseline)
SQRL_TRANSFERS: tuple[str, ...] = typing.get_args(SQRLMethod)
SQRL_BASELINES: tuple[str, ...] = typing.get_args(SQRLBaseline)

#: A learning rate, in (0, 1].
LearningRate = Annotated[float, in_range(0, 1, lo_open=True)]
#: A probability or discount, in [0, 1].
Probability = Annotated[float, in_range(0, 1)]

#: Fields of a learner's configuration that an experiment file sets through its structure
#: (stages, methods, seeds, [test]) rather than as ``[train]`` settings.
STRUCTURAL = ("stages", "transfer", "baseline", "method", "seed", "test_episodes", "test_spec",
              "test_env_id", "test_env_kwargs", "test_fallback")


def _labeler_name(labeler: Any) -> Any:
    """A labeler object as ``"module:Class"`` (JSON-ready)."""
    if labeler is None or isinstance(labeler, str):
        return labeler
    kind = labeler if isinstance(labeler, type) else type(labeler)
    return f"{kind.__module__}:{kind.__qualname__}"


def _stages(kind: type, stages: Sequence[Any]) -> list[Any]:
    return [kind(**s) if isinstance(s, Mapping) else s for s in stages]


@dataclass(config=SCHEMA)
class Stage:
    """One stage of a curriculum: an environment, a safeguard, an episode budget."""

    env_id: str
    """Gymnasium id (``safeguards/Minecraft-L1-v0``; ids under ``safeguards/`` register
    themselves)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make``."""
    spec: str = "minecraft/safeguard0"
    """A ``.sg`` path, a shipped spec name (``minecraft/safeguard1``), spec-file text, or an LTL
    formula."""
    episodes: Annotated[int, at_least(0)] = 1666
    """Training episodes in this stage."""


@dataclass(config=SCHEMA)
class CurriculumConfig:
    """Everything a progressive-safeguards run needs (defaults: the paper's Minecraft values)."""

    stages: list[Stage]
    """The stages, in training order."""
    transfer: Annotated[Transfer, one_of(Transfer)] = "paper"
    """What a stage inherits from the earlier ones (:mod:`safeguards.learn.transfer`)."""
    method: str | None = None
    """Name written into every metrics row; default: the baseline's name, else the transfer's."""
    seed: Annotated[int, at_least(0)] = 0
    """Seeds the learner's generator and, derived from it, the environments'."""
    test_episodes: Annotated[int, at_least(0)] = 100
    """Greedy test episodes after training (0: no test)."""
    test_spec: str | None = None
    """Spec of the test, also the "final" spec training violations are counted against;
    default: the last stage's."""
    test_env_id: str | None = None
    """Environment of the test; default: the last stage's."""
    test_env_kwargs: dict[str, Any] | None = None
    """Its ``gymnasium.make`` keyword arguments; default: the last stage's."""
    max_steps: Annotated[int, at_least(1)] = 1000
    """Episode length limit (training and test)."""
    reward: Annotated[Reward, one_of(Reward)] = "paper"
    """Reward mode on the product MDP: ``paper`` (+0.1 / -0.1 / 0), ``penalty``, ``task`` or
    ``potential``."""
    alpha: LearningRate = 0.9
    """Learning rate (constant)."""
    gamma: Probability = 0.9
    """Discount factor."""
    epsilon: Probability = 0.1
    """Exploration probability of epsilon-greedy."""
    update: Annotated[Update, one_of(Update)] = "standard"
    """``standard`` Q-learning, or ``paper``: the authors' update of the greedy action."""
    q_init: float = 0.0
    """Initial table value."""
    baseline: Annotated[Baseline | None, one_of(Baseline)] = None
    """None for the progressive method; else a baseline (module docstring)."""
    fear_radius: Annotated[int, at_least(0)] = 5
    """Intrinsic fear: states within this many steps before a violation are "danger"."""
    fear_penalty: Annotated[float, at_least(0)] = 0.1
    """Intrinsic fear: ``lambda`` of ``r - lambda * F(s')`` (the violation penalty is 0.1)."""
    semantic_horizon: Annotated[int, at_least(1)] = 4
    """Semantic transfer: horizon ``H`` of the behavioural distance between safeguard states."""
    test_fallback: Annotated[Fallback, one_of(Fallback)] = "auto"
    """Test decisions at never-visited product states: ``paper`` acts on ``Q[s, slot 0]``;
    ``auto`` = ``paper`` for the paper / semantic transfers, else ``none``."""
    checkpoint_every: Annotated[int, at_least(0)] = 100
    """Checkpoint every this many episodes (and at the end of every stage); 0: stage ends only."""
    labeler: Annotated[Any, module_name()] = None
    """Labeler: an object, or ``"module:Name"`` (instantiated without arguments if a class);
    default: the environment's own, ``env.unwrapped.labeler``."""
    fast_env: bool = True
    """Use the environment's fast tabular path when it offers one
    (:func:`safeguards.learn.steppers.make_stepper`)."""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a curriculum needs at least one stage")

    @classmethod
    def paper(cls, *, env_id: str = "safeguards/Minecraft-L1-v0",
              env_kwargs: dict[str, Any] | None = None, episodes: int = 5000,
              switch_every: int = 1666, **overrides: Any) -> "CurriculumConfig":
        """The paper's Minecraft run (papers.md §1.5): safeguards 0-3 on layout 1, switching
        every 1666 episodes (at 1666, 3332, 4998 of 5000), 1000 steps, alpha = gamma = 0.9,
        epsilon = 0.1."""
        specs = [f"minecraft/safeguard{i}" for i in range(4)]
        stages = []
        for i, spec in enumerate(specs):
            start = i * switch_every
            end = episodes if i == len(specs) - 1 else min(episodes, (i + 1) * switch_every)
            stages.append(Stage(env_id, dict(env_kwargs or {}), spec, max(0, end - start)))
        return cls(stages=stages, **overrides)

    @property
    def method_name(self) -> str:
        return self.method or self.baseline or self.transfer

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a labeler object is written as ``"module:Class"``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["stages"] = [asdict(s) for s in self.stages]
        data["labeler"] = _labeler_name(data["labeler"])
        return to_json(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CurriculumConfig":
        """The inverse of :meth:`to_dict` (stages may be dicts)."""
        return cls(**{**data, "stages": _stages(Stage, data["stages"])})




@dataclass(config=SCHEMA)
class DeepStage:
    """One stage: an environment, a safeguard, a budget of agent steps."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    spec: str = "doom/safeguard0"
    frames: Annotated[int, at_least(0)] = 100_000
    """Agent steps (policy decisions, summed over the vector environments) of this stage; one
    agent step is ``frame_skip`` game tics of the environment.  Rounded up to whole rollouts
    of ``n_envs * n_steps``."""


class _FramesConfig:
    """What the configurations of learners with stages in agent steps (:class:`DeepStage`)
    share: the method's name and the JSON round trip."""

    learner: ClassVar[str]

    @property
    def method_name(self) -> str:
        return self.method or self.baseline or self.transfer  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a labeler object is written as ``"module:Class"``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        data["stages"] = [asdict(s) for s in data["stages"]]
        data["learner"] = self.learner
        data["labeler"] = _labeler_name(data["labeler"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """The inverse of :meth:`to_dict` (stages may be dicts)."""
        values = {k: v for k, v in data.items() if k != "learner"}
        return cls(**{**values, "stages": _stages(DeepStage, data["stages"])})


@dataclass(config=SCHEMA)
class DeepConfig(_FramesConfig):
    """A PPO progressive-safeguards run (Stable-Baselines3 PPO on the product MDP).

    Defaults follow Stable-Baselines3's Atari PPO settings except where the paper's VizDoom
    protocol (papers.md §1.6.3) says otherwise: clip 0.2, violation -> ``-violation_penalty``
    and termination, fresh optimizer between stages.
    """

    stages: list[DeepStage]
    transfer: Annotated[DeepTransfer, one_of(DeepTransfer)] = "reuse"
    baseline: Annotated[DeepBaseline | None, one_of(DeepBaseline)] = None
    method: str | None = None
    seed: Annotated[int, at_least(0)] = 0
    test_episodes: Annotated[int, at_least(0)] = 10
    """Test episodes under the final spec, run once greedy and once stochastic."""
    test_spec: str | None = None
    test_env_id: str | None = None
    test_env_kwargs: dict[str, Any] | None = None
    max_steps: Annotated[int | None, at_least(1)] = None
    """Episode length limit in agent steps (``TimeLimit``); None: the environment's own."""
    violation_penalty: Annotated[float, at_least(0)] = 1.0
    """Subtracted from the task reward on the step that violates the stage's spec (paper: 0,
    0.5 or 1)."""
    terminate_on_violation: bool = True
    """End the episode on a violation of the stage's spec (the paper's VizDoom mode)."""
    observe_safeguard: bool = True
    """The policy sees the safeguard state (one-hot, padded to the largest automaton of the
    curriculum); False: the image only, as in the paper's VizDoom code."""
    n_envs: Annotated[int, at_least(1)] = 4
    n_steps: Annotated[int, at_least(1)] = 128
    batch_size: Annotated[int, at_least(1)] = 256
    n_epochs: Annotated[int, at_least(1)] = 4
    learning_rate: LearningRate = 2.5e-4
    gamma: Probability = 0.99
    gae_lambda: Probability = 0.95
    clip_range: Annotated[float, in_range(0, 1, lo_open=True)] = 0.2
    ent_coef: Annotated[float, at_least(0)] = 0.01
    transfer_ent_coef: Annotated[float | None, at_least(0)] = None
    """``reuse``: the entropy coefficient from the second stage on (the paper raises its
    exploration loss from 0.001 to 0.003); None: ``ent_coef``."""
    vf_coef: Annotated[float, at_least(0)] = 0.5
    max_grad_norm: Annotated[float, positive()] = 0.5
    load_optimizer: bool = False
    """``reuse``: keep the optimizer's state across stages (the paper: False)."""
    noise_mult: Annotated[float, at_least(0)] = 0.0
    """``reuse``: at a stage switch add N(0, (max - min) * noise_mult) noise to every parameter
    tensor, as the paper's Sample Factory fork does (0 in all its runs)."""
    checkpoint_every: Annotated[int, at_least(0)] = 0
    """Checkpoint every this many agent steps (at the next rollout end) and at every stage
    end; 0: stage ends only."""
    labeler: Annotated[Any, module_name()] = None
    """An object, or ``"module:Name"``; default: the environment's ``labeler``."""
    torch_threads: Annotated[int, at_least(1)] = 1

    learner: ClassVar[str] = "ppo"

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a curriculum needs at least one stage")
        if sum(s.frames for s in self.stages) == 0:
            raise ValueError("every stage has 0 frames: nothing to train")
        if self.n_envs * self.n_steps < 2:
            raise ValueError("n_envs * n_steps must be at least 2 (PPO normalises advantages "
                             "over a batch)")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed n_envs * n_steps "
                             f"({self.n_envs * self.n_steps})")

    @property
    def rollout_frames(self) -> int:
        """Agent steps of one PPO rollout (the granularity of stages and checkpoints)."""
        return self.n_envs * self.n_steps


@dataclass(config=SCHEMA)
class RLlibConfig(DeepConfig):
    """A PPO progressive-safeguards run on RLlib (``learner = "rllib_ppo"``): the settings of
    :class:`DeepConfig`, mapped to RLlib's PPO (``n_steps`` x ``n_envs`` agent steps a training
    batch, ``batch_size`` a minibatch, ``n_epochs`` passes, ...), plus the env runners."""

    num_env_runners: Annotated[int, at_least(0)] = 0
    """Env-runner processes sampling in parallel, ``n_envs`` environments each (0: sample in
    the learner's process)."""

    learner: ClassVar[str] = "rllib_ppo"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.load_optimizer:
            raise ValueError("load_optimizer is not available with rllib_ppo: every stage "
                             "starts a fresh optimizer (the paper's setting)")
        if self.n_envs * self.n_steps % max(1, self.num_env_runners):
            raise ValueError(f"n_envs * n_steps ({self.n_envs * self.n_steps}) must split "
                             f"evenly over num_env_runners ({self.num_env_runners})")


@dataclass(config=SCHEMA)
class SQRLConfig(_FramesConfig):
    """An SQRL run (Srinivasan et al. 2020; :mod:`safeguards.learn.sqrl`): Stable-Baselines3 SAC
    pre-trained on the first stage (failures allowed) and fine-tuned on the second.

    ``transfer`` is the method: ``sqrl`` (a safety critic learned in pre-training filters every
    fine-tuning action, Eq. 3, plus the dual term of Eq. 4), ``sac`` (the paper's ablation: the
    same protocol without a critic) or ``sac_lagrangian`` (a cost critic of the same form,
    trained off-policy from the replay buffer, with a Lagrange multiplier on
    ``Q_c - eps_safe`` in the actor loss during fine-tuning and no filter: RS-like).
    Defaults: the paper's Tables 1-2 and the authors' drunk-spider gin file.
    """

    stages: list[DeepStage]
    """Pre-training, then fine-tuning (exactly two stages)."""
    transfer: Annotated[SQRLMethod, one_of(SQRLMethod)] = "sqrl"
    baseline: Annotated[SQRLBaseline | None, one_of(SQRLBaseline)] = None
    method: str | None = None
    seed: Annotated[int, at_least(0)] = 0
    test_episodes: Annotated[int, at_least(0)] = 20
    """Test episodes on the final spec's product MDP, greedy and as the method acts."""
    test_spec: str | None = None
    test_env_id: str | None = None
    test_env_kwargs: dict[str, Any] | None = None
    max_steps: Annotated[int | None, at_least(1)] = None
    """Episode length limit (``TimeLimit``); None: the environment's own (drunk spider: 30)."""
    violation_penalty: Annotated[float, at_least(0)] = 0.0
    """Subtracted from the reward on a violating step (the paper: 0, the incident ends the
    episode)."""
    observe_safeguard: bool = True
    """The networks see the safeguard state (one-hot) beside the observation: the product
    state; False: zeros in its place (the observation only)."""
    learning_rate: LearningRate = 3e-4
    gamma: Probability = 0.99
    tau: Annotated[float, in_range(0, 1, lo_open=True)] = 0.005
    batch_size: Annotated[int, at_least(1)] = 256
    buffer_size: Annotated[int, at_least(1)] = 1_000_000
    learning_starts: Annotated[int, at_least(0)] = 500
    """Random actions before SAC's first update (the gin file's INITIAL_NUM_STEPS)."""
    target_entropy: float | None = -2.0
    """SAC's entropy target (gin: -2); None: SB3's ``-action_dim``."""
    hidden: list[Annotated[int, at_least(1)]] = field(default_factory=lambda: [256, 256])
    """Hidden layers of the actor, critics and safety critic (paper: 2 x 256)."""
    eps_safe: Annotated[float, in_range(0, 1, lo_open=True, hi_open=True)] = 0.1
    """The target safety: actions with ``Q_safe >= eps_safe`` are filtered out."""
    gamma_safe: Annotated[float, in_range(0, 1, hi_open=True)] = 0.7
    """Safety discount (paper: 0.7; drunk spider 0.65)."""
    safety_loss: Annotated[Literal["squared", "bce"], one_of(("squared", "bce"))] = "squared"
    """``squared`` (the paper) or ``bce``: sigmoid and binary cross-entropy (the code)."""
    fail_weight: Annotated[float | None, in_range(0, 1, lo_open=True, hi_open=True)] = None
    """Class weight of incidents in the critic's loss (the code: 0.75); None: unweighted."""
    n_samples: Annotated[int, at_least(1)] = 50
    filter_select: Annotated[Literal["exact", "code"], one_of(("exact", "code"))] = "exact"
    """How the filter draws among safe samples: ``exact`` follows the masked policy of Eq. 3
    (importance weights); ``code`` weighs them by ``pi`` as the authors' code (``pi^2``)."""
    max_rounds: Annotated[int, at_least(1)] = 6
    widen: Annotated[float, at_least(1)] = 1.5
    safe_buffer_size: Annotated[int, at_least(1)] = 5000
    """D_safe: the most recent transitions of the acting policy the safety critic trains on."""
    train_sc_interval: Annotated[int, at_least(1)] = 1000
    """Train the safety critic every this many agent steps ..."""
    train_sc_steps: Annotated[int, at_least(1)] = 10
    """... for this many gradient steps."""
    mask_from: Annotated[float, in_range(0, 1)] = 0.5
    """Act through the filter from this fraction of pre-training on (the code: half)."""
    critic_next_action: Annotated[Literal["unconstrained", "masked"],
                                  one_of(("unconstrained", "masked"))] = "unconstrained"
    """``a'`` of the critic's target: from the unconstrained policy (paper App. D) or the
    filter."""
    actor_safety_gradient: bool = True
    """Fine-tuning's ``nu * (Q_safe - eps)`` term reaches the actor (Eq. 4); False: the code's
    stop-gradient, where the constraint acts only through the filter."""
    finetune_critic: bool = False
    """Keep training the safety critic in fine-tuning (the paper: frozen)."""
    nu_init: Annotated[float, at_least(0)] = 1.0
    nu_lr: Annotated[float, at_least(0)] = 3e-4
    """Step size of the dual ascent ``nu <- max(0, nu + nu_lr (Q_safe - eps_safe))``."""
    checkpoint_every: Annotated[int, at_least(0)] = 0
    """Checkpoint every this many agent steps and at every stage end; 0: stage ends only."""
    labeler: Annotated[Any, module_name()] = None
    torch_threads: Annotated[int, at_least(1)] = 1

    learner: ClassVar[str] = "sqrl"

    def __post_init__(self) -> None:
        if self.baseline is None and len(self.stages) != 2:
            raise ValueError(f"SQRL has two stages, pre-training then fine-tuning, not "
                             f"{len(self.stages)}")
        if sum(s.frames for s in self.stages) == 0:
            raise ValueError("every stage has 0 frames: nothing to train")



#: Any learner's configuration.
LearnerConfig = CurriculumConfig | DeepConfig | RLlibConfig | SQRLConfig


def settings_of(kind: type) -> tuple[str, ...]:
    """The ``[train]`` settings of a learner's configuration class.

    >>> settings_of(CurriculumConfig)[:4]
    ('max_steps', 'reward', 'alpha', 'gamma')
    """
    return tuple(f.name for f in fields(kind) if f.name not in STRUCTURAL)
