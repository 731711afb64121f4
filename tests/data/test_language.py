"""Language identification: script counting for CJK and zh/en mixes, the bundled fastText model for the rest."""

from __future__ import annotations

import csv
import socket
from collections import Counter
from pathlib import Path

import pytest

from open_autoglm.data import language
from open_autoglm.data.language import UNKNOWN, ZH_EN, language_of, matches

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("这家酒店的服务很好，房间干净，早餐丰富，下次还会再来。", "zh"),
        ("這家飯店的服務很好，房間乾淨，早餐豐富。", "zh"),  # traditional characters
        ("好的", "zh"),
        ("The hotel was clean and the staff were friendly.", "en"),
        ("I AM AT THE GAS STATION. GO THERE.", "en"),  # shouting reads as German unless lower-cased
        ("東京の天気は晴れです。明日も晴れるでしょう。", "ja"),  # Han characters, and Hiragana
        ("コンピュータ", "ja"),
        ("안녕하세요, 만나서 반갑습니다.", "ko"),
        ("L'hôtel était propre et le personnel très aimable.", "fr"),
        ("Das Hotel war sauber und das Personal freundlich.", "de"),
        ("¿Dónde está la estación de tren más cercana?", "es"),
        ("Гостиница была чистой, а персонал дружелюбным.", "ru"),
    ],
)
def test_languages(text: str, expected: str) -> None:
    assert language_of(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "这个model的accuracy很高",
        "我买了Apple AirPods Pro和Sony WH-1000XM4，AirPods Pro的降噪更好，Sony的音质更好",  # quoted names
        "I love eating 小笼包 in Shanghai with my friends",  # an English sentence with a Chinese phrase
        "酒店不错，就是CHECKIN太慢",
    ],
)
def test_mixed_chinese_and_english(text: str) -> None:
    assert language_of(text) == ZH_EN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wifi信号很好，房间干净整洁，服务员态度也非常好，推荐入住", "zh"),  # one brand word is no mix
        ("初音ミク的新歌很好听，我每天都在听", "zh"),  # a Japanese name in Katakana, Chinese grammar
        ("联系我：[PHONE] 或 [EMAIL]，房费1200元", "zh"),  # the placeholders of data.pii are no English
        ("详情请访问https://www.example.com/hotel?id=12了解，或发邮件到zhang.san@example.com咨询", "zh"),
        ("In Chinese the character 人 means person, and it is one of the first characters to learn.", "en"),
        ("Das Wort 你好 bedeutet Hallo auf Chinesisch, und man hört es überall in Peking.", "de"),
    ],
)
def test_a_word_of_another_script_does_not_make_a_mix(text: str, expected: str) -> None:
    assert language_of(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "12345", "2019-01-01 12:00:00", "!!! ??? ...", "ok", "好", "3.14159 * 2 = 6.28"]
)
def test_too_little_text_or_no_letters_is_unknown(text: str) -> None:
    assert language_of(text) == UNKNOWN


def test_markdown_tables_and_code_are_judged_by_their_words() -> None:
    table = "Compose a table with two rows and three columns.\n\n| Column 1 | Column 2 |\n|:---:|:---:|\n"
    assert language_of(table + "| Row 1,1 | Row 1,2 |\n| Row 2,1 | Row 2,2 |") == "en"


def test_matches() -> None:
    assert matches("zh", ["zh"]) and matches("en", ["zh", "en"]) and matches("fr", {"FR"})
    assert matches(ZH_EN, ["zh"]) and matches(ZH_EN, ["en"]) and matches(ZH_EN, ["zh-en"])
    assert not matches(ZH_EN, ["ja"]) and not matches("ja", ["zh", "en"]) and not matches("fr", ["en"])
    assert not matches(UNKNOWN, ["zh", "en"])


def test_the_model_is_read_from_the_wheel_without_a_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    language._detector.cache_clear()  # load it again, here, with the network off
    try:
        assert language_of("Das Hotel war sauber und das Personal freundlich.") == "de"
    finally:
        language._detector.cache_clear()


@pytest.mark.slow
def test_real_chinese_reviews_are_chinese() -> None:
    with open(DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", encoding="utf-8", newline="") as f:
        reviews = [row["review"] for row in csv.DictReader(f)]
    counts = Counter(map(language_of, reviews))
    assert counts["zh"] > 0.95 * len(reviews)
    assert counts["zh"] + counts[ZH_EN] + counts["en"] > 0.995 * len(reviews)  # a few are in English


@pytest.mark.slow
def test_real_english_sentences_are_english() -> None:
    lines = (DATA / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    sentences = [line.split("\t", 1)[1] for line in lines]
    counts = Counter(map(language_of, sentences))
    assert counts["en"] > 0.95 * len(sentences)
    assert counts["en"] + counts[UNKNOWN] > 0.995 * len(sentences)  # rarely a wrong language, if unsure
