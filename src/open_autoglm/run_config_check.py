"""A run folder belongs to one config: resuming it with settings that would change its result is refused.

`train` and `tune` continue what a run folder holds (checkpoints, finished trials, a finished model). Continuing
under other settings would mix two experiments in one folder — weights trained at one learning rate resumed at
another, a split made with another seed (so that test rows had been training rows) — while config.yaml and
summary.json would claim the new settings for all of it. So before resuming, the new config is compared with
the run's config.yaml key by key, and the input data with what the run split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from open_autoglm.config import Config, ConfigError, load_config
from open_autoglm.run_folder import RunFolder

# Keys that may change between two runs on one folder: they say where the run lives, how it reports progress or
# how long and how wide it goes on, never what a trained model or a finished trial is.
HARMLESS_KEYS: frozenset[str] = frozenset(
    {
        "name",  # where the run folder is, not what it holds (a moved or renamed folder resumes)
        "output_dir",
        "quiet",  # progress bars
        "train.logging_steps",  # how often the training loss is logged
        "train.report_to",  # experiment trackers
        "train.save_total_limit",  # how many older checkpoints are kept on disk
        "data.workers",  # processes that clean the data; their output is the same
        "search.n_trials",  # how far a search goes: finished trials stay valid
        "search.timeout",
        "search.workers",  # how many processes share the study
        "search.heartbeat_seconds",  # how a dead worker is noticed
        "search.grace_seconds",
    }
)


def check_resume_compatible(
    run_dir: Path, config: Config, *, restart_flag: str = "--no-resume", data_config: Config | None = None
) -> None:
    """Raise ConfigError when `config` would change the result of the run already in `run_dir`.

    Call it before a job resumes (or reuses) anything in the run folder, and before it writes config.yaml. The
    error lists every differing key (old → new) and the two ways out: `restart_flag` (`--no-resume` for train,
    `--fresh` for tune) or a new run folder (`--out`). Keys in HARMLESS_KEYS may differ. A folder without
    config.yaml has nothing to compare with and passes. `data_config` is the config `<run>/data/` was prepared
    with, where a job prepares it under another one (transfer's labelled data is a classification task's).
    """
    saved_file = RunFolder(run_dir).config
    if not saved_file.is_file():
        return
    ways_out = f"start the run over with {restart_flag}, or give the new settings their own run folder with --out DIR"
    try:
        saved = load_config(saved_file)
    except ConfigError as err:
        raise ConfigError(
            f"{err}\ncannot tell whether the settings of {run_dir} changed: {ways_out}"
        ) from None
    changed = changed_keys(saved, config)
    if changed:
        lines = "\n".join(f"  {key}: {old!r} → {new!r}" for key, (old, new) in changed.items())
        raise ConfigError(
            f"{run_dir} was run with other settings ({saved_file}); resuming it would change its result:\n"
            f"{lines}\n{ways_out}"
        )
    _check_data_unchanged(run_dir, data_config or config, ways_out)


def changed_keys(saved: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between the two configs, harmless keys left out: key -> (old, new)."""
    old_flat, new_flat = _flatten(saved.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    unset = "(unset)"  # a key on one side only, e.g. an entry added to search.space
    return {
        key: (old_flat.get(key, unset), new_flat.get(key, unset))
        for key in sorted(old_flat.keys() | new_flat.keys())
        if key not in HARMLESS_KEYS and old_flat.get(key, unset) != new_flat.get(key, unset)
    }


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}; lists and scalars are values (a list compares as a whole)."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= _flatten(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


def _check_data_unchanged(run_dir: Path, config: Config, ways_out: str) -> None:
    """The input files must be the bytes the run split: otherwise preparing them again would re-split the data
    under a run whose model (or finished trials) saw the old split."""
    from open_autoglm.data.prepared import fingerprint
    from open_autoglm.data.request import DataRequest

    report_file = RunFolder(run_dir).data_report
    source = config.data.train
    if not report_file.is_file() or (isinstance(source, Path) and source.is_dir()):
        return  # nothing split yet, or splits copied from a prepared folder as they are
    try:
        recorded = json.loads(report_file.read_text(encoding="utf-8")).get("fingerprint")
    except (ValueError, AttributeError):
        return  # unreadable: load_data prepares the data anew and says so
    if recorded is not None and fingerprint(DataRequest.of(config)) != recorded:
        raise ConfigError(
            f"the input data changed since {run_dir} split it (the files' bytes differ from what {report_file} "
            f"records); resuming would re-split the data under what was trained on the old split: {ways_out}"
        )
