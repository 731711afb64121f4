"""Search efficiency: how much training each search strategy pays to find a good configuration.

Training every configuration anew for 30+ repetitions of 4 strategies is far too slow on a CPU, so this does
what HPO research does (LCBench, YAHPO Gym): record once, replay many times.

1. `record`: `autoglm tune` itself, with random sampling and no pruning, trains RECORD_TRIALS configurations
   drawn from the default classification space (plus the space's seeds) with minilm on a fixed SST-2 slice
   (TRAIN_ROWS stratified rows of train.tsv; the first VAL_ROWS rows of dev.tsv for validation), EPOCHS epochs
   each, validation accuracy after every epoch. The curves go to `data/sst2_minilm_curves.json` (our own
   measurement, committed with this script).
2. `replay` (the default): each strategy runs an Optuna study over the same default space. A sampled
   configuration is "trained" by reading the curve of the nearest recorded configuration (same method; distance
   over the other parameters, log-scaled where the space is log-scaled) epoch by epoch, reporting each value to
   the strategy's pruner and paying one epoch per value read. Strategies, over SEEDS seeds each:
   - random: random search, no pruning;
   - tpe: Optuna's TPE with its defaults, no pruning (what `Trainer.hyperparameter_search` runs by default);
   - tpe_hyperband: TPE + Optuna's Hyperband;
   - ours: our default — TPE (multivariate, grouped) + ASHA + our learning-curve predictor, seeded with the
     default space's known-good configurations, built by the same `build_sampler`/`build_pruner` as `tune`;
   - ours_unseeded: the same without the seeds, so the seeds' share of the gain is visible.
   Figures per strategy: the median epochs read until a completed trial reaches 99% of the best final accuracy
   in the table (a seed that never does counts as the budget, so medians are conservative), and the median best
   accuracy after BUDGET epochs; then the ratios of ours to each baseline.
3. `live`: one real `autoglm tune` with our default on the same slice for LIVE_EPOCHS epochs of budget, next to
   the replay of ours at that budget, to show the replay matches reality.

Run: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_efficiency.py [record|replay|live]`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from open_autoglm.config import validate_config
from open_autoglm.search.pruners import Rungs, build_pruner
from open_autoglm.search.samplers import build_sampler
from open_autoglm.search.space import SearchSpace, load_default_space

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent.parent / "shared" / "data" / "sst2"
TABLE = HERE / "data" / "sst2_minilm_curves_v2.json"
TRAIN_ROWS, VAL_ROWS, EPOCHS, MAX_LENGTH = 1000, 872, 3, 64
RECORD_TRIALS = 40
SEEDS = 30
BUDGET = 60  # epochs of training a strategy may read
STEPS_PER_EPOCH = 100  # report steps of one epoch in replay: the table records one value an epoch
TARGET_SHARE = 0.99
LIVE_EPOCHS = 24

optuna.logging.set_verbosity(optuna.logging.WARNING)


def base_config(workdir: Path, name: str, search: dict[str, Any]) -> Any:
    return validate_config(
        {
            "name": name,
            "output_dir": str(workdir),
            "task": "classification",
            "model": {"name": "minilm"},
            "data": {
                "train": str(DATA_DIR / "train.tsv"),
                "validation": str(first_rows(DATA_DIR / "dev.tsv", VAL_ROWS, workdir)),
                "columns": ["label", "text"],
                "max_rows": TRAIN_ROWS,
                "max_length": MAX_LENGTH,
                "test_ratio": 0.0,
            },
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": EPOCHS, "lr": 1e-3, "batch_size": 16},
            "search": search,
            "quiet": True,
        },
        source="benchmark",
    )


def first_rows(path: Path, rows: int, workdir: Path) -> Path:
    subset = workdir / f"{path.stem}.first{rows}{path.suffix}"
    workdir.mkdir(parents=True, exist_ok=True)
    with open(path, encoding="utf-8") as handle:
        subset.write_text("".join(islice(handle, rows)), encoding="utf-8")
    return subset


# 1. Record ---------------------------------------------------------------------------------------------------


def record(workdir: Path, workers: int) -> None:
    from open_autoglm.search.job import run_tune

    search = {
        "n_trials": RECORD_TRIALS,
        "workers": workers,
        "sampler": "random",
        "pruner": "none",
        "seed_default": False,
        "seed": 0,
    }
    config = base_config(workdir, "record", search)
    started = time.time()
    run_tune(config)
    export_table(config.run_dir, round(time.time() - started), TABLE)


def export_table(run_dir: Path, wall_seconds: int, path: Path) -> None:
    """The recorded study's complete curves as the replay table."""
    study = optuna.load_study(study_name=run_dir.name, storage=f"sqlite:///{run_dir / 'study.db'}")
    rows = []
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        metrics = run_dir / "trials" / str(trial.number) / "metrics.jsonl"
        curve = [
            r["value"]
            for r in map(json.loads, metrics.open())
            if r["split"] == "validation" and r["name"] == "accuracy"
        ]
        if len(curve) != EPOCHS:
            continue
        seconds = trial.user_attrs.get("train_seconds", 0.0)
        rows.append({"params": trial.params, "curve": [round(v, 5) for v in curve], "seconds": seconds})
    path.parent.mkdir(exist_ok=True)
    meta = {
        "what": "validation accuracy per epoch, minilm on SST-2, configurations from the default space",
        "train_rows": TRAIN_ROWS,
        "val_rows": VAL_ROWS,
        "epochs": EPOCHS,
        "max_length": MAX_LENGTH,
        "made_by": "benchmarks/search_efficiency.py record",
        "wall_seconds": wall_seconds,
    }
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {len(rows)} curves → {path}")


