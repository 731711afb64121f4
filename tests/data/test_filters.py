"""The quality filter: each reason with its threshold on and off, in Chinese and English, then the real files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from open_autoglm.config.data import FilterConfig
from open_autoglm.data.filters import (
    REASONS,
    FilterVerdict,
    QualityFilter,
    digit_ratio,
    repeated_line_ratio,
    symbol_ratio,
    top_ngram_ratio,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo
OFF = {"max_repeated_line_ratio": None, "max_top_ngram_ratio": None, "max_symbol_ratio": None}
ALL_OFF = {**OFF, "max_digit_ratio": None}

EN = (
    "The hotel is a ten minute walk from the old town, and the rooms are quiet even at the weekend. "
    "Breakfast was generous, with fresh fruit and good coffee, and the staff at the front desk answered "
    "every question we had about buses and museums with patience and a smile."
)
ZH = (
    "酒店位于老城区附近，步行十分钟就能到达主要景点。房间虽然不大，但是干净整洁，隔音效果也不错，周末晚上"
    "也很安静。早餐种类丰富，有新鲜的水果和现煮的咖啡。前台服务员非常耐心，帮我们查了公交路线，还推荐了"
    "几家当地人常去的小饭馆，味道都很好。唯一的缺点是停车场比较小，晚上回来的时候经常找不到车位，只能停在"
    "旁边的路上。总的来说性价比很高，房间的床也很舒服，下次来这个城市出差或者旅游，我们一定还会选择这家酒店入住。"
)
FR = (
    "L'hôtel se trouve à dix minutes à pied de la vieille ville et les chambres sont calmes, même le week-end. "
    "Le petit déjeuner était copieux, avec des fruits frais et du bon café, et le personnel de la réception a "
    "répondu à toutes nos questions avec patience."
)
DE = (
    "Das Hotel liegt zehn Gehminuten von der Altstadt entfernt, und die Zimmer sind auch am Wochenende ruhig. "
    "Das Frühstück war reichhaltig, mit frischem Obst und gutem Kaffee, und das Personal an der Rezeption "
    "beantwortete alle unsere Fragen mit Geduld."
)
JA = (
    "ホテルは旧市街から歩いて十分のところにあり、週末でも部屋はとても静かでした。朝食は種類が多く、新鮮な果物と"
    "おいしいコーヒーがありました。フロントのスタッフはバスや美術館についての質問にも丁寧に答えてくれました。"
)
MIXED = "这个model的accuracy很高，但是它的latency太长了，deploy到production之前还需要做一些optimization。" * 3
HAN = "酒店房间服务早餐前台环境位置设施卫生价格交通安静干净舒适热情方便推荐满意失望"

BOILERPLATE = "\n".join(
    ["Home | About us | Contact | Privacy policy", "Great deals on shoes today.", "Copyright 2024 Shoes Inc."]
    * 8
)
BUY_NOW = "buy now " * 40
ZH_SPAM = "点击购买" * 60
SYMBOLS_EN = " ".join(f"<<{w}>>" for w in EN.split())
SYMBOLS_ZH = "".join(f"【{ch}】" for ch in HAN * 2)
NUMBERS = "\n".join(f"{2000 + i} | {i * 7919 % 10000:04d} | {i * 104729 % 100000:05d}" for i in range(20))


def make(**settings: Any) -> QualityFilter:
    return QualityFilter(FilterConfig(**settings))


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("buy now buy now buy now", 1.0),
        ("the cat the cat sat", 0.8),  # "the cat" twice: 12 of 15 letters
        ("buy buy x buy buy buy", 15 / 16),  # runs of one word: every word of a run of two or more
        ("立即购买立即购买", 0.5),  # Chinese: character 2-grams; 立即 covers half
        ("one two three", 0.0),  # no 2-gram occurs twice
        ("", 0.0),
    ],
)
def test_top_ngram_ratio(text: str, share: float) -> None:
    assert top_ngram_ratio(text) == pytest.approx(share)


def test_the_other_measures() -> None:
    assert repeated_line_ratio("ab\ncd\n\n ab \nab") == pytest.approx(4 / 8)  # blank lines and ends ignored
    assert repeated_line_ratio("one line") == 0.0
    assert symbol_ratio("a_b, c!") == pytest.approx(3 / 6)  # spaces do not count; the underscore does
    assert symbol_ratio("होटल साफ था") == 0.0  # the vowel signs of Hindi are not symbols
    assert symbol_ratio("你好，世界。") == pytest.approx(2 / 6)
    assert digit_ratio("12 ab") == pytest.approx(2 / 4) and digit_ratio("") == 0.0


@pytest.mark.parametrize("text", [EN, ZH, MIXED])
def test_clean_text_is_kept(text: str) -> None:
    assert len(text) >= 200  # long enough for the low-information checks
    assert make().reason(text) is None


@pytest.mark.parametrize(
    ("text", "settings", "expected"),
    [
        ("", {}, "empty"),
        ("  \n ", {}, "empty"),
        ("", {"min_chars": 0}, None),
        ("short", {"min_chars": 10}, "too_short"),
        ("很短", {"min_chars": 3}, "too_short"),
        ("short", {}, None),
        (EN, {"max_chars": 100}, "too_long"),
        (ZH, {"max_chars": 100}, "too_long"),
        (EN, {"max_chars": 1000}, None),
    ],
)
def test_length(text: str, settings: dict[str, Any], expected: str | None) -> None:
    assert make(**settings).reason(text) == expected


@pytest.mark.parametrize(
    ("text", "settings", "expected"),
    [
        (BOILERPLATE, {}, "repeated_lines"),
        (BOILERPLATE, {"max_repeated_line_ratio": 0.9}, None),
        (BOILERPLATE, {"max_repeated_line_ratio": None}, None),
        ("\n".join([ZH[:60]] * 5), {}, "repeated_lines"),
        ("\n".join([BUY_NOW] * 2), {}, "repeated_lines"),  # the first failing check names it
        ("\n".join([BUY_NOW] * 2), {"max_repeated_line_ratio": None}, "repeated_ngrams"),
        (BUY_NOW, {}, "repeated_ngrams"),
        (BUY_NOW, {"max_top_ngram_ratio": None}, None),
        (ZH_SPAM, {}, "repeated_ngrams"),  # Chinese: a character 2-gram
        (ZH_SPAM, {"max_top_ngram_ratio": None}, None),
        (SYMBOLS_EN, {}, "symbol_ratio"),
        (SYMBOLS_ZH, {}, "symbol_ratio"),
        (SYMBOLS_EN, {"max_symbol_ratio": 0.5}, None),
        (SYMBOLS_ZH, {"max_symbol_ratio": None}, None),
        (NUMBERS, {}, "digit_ratio"),
        (NUMBERS, {"max_digit_ratio": 0.9}, None),
        (NUMBERS, {"max_digit_ratio": None}, None),
    ],
)
def test_low_information(text: str, settings: dict[str, Any], expected: str | None) -> None:
    assert len(text) >= 200
    assert make(**settings).reason(text) == expected


@pytest.mark.parametrize("text", [BOILERPLATE, BUY_NOW, ZH_SPAM, SYMBOLS_EN, SYMBOLS_ZH, NUMBERS])
def test_low_information_checks_only_judge_long_texts(text: str) -> None:
    short = text[:199]
    assert make().reason(short) is None
    assert make(quality_min_chars=100).reason(short) is not None


def test_the_crafted_low_quality_set_is_caught() -> None:
    spam = "\n".join(["限时特价！点击购买！", "全场包邮，赶快下单！", "客服微信：shop123"] * 8)
    table = "\n".join(f"{i}\t{i * i}\t{i**3}\t{i * 31 % 97}" for i in range(1, 30))
    texts = [BOILERPLATE, BUY_NOW, ZH_SPAM, spam, NUMBERS, table, "Click here! " * 30]
    assert all(make().reason(t) is not None for t in texts)


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        (EN, ["en"], None),
        (ZH, ["zh"], None),
        (ZH, ["en"], "language"),
        (EN, ["zh"], "language"),
        (MIXED, ["zh"], None),  # a zh/en mix counts as both
        (MIXED, ["en"], None),
        (JA, ["zh", "en"], "language"),  # Han characters, yet Japanese
        (JA, ["ja"], None),
        (FR, ["en"], "language"),
        (DE, ["en"], "language"),
        (FR, ["en", "fr"], None),
        (FR, None, None),  # no language filter
        ("Ja, das stimmt leider.", ["en"], "language"),  # short, but clearly German
        ("ok", ["en"], None),  # unknown and short: kept
        ("2019", ["zh"], None),
        (" ".join(str(n) for n in range(100, 180)), ["en"], "language"),  # unknown and long: removed
    ],
)
def test_language(text: str, languages: list[str] | None, expected: str | None) -> None:
    assert make(languages=languages, **ALL_OFF).reason(text) == expected


def test_check_gives_the_language_without_a_language_filter() -> None:
    quality = make()
    assert quality.check(FR) == FilterVerdict(None, "fr")
    assert quality.check(ZH).language == "zh" and quality.check(MIXED).language == "zh-en"
    assert quality.check("").reason == "empty" and quality.check("").language == "unknown"
    assert quality.check(BUY_NOW) == FilterVerdict("repeated_ngrams", "en")
    assert not quality.check(BUY_NOW).kept and quality.check(EN).kept


def test_a_disabled_filter_keeps_everything_but_still_reports_the_language() -> None:
    quality = make(enabled=False, languages=["zh"], max_chars=10)
    assert quality.check(FR) == FilterVerdict(None, "fr")
    assert quality.reason("") is None


def test_reasons_are_the_stable_names() -> None:
    assert REASONS == (
        "empty",
        "too_short",
        "too_long",
        "too_few_tokens",
        "too_many_tokens",
        "repeated_lines",
        "repeated_ngrams",
        "symbol_ratio",
        "digit_ratio",
        "language",
    )


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """A word-level tokenizer that adds [CLS] and [SEP], which the filter must not count."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([EN], trainers.WordLevelTrainer(special_tokens=["[UNK]", "[CLS]", "[SEP]"]))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    assert len(fast("hotel rooms")["input_ids"]) == 4
    return fast


