"""``SafeguardGRPOTrainer`` shields rollouts by overriding TRL's private
``GRPOTrainer._generate_single_turn``: pin the TRL versions it was tested with and the contract it
relies on, so that a TRL release that moves or reshapes the method fails here, by name."""

from __future__ import annotations

import inspect

import pytest

trl = pytest.importorskip("trl")
from packaging.version import Version  # noqa: E402
from trl import GRPOTrainer  # noqa: E402

#: TRL versions the shielded GRPO run was tested with (oldest, newest).
TESTED_TRL = (Version("1.13"), Version("1.16"))

#: ``_generate_single_turn``'s parameters in the tested versions (the override forwards them all).
KNOWN_PARAMETERS = {
    ("self", "prompt_ids", "images", "multimodal_fields", "has_tool_images"),                  # 1.13
    ("self", "prompt_ids", "images", "multimodal_fields", "num_generations",
     "has_tool_images"),                                                                       # 1.16
}

_CHECK = ("check that SafeguardGRPOTrainer._generate_single_turn (safeguards/llm/grpo.py) still "
          "wraps the policy's generate call, run tests/test_llm_train.py, then update this test")


def test_trl_version_was_tested() -> None:
    version = Version(trl.__version__)
    oldest, newest = TESTED_TRL
    assert oldest <= version and version.release[:2] <= newest.release[:2], (
        f"TRL {version} is outside the versions the shield's private GRPO hook was tested with "
        f"({oldest} to {newest}.x): {_CHECK}")


def test_private_rollout_step_still_exists_with_a_known_signature() -> None:
    method = getattr(GRPOTrainer, "_generate_single_turn", None)
    assert method is not None, (
        f"TRL {trl.__version__} has no GRPOTrainer._generate_single_turn, which "
        f"SafeguardGRPOTrainer overrides to shield rollouts: {_CHECK}")
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters in KNOWN_PARAMETERS, (
        f"TRL {trl.__version__} changed GRPOTrainer._generate_single_turn's parameters to "
        f"{parameters}: {_CHECK}")


def test_private_rollout_step_is_where_the_policy_generates() -> None:
    assert "self._generate_single_turn(" in inspect.getsource(GRPOTrainer._generate), (
        f"TRL {trl.__version__}: GRPOTrainer._generate no longer calls _generate_single_turn: "
        f"{_CHECK}")
    assert "unwrapped_model.generate(" in inspect.getsource(GRPOTrainer._generate_single_turn), (
        f"TRL {trl.__version__}: GRPOTrainer._generate_single_turn no longer calls the policy's "
        f"generate: {_CHECK}")
    init = inspect.getsource(GRPOTrainer.__init__)
    assert "self.use_vllm =" in init and "self.use_transformers_continuous_batching =" in init, (
        f"TRL {trl.__version__}: GRPOTrainer renamed use_vllm or "
        f"use_transformers_continuous_batching, which SafeguardGRPOTrainer reads: {_CHECK}")
