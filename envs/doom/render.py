"""Pictures of a safeguarded Doom episode: every frame with the safeguard's state, verdict and
labels drawn under it, as an animated GIF and as a frame strip (PNG). Needs Pillow (a
dependency of matplotlib, which the ``doom`` extra installs).

``python -m safeguards.envs.doom.render`` redraws ``docs/doom_episode.gif`` and
``docs/doom_frames.png`` from a scripted episode under the paper's final safeguard;
``python -m safeguards.envs.doom.render --policy RUN/stage3.zip --name doom_trained`` draws an
episode of a policy trained by ``safeguards curriculum`` (see :class:`TrainedPolicy`).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeguards.automata import Safeguard, Verdict
from safeguards.files import write_atomic
from safeguards.gym import SafeguardWrapper
from safeguards.labels import Labeler

__all__ = ["EpisodeFrame", "TrainedPolicy", "record_episode", "save_episode_gif",
           "save_frame_strip", "annotate", "main"]

Policy = Callable[[Any, dict[str, Any]], int]

_OK, _BAD, _TEXT, _PANEL = (70, 200, 90), (230, 50, 50), (235, 235, 235), (24, 24, 28)


@dataclass
class EpisodeFrame:
    """One step of a recorded episode: the screen and what the safeguard made of it."""

    step: int
    screen: np.ndarray
    labels: tuple[str, ...]
    state: str
    verdict: Verdict
    violated_rules: tuple[str, ...]
    health: float
    suit_tics_left: int


def record_episode(env: Any, policy: Policy | Iterable[int], safeguard: Safeguard,
                   labeler: Labeler, *, seed: int | None = 0, max_steps: int = 400,
                   steps_after_violation: int = 12) -> list[EpisodeFrame]:
    """Play one episode of ``env`` (a :class:`~safeguards.envs.doom.env.DoomEnv`, possibly
    wrapped) under ``safeguard``, with ``policy(obs, info) -> action`` or a sequence of
    actions, and return its frames (reset first). The safeguard stays violated once violated;
    the recording stops ``steps_after_violation`` steps later, at the episode's end or after
    ``max_steps``."""
    base = env.unwrapped
    product = SafeguardWrapper(env, safeguard, labeler, observe="none", reward="task",
                               after_violation="stay")
    actions = None if callable(policy) else iter(policy)
    obs, info = product.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    frames = [_frame(0, base, safeguard, info)]
    left = steps_after_violation
    for step in range(1, max_steps + 1):
        action = policy(obs, info) if actions is None else next(actions, None)
        if action is None:
            break
        obs, _, terminated, truncated, info = product.step(action)
        frames.append(_frame(step, base, safeguard, info))
        if safeguard.verdict(product.state) == Verdict.VIOLATED:
            left -= 1
        if terminated or truncated or left < 0:
            break
    return frames


def _frame(step: int, base: Any, safeguard: Safeguard, info: dict[str, Any]) -> EpisodeFrame:
    reached = info["safeguard_state"]
    return EpisodeFrame(step=step, screen=base._frame.copy(), labels=tuple(info["labels"]),
                        state=safeguard.state_names[reached], verdict=Verdict(info["verdict"]),
                        violated_rules=tuple(info["violated_rules"]),
                        health=info["game_variables"]["HEALTH"],
                        suit_tics_left=int(info["suit_tics_left"]))


def annotate(frame: EpisodeFrame, title: str, scale: int = 2) -> np.ndarray:
    """The frame's screen scaled up, with a border (green: not violated, red: violated) and a
    panel below: step, safeguard state and verdict, labels, health and suit time."""
    from PIL import Image, ImageDraw, ImageFont

    violated = frame.verdict == Verdict.VIOLATED
    colour = _BAD if violated else _OK
    screen = np.repeat(np.repeat(frame.screen, scale, axis=0), scale, axis=1)
    h, w, _ = screen.shape
    border, panel = 4, 64
    canvas = Image.new("RGB", (w + 2 * border, h + 2 * border + panel), _PANEL)
    canvas.paste(Image.new("RGB", (w + 2 * border, h + 2 * border), colour), (0, 0))
    canvas.paste(Image.fromarray(screen), (border, border))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    verdict = "VIOLATED " + ", ".join(frame.violated_rules) if violated else frame.verdict.name.lower()
    lines = [
        (f"{title}   step {frame.step}", _TEXT),
        (f"state {frame.state}   {verdict}", colour),
        ("labels: " + (", ".join(frame.labels) or "-"), _TEXT),
        (f"health {frame.health:.0f}   suit {frame.suit_tics_left / 35:.0f} s", _TEXT),
    ]
    for row, (text, fill) in enumerate(lines):
        draw.text((border + 4, h + 2 * border + 2 + 15 * row), text, fill=fill, font=font)
    return np.asarray(canvas)


def save_episode_gif(env: Any, policy_or_actions: Policy | Iterable[int],
                     path: str | Path, safeguard: Safeguard, labeler: Labeler, *,
                     title: str | None = None, seed: int | None = 0, max_steps: int = 400,
                     steps_after_violation: int = 12, every: int = 2,
                     fps: float = 8.0) -> list[EpisodeFrame]:
    """Record an episode (:func:`record_episode`) and write it as an animated GIF with the
    safeguard's state and verdict drawn on each frame (every ``every``-th step, and every
    step whose verdict differs from the previous one). Returns the recorded frames."""
    frames = record_episode(env, policy_or_actions, safeguard, labeler, seed=seed,
                            max_steps=max_steps, steps_after_violation=steps_after_violation)
    shown = _thin(frames, every)
    title = title or safeguard.name
    _write_gif(Path(path), [annotate(f, title) for f in shown], fps)
    return frames


def save_frame_strip(frames: Sequence[EpisodeFrame], path: str | Path, title: str, *,
                     count: int = 6, columns: int = 3) -> Path:
    """Write ``count`` frames as a PNG grid: evenly spread, always with the first frame, the
    first violated one (if any) and the last."""
    from PIL import Image

    picks = _key_frames(frames, count)
    images = [annotate(frames[i], title) for i in picks]
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    gap = 6
    sheet = Image.new("RGB", (columns * (w + gap) + gap, rows * (h + gap) + gap), (255, 255, 255))
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        sheet.paste(Image.fromarray(image), (gap + c * (w + gap), gap + r * (h + gap)))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    write_atomic(path, buffer.getvalue())
    return Path(path)


def _thin(frames: Sequence[EpisodeFrame], every: int) -> list[EpisodeFrame]:
    return [f for i, f in enumerate(frames)
            if i % every == 0 or i == len(frames) - 1 or f.verdict != frames[i - 1].verdict
            or f.state != frames[i - 1].state]


def _key_frames(frames: Sequence[EpisodeFrame], count: int) -> list[int]:
    changes = [i for i in range(1, len(frames)) if frames[i].state != frames[i - 1].state]
    picks = {0, len(frames) - 1, *changes[:max(0, count - 2)]}
    for i in np.linspace(0, len(frames) - 1, num=count).round().astype(int).tolist():
        if len(picks) >= count:
            break
        picks.add(i)
    return sorted(picks)


def _write_gif(path: Path, images: list[np.ndarray], fps: float) -> None:
    from PIL import Image

    frames = [Image.fromarray(image).quantize(colors=128, dither=Image.Dither.NONE)
              for image in images]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(round(1000 / fps)), loop=0, optimize=True)
    write_atomic(path, buffer.getvalue())


class TrainedPolicy:
    """A Stable-Baselines3 PPO model saved by ``safeguards curriculum`` (``RUN/stageK.zip``) as
    a :data:`Policy`: it sees the image and, when it was trained to, the safeguard's state
    (``info["safeguard_state"]`` of the recording's safeguard, which must be the stage's).
    ``deterministic=False`` samples actions (seeded), as in training.  The file is read with
    SB3's ``PPO.load``, which unpickles parts of it: give only files you trust (``safeguards
    curriculum --resume`` itself never unpickles a run folder, see
    :func:`safeguards.learn.deep.load_model`)."""

    def __init__(self, path: str | Path, *, deterministic: bool = False, seed: int = 0) -> None:
        from stable_baselines3 import PPO
        from gymnasium import spaces

        self.model = PPO.load(str(path), device="cpu")
        self.model.set_random_seed(seed)
        self.observes_state = isinstance(self.model.observation_space, spaces.Dict)
        self.deterministic = deterministic

    def __call__(self, obs: Any, info: dict[str, Any]) -> int:
        observation = obs
        if self.observes_state:  # the training env's dict observation (observe="dict")
            observation = {"obs": obs, "safeguard": info["safeguard_state"]}
        action, _ = self.model.predict(observation, deterministic=self.deterministic)
        return int(action)


def main(argv: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Draw an episode under the paper's final safeguard (safeguard 2). By default the shipped
    pictures: a scripted player who picks up the suit, crosses the lava, skips the gun and
    walks into the boss area -- a violation; with ``--policy`` an episode of a trained
    policy."""
    from importlib import resources

    import safeguards
    from safeguards.envs.doom.env import DoomEnv
    from safeguards.envs.doom.labels import DoomLabeler
    from safeguards.envs.doom.scripted import SKIP_THE_GUN, ScriptedPlayer

    parser = argparse.ArgumentParser(prog="python -m safeguards.envs.doom.render",
                                     description=main.__doc__)
    parser.add_argument("--policy", metavar="ZIP", help="a trained PPO (RUN/stage3.zip); it is unpickled: only files you trust")
    parser.add_argument("--greedy", action="store_true", help="the policy's most likely actions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=2, help="GIF: every N-th step (default 2)")
    parser.add_argument("--out", default="docs", help="folder (default: docs)")
    parser.add_argument("--name", default="doom", help="files NAME_episode.gif, NAME_frames.png")
    args = parser.parse_args(argv)
    if args.policy and not Path(args.policy).is_file():
        parser.error(f"--policy {args.policy}: no such file (a run's stageK.zip)")
    sg = safeguards.compile(resources.files("safeguards.specs") / "doom" / "safeguard2.sg")
    policy = (TrainedPolicy(args.policy, deterministic=args.greedy, seed=args.seed)
              if args.policy else ScriptedPlayer(SKIP_THE_GUN))
    env = DoomEnv("safe_rl", render_mode="rgb_array")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        frames = save_episode_gif(env, policy, out / f"{args.name}_episode.gif", sg,
                                  DoomLabeler(), title="safeguard2", seed=args.seed,
                                  max_steps=args.max_steps, steps_after_violation=30,
                                  every=args.every)
    finally:
        env.close()
    strip = save_frame_strip(frames, out / f"{args.name}_frames.png", "safeguard2")
    return out / f"{args.name}_episode.gif", strip


if __name__ == "__main__":
    for written in main():
        print(written)
