"""GGUF out: a tiny Llama with a byte-level BPE tokenizer and a ChatML template, written as f16 and q8_0 GGUF and
loaded back with transformers' own GGUF reader; the Ollama Modelfile; refusals; the export job's comparison; and
(slow) the same on SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SFT_PAIRS, SHARED_DATA, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_autoglm.config import validate_config
from open_autoglm.export.gguf import GGUF_ATOL, write_gguf
from open_autoglm.export.gguf_tokenizer import GgufRefused, modelfile
from open_autoglm.export.job import ExportOptions, run_export
from open_autoglm.train.job import run_train

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [f"{p}? {r}." for p, r in SFT_PAIRS] + [
    "the quick brown fox jumps over the lazy dog",
    "numbers like 42 and 2025 are tokens too",
    "你好，世界",
]
TEXTS = ["the sky is blue", "what do cats say? cats say meow.", "2025 你好 <|im_start|>user\nhi<|im_end|>\n"]


def _bpe_tokenizer(path: Path):
    """A byte-level BPE trained on CORPUS, with ChatML's special tokens at ids 0-2 (as SmolLM2 has them)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    return tokenizer


def _tiny_llama(path: Path, *, tied: bool) -> Path:
    """A 2-layer Llama (hidden 64, grouped-query attention) fitted briefly to CORPUS in ChatML, so its greedy
    continuations are confident (a random model's near-ties would flip under any rounding)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _bpe_tokenizer(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer) + 4,  # an embedding padded past the tokenizer, as hub models often are
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config)
    chats = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
        )
        for p, r in SFT_PAIRS
    ]
    batch = tokenizer(chats + CORPUS, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_llama(tmp_path_factory.mktemp("bpe-llama"), tied=False)


def _load(folder: Path):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _greedy(model, tokenizer, prompt: str) -> list[int]:
    encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**encoded, max_new_tokens=8, do_sample=False, pad_token_id=2, eos_token_id=None)
    return out[0, encoded["input_ids"].shape[1] :].tolist()


def _f16_weights(folder: Path):
    """The model with its matrices rounded to f16, as an f16 GGUF file stores them (norms stay fp32)."""
    model, _ = _load(folder)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.copy_(parameter.half().float())
    return model


@pytest.mark.parametrize("tied", [False, True])
def test_f16_logits_and_q8_0_greedy_continuations_match_the_model(
    tmp_path: Path, tied: bool, tiny_llama: Path
) -> None:
    folder = tiny_llama if not tied else _tiny_llama(tmp_path / "tied", tied=True)
    model, tokenizer = _load(folder)
    rounded = _f16_weights(folder)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p, _ in SFT_PAIRS[:3]
    ]
    for qtype in ("f16", "q8_0"):
        write_gguf(model, tokenizer, folder, tmp_path / f"model-{qtype}.gguf", qtype, "tiny")
        loaded = AutoModelForCausalLM.from_pretrained(
            tmp_path, gguf_file=f"model-{qtype}.gguf", dtype=torch.float32
        )
        assert loaded.config.tie_word_embeddings == tied
        for text in TEXTS if qtype == "f16" else ():  # the very weights, rounded
            encoded = tokenizer(text, return_tensors="pt")
            with torch.inference_mode():
                logits, reference = loaded(**encoded).logits, model(**encoded).logits
                assert (logits - rounded(**encoded).logits).abs().max() <= GGUF_ATOL, text
            assert (logits - reference).abs().max() <= 2e-3 * reference.abs().max(), text
        for prompt in prompts:
            assert _greedy(loaded, tokenizer, prompt) == _greedy(model, tokenizer, prompt), (qtype, prompt)
    # q8_0 stores 34 bytes per 32 weights, f16 64: the file is about half the size
    assert (tmp_path / "model-q8_0.gguf").stat().st_size < 0.6 * (tmp_path / "model-f16.gguf").stat().st_size


def test_the_tokenizer_and_its_chat_template_survive_the_round_trip(tmp_path: Path, tiny_llama: Path) -> None:
    model, tokenizer = _load(tiny_llama)
    write_gguf(model, tokenizer, tiny_llama, tmp_path / "model-f16.gguf", "f16", "tiny")
    loaded = AutoTokenizer.from_pretrained(tmp_path, gguf_file="model-f16.gguf")
    for text in TEXTS:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"], text
    assert loaded.decode(tokenizer("你好 2025")["input_ids"]) == "你好 2025"
    assert loaded.chat_template == CHATML
    chat = [{"role": "user", "content": "what do dogs say"}]
    assert loaded.apply_chat_template(chat, add_generation_prompt=True) == tokenizer.apply_chat_template(
        chat, add_generation_prompt=True
    )
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token) == (
        "<|im_start|>",
        "<|im_end|>",
        "<|im_end|>",
    )


def test_a_sentencepiece_style_tokenizer_is_written_as_llama_with_bytes_and_scores(tmp_path: Path) -> None:
    """Llama 2's kind: BPE with byte fallback and "▁" for spaces (tokenizer.ggml.model llama)."""
    import gguf
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")  # word pieces
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    spec = json.loads(tok.to_str())["model"]
    LlamaTokenizer(vocab=spec["vocab"], merges=[tuple(m) for m in spec["merges"]]).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
    )
    write_gguf(LlamaForCausalLM(config), tokenizer, tmp_path, tmp_path / "model-f16.gguf", "f16", "spm")

    loaded = AutoTokenizer.from_pretrained(tmp_path, gguf_file="model-f16.gguf")
    for text in [*TEXTS, " a leading space", "你好 2025"]:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"], text
    fields = gguf.GGUFReader(tmp_path / "model-f16.gguf").fields
    assert fields["tokenizer.ggml.model"].contents() == "llama"
    types, scores = fields["tokenizer.ggml.token_type"].contents(), fields["tokenizer.ggml.scores"].contents()
    vocab = tokenizer.get_vocab()
    assert types[vocab["<0x41>"]] == gguf.TokenType.BYTE and types[vocab["<s>"]] == gguf.TokenType.CONTROL
    assert scores[vocab["▁the"]] < 0 and scores[vocab["<0x41>"]] == 0  # made by a merge: minus its rank