# 2. Replay ---------------------------------------------------------------------------------------------------


@dataclass
class Table:
    rows: list[dict[str, Any]]
    space: SearchSpace
    epochs: int

    @property
    def best(self) -> float:
        return max(r["curve"][-1] for r in self.rows)

    def hopeless(self, row: dict[str, Any]) -> bool:
        """Ends stuck: within a tenth of the table's range above the worst final accuracy (the majority class)."""
        finals = [r["curve"][-1] for r in self.rows]
        return row["curve"][-1] < min(finals) + 0.1 * (max(finals) - min(finals))

    def nearest(self, params: dict[str, Any], visited: set[int]) -> int:
        """The unvisited recorded configuration closest to `params` (the same method first).

        Unvisited: a real search never trains one configuration twice; a proposal near one it has trained is a
        different configuration, which the table stands for by the nearest one not yet read.
        """
        fresh = [i for i in range(len(self.rows)) if i not in visited] or list(range(len(self.rows)))
        method = params.get("method.name")
        same = [i for i in fresh if self.rows[i]["params"].get("method.name") == method] or fresh
        return min(same, key=lambda i: self._distance(self.rows[i]["params"], params))

    def _distance(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        total = 0.0
        for param in self.space.params:
            if param.name not in a or param.name not in b:
                total += 0.0 if (param.name in a) == (param.name in b) else 1.0
                continue
            dist = param.distribution
            if isinstance(dist, CategoricalDistribution):
                total += 0.0 if a[param.name] == b[param.name] else 1.0
            else:
                assert isinstance(dist, (FloatDistribution, IntDistribution))
                scale = math.log if dist.log else float
                span = (scale(dist.high) - scale(dist.low)) or 1.0
                total += abs(scale(a[param.name]) - scale(b[param.name])) / span
        return total


def load_table(path: Path = TABLE) -> Table:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Table(raw["rows"], load_default_space("classification"), raw["meta"]["epochs"])


def strategy_study(name: str, seed: int, space: SearchSpace, epochs: int) -> optuna.Study:
    no_pruning = optuna.pruners.NopPruner()  # create_study's default would be the median pruner
    if name == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        return optuna.create_study(
            study_name=f"{name}-{seed}", direction="maximize", sampler=sampler, pruner=no_pruning
        )
    if name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
        return optuna.create_study(
            study_name=f"{name}-{seed}", direction="maximize", sampler=sampler, pruner=no_pruning
        )
    if name == "tpe_hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=STEPS_PER_EPOCH, max_resource=epochs * STEPS_PER_EPOCH, reduction_factor=3
        )
        return optuna.create_study(  # a fixed name: Hyperband draws brackets from a hash of it
            study_name=f"{name}-{seed}",
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner,
        )
    # ours: exactly what `tune` builds from the default search config
    search = validate_config({}, "benchmark").search
    sampler = build_sampler(search.sampler, 1, search.startup_trials, seed, 1)
    rungs = Rungs(STEPS_PER_EPOCH, epochs * STEPS_PER_EPOCH, search.startup_trials, STEPS_PER_EPOCH)
    pruner = build_pruner(search.pruner, "accuracy", rungs)
    study = optuna.create_study(
        study_name=f"{name}-{seed}", direction="maximize", sampler=sampler, pruner=pruner
    )
    if name == "ours":
        for params in space.seeds:
            study.enqueue_trial(dict(params))
    return study


