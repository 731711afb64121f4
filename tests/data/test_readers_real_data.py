"""The readers on the real public datasets in shared/data (counts from each folder's SOURCE.txt)."""

from collections import Counter
from pathlib import Path

import pytest

from open_autoglm.data.encoding import detect_encoding
from open_autoglm.data.readers import ReadOptions, detect_format, read_records

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo
pytestmark = pytest.mark.slow


def test_sst2_headerless_tsv_with_quote_marks():
    path = DATA / "sst2" / "train.tsv"
    assert detect_format(path) == "tsv"
    records, bad = read_records(path)
    assert (len(records), bad) == (6920, [])
    assert Counter(r.data["label"] for r in records) == {"1": 3610, "0": 3310}  # labels as read


def test_chnsenticorp_csv_quarantines_its_empty_review():
    path = DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv"
    records, bad = read_records(path)
    assert len(records) == 7765
    assert [(m.source, m.line, m.reason) for m in bad] == [(str(path), 6376, "empty field 'review'")]


def test_sms_spam_has_no_extension():
    path = DATA / "sms_spam" / "SMSSpamCollection"
    assert detect_format(path) == "tsv"
    records, bad = read_records(path)
    assert (len(records), bad) == (5574, [])
    assert Counter(r.data["label"] for r in records) == {"ham": 4827, "spam": 747}


@pytest.mark.parametrize(
    ("folder", "name", "count"),
    [("alpaca_en_demo", "alpaca_en_demo.json", 999), ("alpaca_zh_demo", "alpaca_zh_demo.json", 1000)],
)
def test_alpaca_demo(folder, name, count):
    path = DATA / folder / name
    assert detect_format(path) == "alpaca"
    records, bad = read_records(path, ReadOptions(task="sft"))
    assert (len(records), bad) == (count, [])
    assert records[0].line == 2 and set(records[0].data) == {"prompt", "response"}


def test_medical_sharegpt_becomes_messages():
    path = DATA / "medical_sft_zh" / "medical_sft_1K_format.jsonl"
    assert detect_format(path) == "sharegpt"
    records, bad = read_records(path, ReadOptions(task="sft"))
    assert (len(records), bad) == (1000, [])
    assert all([t["role"] for t in r.data["messages"]] == ["user", "assistant"] for r in records)


def test_fewclue_jsonl_named_json_with_int_labels():
    records, _ = read_records(
        DATA / "fewclue_tnews" / "train_few_all.json", ReadOptions(text_field="sentence")
    )
    assert len(records) == 1185 and len({r.data["label"] for r in records}) == 15
    assert isinstance(records[0].data["label"], int)


def test_trec_is_latin1_text():
    path = DATA / "trec_qc" / "train_5500.label"
    assert detect_encoding(path) == "latin-1"
    records, bad = read_records(path, ReadOptions(task="pretrain"), fmt="text")
    assert (len(records), bad) == (5452, [])
    assert "sister\xf0city" in records[65].data["text"]


def test_c4_for_pretraining():
    records, bad = read_records(DATA / "c4_demo" / "c4_demo.jsonl", ReadOptions(task="pretrain"))
    assert (len(records), bad) == (300, [])
