"""A method owns its facts: how many parameters it trains (the memory estimate), what `tune` searches for it (its
own parameters and learning-rate range) and whether multitask can use it. Adding one touches its own module only.

The worked example below is a plugin method, BitFit (Ben Zaken et al. 2021: train the bias terms only), written
as a third party would write it: a params model, `apply`, a trainable-parameter formula and a search space. The
memory estimate, the default search space and multitask pick it up with no edit anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import optuna
import pytest
import yaml
from pydantic import Field
from torch import nn

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.config.base import StrictModel
from open_autoglm.methods import (
    METHODS,
    BaseMethod,
    MethodContext,
    MethodSpace,
    ModelShape,
)
from open_autoglm.methods.base import TASKS_ALL
from open_autoglm.methods.lora import LoraMethod
from open_autoglm.multitask.model import apply_method as apply_multitask_method
from open_autoglm.search import space as space_module
from open_autoglm.search.memory import estimate_peak_bytes, trainable_parameters
from open_autoglm.search.space import apply_overrides, load_default_space, parse_space, read_task_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY = {"vocab_size": 500, "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4}
TINY |= {"intermediate_size": 128, "max_position_embeddings": 128}


# --- the worked example: a whole method in one place ---------------------------------------------------------


class BitFitParams(StrictModel):
    layer_norms: bool = Field(True, description="the norms' scales train too")


class BitFitMethod(BaseMethod):
    """Only the bias terms (and, by default, the norms' scales) train; the task head trains as always."""

    name: ClassVar[str] = "bitfit"
    params_cls = BitFitParams
    uses_peft = False  # saved as a full model
    tasks = TASKS_ALL | {"multitask"}  # it needs no task head, so it can adapt multitask's shared encoder
    # What `tune` searches when a task's default space names it; the learning rate is the Optuna parameter lr_bitfit.
    search_spaces = {
        "classification": MethodSpace(lr=(1.0e-4, 1.0e-2), params={"layer_norms": [True, False]})
    }

    def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
        for name, param in model.named_parameters():
            norm = params.layer_norms and "LayerNorm.weight" in name
            head = any(part in ctx.head_names for part in name.split("."))
            param.requires_grad_(name.endswith(".bias") or norm or head)
        return model

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        # A BERT-like block: biases of q, k, v, o, the MLP's down projection and two norms (7h), its up one (i).
        per_block = 7 * shape.hidden + shape.intermediate + (2 * shape.hidden if params["layer_norms"] else 0)
        return shape.layers * per_block


@pytest.fixture
def bitfit(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[BitFitMethod]]:
    """BitFit registered the way a plugin registers (an entry point does the same), for this test only."""
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))  # restored after the test
    METHODS.register(BitFitMethod)
    yield BitFitMethod


def _tiny_bert() -> tuple[nn.Module, ModelShape]:
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(**TINY))
    params = sum(p.numel() for p in model.parameters())
    return model, ModelShape(64, 4, 4, 128, 500, params)


def test_the_memory_estimate_counts_what_the_plugin_says_it_trains(bitfit: type[BitFitMethod]) -> None:
    model, shape = _tiny_bert()
    params = BitFitParams().model_dump()
    counted = trainable_parameters("bitfit", params, shape)
    assert counted == bitfit.trainable_params(shape, params)
    bitfit().apply(model, BitFitParams(), MethodContext("classification", "seq_cls"))
    actual = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0.75 * actual <= counted <= 1.25 * actual, (counted, actual)  # the embeddings' few are left out
    estimate = estimate_peak_bytes(shape, 8, 128, method="bitfit", method_params=params)
    assert estimate.gradients == 4 * counted  # fp32 gradients of exactly what it trains
    assert estimate.gradients < estimate_peak_bytes(shape, 8, 128, method="full").gradients / 10


