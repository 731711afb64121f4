"""`autoglm tune -c CFG [--n-trials N] [--workers W] [--storage URL] [--timeout S]`: search the method and its
hyperparameters. Re-running the same command continues the study in the run folder (with settings that would
change its result it is refused: --fresh starts over). One job at a time per run folder: a second `tune` there is
refused; more workers join the study with --workers, or from other run folders on a shared --storage."""

from __future__ import annotations

import argparse

from open_autoglm.cli.common import add_config_options, add_lang_option, config_from_args, console
from open_autoglm.config import ConfigError


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="search the method and hyperparameters", description=__doc__)
    add_config_options(parser)
    parser.add_argument("--n-trials", type=int, help="finished trials to reach (search.n_trials)")
    parser.add_argument("--workers", type=int, help="worker processes sharing the study (search.workers)")
    parser.add_argument(
        "--storage",
        help="journal, or an RDB URL such as postgresql://... (default: SQLite in the run folder)",
    )
    parser.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    parser.add_argument("--fresh", action="store_true", help="delete the run folder's study and start over")
    add_lang_option(parser)


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_trial, print_tune_summary
    from open_autoglm.distributed import is_main_process
    from open_autoglm.recipes import RECIPES
    from open_autoglm.report import write_report
    from open_autoglm.run_folder import RunFolder, read_summary
    from open_autoglm.search.job import run_tune

    for flag, key in (
        ("n_trials", "n_trials"),
        ("workers", "workers"),
        ("storage", "storage"),
        ("timeout", "timeout"),
    ):
        value = getattr(args, flag)
        if value is not None:
            args.overrides.append(f"search.{key}={value}")
    config = config_from_args(args, runs_recipe=True)
    if not RECIPES.get(config.recipe).tunable:
        raise ConfigError(
            f"autoglm tune searches single-task runs (recipe: single); recipe {config.recipe} "
            "trains with autoglm train"
        )
    run_tune(config, on_trial=print_trial, fresh=args.fresh)
    if not is_main_process():  # under torchrun rank 0 reports
        return 0
    print_tune_summary(read_summary(RunFolder(config.run_dir).summary))
    console.print(f"report: {write_report(config.run_dir, args.lang)}")
    console.print(f"run folder: {config.run_dir}")
    return 0
