"""Pictures of the drunk spider: the map with trajectories drawn over it.

>>> image = draw_map([[(0.5, 3.5), (1.5, 3.5), (2.5, 3.4)]], goal=(7.5, 3.5))
>>> image.shape[2], image.dtype.name
(3, 'uint8')
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from safeguards.envs.spider.env import START, WALLS

__all__ = ["draw_map", "save_map"]

Path2D = Sequence[tuple[float, float]]


def _figure(trajectories: Sequence[Path2D], goal: tuple[float, float] | None, title: str,
            falls: Sequence[bool] | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = WALLS.shape
    fig, ax = plt.subplots(figsize=(3.2, 3.6), dpi=100)
    ax.imshow(WALLS, cmap="Oranges", vmin=0, vmax=1.4, extent=(0, width, height, 0))
    for k in range(height + 1):
        ax.axhline(k, color="0.85", lw=0.5)
    for k in range(width + 1):
        ax.axvline(k, color="0.85", lw=0.5)
    for i, path in enumerate(trajectories):
        rows, cols = np.asarray(path, dtype=float).reshape(-1, 2).T
        fell = bool(falls[i]) if falls is not None else False
        ax.plot(cols, rows, color="crimson" if fell else "navy", alpha=0.45, lw=1.2)
    ax.plot(START[1] + 0.5, START[0] + 0.5, "o", color="green", ms=7)
    if goal is not None:
        ax.plot(goal[1], goal[0], "*", color="gold", mec="black", ms=12)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def draw_map(trajectories: Sequence[Path2D], *, goal: tuple[float, float] | None = None,
             title: str = "", falls: Sequence[bool] | None = None) -> np.ndarray:
    """The map (lava orange) with ``trajectories`` of (row, column) points (falls in red) as an
    RGB array."""
    import matplotlib.pyplot as plt

    fig = _figure(trajectories, goal, title, falls)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_map(path: str | os.PathLike[str], trajectories: Sequence[Path2D], *,
             goal: tuple[float, float] | None = None, title: str = "",
             falls: Sequence[bool] | None = None) -> None:
    """Write :func:`draw_map`'s picture to a PNG file (atomically)."""
    import io

    import matplotlib.pyplot as plt

    from safeguards.files import write_atomic

    fig = _figure(trajectories, goal, title, falls)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
