"""EDA augmentation: each operation, the class arithmetic, determinism, and the real SST-2 / ChnSentiCorp."""

from __future__ import annotations

import logging
import random
from collections import Counter
from itertools import product
from pathlib import Path

import pytest

from open_autoglm.config.data import AugmentConfig
from open_autoglm.data import ReadOptions, read_records
from open_autoglm.data.augment import (
    SYNONYM_SOURCES,
    augment_rows,
    augment_text,
    class_targets,
    synonym_source,
    text_language,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo

EN = "the movie was a charming and often affecting journey ."
ZH = "这家酒店的房间很干净，服务也不错，早餐种类丰富。"
SENTENCES = {"en": EN, "zh": ZH}


def _words(text: str, language: str) -> list[str]:
    import jieba

    tokens = jieba.lcut(text) if language == "zh" else text.split()
    return [t for t in tokens if any(c.isalnum() for c in t)]


def _tokens(text: str, language: str) -> list[str]:
    import jieba

    return jieba.lcut(text) if language == "zh" else text.split()


def _join(tokens: list[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(tokens)


def _sentences(count: int, start: int = 0) -> list[str]:
    """Distinct English review-like sentences of ordinary words (test data, not a synonym table)."""
    adjectives = ["charming", "dull", "clever", "tedious", "moving", "funny", "bleak", "warm"]
    nouns = ["movie", "story", "performance", "script", "journey", "comedy", "drama", "picture"]
    verbs = ["delights", "bores", "surprises", "moves", "amuses", "tires"]
    combos = list(product(adjectives, nouns, verbs))[start : start + count]
    return [f"a {adj} {noun} that {verb} the audience and the critics" for adj, noun, verb in combos]


@pytest.fixture
def no_english_lexicon(monkeypatch: pytest.MonkeyPatch):
    synonym_source.cache_clear()
    monkeypatch.setitem(SYNONYM_SOURCES, "en", lambda: None)
    yield
    synonym_source.cache_clear()


# ---------------------------------------------------------------- language and lexicons


def test_language_is_the_share_of_han_characters():
    assert text_language(EN) == "en"
    assert text_language(ZH) == "zh"
    assert text_language("我喜欢这个 iPhone") == "zh"  # 5 Han of 11 letters
    assert text_language("a long English sentence with one 字") == "en"
    assert text_language("12345 !!!") == "en"


def test_lexicons_are_real_synonyms():
    english, chinese = synonym_source("en"), synonym_source("zh")
    assert english is not None and chinese is not None
    assert {"film", "flick", "picture"} <= set(english.synonyms("movie"))
    assert "film" in english.synonyms("movies")  # inflected: WordNet's suffix rules find "movie"
    assert "glad" in english.synonyms("happy") and "happy" not in english.synonyms("happy")
    assert english.synonyms("Movie") == english.synonyms("movie")
    assert "早饭" in chinese.synonyms("早餐")
    assert chinese.synonyms("的") == []  # one character: too ambiguous to replace
    assert all(len(w) >= 2 for w in chinese.synonyms("干净"))


# ---------------------------------------------------------------- operations


@pytest.mark.parametrize("language", ["en", "zh"])
def test_augment_text_is_deterministic_given_a_seed(language):
    text = SENTENCES[language]
    ops = ["synonym", "swap", "delete", "insert"]
    first = [augment_text(text, ops, 0.2, random.Random(seed), language) for seed in range(8)]
    again = [augment_text(text, ops, 0.2, random.Random(seed), language) for seed in range(8)]
    assert first == again
    assert len(set(first)) > 1  # different seeds, different rewrites


@pytest.mark.parametrize("language", ["en", "zh"])
def test_swap_keeps_the_words(language):
    text = SENTENCES[language]
    for seed in range(5):
        out = augment_text(text, ["swap"], 0.2, random.Random(seed), language)
        assert out != text
        assert Counter(_tokens(out, language)) == Counter(_tokens(text, language))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_deletion_shortens_keeping_order(language):
    text = SENTENCES[language]
    words = _words(text, language)
    for seed in range(5):
        out = augment_text(text, ["delete"], 0.3, random.Random(seed), language)
        kept = _words(out, language) if language == "en" else None
        assert len(out) < len(text)
        if kept is not None:  # English words stay whole: what is left is a subsequence
            assert len(kept) == len(words) - int(0.3 * len(words))
            remaining = iter(words)
            assert all(w in remaining for w in kept)


def test_deletion_never_empties_a_text():
    rng = random.Random(0)
    assert all(augment_text("good film", ["delete"], 0.5, rng, "en") in {"good", "film"} for _ in range(10))
    assert augment_text("good", ["delete"], 0.5, rng, "en") == "good"  # one word: nothing to delete


@pytest.mark.parametrize("language", ["en", "zh"])
def test_synonym_replacement_uses_the_lexicon(language):
    text, source = SENTENCES[language], synonym_source(language)
    assert source is not None
    tokens = _tokens(text, language)
    for seed in range(10):
        out = augment_text(text, ["synonym"], 0.1, random.Random(seed), language)  # alpha 0.1: one word
        assert out != text
        # Exactly one token became a synonym of itself: find which.
        replaced = [
            (tokens[i], out[len(head) : len(out) - len(tail)])
            for i in range(len(tokens))
            for head, tail in [(_join(tokens[:i], language), _join(tokens[i + 1 :], language))]
            if out.startswith(head) and out.endswith(tail) and len(head) + len(tail) <= len(out)
        ]
        assert any(new.strip() in source.synonyms(old) for old, new in replaced), (out, replaced)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_insertion_adds_a_synonym_of_a_word_present(language):
    text, source = SENTENCES[language], synonym_source(language)
    assert source is not None
    tokens = _tokens(text, language)
    offered = {s for t in tokens for s in source.synonyms(t.lower() if language == "en" else t)}
    for seed in range(10):
        out = augment_text(text, ["insert"], 0.1, random.Random(seed), language)
        inserted = [
            out[len(head) : len(out) - len(tail)].strip()
            for i in range(len(tokens) + 1)
            for head, tail in [(_join(tokens[:i], language), _join(tokens[i:], language))]
            if out.startswith(head) and out.endswith(tail) and len(head) + len(tail) < len(out)
        ]
        assert any(word in offered for word in inserted), (out, inserted)


def test_operations_change_about_alpha_of_the_words():
    words = EN.split()
    out = augment_text(EN, ["insert"], 0.3, random.Random(3), "en")
    assert len(out.split()) >= len(words) + int(0.3 * len(_words(EN, "en")))
    out = augment_text(EN, ["synonym"], 0.3, random.Random(3), "en")
    assert sum(a != b for a, b in zip(out.split(), words, strict=False)) >= 1


def test_punctuation_and_stop_words_are_left_alone():
    source = synonym_source("en")
    assert source is not None
    for seed in range(10):
        out = augment_text(
            "The movie, for all of it, was great!", ["synonym"], 0.5, random.Random(seed), "en"
        )
        assert out.startswith("The ") and ", for all of it, was " in out and out.endswith("!")
        assert out.split()[1][:1].isupper() is False  # lower-case word, lower-case synonym


def test_a_missing_lexicon_skips_synonym_and_insert_only(no_english_lexicon, caplog):
    with caplog.at_level(logging.WARNING, logger="open_autoglm.data.augment"):
        assert augment_text(EN, ["synonym", "insert"], 0.2, random.Random(0), "en") == EN
    assert "no en synonym lexicon" in caplog.text
    out = augment_text(EN, ["synonym", "swap"], 0.2, random.Random(0), "en")
    assert out != EN and sorted(out.split()) == sorted(EN.split())


# ---------------------------------------------------------------- rows


def test_chosen_classes_are_multiplied_by_factor():
    rows = [{"text": t, "label": "pos"} for t in _sentences(10)]
    rows += [{"text": t, "label": "neg"} for t in _sentences(4, start=10)]
    config = AugmentConfig(enabled=True, classes=["neg"], factor=3.0)
    new = augment_rows(rows, config, seed=0)
    assert Counter(r["label"] for r in new) == {"neg": 8}  # 4 rows x 3 = 12: 8 new
    both = augment_rows(rows, AugmentConfig(enabled=True, classes=["pos", "neg"], factor=1.5), seed=0)
    assert Counter(r["label"] for r in both) == {"pos": 5, "neg": 2}
    assert all(set(r) == {"text", "label"} for r in new + both)


def test_classes_none_balances_toward_the_largest_class():
    rows = [{"text": t, "label": 0} for t in _sentences(10)]
    rows += [{"text": t, "label": 1} for t in _sentences(4, start=10)]
    rows += [{"text": t, "label": 2} for t in _sentences(7, start=14)]
    new = augment_rows(rows, AugmentConfig(enabled=True, factor=2.0), seed=0)
    # 1: 4 -> 8; 2: 7 -> 14 is capped at the largest class's 10; 0 is the largest and is left alone.
    assert Counter(r["label"] for r in new) == {1: 4, 2: 3}  # labels keep their type
    assert augment_rows(rows, AugmentConfig(enabled=True, factor=1.0), seed=0) == []


def test_class_targets():
    counts = Counter({"a": 10, "b": 4, "c": 10})
    assert class_targets(counts, AugmentConfig(factor=2.0)) == {"b": 8}  # ties for largest: neither grows
    assert class_targets(counts, AugmentConfig(classes=["a"], factor=1.25)) == {"a": 12}
    with pytest.raises(ValueError, match=r"label\(s\) \['z'\]"):
        class_targets(counts, AugmentConfig(classes=["z"]))


def test_int_labels_match_classes_given_as_strings():
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(_sentences(8))]
    new = augment_rows(rows, AugmentConfig(classes=["1"], factor=2.0), seed=0)
    assert [r["label"] for r in new] == [1, 1, 1, 1]


def test_augment_rows_is_deterministic_and_seed_dependent():
    rows = [{"text": t, "label": "a"} for t in _sentences(12)]
    rows += [{"text": t, "label": "b"} for t in _sentences(5, start=12)]
    config = AugmentConfig(enabled=True, factor=2.0)
    assert augment_rows(rows, config, seed=7) == augment_rows(rows, config, seed=7)
    assert augment_rows(rows, config, seed=7) != augment_rows(rows, config, seed=8)


def test_custom_keys():
    rows = [{"sentence": t, "y": "a"} for t in _sentences(4)] + [{"sentence": _sentences(1, 9)[0], "y": "b"}]
    new = augment_rows(rows, AugmentConfig(factor=2.0), seed=0, text_key="sentence", label_key="y")
    assert new and all(set(r) == {"sentence", "y"} and r["y"] == "b" for r in new)


def test_no_empty_copied_or_repeated_outputs(caplog):
    texts = ["good", "!!!", "...", "a b", "好", "很好", "ok then"] + _sentences(3)
    rows = [{"text": t, "label": "small"} for t in texts] + [
        {"text": t, "label": "big"} for t in _sentences(40, start=20)
    ]
    with caplog.at_level(logging.INFO, logger="open_autoglm.data.augment"):
        new = augment_rows(rows, AugmentConfig(classes=["small"], factor=4.0), seed=0)
    originals = {r["text"] for r in rows}
    assert new and all(r["text"].strip() for r in new)
    assert not originals & {r["text"] for r in new}  # never a copy of any row
    assert len({r["text"] for r in new}) == len(new)  # nor of another new row
    assert "source rows skipped" in caplog.text  # "!!!" and "..." have nothing to change


@pytest.mark.parametrize("language", ["en", "zh"])
def test_mixed_languages_in_one_class(language):
    rows = [
        {"text": SENTENCES[language], "label": "x"},
        {"text": ZH if language == "en" else EN, "label": "x"},
    ]
    rows += [{"text": t, "label": "y"} for t in _sentences(4)]
    new = augment_rows(rows, AugmentConfig(factor=2.0), seed=1)
    assert {text_language(r["text"]) for r in new} == {"en", "zh"}


# ---------------------------------------------------------------- real data


def _slice(path: Path, options: ReadOptions, count: int = 200) -> list[dict]:
    records, _ = read_records(path, options)
    step = len(records) // count  # ChnSentiCorp is sorted by label: a strided slice has both classes
    return [r.data for r in records[::step][:count]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "options", "language"),
    [
        (DATA / "sst2" / "train.tsv", ReadOptions(), "en"),
        (DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", ReadOptions(text_field="review"), "zh"),
    ],
    ids=["sst2", "chnsenticorp"],
)
def test_real_slices_augment(path, options, language):
    rows = _slice(path, options)
    counts = Counter(r["label"] for r in rows)
    small, large = min(counts, key=counts.get), max(counts, key=counts.get)
    new = augment_rows(rows, AugmentConfig(enabled=True, factor=2.0), seed=0)
    assert Counter(r["label"] for r in new) == {small: min(counts[small], counts[large] - counts[small])}
    originals = {r["text"] for r in rows}
    assert all(r["text"].strip() and r["text"] not in originals for r in new)
    assert all(text_language(r["text"]) == language for r in new)
    # Every operation works on real text too.
    rng = random.Random(0)
    for op in ("synonym", "swap", "delete", "insert"):
        changed = sum(augment_text(r["text"], [op], 0.1, rng) != r["text"] for r in rows[:50])
        assert changed >= 40, op