@pytest.mark.parametrize(
    ("text", "settings", "expected"),
    [
        ("hotel rooms", {"min_tokens": 3}, "too_few_tokens"),  # 2 tokens (4 with [CLS] and [SEP])
        ("hotel rooms quiet", {"min_tokens": 3}, None),
        ("hotel rooms quiet", {"max_tokens": 2}, "too_many_tokens"),
        ("hotel rooms", {"max_tokens": 2}, None),
        ("hotel rooms quiet", {"min_tokens": 2, "max_tokens": 3}, None),
    ],
)
def test_token_counts(tokenizer: Any, text: str, settings: dict[str, Any], expected: str | None) -> None:
    assert QualityFilter(FilterConfig(**settings), tokenizer).reason(text) == expected


def test_token_limits_need_a_tokenizer() -> None:
    with pytest.raises(ValueError, match="tokenizer"):
        make(max_tokens=512)


def read_chnsenticorp() -> list[str]:
    with open(DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", encoding="utf-8", newline="") as f:
        return [row["review"] for row in csv.DictReader(f)]


def read_english() -> list[str]:
    sst2 = [
        line.split("\t", 1)[1]
        for name in ("train", "dev", "test")
        for line in (DATA / "sst2" / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
    ]
    trec = [
        line.split(" ", 1)[1]
        for name, encoding in (("train_5500.label", "latin-1"), ("TREC_10.label", "ascii"))
        for line in (DATA / "trec_qc" / name).read_text(encoding=encoding).splitlines()
    ]
    return sst2 + trec


@pytest.mark.slow
def test_real_chinese_reviews_keep_all_but_the_empty_one() -> None:
    reviews = read_chnsenticorp()
    verdicts = [make().check(text) for text in reviews]
    assert verdicts[6374].reason == "empty"  # data row 6375 (SOURCE.txt)
    reasons = Counter(v.reason for v in verdicts)
    assert reasons[None] > 0.99 * len(reviews)
    assert sum(v.language == "zh" for v in verdicts) > 0.95 * len(reviews)


@pytest.mark.slow
def test_real_english_sentences_are_all_kept() -> None:
    texts = read_english()
    reasons = Counter(make().reason(text) for text in texts)
    assert reasons[None] > 0.99 * len(texts)
    kept_as_english = Counter(make(languages=["en"]).reason(text) for text in texts)
    assert kept_as_english[None] > 0.99 * len(texts)
