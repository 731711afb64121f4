"""The latency objective of a causal LM is generation speed: milliseconds per generated token of a fixed-length
greedy reply, with tokens/s beside it in the trial's objectives."""

from __future__ import annotations

import itertools
from pathlib import Path

import optuna
import pytest
import torch
from conftest import SFT_PAIRS
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_autoglm.search import measure
from open_autoglm.search.measure import GENERATED_TOKENS, latency_objectives
from open_autoglm.tasks.sft import IGNORE_INDEX, encode_conversation, to_messages


@pytest.fixture
def decoder_and_rows(tiny_chat_decoder: Path):
    from datasets import Dataset

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_decoder)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    examples = [
        encode_conversation(to_messages({"prompt": p, "response": r}), tokenizer, 32) for p, r in SFT_PAIRS
    ]
    return model, Dataset.from_list(examples)


def test_every_prompt_generates_exactly_the_fixed_count_even_past_the_end_of_turn(decoder_and_rows) -> None:
    model, rows = decoder_and_rows
    prompt_ids = measure.prompt_ids(rows[0]["input_ids"], rows[0]["labels"])
    labels = rows[0]["labels"]
    assert set(labels[: len(prompt_ids)]) == {IGNORE_INDEX} and labels[len(prompt_ids)] != IGNORE_INDEX
    prompt = torch.tensor([prompt_ids])  # the row up to its reply
    assert measure.prompt_ids(rows[1]["input_ids"], None) == rows[1]["input_ids"][: measure.PROMPT_TOKENS]
    # The first greedy token ends the turn: without min_new_tokens every reply would have one token.
    with torch.no_grad():
        model.generation_config.eos_token_id = int(model(prompt).logits[0, -1].argmax())
    generated, generate = [], model.generate

    def counting(*args, **kwargs):
        output = generate(*args, **kwargs)
        generated.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    model.generate = counting
    latency_objectives(model, rows, "causal_lm", "cpu")
    warm_up_and_timed = measure.LATENCY_PROMPTS + 1
    assert generated == [GENERATED_TOKENS] * warm_up_and_timed


def test_causal_lm_latency_is_per_generated_token(decoder_and_rows, monkeypatch: pytest.MonkeyPatch) -> None:
    model, rows = decoder_and_rows
    clock = itertools.count(step=0.16)  # every timed reply takes 160 ms
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock))
    measured = latency_objectives(model, rows, "causal_lm", "cpu")
    assert measured["latency"] == pytest.approx(160 / GENERATED_TOKENS)  # ms per token, not per reply
    assert measured["tokens_per_second"] == pytest.approx(GENERATED_TOKENS / 0.16)

    forward_only = latency_objectives(model, rows, "seq_cls", "cpu")  # any other head: one pass per example
    assert forward_only == {"latency": pytest.approx(160)}


def test_a_tune_of_sft_records_latency_per_token_and_tokens_per_second(
    tmp_path: Path, tiny_chat_decoder: Path, sft_file: Path
) -> None:
    from open_autoglm.config import validate_config
    from open_autoglm.search.job import run_tune

    config = validate_config(
        {
            "name": "llm-latency",
            "task": "sft",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_chat_decoder), "device": "cpu", "precision": "fp32"},
            "data": {"train": str(sft_file), "max_length": 32, "dedup": {"exact": False, "near": False}},
            "method": {"name": "lora", "r": 2},
            "train": {"epochs": 1, "batch_size": 8},
            "search": {"n_trials": 1, "space": {"train.lr": [1e-3]}, "objectives": ["quality", "latency"]},
            "quiet": True,
        },
        "test",
    )
    run_tune(config)
    study = optuna.load_study(study_name="llm-latency", storage=f"sqlite:///{config.run_dir / 'study.db'}")
    objectives = study.trials[0].user_attrs["objectives"]
    assert objectives["latency"] * objectives["tokens_per_second"] == pytest.approx(1000)
    assert study.user_attrs["references"]["latency"] > 0  # the untuned model's, measured the same way
