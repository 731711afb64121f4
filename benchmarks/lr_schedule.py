"""Learning-rate schedules: cosine with warm-up (the baseline) against the gradient-aware controller and against
cosine with layer-wise learning-rate decay, side by side in one process, on the same budget.

Setup, the same for every arm: all-MiniLM-L6-v2 (the `minilm` alias) + LoRA r=8, alpha=16 on peft's default BERT
targets, a stratified sample of ROWS (500) rows of SST-2 train.tsv for training, all of dev.tsv (871 rows after
deduplication) for validation, max_length 64, batch 16, AdamW at lr 3e-3 (at 1e-3 LoRA stays near chance in 64
steps), weight decay 0.01, 10% linear warm-up, EPOCHS (2) epochs, one evaluation at the end. The arms differ only in
`train.scheduler` / `train.layer_lr_decay`:

- cosine (baseline): `scheduler: {name: cosine, warmup_ratio: 0.1}`;
- gradient_aware: `scheduler: {name: constant, warmup_ratio: 0.1}` taken over by the controller of
  gradient_aware_lr.py (raise x1.05 while successive gradients' cosine is above 0, x0.7 below 0, factor within
  [1/4, 4]) — an experiment kept here, not in the product, because it did not beat the baseline;
- cosine + layer decay: the baseline with `layer_lr_decay: 0.8` (layer k of 6 at lr · 0.8^(6 - k)).

Seed 42 + i (train.seed: the training sample, the head's initialisation, dropout and the batch order) runs every arm
on the same prepared data, the arms interleaved so a slow spell of the machine hits all of them. Figures per arm:
validation accuracy and loss (mean over seeds, and each seed's accuracy), training seconds, and the difference to
the baseline in accuracy points and loss, paired by seed; for gradient_aware also the factor it ended at. On a few
hundred rows one seed moves accuracy by 1 to 2 points, so read a difference under a point as "the same". Run from
the repository root: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lr_schedule.py --seeds 4` (`make bench-lr`;
twelve runs of 64 steps, about 4 minutes on 2 idle cores). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from open_autoglm.config import validate_config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData
from open_autoglm.run_folder import RunFolder
from open_autoglm.train.job import fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradient_aware_lr import AgreementRule, GradientAwareLr  # noqa: E402  (the experiment beside this file)

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
BASELINE = "cosine"
ARMS: dict[str, dict[str, Any]] = {
    "cosine": {"scheduler": {"name": "cosine", "warmup_ratio": 0.1}},
    "gradient_aware": {"scheduler": {"name": "constant", "warmup_ratio": 0.1}},  # + GradientAwareLr
    "cosine_layer_decay": {"scheduler": {"name": "cosine", "warmup_ratio": 0.1}, "layer_lr_decay": 0.8},
}


def arm_config(output_dir: Path, arm: str, seed: int, rows: int, epochs: float, lr: float) -> Any:
    return validate_config(
        {
            "name": f"lr-{arm}",
            "output_dir": str(output_dir),
            "task": "classification",
            "model": {"name": "minilm", "device": "cpu", "precision": "fp32"},
            "data": {
                "train": str(SST2 / "train.tsv"),
                "validation": str(SST2 / "dev.tsv"),
                "test": None,
                "test_ratio": 0.0,
                "columns": ["label", "text"],
                "max_length": 64,
                "max_rows": rows,
            },
            "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05},
            "train": {
                "epochs": epochs,
                "lr": lr,
                "batch_size": 16,
                "optimizer": {"name": "adamw", "weight_decay": 0.01},
                "seed": seed,
                "eval_every": 10**6,  # no evaluation during training: one at the end
                **ARMS[arm],
            },
            "quiet": True,
        },
        "benchmarks/lr_schedule.py",
    )


def run_arm(arm: str, seed: int, args: argparse.Namespace, loaded: LoadedData, out: Path) -> dict[str, Any]:
    """Train one arm with one seed; its validation figures and, for the controller, its last factor."""
    config = arm_config(out, arm, seed, args.rows, args.epochs, args.lr)
    controller = GradientAwareLr(AgreementRule()) if arm == "gradient_aware" else None
    callbacks = [controller] if controller is not None else []
    result = fit(
        config, out / arm, resume=False, loaded=loaded, callbacks=callbacks, checkpoints=False, baseline=False
    )
    validation = result.metrics["validation"]
    return {
        "seed": seed,
        "accuracy": validation["accuracy"],
        "loss": validation["loss"],
        "train_seconds": round(result.train_seconds, 1),
        "final_factor": None if controller is None else round(controller.schedule.factor, 3),
    }


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per arm: means over seeds and the seed-paired difference to the baseline."""
    base = runs[BASELINE]
    summary: dict[str, Any] = {}
    for arm, arm_runs in runs.items():
        row: dict[str, Any] = {
            "accuracy": round(statistics.mean(r["accuracy"] for r in arm_runs), 4),
            "loss": round(statistics.mean(r["loss"] for r in arm_runs), 4),
            "train_seconds": round(statistics.mean(r["train_seconds"] for r in arm_runs), 1),
            "per_seed_accuracy": [round(r["accuracy"], 4) for r in arm_runs],
        }
        if arm != BASELINE:
            row["accuracy_diff_points"] = round(
                100
                * statistics.mean(r["accuracy"] - b["accuracy"] for r, b in zip(arm_runs, base, strict=True)),
                2,
            )
            row["loss_diff"] = round(
                statistics.mean(r["loss"] - b["loss"] for r, b in zip(arm_runs, base, strict=True)), 4
            )
        factors = [r["final_factor"] for r in arm_runs if r["final_factor"] is not None]
        if factors:
            row["final_factor"] = factors
        summary[arm] = row
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500, help="training rows sampled from train.tsv")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=3e-3, help="the base learning rate of every arm")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 42, 43, ... per arm")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    validation_rows = 0
    for seed in range(42, 42 + args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            config = arm_config(Path(tmp), BASELINE, seed, args.rows, args.epochs, args.lr)
            loaded = load_data(DataRequest.of(config), RunFolder(config.run_dir).data)  # once per seed
            validation_rows = len(loaded.splits["validation"])
            for arm in ARMS:
                run = run_arm(arm, seed, args, loaded, Path(tmp))
                runs[arm].append(run)
                print(
                    f"seed {seed}  {arm:20} accuracy {run['accuracy']:.4f}  loss {run['loss']:.4f}  "
                    f"{run['train_seconds']:6.1f} s  factor {run['final_factor']}",
                    file=sys.stderr,
                )
    result = {
        "benchmark": "lr_schedule",
        "model": "minilm+lora",
        "train_rows": args.rows,
        "validation_rows": validation_rows,
        "epochs": args.epochs,
        "lr": args.lr,
        "seeds": args.seeds,
        "baseline": BASELINE,
        "arms": summarise(runs),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
