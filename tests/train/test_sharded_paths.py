"""FSDP and DeepSpeed paths, on a CPU machine with the launcher's flags faked (Accelerate only shards on GPUs):
the weights are gathered by every rank and saved from that copy, no baseline is evaluated before training, and
what cannot run sharded is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from open_autoglm import distributed
from open_autoglm.config import validate_config
from open_autoglm.models import load_finetuned
from open_autoglm.search.ranks import check_launch
from open_autoglm.train import job as train_job


@pytest.mark.parametrize(
    ("env", "sharded"),
    [
        ({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"}, True),
        ({"WORLD_SIZE": "2", "ACCELERATE_USE_DEEPSPEED": "True"}, True),
        ({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "false"}, False),  # plain DDP
        ({"WORLD_SIZE": "1", "ACCELERATE_USE_FSDP": "true"}, False),  # one process shards nothing
    ],
)
def test_sharded_training_reads_the_launchers_flags(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sharded: bool
) -> None:
    for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.sharded_training() is sharded


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_sharded_run_saves_the_gathered_weights_and_skips_the_baseline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_encoder: Path, topic_file: Path, method: str
) -> None:
    monkeypatch.setattr(train_job, "sharded_training", lambda: True)
    gathered = []
    original = train_job.fit

    def fit_and_keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = original(*args, **kwargs)
        gathered.append(result)
        return result

    monkeypatch.setattr(train_job, "fit", fit_and_keep)
    config = validate_config(
        {
            "name": "sharded",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_encoder), "precision": "fp32"},  # compared exactly with the reload
            "data": {"train": str(topic_file), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
            "method": {"name": method, **({"r": 4} if method == "lora" else {})},
            "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16},
            "quiet": True,
        }
    )
    summary = train_job.run_train(config)

    assert summary["baseline"]["metrics"] == {}  # not evaluated before training
    (result,) = gathered
    assert result.state_dict is not None and len(result.state_dict) > 0
    trained = result.trainer.model.eval()
    loaded, tokenizer, _ = load_finetuned(tmp_path / "sharded" / "model")
    batch = tokenizer(["the team won the final", "rates rose again"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        assert torch.allclose(loaded(**batch).logits, trained(**batch).logits, atol=1e-5)


def test_objectives_that_run_the_model_on_rank_0_alone_are_refused_when_sharded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from open_autoglm.search import ranks

    config = validate_config({"search": {"objectives": ["quality", "latency"], "mode": "pareto"}})
    check_launch(config)  # DDP: rank 0 may run its own copy
    monkeypatch.setattr(ranks, "sharded_training", lambda: True)
    with pytest.raises(ValueError, match=r"\['latency'\] run the trained model on rank 0 alone"):
        check_launch(config)
    check_launch(validate_config({"search": {"objectives": ["quality", "params"], "mode": "pareto"}}))


def test_multitask_and_transfer_refuse_what_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from open_autoglm.multitask import job as multitask_job
    from open_autoglm.transfer.job import run_transfer

    monkeypatch.setattr(multitask_job, "sharded_training", lambda: True)
    with pytest.raises(ValueError, match="FSDP / DeepSpeed"):  # refused before anything is read or written
        tasks = [{"name": name, "data": {"train": f"{name}.jsonl"}} for name in ("a", "b")]
        multitask_job.run_multitask(validate_config({"recipe": "multitask", "multitask": {"tasks": tasks}}))
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = validate_config(  # not run: refused before anything is read or written
        {"recipe": "transfer", "data": {"train": "labelled.jsonl"}, "transfer": {"domain_text": "domain.txt"}}
    )
    with pytest.raises(ValueError, match="recipe: transfer runs on one process"):
        run_transfer(config)
