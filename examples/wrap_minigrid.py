"""Wrap MiniGrid's LavaGap with a safety spec and watch a random policy run into it.

    python examples/wrap_minigrid.py --episodes 10 --seed 0
    python examples/wrap_minigrid.py --spec "G !lava" --reward paper

The spec is read over two propositions that a labeler computes from the cell the agent
stands on: `lava` and `goal`.  Each episode prints how many rules were violated (on a step, or
left pending when the episode ended) and the cost (Safety-Gymnasium's `info["cost"]`, summed).
Needs `pip install 'safeguards[gridworld]'`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import gymnasium as gym
from minigrid.core.world_object import Goal, Lava

from safeguards.gym import make_safeguarded
from safeguards.labels import FunctionLabeler, labeler

SPEC = """
spec lava_gap "Never step on lava; reach the goal before the episode ends."

props:
    lava  "the agent stands on lava"
    goal  "the agent stands on the goal"

rule no_lava (penalty = 1.0): ltl G !lava
rule reach_goal (penalty = 0.5): ltl F goal
"""


@dataclass
class Config:
    env_id: str = "MiniGrid-LavaGapS5-v0"
    spec: str = SPEC            # spec text, a .sg path, or an LTL formula over lava / goal
    reward: str = "penalty"     # task | penalty | paper | potential
    episodes: int = 10
    seed: int = 0


def parse_args() -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Config):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                            default=field.default)
    return Config(**vars(parser.parse_args()))


def cell_labeler(env: gym.Env) -> FunctionLabeler:
    """Label the state by what occupies the agent's cell."""
    grid_env = env.unwrapped

    @labeler("lava", "goal")
    def cell(obs, info, action):
        here = grid_env.grid.get(*grid_env.agent_pos)
        return {name for name, kind in (("lava", Lava), ("goal", Goal)) if isinstance(here, kind)}

    return cell


if __name__ == "__main__":
    cfg = parse_args()

    # 1. The environment and the labeler that reads it.
    base = gym.make(cfg.env_id)
    # 2. The product MDP: observations gain the safeguard state, info gains cost and verdicts.
    env = make_safeguarded(base, cfg.spec, cell_labeler(base), reward=cfg.reward)
    env.action_space.seed(cfg.seed)
    print(f"{cfg.env_id} x {env.safeguard!r}")

    # 3. A random policy, episode by episode.
    print(f"{'episode':>7} {'steps':>5} {'return':>7} {'violations':>10} {'cost':>5}  rules")
    total_cost, unsafe_episodes = 0.0, 0
    for episode in range(cfg.episodes):
        obs, info = env.reset(seed=cfg.seed + episode)
        steps, ret, cost, broken = 0, 0.0, 0.0, []
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps, ret, cost = steps + 1, ret + float(reward), cost + info["cost"]
            broken += info["violated_rules"]
            done = terminated or truncated
        broken += [f"{rule} (pending at the end)" for rule in info["pending_rules"]]
        total_cost += cost
        unsafe_episodes += bool(broken)
        print(f"{episode:>7} {steps:>5} {ret:>7.2f} {len(broken):>10} {cost:>5.1f}  "
              f"{', '.join(broken) or '-'}")

    print(f"total: {cfg.episodes} episodes, {unsafe_episodes} with a violation, "
          f"cost {total_cost:.1f}")
    env.close()
