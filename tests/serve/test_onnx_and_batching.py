"""Serving an exported ONNX INT8 classifier, and whole replies batched into shared generate() calls."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import torch
from serve_fixtures import chat_dir_fixture, classifier_dir_fixture, running  # noqa: F401  (fixtures)
from transformers import AutoTokenizer

from open_autoglm.export.compare import onnx_logits
from open_autoglm.export.merge import merge_model
from open_autoglm.export.onnx import export_onnx, quantize_onnx_dynamic
from open_autoglm.serve import build_app
from open_autoglm.serve.generation import Sampling, encode_prompt, generate_replies
from open_autoglm.serve.loading import load_served

TEXTS = ["team wins the final", "new chip doubles speed", "stocks fall on rate fears", "the striker scores"]


def _int8_export(model_dir: Path, export_dir: Path) -> Path:
    """The layout `autoglm export` writes: merged/ beside the ONNX files."""
    merged = merge_model(model_dir, export_dir / "merged", TEXTS)
    raw = export_onnx(merged.model, merged.tokenizer, export_dir / "model.onnx", opset=18)
    return quantize_onnx_dynamic(raw, export_dir / "model.int8.onnx")


def test_an_onnx_int8_classifier_serves_what_pytorch_serves(classifier_dir: Path, tmp_path: Path) -> None:
    onnx_path = _int8_export(classifier_dir, tmp_path / "run" / "export")
    with running(build_app(onnx_path)) as url:
        assert httpx.get(f"{url}/v1/models").json()["data"][0]["backend"] == "onnxruntime"
        response = httpx.post(f"{url}/v1/classify", json={"input": TEXTS}, timeout=30)
    assert response.status_code == 200, response.text
    served = response.json()
    assert served["model"] == "run-model-int8"
    # What the server answers is what ONNX Runtime computes on that file ...
    tokenizer = AutoTokenizer.from_pretrained(str(onnx_path.parent / "merged"))
    direct = torch.from_numpy(onnx_logits(onnx_path, tokenizer, 24)(TEXTS)).softmax(-1)
    labels = list(served["data"][0]["scores"])
    got = torch.tensor([[row["scores"][label] for label in labels] for row in served["data"]])
    torch.testing.assert_close(got, direct, atol=1e-5, rtol=1e-4)
    # ... and INT8 stays close to the PyTorch model's probabilities.
    reference = load_served(classifier_dir).classify(TEXTS)
    expected = torch.tensor([[row[label] for label in labels] for row in reference])
    assert float((got - expected).abs().mean()) < 0.05


def test_an_onnx_file_without_its_model_folder_is_refused_clearly(tmp_path: Path) -> None:
    lone = tmp_path / "model.int8.onnx"
    lone.write_bytes(b"not used")
    try:
        load_served(lone)
    except FileNotFoundError as err:
        assert "autoglm.json" in str(err) and str(lone) in str(err)
    else:
        raise AssertionError("an ONNX file with no model folder beside it was accepted")


def test_batched_greedy_replies_equal_replies_generated_alone(chat_dir: Path) -> None:
    served = load_served(chat_dir)
    prompts = ["what do cats say", "name a red fruit please now", "what colour is the sky"]
    samplings = [Sampling(3, 0.0, 1.0), Sampling(9, 0.0, 1.0), Sampling(6, 0.0, 1.0, ("blue",))]
    requests = [
        (encode_prompt(served, p, chat=False)["input_ids"][0].tolist(), s)
        for p, s in zip(prompts, samplings, strict=True)
    ]
    together = generate_replies(served, requests)
    alone = [generate_replies(served, [request])[0] for request in requests]
    assert together == alone
    assert [r.completion_tokens <= s.max_tokens for r, s in zip(together, samplings, strict=True)] == [
        True
    ] * 3
    assert together[0].finish_reason == "length" or together[0].completion_tokens < 3


def test_concurrent_completions_share_generate_calls_without_errors(chat_dir: Path) -> None:
    with running(build_app(chat_dir)) as url:

        async def load() -> list[int]:
            gate = asyncio.Semaphore(8)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:

                async def one(i: int) -> int:
                    async with gate:
                        body = {
                            "model": "tiny-sft",
                            "prompt": f"what do cats say {i}",
                            "max_tokens": 4 + i % 3,
                            "temperature": 0,
                        }
                        return (await client.post("/v1/completions", json=body)).status_code

                return await asyncio.gather(*(one(i) for i in range(32)))

        statuses = asyncio.run(asyncio.wait_for(load(), timeout=120))
        metrics = httpx.get(f"{url}/metrics").text
    assert statuses == [200] * 32
    calls = float(re.search(r"^autoglm_generation_batches_total (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    replies = float(re.search(r"^autoglm_generation_requests_total (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    assert replies == 32 and calls < 32  # requests were merged into shared generate() calls