def test_the_modelfile_translates_chatml_and_its_default_system_prompt(tmp_path: Path) -> None:
    tokenizer = _bpe_tokenizer(tmp_path)
    assert modelfile(tokenizer, "model-q8_0.gguf") == (
        "FROM ./model-q8_0.gguf\n"
        'TEMPLATE """{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        '{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}'
        '<|im_start|>assistant\n"""\n'
        'PARAMETER stop "<|im_end|>"\n'
    )
    # SmolLM2's template: a system prompt of its own when the chat has none
    tokenizer.chat_template = (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are SmolLM.<|im_end|>\n' }}{% endif %}"
        + CHATML[len("{% for message in messages %}") :]
    )
    assert 'SYSTEM """You are SmolLM."""' in modelfile(tokenizer, "model-q8_0.gguf").splitlines()


def test_a_template_without_a_system_block_gets_the_generic_one(tmp_path: Path) -> None:
    tokenizer = _bpe_tokenizer(tmp_path)
    tokenizer.chat_template = (  # Gemma's way: the system prompt opens the first user turn
        "{% set system = messages[0]['content'] + '\n\n' if messages[0]['role'] == 'system' else '' %}"
        "{% for m in messages if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n"
        "{{ system if loop.first else '' }}{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    text = modelfile(tokenizer, "model-f16.gguf")
    assert "### Instruction:\n{{ .Content }}\n\n### Response:\n" in text
    assert text.endswith('PARAMETER stop "<|im_end|>"\n')  # the generic template ends a reply with EOS


def test_other_architectures_settings_and_tokenizers_are_refused_by_name(
    tmp_path: Path, tiny_decoder: Path
) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tokenizer = _bpe_tokenizer(tmp_path)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    with pytest.raises(GgufRefused, match="architecture 'gpt2' has no GGUF writer here .supported: llama"):
        write_gguf(gpt2, tokenizer, tmp_path, tmp_path / "model-f16.gguf", "f16", "gpt2")
    biased = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            attention_bias=True,
        )
    )
    with pytest.raises(GgufRefused, match="attention_bias=True"):
        write_gguf(biased, tokenizer, tmp_path, tmp_path / "model-f16.gguf", "f16", "biased")
    model, words = _load(tiny_decoder)  # a word-level vocabulary: neither BPE kind
    with pytest.raises(GgufRefused, match="tokenizer.json: a WordLevel tokenizer"):
        write_gguf(model, words, tiny_decoder, tmp_path / "model-f16.gguf", "f16", "words")
    assert not (tmp_path / "model-f16.gguf").exists()


def _sft_config(tmp_path: Path, model: Path | str, data: Path, **extra) -> dict:
    return {
        "name": "sft",
        "task": "sft",
        "output_dir": str(tmp_path),
        "model": {"name": str(model), "device": "cpu", "precision": "fp32"},
        "data": {"train": str(data), "max_length": 48, "dedup": {"exact": False, "near": False}},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "lr": 1e-3, "batch_size": 16, "seed": 3},
        "quiet": True,
        **extra,
    }


