"""Every extension family registers the same way: the built-ins are entries of their family's registry, like
plugins, and all of them use one idiom (`@FAMILY.register` above a class or function with a `name`). A plugin
pruner, sampler and exporter joining through entry points are then picked by name like the built-ins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.pruners import BasePruner, ThresholdPruner
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler
from optuna.trial import TrialState

from open_autoglm import registry
from open_autoglm.config.data import CleanConfig
from open_autoglm.data.clean import BUILTIN_CLEANERS, CLEANERS, clean_text
from open_autoglm.data.readers import READERS
from open_autoglm.export import variants  # noqa: F401  (registers the built-in exporters)
from open_autoglm.export.merge import MergedModel
from open_autoglm.export.plugins import EXPORTERS, Exported, ExportSource, run_exporters
from open_autoglm.methods import METHODS
from open_autoglm.multitask.weighting import WEIGHTINGS
from open_autoglm.registry import Registry
from open_autoglm.search.objectives import OBJECTIVES
from open_autoglm.search.pruners import PRUNERS, Rungs, build_pruner
from open_autoglm.search.samplers import SAMPLERS, SamplerSettings, build_sampler
from open_autoglm.tasks import TASKS
from open_autoglm.tasks.classification import BUILTIN_METRICS, CLASSIFICATION_METRICS

SRC = Path(__file__).resolve().parents[1] / "src" / "open_autoglm"

BUILT_INS: list[tuple[Registry[Any], set[str]]] = [
    (
        METHODS,
        {"full", "freeze", "lora", "dora", "adalora", "ia3", "adapter", "prefix", "prompt", "ptuning"},
    ),
    (READERS, {"jsonl", "csv", "tsv", "text", "alpaca", "sharegpt", "html", "warc"}),
    (TASKS, {"classification", "sft", "pretrain"}),
    (WEIGHTINGS, {"fixed", "gradnorm", "pcgrad", "uncertainty"}),
    (CLEANERS, {"html", "nfkc", "control_chars", "whitespace", "lowercase"}),
    (CLASSIFICATION_METRICS, {"accuracy", "f1_macro"}),
    (OBJECTIVES, {"quality", "latency", "memory", "params", "size"}),
    (EXPORTERS, {"torch-int8", "onnx", "pruned"}),
    (PRUNERS, {"median", "asha", "hyperband", "curve"}),
    (SAMPLERS, {"auto", "tpe", "random", "gp", "cmaes", "nsga2"}),
]


@pytest.mark.parametrize(("family", "names"), BUILT_INS, ids=[r.family for r, _ in BUILT_INS])
def test_every_built_in_is_an_entry_of_its_familys_registry(family: Registry[Any], names: set[str]) -> None:
    assert names <= set(family.names())


def test_the_built_in_cleaners_and_metrics_that_always_run_are_registered() -> None:
    assert set(BUILTIN_CLEANERS) <= set(CleanConfig.model_fields)  # each is switched on by its own flag
    assert set(BUILTIN_CLEANERS) <= set(CLEANERS.names())
    assert set(BUILTIN_METRICS) <= set(CLASSIFICATION_METRICS.names())


def test_one_registration_idiom_in_the_source() -> None:
    """No name spelled beside the entry (`.register("x")`), no per-family helpers, no built-in added by hand:
    `Registry.add` is for the entry-point loader only."""
    forbidden = re.compile(r"\.register\(\s*[\"']|\bregister_(method|reader)\b|\b[A-Z][A-Z_]+\.add\(")
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "registry.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if forbidden.search(line)
    ]
    assert found == []


class FakeEntryPoint:
    """What `importlib.metadata.entry_points` yields for an installed plugin."""

    def __init__(self, name: str, obj: object) -> None:
        self.name, self.obj = name, obj

    def load(self) -> object:
        return self.obj


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[FakeEntryPoint]]:
    """Entry points to install, by group; each registry under test loads them afresh and forgets them after."""
    installed: dict[str, list[FakeEntryPoint]] = {}
    monkeypatch.setattr(registry, "entry_points", lambda group: installed.get(group, []))
    for family in (PRUNERS, SAMPLERS, EXPORTERS):
        monkeypatch.setattr(family, "_entries", dict(family._entries))
        monkeypatch.setattr(family, "_plugins_loaded", False)
    return installed


def test_a_plugin_pruner_is_picked_by_name_beside_the_built_ins(
    plugins: dict[str, list[FakeEntryPoint]],
) -> None:
    built: list[Rungs] = []

    def floor(rungs: Rungs) -> BasePruner:
        built.append(rungs)
        return ThresholdPruner(lower=0.5)

    plugins["open_autoglm.pruners"] = [FakeEntryPoint("floor", floor)]
    rungs = Rungs(min_resource=40, final_step=200, startup_trials=3, epoch=100)
    pruner = build_pruner(["median", "floor"], "accuracy", rungs)
    assert built == [rungs]
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    trial.report(0.3, 40)
    assert trial.should_prune()
    study.tell(trial, state=TrialState.PRUNED)
    assert pruner.last_reason is not None and pruner.last_reason.startswith("floor: accuracy 0.3")


def test_a_plugin_sampler_is_picked_by_name(plugins: dict[str, list[FakeEntryPoint]]) -> None:
    built: dict[SamplerSettings, BaseSampler] = {}

    def shifted(settings: SamplerSettings) -> BaseSampler:
        built[settings] = RandomSampler(seed=settings.seed + 1)
        return built[settings]

    plugins["open_autoglm.samplers"] = [FakeEntryPoint("shifted", shifted)]
    assert "shifted" in SAMPLERS.names()
    sampler = build_sampler("shifted", 1, 4, seed=7, workers=2)
    assert built == {SamplerSettings(n_objectives=1, startup_trials=4, seed=7, workers=2): sampler}
    assert isinstance(build_sampler("auto", 2, 4, seed=7, workers=1), NSGAIISampler)


def test_a_plugin_exporter_function_or_class_runs_like_a_built_in(
    plugins: dict[str, list[FakeEntryPoint]], tmp_path: Path
) -> None:
    merged_dir = tmp_path / "merged"
    merged_dir.mkdir()
    (merged_dir / "autoglm.json").write_text('{"labels": ["a", "b"]}', encoding="utf-8")

    def label_count(model_dir: Path, out_dir: Path) -> Path:  # the entry-point contract of a function
        path = out_dir / "count.txt"
        path.write_text(str(len(model_dir.joinpath("autoglm.json").read_text())), encoding="utf-8")
        return path

    class Readme:  # the class protocol the built-ins follow
        name = "readme"

        def export(self, source: ExportSource) -> Exported:
            path = source.out_dir / "README.txt"
            path.write_text(f"exported from {source.merged.path.name}\n", encoding="utf-8")
            return Exported(path, report={"readme": True})

    plugins["open_autoglm.exporters"] = [
        FakeEntryPoint("label_count", label_count),
        FakeEntryPoint("readme", Readme),
    ]
    merged = MergedModel(model=None, tokenizer=None, meta={}, path=merged_dir, max_abs_diff=0.0)  # type: ignore[arg-type]
    out = tmp_path / "export"
    done = run_exporters(["label_count", "readme"], ExportSource(merged, out, settings=None))  # type: ignore[arg-type]
    assert (
        done["label_count"].path == out / "label_count" / "count.txt" and done["label_count"].variants == []
    )
    assert done["readme"].path == out / "README.txt" and done["readme"].report == {"readme": True}


def test_the_cleaners_run_built_ins_by_flag_then_extras_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CLEANERS._entries, "shout", str.upper)
    text = "  <b>Ｈello</b>\u200b  world "
    assert clean_text(text, CleanConfig(lowercase=True, extra=["shout"])) == "HELLO WORLD"
    assert clean_text(text, CleanConfig(html=False, extra=["shout"])) == "<B>HELLO</B> WORLD"
