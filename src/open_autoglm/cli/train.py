"""`autoglm train -c CFG [--set KEY=VALUE ...]`: one fine-tuning run; re-running resumes a killed one.

Resuming continues the run folder's last complete checkpoint (a finished run is left as it is). It is refused
when the config changed in a key that changes the result (see `open_autoglm.run_config_check`): `--no-resume`
starts the run over, or `--out DIR` gives the new settings their own folder.

`recipe: multitask` trains one backbone with a head per task; `recipe: transfer` runs domain adaptation's three
steps (see `open_autoglm.recipes`). Under `torchrun` / `accelerate launch` every process runs this verb and rank 0 reports.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from open_autoglm.cli.common import add_config_options, config_from_args, console


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="fine-tune once with the config", description=__doc__)
    add_config_options(parser)
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="start the run over: ignore the run folder's checkpoints and results (also when its config changed)",
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_summary, print_transfer
    from open_autoglm.distributed import is_main_process
    from open_autoglm.recipes import run_recipe
    from open_autoglm.run_folder import RunFolder, read_summary
    from open_autoglm.run_lock import hold_run_folder

    config = config_from_args(args, runs_recipe=True)
    # refused while another job (a `tune`) holds the run folder; under torchrun rank 0 holds it for all
    with hold_run_folder(config.run_dir, "train") if is_main_process() else nullcontext():
        run_recipe(config, resume=not args.no_resume)
    if is_main_process():  # rank 0 wrote the summary; it shows what the run folder now holds
        summary = read_summary(RunFolder(config.run_dir).summary)
        print_summary(summary)
        if "transfer" in summary.sections:
            print_transfer(summary.sections["transfer"])
        console.print(f"run folder: {config.run_dir}")
    return 0
