"""`autoglm data prepare -c CFG`: clean, scrub, filter, deduplicate and split the configured files into the run
folder's `data/` (train/validation/test JSONL, data_report.json, quarantine.jsonl, removed.jsonl)."""

from __future__ import annotations

import argparse

from open_autoglm.cli.common import add_config_options, config_from_args, console


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="prepare data: clean, filter, dedup, split", description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prepare = actions.add_parser("prepare", help="raw files in, clean splits and a quality report out")
    add_config_options(prepare)
    prepare.add_argument(
        "--force", action="store_true", help="prepare again even if the inputs and settings are unchanged"
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_data_report
    from open_autoglm.config import dump_config
    from open_autoglm.data.prepared import prepare_or_reuse
    from open_autoglm.data.request import DataRequest
    from open_autoglm.run_folder import RunFolder

    config = config_from_args(args, runs_recipe=True)
    folder = RunFolder(config.run_dir)
    out_dir = folder.data
    config.run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(config, folder.config)
    report, reused = prepare_or_reuse(DataRequest.of(config), out_dir, force=args.force)
    if reused:
        console.print(f"inputs and data settings unchanged: {out_dir} is up to date (--force to redo)")
    print_data_report(report)
    console.print(f"data folder: {out_dir}")
    return 0
