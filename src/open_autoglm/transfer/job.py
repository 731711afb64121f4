"""`recipe: transfer`: domain adaptation in three steps, top to bottom.

1. continued pretraining on the unlabelled domain text → <run>/adapted (a full model folder);
2. the labelled task with the config's method, from the adapted model → <run>/model, and the same from the
   original model as a control (what did step 1 buy?);
3. the target's test metrics of both, and a linear probe of the original, adapted and fine-tuned backbones on
   a second task (what was kept or lost?).

Each step runs in <run>/steps/<step>/ and records itself in step.json when it ends: a killed run started
again skips the finished steps, and `fit` resumes the unfinished one from its last checkpoint.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from open_autoglm.atomic import write_json
from open_autoglm.config import Config, dump_config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData
from open_autoglm.distributed import is_distributed
from open_autoglm.monitor import ResourceMonitor
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import RunFolder, TrialFolder, read_json_object, write_summary
from open_autoglm.train.job import build_summary, fit, save_fitted
from open_autoglm.transfer.second_task import backbones, probe_second_task
from open_autoglm.transfer.steps import finetune_config, pretrain_config
from open_autoglm.transfer.summary import build_transfer_summary

logger = logging.getLogger(__name__)


def run_transfer(config: Config, resume: bool = True) -> dict[str, Any]:
    """Adapt, fine-tune and evaluate as the config says; write everything to the run folder; return the summary."""
    if config.recipe != "transfer":
        raise ValueError(f"run_transfer needs recipe: transfer, the config says {config.recipe!r}")
    if config.transfer.domain_text is None:
        raise ValueError("recipe: transfer needs transfer.domain_text (unlabelled domain text)")
    if is_distributed():  # each step's model is loaded by the next one from rank 0's files
        raise ValueError("recipe: transfer runs on one process; run it without torchrun / accelerate launch")
    started = time.perf_counter()
    run_dir = config.run_dir
    folder = RunFolder(run_dir)
    steps_dir, adapted_dir, model_dir = folder.steps, folder.adapted, folder.model
    if resume and (folder.summary.exists() or steps_dir.exists()):
        # finished steps must not be reused under other settings, nor the labelled data split anew
        labelled_config = finetune_config(config, steps_dir / "finetune", config.model.name)
        check_resume_compatible(run_dir, config, data_config=labelled_config)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(config, folder.config)

    with ResourceMonitor(folder.resources) as monitor:
        # 1. Continued pretraining on the domain text: the whole model, saved as a full model folder.
        pretrain = _step(
            steps_dir / "pretrain",
            resume,
            lambda d: _fit_step(pretrain_config(config, d), d, resume, adapted_dir),
        )

        # 2. The labelled task from the adapted model, and from the original one as the control; same data.
        labelled: LoadedData = load_data(
            DataRequest.of(finetune_config(config, steps_dir / "finetune", config.model.name)), folder.data
        )
        finetune = _step(
            steps_dir / "finetune",
            resume,
            lambda d: _fit_step(finetune_config(config, d, str(adapted_dir)), d, resume, model_dir, labelled),
        )
        control = _step(
            steps_dir / "control",
            resume,
            lambda d: _fit_step(finetune_config(config, d, config.model.name), d, resume, None, labelled),
        )

        # 3. What the adaptation kept or lost of a second task, by linear probes of the three backbones.
        second = None
        if config.transfer.second_task is not None:
            loaders = backbones(config, adapted_dir, model_dir)
            second = _step(steps_dir / "probe", resume, lambda d: probe_second_task(config, d, loaders))

    summary = build_transfer_summary(
        config, pretrain, finetune, control, second, time.perf_counter() - started
    )
    summary.resources = monitor.summary()
    write_summary(folder.summary, summary)
    return summary.to_json()


def _step(step_dir: Path, resume: bool, run: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The step's record: read from step.json when it already finished (and we resume), else run it."""
    record = TrialFolder(step_dir).step_record
    if resume and record.is_file():
        logger.info("%s finished earlier: skipping it", step_dir.name)
        return read_json_object(record, "a step record", "delete it to run the step again")
    step_dir.mkdir(parents=True, exist_ok=True)
    result = run(step_dir)
    write_json(record, result)  # whole or not at all: a kill never leaves half a record
    return result


def _fit_step(
    step_config: Config,
    step_dir: Path,
    resume: bool,
    model_dir: Path | None,
    loaded: LoadedData | None = None,
) -> dict[str, Any]:
    """Train one step with `fit`, save its model to `model_dir` (if any); its record is its run summary."""
    started = time.perf_counter()
    dump_config(step_config, TrialFolder(step_dir).config)
    result = fit(step_config, step_dir, resume=resume, loaded=loaded)
    if model_dir is not None:
        save_fitted(result, model_dir, step_config)
    summary = build_summary(step_config, result, time.perf_counter() - started)
    del result  # one model in memory at a time
    gc.collect()
    return summary.to_json()