def test_the_default_space_searches_the_plugin_with_its_own_entries(
    bitfit: type[BitFitMethod], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A task's space file names the methods and the training knobs: here, as if classification named bitfit.
    task_space = {"space": {"method.name": ["lora", "bitfit"], "train.batch_size": [8, 16]}}
    monkeypatch.setattr(space_module, "read_task_space", lambda task, source: task_space)
    space = load_default_space("classification")
    by_name = {p.name: p for p in space.params}
    assert list(by_name) == [
        "method.name",
        "method.r",
        "method.dropout",
        "method.layer_norms",
        "lr_peft",
        "lr_bitfit",
        "train.batch_size",
    ]
    assert by_name["method.layer_norms"].condition == {"method.name": ("bitfit",)}
    lr = by_name["lr_bitfit"]
    assert (lr.key, lr.distribution.low, lr.distribution.high, lr.distribution.log) == (
        "train.lr",
        1e-4,
        1e-2,
        True,
    )

    config = validate_config({"task": "classification"}, "test")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    chosen = set()
    for _ in range(20):
        sampled = space.sample(study.ask())
        trial = apply_overrides(config, space.overrides(sampled), "trial")
        chosen.add(trial.method.name)
        assert ("method.layer_norms" in sampled) == (trial.method.name == "bitfit")
        if trial.method.name == "bitfit":
            assert 1e-4 <= trial.train.lr <= 1e-2 and "method.r" not in sampled
    assert chosen == {"lora", "bitfit"}


def test_the_multitask_encoder_is_adapted_through_the_registry(bitfit: type[BitFitMethod]) -> None:
    model, _ = _tiny_bert()
    config = validate_config({"method": {"name": "bitfit", "layer_norms": False}}, "test")
    adapted = apply_multitask_method(model, config.method)
    trained = {name for name, p in adapted.named_parameters() if p.requires_grad}
    assert trained and all(name.endswith(".bias") for name in trained)
    ia3 = validate_config({"method": {"name": "ia3"}}, "test").method
    with pytest.raises(ValueError, match="supports method.name bitfit or full or lora, got 'ia3'"):
        apply_multitask_method(model, ia3)


def test_a_method_without_the_hooks_counts_as_full_and_cannot_join_a_default_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Bare(BaseMethod):
        name: ClassVar[str] = "bare"
        params_cls = BitFitParams

        def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
            return model

    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.register(Bare)
    _, shape = _tiny_bert()
    assert trainable_parameters("bare", {}, shape) == shape.params  # never an underestimate
    full = estimate_peak_bytes(shape, 8, 64, method="full")
    assert estimate_peak_bytes(shape, 8, 64, method="bare") == full
    monkeypatch.setattr(
        space_module, "read_task_space", lambda task, source: {"space": {"method.name": ["bare"]}}
    )
    with pytest.raises(ConfigError, match="method 'bare' declares no search space for task 'classification'"):
        load_default_space("classification")


def test_two_methods_cannot_search_one_parameter_two_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    class WideLora(LoraMethod):
        name: ClassVar[str] = "widelora"
        search_spaces = {"classification": MethodSpace(lr=(1.0e-4, 5.0e-3), params={"r": [64, 128]})}

    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.register(WideLora)
    raw = {"space": {"method.name": ["lora", "widelora"]}}
    monkeypatch.setattr(space_module, "read_task_space", lambda task, source: raw)
    with pytest.raises(
        ConfigError, match="method.r: methods 'lora' and 'widelora' declare it with different"
    ):
        load_default_space("classification")


# --- the built-in default spaces --------------------------------------------------------------------------------

TASKS = ("classification", "sft", "pretrain")

# The default spaces as they were written out in full before the methods owned their entries (the search-efficiency
# replay benchmark reads these exact parameters): the composed spaces must stay equal to them.
FROZEN = {
    "classification": """
      method.name: {type: categorical, choices: [lora, dora, ia3, adapter, full]}
      method.r: {type: categorical, choices: [4, 8, 16, 32], if: {method.name: [lora, dora]}}
      method.dropout: {type: float, low: 0.0, high: 0.2, if: {method.name: [lora, dora]}}
      method.bottleneck_size: {type: categorical, choices: [16, 32, 64, 128], if: {method.name: adapter}}
      lr_peft: {key: train.lr, type: float, low: 1.0e-4, high: 5.0e-3, log: true, if: {method.name: [lora, dora, adapter]}}
      lr_ia3: {key: train.lr, type: float, low: 1.0e-3, high: 5.0e-2, log: true, if: {method.name: ia3}}
      lr_full: {key: train.lr, type: float, low: 1.0e-5, high: 5.0e-4, log: true, if: {method.name: full}}
      train.batch_size: {type: categorical, choices: [8, 16, 32]}
      train.optimizer.weight_decay: {type: categorical, choices: [0.0, 0.01, 0.1]}
      train.scheduler.warmup_ratio: {type: float, low: 0.0, high: 0.2}
    """,
    "sft": """
      method.name: {type: categorical, choices: [lora, dora, ia3, full]}
      method.r: {type: categorical, choices: [8, 16, 32, 64], if: {method.name: [lora, dora]}}
      method.alpha: {type: categorical, choices: [16, 32, 64], if: {method.name: [lora, dora]}}
      method.dropout: {type: float, low: 0.0, high: 0.1, if: {method.name: [lora, dora]}}
      lr_peft: {key: train.lr, type: float, low: 5.0e-5, high: 2.0e-3, log: true, if: {method.name: [lora, dora]}}
      lr_ia3: {key: train.lr, type: float, low: 5.0e-4, high: 2.0e-2, log: true, if: {method.name: ia3}}
      lr_full: {key: train.lr, type: float, low: 5.0e-6, high: 2.0e-4, log: true, if: {method.name: full}}
      train.batch_size: {type: categorical, choices: [4, 8, 16]}
      train.scheduler.name: {type: categorical, choices: [linear, cosine]}
      train.scheduler.warmup_ratio: {type: float, low: 0.0, high: 0.1}
    """,
    "pretrain": """
      method.name: {type: categorical, choices: [lora, full]}
      method.r: {type: categorical, choices: [16, 32, 64], if: {method.name: lora}}
      lr_peft: {key: train.lr, type: float, low: 1.0e-4, high: 3.0e-3, log: true, if: {method.name: lora}}
      lr_full: {key: train.lr, type: float, low: 1.0e-5, high: 3.0e-4, log: true, if: {method.name: full}}
      train.batch_size: {type: categorical, choices: [4, 8, 16]}
      train.scheduler.name: {type: categorical, choices: [linear, cosine]}
      train.scheduler.warmup_ratio: {type: float, low: 0.0, high: 0.1}
    """,
}


@pytest.mark.parametrize("task", TASKS)
def test_the_composed_default_space_is_the_one_written_out_before(task: str) -> None:
    frozen = parse_space(yaml.safe_load(FROZEN[task]), "frozen")
    assert load_default_space(task).params == frozen.params  # names, order, distributions and conditions


@pytest.mark.parametrize("task", TASKS)
def test_a_task_space_names_methods_and_training_knobs_only(task: str) -> None:
    written = read_task_space(task, "test")["space"]
    assert "method.name" in written
    assert not [key for key in written if key.startswith("method.") and key != "method.name"]
    assert not [key for key, spec in written.items() if isinstance(spec, dict) and spec.get("key")]


@pytest.mark.parametrize("task", TASKS)
def test_each_methods_entries_are_its_own_and_only_active_with_it(task: str) -> None:
    space = load_default_space(task)
    methods = space.params[0].distribution.choices  # method.name comes first
    for name in methods:
        method = METHODS.get(name)
        own = method.search_spaces[task]
        active = [p for p in space.params if name in p.condition.get("method.name", ())]
        assert {p.key for p in active} == {f"method.{k}" for k in own.params} | {"train.lr"}
        (lr,) = [p for p in active if p.key == "train.lr"]
        assert lr.name == (method.lr_param or f"lr_{name}")
        assert (lr.distribution.low, lr.distribution.high, lr.distribution.log) == (*own.lr, True)
        for key, spec in own.params.items():
            (param,) = [p for p in active if p.key == f"method.{key}"]
            assert param.distribution == parse_space({"x": spec}, "test").params[0].distribution
    for param in space.params[1:]:
        if param.key.startswith("method.") or param.key == "train.lr":
            assert set(param.condition) == {"method.name"}  # never active without the method that owns it


BUILTIN = ("adalora", "adapter", "dora", "freeze", "full", "ia3", "lora", "prefix", "prompt", "ptuning")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_method_has_its_own_trainable_count(name: str) -> None:
    """The memory test (tests/search/test_memory.py) checks each formula against what the method really trains."""
    assert METHODS.get(name).trainable_params.__func__ is not BaseMethod.trainable_params.__func__
