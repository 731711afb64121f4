"""The LLM aliases on their real weights: a plain model folder that trains and saves, and a sensible answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from open_autoglm.config.sections import ModelConfig
from open_autoglm.models import gguf, load_model, load_tokenizer, resolve_model_path

pytestmark = pytest.mark.slow


def test_smollm2_is_a_plain_chat_model_that_answers(smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads((smollm2 / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "llama" and "quantization_config" not in config  # trains and saves
    assert (smollm2 / "model.safetensors").is_file()
    source = json.loads((smollm2 / gguf.SOURCE_RECORD).read_text(encoding="utf-8"))
    assert source["gguf"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and len(source["sha256"]) == 64

    monkeypatch.setattr(gguf, "_dequantize_into", lambda *a: pytest.fail("dequantized again"))
    assert Path(resolve_model_path("smollm2")) == smollm2  # the cached folder

    model_cfg = ModelConfig(name="smollm2")
    tokenizer = load_tokenizer(str(smollm2), model_cfg)
    model, _ = load_model(str(smollm2), model_cfg, "causal_lm", None, tokenizer.pad_token_id)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.eval().generate(**prompt, max_new_tokens=24, do_sample=False)
    reply = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply, reply
