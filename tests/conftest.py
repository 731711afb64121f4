"""Tiny models and tokenizers built locally (no downloads), and paths to the real shared data and models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"

SFT_PAIRS = [
    ("what colour is the sky", "the sky is blue"),
    ("what colour is grass", "grass is green"),
    ("what do cats say", "cats say meow"),
    ("what do dogs say", "dogs say woof"),
    ("name a red fruit", "an apple is red"),
    ("name a yellow fruit", "a banana is yellow"),
]


@pytest.fixture(autouse=True)
def _no_mixed_precision_left_over():
    """Each test starts with no mixed-precision choice left by the one before.

    A Trainer fixes accelerate's process-wide AcceleratorState (bf16 on CPUs with AVX512-BF16), and a later
    `Accelerator(mixed_precision="no")` in the same process (a multitask run) is then refused. Every CLI run is
    its own process; only the test session runs many jobs in one. (accelerate's own tests reset it the same way.)
    """
    yield
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state(reset_partial_state=False)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if m['role'] == 'assistant' %}</s>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _word_tokenizer(corpus: list[str], specials: list[str], **special_map: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=special_map["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    return tok, PreTrainedTokenizerFast


def _corpus() -> list[str]:
    from open_autoglm.data.synthetic import make_topic_rows

    words = [r["text"] for r in make_topic_rows(400, seed=1)]
    return (
        words + [f"{p} {r}" for p, r in SFT_PAIRS] + ["### Instruction : Response", "<|user|> <|assistant|>"]
    )


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT (hidden 32) with a word-level tokenizer, saved like a hub model."""
    from tokenizers import processors
    from transformers import BertConfig, BertForMaskedLM

    path = tmp_path_factory.mktemp("tiny-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok, fast = _word_tokenizer(_corpus(), specials, unk_token="[UNK]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = fast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    model = BertForMaskedLM(config)
    _pretrain_briefly(model.bert, tokenizer)
    model.save_pretrained(path)
    return path


def _pretrain_briefly(encoder, tokenizer) -> None:
    """A few full fine-tuning steps on the topic data, so the tiny encoder's features mean something (as a
    pretrained model's do) and parameter-efficient methods have something to adapt."""
    import torch

    from open_autoglm.data.synthetic import make_topic_rows

    torch.manual_seed(0)
    rows = make_topic_rows(256, seed=11)
    labels = sorted({r["label"] for r in rows})
    head = torch.nn.Linear(encoder.config.hidden_size, len(labels))
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=3e-3)
    for start in range(0, len(rows) * 2, 16):
        batch = [rows[i % len(rows)] for i in range(start, start + 16)]
        enc = tokenizer([r["text"] for r in batch], padding=True, return_tensors="pt")
        target = torch.tensor([labels.index(r["label"]) for r in batch])
        loss = torch.nn.functional.cross_entropy(head(encoder(**enc).last_hidden_state[:, 0]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _tiny_decoder(path: Path, chat_template: str | None) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    specials = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok, fast = _word_tokenizer(_corpus(), specials, unk_token="<unk>")
    tokenizer = fast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden 32) with a word-level tokenizer and no chat template."""
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), None)


@pytest.fixture(scope="session")
def tiny_chat_decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny Llama whose tokenizer has a chat template."""
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-llama-chat"), CHAT_TEMPLATE)


def load_run_data(config):  # -> LoadedData
    """A run's splits, as its job reads them: prepared into the run folder's data/ when needed."""
    from open_autoglm.data.prepared import load_data
    from open_autoglm.data.request import DataRequest
    from open_autoglm.run_folder import RunFolder

    return load_data(DataRequest.of(config), RunFolder(config.run_dir).data)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def topic_file(tmp_path: Path) -> Path:
    from open_autoglm.data.synthetic import make_topic_rows

    return write_jsonl(tmp_path / "topics.jsonl", make_topic_rows(160, seed=3))


@pytest.fixture
def sft_file(tmp_path: Path) -> Path:
    """Six pairs repeated: tests that train on it turn deduplication off."""
    return write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 8])


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    from open_autoglm.data.synthetic import make_topic_rows

    lines = [r["text"] for r in make_topic_rows(200, seed=4)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chinese_e5_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The Chinese+English e5 encoder with LoRA on 400 ChnSentiCorp hotel reviews, trained once for the training
    and the export tests: (config, summary)."""
    from open_autoglm.config import validate_config
    from open_autoglm.train.job import run_train

    config = validate_config(
        {
            "name": "chn",
            "output_dir": str(tmp_path_factory.mktemp("e5")),
            "model": {"name": str(SHARED_MODELS / "multilingual-e5-small-zhen")},
            "data": {
                "train": str(SHARED_DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv"),
                "text_field": "review",
                "text_prefix": "query: ",
                "max_rows": 400,
                "max_length": 64,
                "val_ratio": 0.1,
                "test_ratio": 0.3,
            },
            "method": {"name": "lora", "r": 8},
            # 2:1 positive:negative; balanced weights keep LoRA from settling on the majority class
            "train": {"epochs": 3, "lr": 3e-3, "batch_size": 16, "loss": {"class_weights": "balanced"}},
            "quiet": True,
        }
    )
    return config, run_train(config)


@pytest.fixture(scope="session", name="trained_minilm")
def trained_minilm_fixture(tmp_path_factory: pytest.TempPathFactory):  # -> Config
    """MiniLM with LoRA on 1,000 SST-2 rows (45% held out as the test split), trained once for the slow training,
    evaluation, export, pruning and distillation tests."""
    from open_autoglm.config import validate_config
    from open_autoglm.train.job import run_train

    tmp = tmp_path_factory.mktemp("minilm")
    lines = (SHARED_DATA / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:1000]
    data = tmp / "sst2.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = validate_config(
        {
            "name": "minilm",
            "output_dir": str(tmp),
            "model": {"name": "minilm", "device": "cpu", "precision": "fp32"},
            "data": {
                "train": str(data),
                "columns": ["label", "text"],
                "max_length": 64,
                "val_ratio": 0.1,
                "test_ratio": 0.45,
            },
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": 4, "lr": 3e-3, "batch_size": 16, "seed": 0},
            # The fewest calibration rows allowed: static INT8's calibration is most of the export's time.
            "export": {"calibration_rows": 100},
            "quiet": True,
        },
        "test",
    )
    run_train(config)
    return config


@pytest.fixture(scope="session")
def llm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of dequantized GGUF models for the test session ($AUTOGLM_CACHE, when not set already)."""
    import os

    from open_autoglm.models.gguf import CACHE_ENV

    os.environ.setdefault(CACHE_ENV, str(tmp_path_factory.mktemp("autoglm-cache")))
    return Path(os.environ[CACHE_ENV])


@pytest.fixture(scope="session")
def smollm2(llm_cache: Path) -> Path:
    """The smollm2 alias's folder, dequantized once per test session (about 40 s on 2 cores)."""
    from open_autoglm.models import resolve_model_path

    return Path(resolve_model_path("smollm2"))
