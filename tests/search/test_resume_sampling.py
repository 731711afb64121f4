"""A search run again (after a kill, or with more trials) draws new parameters rather than the first run's."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.search.job import run_tune
from open_autoglm.search.storage import open_storage
from open_autoglm.search.study import sampler_seed


def test_a_continued_search_does_not_repeat_the_parameters_of_its_first_run(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    raw = {
        "name": "study",
        "output_dir": str(tmp_path),
        "model": {"name": str(tiny_encoder)},
        "data": {"train": str(topic_file), "max_rows": 60, "max_length": 16, "val_ratio": 0.2},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "batch_size": 16},
        "search": {
            "n_trials": 1,
            "sampler": "random",
            "pruner": "none",
            "seed_default": False,  # every trial sampled
            "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        },
        "quiet": True,
    }
    run_tune(validate_config(raw, "first run"))
    raw["search"]["n_trials"] = 2
    run_tune(validate_config(raw, "run again"))  # before the fix: the sampler started over at the same seed

    trials = optuna.load_study(study_name="study", storage=open_storage(None, tmp_path / "study")).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].params["train.lr"] != trials[1].params["train.lr"]

    raw["search"]["seed"] = 7  # changes what the study would draw: not the same search any more
    with pytest.raises(ConfigError, match=r"search\.seed: 42 → 7(.|\n)*--fresh"):
        run_tune(validate_config(raw, "changed"))


def test_sampler_seeds_follow_the_study_and_reproduce(tmp_path: Path) -> None:
    config = validate_config(
        {"name": "s", "output_dir": str(tmp_path), "model": {"name": "m"}, "data": {"train": "x.jsonl"}},
        "test",
    )
    seeds = {(index, asked): sampler_seed(config, index, asked) for index in (0, 1) for asked in (0, 1, 2)}
    assert len(set(seeds.values())) == len(seeds)  # every worker at every start draws its own sequence
    assert sampler_seed(config, 1, 2) == seeds[(1, 2)]  # the same study state gives the same seed
    other = config.model_copy(update={"search": config.search.model_copy(update={"seed": 7})})
    assert sampler_seed(other, 0, 0) != seeds[(0, 0)]
