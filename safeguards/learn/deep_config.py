"""Configuration of the deep (PPO from pixels) progressive-safeguards learner.

Kept apart from :mod:`safeguards.learn.deep` so that experiment files are validated without
importing torch or Stable-Baselines3.

>>> config = DeepConfig(stages=[DeepStage("safeguards/DoomSafeRL-v0", {}, "doom/safeguard0", 256),
...                             DeepStage("safeguards/DoomSafeRL-v0", {}, "doom/safeguard2", 512)],
...                     n_envs=2, n_steps=64, batch_size=64)
>>> config.method_name, config.rollout_frames, [s.frames for s in config.stages]
('reuse', 128, [256, 512])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping

__all__ = ["DeepStage", "DeepConfig", "DEEP_TRANSFERS", "DEEP_BASELINES"]

#: What a stage inherits from the previous one: ``reuse`` the network (the paper's VizDoom
#: code: same checkpoint, fresh optimizer, optional parameter noise, exploration bump) or
#: ``reset`` it (a fresh network every stage).
DEEP_TRANSFERS = ("reuse", "reset")
#: ``scratch``: the final spec only, for the whole budget (the paper's "zero-shot");
#: ``no_safeguard``: task reward only, the final spec monitored (the paper's "baseline").
DEEP_BASELINES = ("no_safeguard", "scratch")


@dataclass
class DeepStage:
    """One stage: an environment, a safeguard, a budget of agent steps."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    spec: str = "doom/safeguard0"
    frames: int = 100_000
    """Agent steps (policy decisions, summed over the vector environments) of this stage; one
    agent step is ``frame_skip`` game tics of the environment.  Rounded up to whole rollouts
    of ``n_envs * n_steps``."""


@dataclass
class DeepConfig:
    """A PPO progressive-safeguards run (Stable-Baselines3 PPO on the product MDP).

    Defaults follow Stable-Baselines3's Atari PPO settings except where the paper's VizDoom
    protocol (papers.md §1.6.3) says otherwise: clip 0.2, violation -> ``-violation_penalty``
    and termination, fresh optimizer between stages.
    """

    stages: list[DeepStage]
    transfer: Literal["reuse", "reset"] = "reuse"
    baseline: Literal["no_safeguard", "scratch"] | None = None
    method: str | None = None
    seed: int = 0
    test_episodes: int = 10
    """Test episodes under the final spec, run once greedy and once stochastic."""
    test_spec: str | None = None
    test_env_id: str | None = None
    test_env_kwargs: dict[str, Any] | None = None
    max_steps: int | None = None
    """Episode length limit in agent steps (``TimeLimit``); None: the environment's own."""
    violation_penalty: float = 1.0
    """Subtracted from the task reward on the step that violates the stage's spec (paper: 0,
    0.5 or 1)."""
    terminate_on_violation: bool = True
    """End the episode on a violation of the stage's spec (the paper's VizDoom mode)."""
    observe_safeguard: bool = True
    """The policy sees the safeguard state (one-hot, padded to the largest automaton of the
    curriculum); False: the image only, as in the paper's VizDoom code."""
    n_envs: int = 4
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    transfer_ent_coef: float | None = None
    """``reuse``: the entropy coefficient from the second stage on (the paper raises its
    exploration loss from 0.001 to 0.003); None: ``ent_coef``."""
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    load_optimizer: bool = False
    """``reuse``: keep the optimizer's state across stages (the paper: False)."""
    noise_mult: float = 0.0
    """``reuse``: at a stage switch add N(0, (max - min) * noise_mult) noise to every parameter
    tensor, as the paper's Sample Factory fork does (0 in all its runs)."""
    checkpoint_every: int = 0
    """Checkpoint every this many agent steps (at the next rollout end) and at every stage
    end; 0: stage ends only."""
    labeler: Any = None
    """An object, or ``"module:Name"``; default: the environment's ``labeler``."""
    torch_threads: int = 1

    learner = "ppo"

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, DeepStage) else DeepStage(**s) for s in self.stages]
        if not self.stages:
            raise ValueError("a curriculum needs at least one stage")
        if self.transfer not in DEEP_TRANSFERS:
            raise ValueError(f"transfer must be one of {', '.join(DEEP_TRANSFERS)}, "
                             f"not {self.transfer!r}")
        if self.baseline is not None and self.baseline not in DEEP_BASELINES:
            raise ValueError(f"baseline must be None or one of {', '.join(DEEP_BASELINES)}, "
                             f"not {self.baseline!r}")
        if any(s.frames < 0 for s in self.stages):
            raise ValueError("stage frames must be non-negative")
        if sum(s.frames for s in self.stages) == 0:
            raise ValueError("every stage has 0 frames: nothing to train")
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.n_envs * self.n_steps < 2:
            raise ValueError("n_envs * n_steps must be at least 2 (PPO normalises advantages "
                             "over a batch)")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed n_envs * n_steps "
                             f"({self.n_envs * self.n_steps})")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be positive, not {self.max_steps}")
        if self.test_episodes < 0:
            raise ValueError("test_episodes must be non-negative")

    @property
    def method_name(self) -> str:
        return self.method or self.baseline or self.transfer

    @property
    def rollout_frames(self) -> int:
        """Agent steps of one PPO rollout (the granularity of stages and checkpoints)."""
        return self.n_envs * self.n_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a labeler object is written as ``"module:Class"``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["stages"] = [asdict(s) for s in self.stages]
        data["learner"] = self.learner
        if data["labeler"] is not None and not isinstance(data["labeler"], str):
            kind = data["labeler"] if isinstance(data["labeler"], type) else type(data["labeler"])
            data["labeler"] = f"{kind.__module__}:{kind.__qualname__}"
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DeepConfig":
        values = {k: v for k, v in data.items() if k != "learner"}
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        values["stages"] = [DeepStage(**s) if isinstance(s, Mapping) else s
                            for s in data["stages"]]
        return cls(**values)