@dataclass
class Replay:
    epochs_to: dict[float, int | None]  # share of the table's best -> epochs read when first reached
    best: float  # best final accuracy of a completed trial within the budget
    hopeless_epochs: int  # epochs read of configurations that end stuck (see `hopeless`)
    spent: int


def replay(table: Table, name: str, seed: int, budget: int) -> Replay:
    """One search of `budget` epochs by strategy `name`, reading curves from the table."""
    study = strategy_study(name, seed, table.space, table.epochs)
    result = Replay({share: None for share in SHARES}, 0.0, 0, 0)
    visited: set[int] = set()
    while result.spent < budget:
        trial = study.ask()
        index = table.nearest(table.space.sample(trial), visited)
        visited.add(index)
        row = table.rows[index]
        pruned = False
        for epoch, value in enumerate(row["curve"], start=1):
            if result.spent >= budget:
                break
            result.spent += 1
            result.hopeless_epochs += table.hopeless(row)
            trial.report(value, epoch * STEPS_PER_EPOCH)
            if epoch < len(row["curve"]) and trial.should_prune():
                pruned = True
                break
        if not pruned and epoch == len(row["curve"]):
            final = row["curve"][-1]
            study.tell(trial, final)
            result.best = max(result.best, final)
            for share in SHARES:
                if result.epochs_to[share] is None and final >= share * table.best:
                    result.epochs_to[share] = result.spent
        else:
            study.tell(trial, state=TrialState.PRUNED)
    return result


STRATEGIES = ("random", "tpe", "tpe_hyperband", "ours", "ours_unseeded")
SHARES = (TARGET_SHARE, 0.98)


