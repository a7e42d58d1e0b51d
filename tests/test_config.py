"""The config layer: one schema (the learners' pydantic configuration classes) for experiment
files and the Python API, with errors located at ``file:line``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from safeguards.config import ConfigError
from safeguards.experiment import parse_experiment
from safeguards.learn.config import CurriculumConfig, DeepConfig, Stage, settings_of
from safeguards.learn.curriculum import LEARNERS

STAGE = {"tabular": '[[stages]]\nenv = "safeguards/Minecraft-L1-v0"\nspec = "G !lava"\n'
                    'episodes = 3\n',
         "ppo": '[[stages]]\nenv = "safeguards/DoomSafeRL-v0"\nspec = "G !lava"\n'
                'frames = 512\n'}
STAGE["rllib_ppo"] = STAGE["ppo"]
STAGE["sqrl"] = 2 * '[[stages]]\nenv = "safeguards/DrunkSpider-v0"\nspec = "sqrl/no_fall"\n' \
                    'frames = 64\n'
#: A valid value for the settings whose default TOML cannot write (None).
VALUES = {"labeler": "safeguards.envs.gridworld.minecraft:MinecraftLabeler", "max_steps": 50,
          "transfer_ent_coef": 0.03, "fail_weight": 0.75, "target_entropy": -1.5,
          "hidden": [64, 64]}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _file(learner: str, train: str) -> str:
    return f'[train]\nlearner = "{learner}"\n{train}{STAGE[learner]}'


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_every_setting_of_the_configuration_is_a_train_key(learner: str) -> None:
    config_class = LEARNERS[learner].config
    defaults = config_class.__dataclass_fields__
    for key in settings_of(config_class):
        value = VALUES.get(key, defaults[key].default)
        experiment = parse_experiment(_file(learner, f"{key} = {_toml(value)}\n"), "x.toml",
                                      check_envs=False)
        config = experiment.config(experiment.methods[0], seed=3)
        assert isinstance(config, config_class) and getattr(config, key) == value
        assert config.seed == 3


@pytest.mark.parametrize("key, value, message", [
    ("alpha", "2", "`alpha` must be in (0, 1], not the number 2"),
    ("alpha", "nan", "`alpha` must be a finite number, not the number nan"),
    ("max_steps", '"5"', '`max_steps` must be an integer, not the string "5"'),
    ("max_steps", "0", "`max_steps` must be at least 1, not the number 0"),
    ("fast_env", "1", "`fast_env` must be true or false, not the number 1"),
    ("update", '"paperr"', '`update` must be one of "standard", "paper", not the string '
                           '"paperr"'),
    ("labeler", '"nomodule"', '`labeler` must be "module:Name"'),
])
def test_a_bad_setting_is_the_same_error_in_a_file_and_in_the_api(key, value, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_experiment(_file("tabular", f"{key} = {value}\n"), "x.toml", check_envs=False)
    assert str(info.value).startswith(f"x.toml:3: error: {message}")
    api_value = {"2": 2, "nan": float("nan"), '"5"': "5", "0": 0, "1": 1}.get(
        value, value.strip('"'))
    with pytest.raises(ValidationError) as api:
        CurriculumConfig(stages=[Stage("e")], **{key: api_value})
    assert [error["loc"] for error in api.value.errors()] == [(key,)]


def test_hints_come_with_the_translated_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_experiment(_file("tabular", 'update = "paperr"\nepsilom = 0.2\n'), "x.toml",
                         check_envs=False)
    text = str(info.value)
    assert "hint: did you mean `paper`?" in text and "did you mean `epsilon`?" in text
    with pytest.raises(ConfigError, match="is a setting of learner = \"ppo\""):
        parse_experiment(_file("tabular", "n_envs = 2\n"), "x.toml", check_envs=False)


def test_cross_setting_checks_are_located_at_the_method() -> None:
    text = _file("ppo", "n_envs = 1\nn_steps = 8\nbatch_size = 64\n")
    with pytest.raises(ConfigError) as info:
        parse_experiment(text, "x.toml", check_envs=False)
    assert "method `reuse`: batch_size (64) must not exceed n_envs * n_steps (8)" in \
        str(info.value)


def test_the_api_is_strict_and_forbids_unknown_settings() -> None:
    with pytest.raises(ValidationError):
        CurriculumConfig(stages=[Stage("e")], seed="0")
    with pytest.raises(ValidationError):
        CurriculumConfig(stages=[Stage("e")], aplha=0.5)
    with pytest.raises(ValidationError, match="at least one stage"):
        DeepConfig(stages=[])
    assert CurriculumConfig(stages=[Stage("e")], alpha=1).alpha == 1.0
