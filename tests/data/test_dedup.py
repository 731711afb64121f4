"""Exact and near-duplicate detection: normalisation, signatures, the LSH index, and real duplicates."""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import random
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from open_autoglm.data.dedup import (
    NearDuplicateIndex,
    estimated_jaccard,
    exact_key,
    lsh_bands,
    normalise,
    shingle_hashes,
    signatures,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo

EN = [
    "The old harbour town wakes up before dawn, when the fishing boats come back with the night's catch.",
    "Gulls circle above the quay while the crews sort mackerel, cod and the occasional crab into crates.",
    "By seven the market hall is full of cooks from the restaurants along the river, haggling over prices.",
    "Tourists arrive later in the morning and mostly come for the lighthouse and the narrow painted streets.",
    "In winter the storms close the harbour for days, and the town lives on stored fuel and patience.",
    "The museum near the church keeps the logbooks of captains who sailed from here two centuries ago.",
    "Most young people now leave for the city, but many return in summer to help their families at sea.",
    "On the last Sunday of August the whole town gathers on the beach for the blessing of the boats.",
]
EN_SAME_TOPIC = [
    "Fishing villages on this coast depend on the sea for food, work and, increasingly, for tourism.",
    "Boats leave the harbour at night and return at first light, when buyers wait on the quay for the catch.",
    "The fish market opens early; restaurant cooks compare the cod and mackerel before the prices are fixed.",
    "Visitors come in the afternoon to climb the lighthouse and to photograph the colourful houses.",
    "Winter storms can keep the fleet in port for a week, a hard time for families who live from fishing.",
    "A small museum tells the history of the port, with ship models, old charts and captains' diaries.",
    "Many young people move to the city for work, though some come back each summer to crew the boats.",
    "Every August a festival on the beach blesses the fleet, with music, grilled sardines and a parade.",
]
ZH = [
    "这座古老的港口小镇在黎明前就醒来了，渔船带着一夜的收获陆续靠岸。",
    "海鸥在码头上空盘旋，船员们把鲭鱼、鳕鱼和偶尔捕到的螃蟹分拣进木箱。",
    "七点钟，鱼市大厅里挤满了河边餐馆的厨师，他们一边挑鱼一边讨价还价。",
    "游客通常上午晚些时候才到，大多是为了看灯塔和那些涂着彩色油漆的窄巷。",
    "冬天的风暴常常让港口关闭好几天，小镇只能靠储存的燃料和耐心度日。",
    "教堂旁边的博物馆保存着两百年前从这里出海的船长们留下的航海日志。",
    "如今大多数年轻人都去了城市，但很多人夏天会回来帮家里出海捕鱼。",
    "每年八月的最后一个星期天，全镇的人都会聚到海滩上为渔船祈福。",
]
ZH_SAME_TOPIC = [
    "这一带海岸的渔村靠海为生，既靠捕鱼，也越来越依赖旅游业。",
    "渔船夜里出港，天刚亮就返航，收鱼的商贩早早等在码头上。",
    "鱼市开得很早，餐馆的厨师会先比较鳕鱼和鲭鱼的成色，然后才定价。",
    "下午来的游客喜欢爬上灯塔，或者给五颜六色的房子拍照。",
    "冬季的暴风雨有时会让船队在港里停上一个星期，对渔民家庭来说很难熬。",
    "一座小博物馆讲述港口的历史，陈列着船模、旧海图和船长的日记。",
    "许多年轻人去城里打工，不过也有人每年夏天回来上船帮忙。",
    "每年八月海滩上都会举办节日为船队祈福，有音乐、烤沙丁鱼和游行。",
]


def shingles(text: str, n: int = 5) -> set[str]:
    norm = normalise(text)
    return {norm[i : i + n] for i in range(len(norm) - n + 1)} or {norm}


def true_jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def variants(sentences: list[str], sep: str) -> dict[str, str]:
    """The near-duplicates a corpus really holds: one word changed, a sentence inserted, two swapped."""
    text = sep.join(sentences)
    changed = list(sentences)
    changed[3] = changed[3].replace("lighthouse", "old tower").replace("灯塔", "钟楼")
    inserted = sentences[:4] + [sentences[1][: len(sentences[1]) // 2] + sentences[6][-20:]] + sentences[4:]
    swapped = list(sentences)
    swapped[2], swapped[5] = swapped[5], swapped[2]
    return {
        "original": text,
        "word": sep.join(changed),
        "insert": sep.join(inserted),
        "swap": sep.join(swapped),
    }


# 1. Normalisation and exact keys -----------------------------------------------------------------------------


def test_normalise_folds_case_width_punctuation_and_space():
    assert normalise("Hello,  world!") == normalise("hello world") == "hello world"
    assert normalise("ＨＥＬＬＯ　Ｗｏｒｌｄ！！") == "hello world"  # full-width letters and space
    assert normalise("你好，世界！") == "你好 世界"
    assert normalise("  tabs\tand\nnewlines  ") == "tabs and newlines"
    assert normalise("zero\u200bwidth") == "zerowidth"
    assert normalise("Straße ﬁle ㎡") == "strasse file m2"  # case folding, ligatures, compatibility letters


def test_exact_key_is_short_stable_and_sees_only_the_normalised_text():
    key = exact_key("Hello,  world!")
    assert key == exact_key("hello world") == exact_key("hello world", normalised=True)
    assert len(key) == 16
    # the same in every process and run
    assert key == hashlib.blake2b(b"hello world", digest_size=16).digest()
    assert exact_key("hello world") != exact_key("hello word")


# 2. Signatures -------------------------------------------------------------------------------------------------


def test_shingle_hashes_match_a_plain_python_count():
    texts = [normalise(t) for t in ["abcdefg", "abc", "", "hello world hello world", *ZH[:2]]]
    hashes, offsets = shingle_hashes(texts, 5)
    for i, text in enumerate(texts):
        row = hashes[offsets[i] : offsets[i + 1]]
        expected = [text[j : j + 5] for j in range(len(text) - 4)] or [text]
        assert len(row) == len(expected)
        # equal shingles hash equally, different ones differently
        assert len(set(row.tolist())) == len(set(expected))


def test_signatures_do_not_depend_on_the_batch_around_a_text():
    texts = [*EN, *ZH, "short", ""]
    together = signatures(texts, 5, 128, seed=1)
    assert together.shape == (len(texts), 128) and together.dtype == np.uint32
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(signatures([text], 5, 128, seed=1)[0], together[i])
    assert not np.array_equal(signatures(texts[:1], 5, 128, seed=2), together[:1])


def test_texts_shorter_than_the_ngram_are_one_shingle():
    a, b, c = signatures(["Hi!", "hi", "ho"], 5, 128)
    assert estimated_jaccard(a, b) == 1.0
    assert estimated_jaccard(a, c) == 0.0


def _signatures_in_child(texts: list[str]) -> np.ndarray:
    return signatures(texts, 5, 128, seed=7)


def test_signatures_are_the_same_in_other_processes(monkeypatch):
    texts = [*EN, *ZH, " ".join(EN), "x"]
    here = signatures(texts, 5, 128, seed=7)
    spawn = multiprocessing.get_context("spawn")
    for hash_seed in ("1", "2"):  # str/bytes hash() differs between these processes; signatures must not
        monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
        with spawn.Pool(1) as pool:
            np.testing.assert_array_equal(pool.apply(_signatures_in_child, (texts,)), here)


def test_estimated_jaccard_is_close_to_the_true_jaccard():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    errors = []
    for _ in range(200):
        a = [rng.choice(words) for _ in range(rng.randint(30, 150))]
        b = list(a)
        for _ in range(rng.randint(0, len(b) // 3)):  # edits from none to a third of the words
            b[rng.randrange(len(b))] = rng.choice(words)
        sig_a, sig_b = signatures([" ".join(a), " ".join(b)], 5, 128)
        errors.append(estimated_jaccard(sig_a, sig_b) - true_jaccard(" ".join(a), " ".join(b)))
    errors_array = np.abs(np.array(errors))
    assert errors_array.max() <= 0.1
    assert errors_array.mean() <= 0.03


# 3. The index ------------------------------------------------------------------------------------------------


def test_bands_catch_pairs_at_the_threshold():
    assert lsh_bands(0.8, 128) == (21, 6)
    for threshold in (0.5, 0.7, 0.8, 0.9, 0.95):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128
        assert 1 - (1 - threshold**rows) ** bands >= 0.99


@pytest.mark.parametrize("language", ["en", "zh"])
def test_near_duplicates_are_found_and_same_topic_texts_are_not(language):
    sentences, other = (EN, EN_SAME_TOPIC) if language == "en" else (ZH, ZH_SAME_TOPIC)
    sep = " " if language == "en" else ""
    texts = variants(sentences, sep)
    index = NearDuplicateIndex(0.8, 128)
    sigs = dict(zip(texts, signatures(list(texts.values()), 5, 128), strict=True))
    assert index.match_or_add(sigs["original"], 100) is None
    for name in ("word", "insert", "swap"):
        assert true_jaccard(texts["original"], texts[name]) >= 0.8, name
        assert index.match(sigs[name]) == 100, name
    # the same topic in other words
    topic = sep.join(other)
    assert true_jaccard(texts["original"], topic) < 0.3
    assert index.match_or_add(signatures([topic], 5, 128)[0], 101) is None
    # each sentence alone is far from the whole text
    for sentence in sentences:
        assert index.match(signatures([sentence], 5, 128)[0]) is None


def test_match_does_not_insert_and_the_first_occurrence_is_kept():
    index = NearDuplicateIndex(0.8, 128)
    first, twin = signatures([" ".join(EN), " ".join(EN).replace("cod", "hake")], 5, 128)
    assert index.match(first) is None
    assert len(index) == 0
    assert index.match_or_add(first, 7) is None
    assert index.match_or_add(twin, 8) == 7
    assert len(index) == 1  # the duplicate was not added
    assert index.match(twin) == 7


def test_random_signatures_never_match_and_every_kept_row_finds_itself():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(20_000, 128), dtype=np.uint32)
    index = NearDuplicateIndex(0.8, 128)
    assert all(index.match_or_add(sig, i + 1000) is None for i, sig in enumerate(sigs))
    assert len(index) == len(sigs)
    for i in range(0, len(sigs), 97):  # the band table has grown many times: nothing got lost
        twin = sigs[i].copy()
        twin[:20] = 0  # 108 of 128 words (432 of 512 minima) agree: estimated Jaccard 0.84
        assert index.match(twin) == i + 1000
    # 512 bytes of signature, 8 of id, 21 bands at 11-23 bytes; the last block of signatures is allocated whole
    assert (index.nbytes - 2**14 * 512) / len(index) < 512 + 8 + 21 * 23


def test_verification_rejects_candidates_under_the_threshold():
    index = NearDuplicateIndex(0.8, 128)
    base = np.random.default_rng(1).integers(0, 256, size=512, dtype=np.uint8)
    index.match_or_add(base.view(np.uint32), 1)
    for agree, expected in ((409, None), (410, 1)):  # 410 of 512 8-bit minima: estimated Jaccard 0.8
        twin = base.copy()
        twin[agree:] += 1  # the first bands agree: a candidate either way
        assert estimated_jaccard(twin.view(np.uint32), base.view(np.uint32)) == pytest.approx(
            (agree / 512 - 1 / 256) / (1 - 1 / 256)
        )
        assert index.match(twin.view(np.uint32)) == expected


def test_signature_shape_is_checked():
    with pytest.raises(ValueError, match="shape"):
        NearDuplicateIndex(0.8, 128).match(np.zeros(64, dtype=np.uint32))


# 4. Real data --------------------------------------------------------------------------------------------------


def _independent_normalise(text: str) -> str:
    """A second way to normalise: regular expressions instead of a translation table."""
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _count_exact_duplicates(texts: list[str]) -> tuple[int, int]:
    seen_keys: set[bytes] = set()
    seen_texts: set[str] = set()
    ours = independent = 0
    for text in texts:
        key, norm = exact_key(text), _independent_normalise(text)
        ours += key in seen_keys
        independent += norm in seen_texts
        seen_keys.add(key)
        seen_texts.add(norm)
    return ours, independent


@pytest.mark.slow
def test_real_exact_duplicates_sms_spam():
    path = SHARED_DATA / "sms_spam" / "SMSSpamCollection"
    texts = [line.rstrip("\n").split("\t", 1)[1] for line in path.open(encoding="utf-8")]
    ours, independent = _count_exact_duplicates(texts)
    assert len(texts) == 5574
    assert len(texts) - len(set(texts)) == 403  # SOURCE.txt: 403 duplicate message texts
    assert ours == independent == 444  # 41 more once case and punctuation are ignored


@pytest.mark.slow
def test_real_exact_duplicates_sst2():
    with (SHARED_DATA / "sst2" / "train.tsv").open(encoding="utf-8") as handle:
        texts = [row[1] for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    ours, independent = _count_exact_duplicates(texts)
    assert len(texts) == 6920
    assert ours == independent == 9  # SOURCE.txt: 9 duplicate lines


@pytest.mark.slow
def test_real_near_duplicates_c4_documents():
    """Each of 60 real web documents with a word changed, a sentence inserted, or two sentences swapped."""
    path = SHARED_DATA / "c4_demo" / "c4_demo.jsonl"
    docs = [json.loads(line)["text"] for line in path.open(encoding="utf-8")][:60]
    rng = random.Random(0)
    index = NearDuplicateIndex(0.8, 128)
    for i, sig in enumerate(signatures(docs, 5, 128)):
        assert index.match_or_add(sig, i) is None  # real documents are not near-duplicates of each other
    found = total = 0
    for i, doc in enumerate(docs):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", doc) if s]
        if len(sentences) < 6:
            continue
        words = doc.split()
        words[rng.randrange(len(words))] = "zebra"
        inserted = list(sentences)
        inserted.insert(rng.randrange(len(sentences)), "This sentence was not in the original document.")
        swapped = list(sentences)
        a, b = rng.sample(range(len(sentences)), 2)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        for twin in (" ".join(words), " ".join(inserted), " ".join(swapped)):
            if true_jaccard(doc, twin) < 0.8:
                continue
            total += 1
            found += index.match(signatures([twin], 5, 128)[0]) == i
    assert total >= 100
    assert found / total >= 0.97
