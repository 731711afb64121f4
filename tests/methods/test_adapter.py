"""Bottleneck adapters on tiny random models: identity at start, what trains, that it learns, save/reload."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import PeftModel
from pydantic import ValidationError
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    GPTJConfig,
    GPTJForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from open_autoglm.methods.adapter import PEFT_TYPE, AdapterMethod, AdapterParams, BottleneckAdapterLayer
from open_autoglm.methods.base import MethodContext, MethodNotApplicable

SEQ_CLS = MethodContext(task="classification", objective="seq_cls", head_names=("classifier",))
CAUSAL_LM = MethodContext(task="sft", objective="causal_lm")


def tiny_bert() -> torch.nn.Module:
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return BertForSequenceClassification(config)


def tiny_llama() -> torch.nn.Module:
    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def tiny_gpt2() -> torch.nn.Module:
    return GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64))


def apply_adapter(base: torch.nn.Module, ctx: MethodContext, **params) -> torch.nn.Module:
    """Adapt a copy, so `base` stays usable as the reference and as the fresh base for reloading."""
    return AdapterMethod().apply(copy.deepcopy(base), AdapterParams(**params), ctx)


@pytest.fixture
def input_ids() -> torch.Tensor:
    return torch.randint(0, 100, (4, 9), generator=torch.Generator().manual_seed(0))  # (B, T)


@pytest.mark.parametrize(
    ("build", "ctx", "expected_targets"),
    [
        (tiny_bert, SEQ_CLS, ["bert.encoder.layer.0.output.dense", "bert.encoder.layer.1.output.dense"]),
        (tiny_llama, CAUSAL_LM, ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]),
        (tiny_gpt2, CAUSAL_LM, ["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]),
    ],
)
def test_wraps_ffn_outputs_and_starts_identical_to_base(build, ctx, expected_targets, input_ids):
    torch.manual_seed(0)
    base = build().eval()
    model = apply_adapter(base, ctx).eval()

    assert sorted(model.base_model.targeted_module_names) == expected_targets
    with torch.no_grad():
        assert torch.equal(model(input_ids=input_ids).logits, base(input_ids=input_ids).logits)


def test_only_adapters_and_classification_head_train():
    model = apply_adapter(tiny_bert(), SEQ_CLS)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]

    assert trainable
    assert all(".bottleneck_" in name or ".classifier." in name for name in trainable)
    assert any(".classifier." in name for name in trainable)
    assert (
        len([n for n in trainable if ".bottleneck_" in n]) == 2 * 4
    )  # 2 layers x (down, up) x (weight, bias)


def test_lm_head_stays_frozen_for_causal_lm():
    model = apply_adapter(tiny_llama(), CAUSAL_LM, bottleneck_size=8)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]

    assert trainable and all(".bottleneck_" in name for name in trainable)
    layer = model.base_model.model.model.layers[0].mlp.down_proj
    assert isinstance(layer, BottleneckAdapterLayer)
    assert layer.bottleneck_down["default"].out_features == 8


def test_a_few_steps_lower_the_loss(input_ids):
    torch.manual_seed(0)
    model = apply_adapter(tiny_bert(), SEQ_CLS, non_linearity="gelu")
    labels = torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    losses = []
    for _ in range(10):
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())

    assert losses[-1] < losses[0]


def _train_a_little(model: torch.nn.Module, input_ids: torch.Tensor, **batch) -> None:
    """Make adapter weights non-zero, so the reload test can tell a loaded adapter from a fresh one."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        model(input_ids=input_ids, **batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize(
    ("build", "ctx", "batch"),
    [
        (tiny_bert, SEQ_CLS, {"labels": torch.tensor([0, 1, 0, 1])}),
        (tiny_llama, CAUSAL_LM, {}),
    ],
)
def test_save_and_reload_onto_fresh_base_gives_identical_logits(build, ctx, batch, input_ids, tmp_path):
    torch.manual_seed(0)
    base = build()
    model = apply_adapter(base, ctx)
    if not batch:
        batch = {"labels": input_ids}
    _train_a_little(model, input_ids, **batch)
    model.eval()

    model.save_pretrained(tmp_path)

    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "adapter_config.json").read_text())["peft_type"] == PEFT_TYPE
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).eval()
    with torch.no_grad():
        expected = model(input_ids=input_ids).logits
        assert not torch.equal(
            expected, base.eval()(input_ids=input_ids).logits
        )  # training changed something
        assert torch.equal(reloaded(input_ids=input_ids).logits, expected)


def test_unknown_model_type_names_the_key_and_target_modules_fix_it(input_ids):
    config = GPTJConfig(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64, rotary_dim=8)
    base = GPTJForCausalLM(config)

    with pytest.raises(MethodNotApplicable, match=r"gptj.*method\.target_modules"):
        apply_adapter(base, CAUSAL_LM)

    model = apply_adapter(base, CAUSAL_LM, target_modules=["mlp.fc_out"])
    assert sorted(model.base_model.targeted_module_names) == [
        "transformer.h.0.mlp.fc_out",
        "transformer.h.1.mlp.fc_out",
    ]


def test_target_modules_that_match_nothing_are_not_applicable():
    with pytest.raises(MethodNotApplicable, match="target_modules"):
        apply_adapter(tiny_llama(), CAUSAL_LM, target_modules=["no_such_module"])


@pytest.mark.parametrize(
    "bad", [{"bottleneck_size": 0}, {"dropout": 1.0}, {"non_linearity": "swish"}, {"rank": 4}]
)
def test_params_refuse_bad_values_and_unknown_keys(bad):
    with pytest.raises(ValidationError):
        AdapterParams(**bad)


def test_registered_as_adapter_method():
    from open_autoglm.methods import METHODS

    assert METHODS.get("adapter") is AdapterMethod
