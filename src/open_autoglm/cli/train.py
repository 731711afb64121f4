"""`autoglm train -c CFG [--set KEY=VALUE ...]`: one fine-tuning run; re-running resumes a killed one."""

from __future__ import annotations

import argparse

from open_autoglm.cli.common import add_config_options, config_from_args, console


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="fine-tune once with the config", description=__doc__)
    add_config_options(parser)
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints in the run folder")


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_summary
    from open_autoglm.train.job import run_train

    config = config_from_args(args)
    summary = run_train(config, resume=not args.no_resume)
    print_summary(summary, config.run_dir)
    console.print(f"run folder: {config.run_dir}")
    return 0
