"""Propositions of the drunk spider, read from the ``info`` of
:class:`~safeguards.envs.spider.env.DrunkSpiderEnv` (the state a step reached).

>>> labeler = SpiderLabeler()
>>> sorted(labeler(None, {"lava": True, "off_map": False, "at_goal": False, "on_bridge": False},
...                None))
['lava']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safeguards.labels import PropositionLabeler, proposition

__all__ = ["SpiderLabeler"]


class SpiderLabeler(PropositionLabeler):
    """``lava``, ``off_map``, ``goal`` and ``bridge`` of the drunk spider."""

    @proposition
    def lava(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        """the spider fell into a lava pit"""
        return bool(info["lava"])

    @proposition
    def off_map(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        """the spider left the map"""
        return bool(info["off_map"])

    @proposition
    def goal(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        """the spider is within 1.0 of its goal"""
        return bool(info["at_goal"])

    @proposition
    def bridge(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        """the spider is on the bridge between the pits (column 3, rows 2-5)"""
        return bool(info["on_bridge"])
