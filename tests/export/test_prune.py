"""Structured pruning on tiny BERTs: importance, the counts removed, saving and reloading the shrunk shapes, and the
pruned rows of the export report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from export_fixtures import trained_lora_fixture  # noqa: F401  (the trained_lora fixture)
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from open_autoglm.export.job import ExportOptions, run_export
from open_autoglm.export.merge import logits_of
from open_autoglm.export.prune import prune_model, save_pruned, score_importance
from open_autoglm.models import load_finetuned
from open_autoglm.models.pruned import encoder_layers

TEXTS = [
    "sports team wins the match",
    "new phone chip is fast",
    "the market falls again",
    "a goal in the end",
]
LAYERS, HEADS, HEAD_SIZE, FFN = 3, 4, 8, 64


def _classifier(model_type: str, tokenizer):
    """A random 3-layer classifier of `model_type` (4 heads of 8, FFN 64)."""
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        hidden_size=HEADS * HEAD_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=64,
        num_labels=2,
    )
    return AutoModelForSequenceClassification.from_config(config).eval()


@pytest.fixture
def bert(tiny_encoder: Path):
    """A random tiny BERT classifier and the tiny encoder's tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder))
    return _classifier("bert", tokenizer), tokenizer


def _importance(model, tokenizer):
    return score_importance(model, tokenizer, TEXTS * 4, [0, 1, 0, 1] * 4, max_length=16)


def test_a_zeroed_head_is_the_least_important(bert) -> None:
    model, tokenizer = bert
    attention = encoder_layers(model)[1].attention.self
    with torch.no_grad():  # head 2 of layer 1 outputs nothing: its value projection is zero
        for linear in (attention.query, attention.key, attention.value):
            linear.weight[2 * HEAD_SIZE : 3 * HEAD_SIZE] = 0
            linear.bias[2 * HEAD_SIZE : 3 * HEAD_SIZE] = 0
    importance = _importance(model, tokenizer)
    assert importance.heads[1][2] == 0
    assert all(float(s.min()) > 0 for i, s in enumerate(importance.heads) if i != 1)
    assert int(importance.heads[1].argmin()) == 2
    kept = prune_model(model, importance, 1 / (LAYERS * HEADS), ffn=False).record["layers"]
    assert kept[1]["heads"] == [0, 1, 3] and all(
        len(layer["heads"]) == HEADS for i, layer in enumerate(kept) if i != 1
    )


def test_pruning_removes_the_share_asked_and_keeps_a_head_per_layer(bert) -> None:
    model, tokenizer = bert
    importance = _importance(model, tokenizer)
    pruned = prune_model(model, importance, 0.5)
    assert (pruned.heads_kept, pruned.heads_total) == (LAYERS * HEADS // 2, LAYERS * HEADS)
    assert (pruned.neurons_kept, pruned.neurons_total) == (LAYERS * FFN // 2, LAYERS * FFN)
    assert pruned.parameters_after < pruned.parameters_before
    assert pruned.parameters_before == sum(p.numel() for p in model.parameters())  # the original is untouched
    shapes = [(len(layer["heads"]), layer["ffn_neurons"]) for layer in pruned.record["layers"]]
    for layer, (heads, neurons) in zip(encoder_layers(pruned.model), shapes, strict=True):
        assert layer.attention.self.query.out_features == heads * HEAD_SIZE
        assert layer.attention.output.dense.in_features == heads * HEAD_SIZE
        assert layer.intermediate.dense.out_features == neurons == layer.output.dense.in_features
    assert logits_of(pruned.model, tokenizer, TEXTS, 16).shape == (len(TEXTS), 2)

    # At 0.9 the global ranking would empty whole layers: each keeps its last head instead.
    extreme = prune_model(model, importance, 0.9, ffn=False)
    assert [len(layer["heads"]) for layer in extreme.record["layers"]] == [1] * LAYERS


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta"])
def test_a_saved_pruned_model_reloads_with_the_same_logits(model_type, tiny_encoder, tmp_path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder))
    model = _classifier(model_type, tokenizer)
    pruned = prune_model(model, _importance(model, tokenizer), 0.4)
    meta = {"task": "classification", "objective": "seq_cls", "labels": ["a", "b"], "max_length": 16}
    save_pruned(pruned.model, tokenizer, meta, pruned.record, tmp_path / "pruned")
    saved = json.loads((tmp_path / "pruned" / "autoglm.json").read_text())
    assert saved["pruned"] == pruned.record
    reloaded, reloaded_tokenizer, _ = load_finetuned(tmp_path / "pruned")
    torch.testing.assert_close(
        logits_of(reloaded, reloaded_tokenizer, TEXTS, 16),
        logits_of(pruned.model, tokenizer, TEXTS, 16),
        atol=0,
        rtol=0,
    )


def test_an_unknown_architecture_is_refused() -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    )
    with pytest.raises(ValueError, match="BERT-family.*distilbert"):
        encoder_layers(model)


def test_export_report_has_the_pruned_rows(trained_lora, tmp_path) -> None:
    options = ExportOptions(
        model=trained_lora.run_dir / "model",
        quantize=("dynamic",),
        latency_rows=3,
        prune=True,
        out=tmp_path / "export",
    )
    report = run_export(trained_lora, options)
    names = [v["name"] for v in report["variants"]]
    assert names[-2:] == ["pruned-fp32-pytorch", "pruned-int8-dynamic-onnx"]
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["pruned-fp32-pytorch"]["size_mb"] < by_name["fp32-pytorch"]["size_mb"]
    pruning = report["pruning"]
    assert pruning["sparsity"] == 0.3
    assert pruning["heads_kept"] < pruning["heads_total"]
    assert pruning["ffn_neurons_kept"] < pruning["ffn_neurons_total"]
    assert pruning["parameters_after"] < pruning["parameters_before"]
    assert pruning["recovery"]["steps"] > 0 and pruning["recovery"]["lr"] == 5e-5
    assert (tmp_path / "export" / "model.pruned.int8.onnx").is_file()
    model, _, meta = load_finetuned(tmp_path / "export" / "pruned")
    assert (
        meta["pruned"]["layers"] and sum(p.numel() for p in model.parameters()) == pruning["parameters_after"]
    )


def test_cli_prunes_alone_when_asked(trained_lora, tmp_path) -> None:
    from open_autoglm.cli import main

    args = [
        "export",
        "-c",
        str(trained_lora.run_dir / "config.yaml"),
        "--model",
        str(trained_lora.run_dir / "model"),
    ]
    settings = ["--set", "export.prune.recovery_epochs=0", "--set", "export.prune.sparsity=0.5"]
    assert main([*args, "--out", str(tmp_path / "cli"), "-q", "--prune", *settings]) == 0
    report = json.loads((tmp_path / "cli" / "export" / "export_report.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["fp32-pytorch", "pruned-fp32-pytorch"]
    assert report["pruning"]["sparsity"] == 0.5 and report["pruning"]["recovery"]["steps"] == 0
