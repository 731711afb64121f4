"""What every verb shares: config options, logging set-up, and turning known errors into one clear line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from open_autoglm.atomic import ArtifactWriteError, signal_file_size_exceeded_as_error
from open_autoglm.config import Config, ConfigError, load_config
from open_autoglm.run_folder import SUMMARY

console = Console(stderr=True)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        help="the YAML config (optional: any key can be given with --set instead)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=3e-4 (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="run folder (default: <output_dir>/<name> from the config)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (CI logs)")


def add_lang_option(parser: argparse.ArgumentParser) -> None:
    """The report's language; Chinese by default where the locale is Chinese."""
    locale = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    parser.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="zh" if locale.lower().startswith("zh") else "en",
        help="language of the HTML report (default: from the locale)",
    )


def config_from_args(args: argparse.Namespace, *, runs_recipe: bool = False) -> Config:
    """The config of `-c` (or the defaults) with `--set`, `--out` and `-q` applied, every extension name checked;
    for a verb that runs the recipe (`train`, `tune`, `data prepare`), the keys it needs are checked too, and the
    missing ones are named together."""
    overrides = list(args.overrides)
    if args.out is not None:
        overrides += [f"output_dir={args.out.parent}", f"name={args.out.name}"]
    if args.quiet:
        overrides.append("quiet=true")
    from open_autoglm.cli.registered import (  # imports every family: torch, peft (seconds)
        require_registered,
        with_task_default_model,
    )

    source = str(args.config or "--set")
    config = with_task_default_model(require_registered(load_config(args.config, overrides), source))
    if runs_recipe:
        from open_autoglm.recipes import RECIPES

        missing = RECIPES.get(config.recipe).missing(config)
        if missing:
            example = " ".join(f"--set {key}=..." for key in missing)
            raise ConfigError(
                f"{source}: recipe {config.recipe} needs {', '.join(missing)}: set them in the config or {example}"
            )
    return config


def one_model_config(config: Config, verb: str) -> Config:
    """The config as `eval`, `export` and `distill` use it: about one model of one task.

    A transfer run's model is a classifier of its labelled data; a multi-task model has a head per task that
    these verbs do not read.
    """
    if config.recipe == "transfer":
        return config.model_copy(update={"recipe": "single"})
    if config.recipe == "multitask":
        raise ConfigError(
            f"autoglm {verb} works on one task's model; a multitask run's model/ reloads with "
            f"open_autoglm.multitask.load_multitask and its {SUMMARY} holds every task's test metrics"
        )
    return config


def setup_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )
    logging.getLogger("open_autoglm").setLevel(level)
    import datasets
    import transformers

    transformers.logging.set_verbosity_warning()
    if quiet:
        transformers.logging.disable_progress_bar()  # "Loading weights" bars
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we print one line per trial ourselves
    datasets.disable_progress_bars()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _known_user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the input or the machine is wrong", not "the code is wrong".

    DataFormatError and MethodNotApplicable are ValueErrors. NonFiniteLossError joins only when the trainer was
    imported (it can be raised by nothing else): importing it here would cost `data` and `report` ~8 s of torch.
    """
    from open_autoglm.run_lock import RunFolderBusy

    known: list[type[BaseException]] = [FileNotFoundError, ValueError, ArtifactWriteError, RunFolderBusy]
    trainer = sys.modules.get("open_autoglm.train.trainer")
    if trainer is not None:
        known.append(trainer.NonFiniteLossError)
    return tuple(known)


def _finish_processes() -> None:
    """Under torchrun every rank ends together (see distributed.finish); a verb that never imported torch has
    no process group, and importing it here would cost the seconds `--help` does not spend."""
    if "torch.distributed" in sys.modules:
        from open_autoglm.distributed import finish

        finish()


def run_verb(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a verb; a known user error becomes one red line and exit code 2 (config) or 1 (anything else)."""
    setup_logging(getattr(args, "quiet", False))
    signal_file_size_exceeded_as_error()
    try:
        code = run(args)
        _finish_processes()
        return code
    except ConfigError as err:
        # escape: a path such as `x[/y].jsonl` in the message is text, not rich markup
        console.print(f"[bold red]config error:[/] {escape(str(err))}", highlight=False)
        return 2
    except Exception as err:
        if not isinstance(err, _known_user_errors()):
            raise
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        return 1