def test_export_writes_checked_gguf_files_a_modelfile_and_the_comparison(
    tmp_path: Path, tiny_llama: Path
) -> None:
    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 8])
    config = validate_config(_sft_config(tmp_path, tiny_llama, data))
    run_train(config)
    out = config.run_dir / "export"
    (out).mkdir()
    (out / "model-q8_0.gguf").write_text("an earlier export's")
    report = run_export(
        config, ExportOptions(model=config.run_dir / "model", onnx=False, quantize=(), prune=False)
    )

    assert [v["name"] for v in report["variants"]] == ["fp32-merged", "f16-gguf", "q8_0-gguf"]
    for row in report["variants"]:
        assert row["size_mb"] > 0 and row["generation_tokens_per_s"] > 0 and row["perplexity"] > 1
        assert Path(row["path"]).exists()
    fp32, f16, q8 = report["variants"]
    assert q8["size_mb"] < f16["size_mb"] < fp32["size_mb"]
    assert abs(f16["perplexity"] - fp32["perplexity"]) < 0.01 * fp32["perplexity"]
    checks = report["gguf"]["checks"]
    assert (
        checks["f16"]["max_logit_diff_to_f16_weights"] <= GGUF_ATOL and checks["q8_0"]["tokenizer_round_trip"]
    )
    assert 0 < checks["q8_0"]["greedy_steps"] <= 3 * 16 and checks["q8_0"]["greedy_prompts"] == 3
    assert (out / "Modelfile").read_text().startswith("FROM ./model-q8_0.gguf\n")
    assert json.loads((out / "export_report.json").read_text())["gguf"] == report["gguf"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no staged leftovers


def test_export_of_a_model_gguf_cannot_hold_still_writes_the_merged_model(
    tmp_path: Path, tiny_chat_decoder: Path
) -> None:
    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 8])
    config = validate_config(_sft_config(tmp_path, tiny_chat_decoder, data))
    run_train(config)
    report = run_export(
        config, ExportOptions(model=config.run_dir / "model", onnx=False, quantize=(), prune=False)
    )
    assert "WordLevel tokenizer" in report["gguf"]["refused"] and report["variants"] == []
    assert (Path(report["merged"]) / "model.safetensors").exists()
    assert not list((config.run_dir / "export").glob("*.gguf"))


@pytest.mark.slow
def test_smollm2_exports_as_gguf_that_llama_cpp_and_ollama_read(tmp_path: Path, smollm2: Path) -> None:
    """Two steps of full SFT on a few alpaca_en_demo rows, then export: both files pass their checks (f16 logits
    equal to the f16-rounded model's, greedy continuations equal) and the Modelfile speaks ChatML with SmolLM2's
    default system prompt. (Full fine-tuning: merging a LoRA adapter into SmolLM2 moves its logits by ~1e-4, at
    the merge check's own tolerance.)"""
    data = SHARED_DATA / "alpaca_en_demo" / "alpaca_en_demo.json"
    raw = _sft_config(tmp_path, "smollm2", data)
    raw["data"] |= {"max_rows": 16, "val_ratio": 0.25, "test_ratio": 0.0, "max_length": 96}
    raw["method"] = {"name": "full"}
    raw["train"] |= {"batch_size": 8, "lr": 1e-5}
    config = validate_config(raw)
    run_train(config)
    report = run_export(
        config, ExportOptions(model=config.run_dir / "model", onnx=False, quantize=(), prune=False)
    )
    rows = {row["name"]: row for row in report["variants"]}
    print(json.dumps({"variants": report["variants"], "checks": report["gguf"]["checks"]}, indent=1))
    assert report["gguf"]["checks"]["f16"]["max_logit_diff_to_f16_weights"] <= GGUF_ATOL
    assert all(
        check["tokenizer_round_trip"] and check["chat_template_round_trip"]
        for check in report["gguf"]["checks"].values()
    )
    assert rows["q8_0-gguf"]["size_mb"] < 0.6 * rows["f16-gguf"]["size_mb"]
    assert rows["q8_0-gguf"]["perplexity"] < 1.05 * rows["fp32-merged"]["perplexity"]
    lines = (config.run_dir / "export" / "Modelfile").read_text().splitlines()
    assert lines[0] == "FROM ./model-q8_0.gguf" and 'PARAMETER stop "<|im_end|>"' in lines
    assert any(line.startswith('SYSTEM """You are a helpful AI assistant named SmolLM') for line in lines)