def run_replay(seeds: int, budget: int, path: Path = TABLE) -> dict[str, Any]:
    table = load_table(path)
    figures: dict[str, Any] = {}
    for name in STRATEGIES:
        runs = [replay(table, name, seed, budget) for seed in range(seeds)]
        figures[name] = {
            "median_epochs_to_target": statistics.median(r.epochs_to[TARGET_SHARE] or budget for r in runs),
            "reached_target": sum(r.epochs_to[TARGET_SHARE] is not None for r in runs),
            "median_epochs_to_98pct": statistics.median(r.epochs_to[0.98] or budget for r in runs),
            "median_best_at_budget": round(statistics.median(r.best for r in runs), 4),
            "hopeless_share_of_compute": round(
                statistics.median(r.hopeless_epochs / r.spent for r in runs), 3
            ),
        }

    def ratio(baseline: str, key: str = "median_epochs_to_target") -> float:
        return round(figures["ours"][key] / figures[baseline][key], 3)

    return {
        "benchmark": "search_efficiency",
        "table": {
            "configurations": len(table.rows),
            "best": table.best,
            "target": round(TARGET_SHARE * table.best, 4),
            "hopeless_configurations": sum(table.hopeless(r) for r in table.rows),
        },
        "seeds": seeds,
        "budget_epochs": budget,
        "strategies": figures,
        "ratio_ours_to_random": ratio("random"),
        "ratio_ours_to_tpe": ratio("tpe"),
        "ratio_ours_to_tpe_hyperband": ratio("tpe_hyperband"),
        "ratio_ours_to_random_98pct": ratio("random", "median_epochs_to_98pct"),
        "ratio_ours_to_tpe_98pct": ratio("tpe", "median_epochs_to_98pct"),
        "targets": {"ours_to_random_at_most": round(1 / 3, 3), "ours_to_tpe_at_most": round(2 / 3, 3)},
    }


# 3. Live -----------------------------------------------------------------------------------------------------


def run_live(workdir: Path, epochs_budget: int) -> dict[str, Any]:
    """A real search with our default until it has trained `epochs_budget` epochs, beside the replay."""
    from open_autoglm.search.job import run_tune

    config = base_config(workdir, "live", {"n_trials": 200, "seed_default": False, "seed": 0})
    spent = {"epochs": 0.0}

    def stop_at_budget(study: optuna.Study, number: int) -> None:
        spent["epochs"] = sum(t.user_attrs.get("epochs_trained", 0) for t in study.trials)
        if spent["epochs"] >= epochs_budget:
            study.set_user_attr("stop", True)

    import open_autoglm.search.worker as worker

    original = worker.should_stop

    def should_stop(study: optuna.Study, *args: Any) -> str | None:
        return "budget" if study.user_attrs.get("stop") else original(study, *args)

    worker.should_stop = should_stop  # the benchmark's budget, in epochs, on top of tune's own rules
    summary = run_tune(config, on_trial=stop_at_budget)
    live_best = summary["best"]["validation"]["accuracy"]
    table = load_table()
    replayed = [replay(table, "ours", seed, int(spent["epochs"])).best for seed in range(SEEDS)]
    return {
        "live_epochs": spent["epochs"],
        "live_best_accuracy": round(live_best, 4),
        "live_trials": summary["trials"],
        "replay_best_accuracy_median": round(statistics.median(replayed), 4),
        "replay_best_accuracy_range": [round(min(replayed), 4), round(max(replayed), 4)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="replay", choices=["record", "replay", "live"])
    parser.add_argument("--workdir", type=Path, default=None, help="where record/live put their run folders")
    parser.add_argument("--workers", type=int, default=2, help="record: worker processes")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--table", type=Path, default=TABLE, help="replay: the recorded curves")
    args = parser.parse_args(argv)
    import datasets
    import transformers

    datasets.disable_progress_bars()  # per-trial Map and weight-loading bars would bury the figures
    transformers.utils.logging.disable_progress_bar()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="search-bench-"))
    if args.mode == "record":
        record(workdir, args.workers)
        return 0
    if args.mode == "live":
        print(json.dumps(run_live(workdir, LIVE_EPOCHS)))
        return 0
    result = run_replay(args.seeds, args.budget, args.table)
    for name, fig in result["strategies"].items():
        print(
            f"{name:>14}: epochs to {TARGET_SHARE:.0%} of best {fig['median_epochs_to_target']:>5} "
            f"(reached in {fig['reached_target']}/{args.seeds}), to 98% {fig['median_epochs_to_98pct']:>5}, "
            f"best at {args.budget} epochs {fig['median_best_at_budget']:.4f}, "
            f"compute on hopeless configurations {fig['hopeless_share_of_compute']:.0%}",
            file=sys.stderr,
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
