"""Which rows the filter step removes, and why: length, token count, low-information text, language.

`QualityFilter.check` names the first check a text fails, in the order of `REASONS`, and the text's language
(computed for every row, since the data report shows the language mix). The low-information checks follow
Gopher/MassiveText (Rae et al. 2021) and only judge texts of at least `quality_min_chars` characters: a short
text has too few lines, words and characters for a share of them to mean anything.

- repeated_lines: characters in non-blank lines that repeat an earlier line (stripped), over the characters in
  non-blank lines.
- repeated_ngrams: characters covered by the most frequent 2-gram of words, over the characters of all words.
  Chinese and Japanese have no spaces between words, so each Han or Kana character is a word of its own.
- symbol_ratio / digit_ratio: characters that are neither letters, digits nor spaces (combining marks count as
  letters) / that are digits, over the characters that are not spaces, so Chinese (no spaces) and English
  (one in six characters a space) are held to the same bar.

The language filter keeps mixed zh/en text for [zh] and for [en] alike. Text whose language is "unknown" is
removed only when it is long enough to judge (`quality_min_chars`): a short "ok" or "2019" stays.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING

from open_autoglm.config.data import FilterConfig
from open_autoglm.data.language import (
    HAN_RANGES,
    HIRAGANA_RANGES,
    KATAKANA_RANGES,
    UNKNOWN,
    language_of,
    matches,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REASONS = (
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

_UNSPACED = HAN_RANGES + HIRAGANA_RANGES + KATAKANA_RANGES  # scripts written without spaces between words
WORD = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")  # a Han or Kana character, or a run of letters/digits
SYMBOL = re.compile(r"[^\w\s]")  # and "_", which \w takes for a letter
DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class FilterVerdict:
    """What the filter says of one text."""

    reason: str | None  # one of REASONS, or None: keep the row
    language: str  # language_of(text)

    @property
    def kept(self) -> bool:
        return self.reason is None


class QualityFilter:
    """Judges one text at a time by the `data.filter` settings; a tokenizer is needed only for token limits."""

    def __init__(self, config: FilterConfig, tokenizer: PreTrainedTokenizerBase | None = None) -> None:
        if (config.min_tokens or config.max_tokens) and tokenizer is None:
            raise ValueError("data.filter.min_tokens/max_tokens need the model's tokenizer to count tokens")
        self.config = config
        self.tokenizer = tokenizer
        self.languages = {code.lower() for code in config.languages} if config.languages else None
        self.quality_checks = [
            (reason, limit, measure)
            for reason, setting, measure in QUALITY_CHECKS
            if (limit := getattr(config, setting)) is not None
        ]

    def check(self, text: str) -> FilterVerdict:
        """The first reason to remove `text` (None to keep it), with its language."""
        language = language_of(text)
        return FilterVerdict(self._reason(text, language) if self.config.enabled else None, language)

    def reason(self, text: str) -> str | None:
        """The first reason to remove `text`, or None to keep it (the language only found when filtered on)."""
        if not self.config.enabled:
            return None
        return self._reason(text, language_of(text) if self.languages else UNKNOWN)

    def _reason(self, text: str, language: str) -> str | None:
        c = self.config
        chars = len(text)
        if c.min_chars and not text.strip():
            return "empty"
        if chars < c.min_chars:
            return "too_short"
        if c.max_chars is not None and chars > c.max_chars:
            return "too_long"
        if c.min_tokens or c.max_tokens:
            assert self.tokenizer is not None
            tokens = len(self.tokenizer.encode(text, add_special_tokens=False))
            if c.min_tokens and tokens < c.min_tokens:
                return "too_few_tokens"
            if c.max_tokens and tokens > c.max_tokens:
                return "too_many_tokens"
        if chars >= c.quality_min_chars:
            for reason, limit, measure in self.quality_checks:
                if measure(text) > limit:
                    return reason
        wrong = self.languages and not matches(language, self.languages)
        if wrong and (language != UNKNOWN or chars >= c.quality_min_chars):
            return "language"
        return None


def repeated_line_ratio(text: str) -> float:
    """Share of the characters in non-blank lines that are in lines repeating an earlier one."""
    seen: set[str] = set()
    total = repeated = 0
    for line in text.splitlines():
        line = line.strip()
        total += len(line)
        if line in seen:
            repeated += len(line)
        seen.add(line)
    return repeated / total if total else 0.0


def top_ngram_ratio(text: str) -> float:
    """Share of the characters of all words covered by occurrences of the most frequent word 2-gram."""
    words = WORD.findall(text.lower())
    pairs = Counter(zip(words, words[1:], strict=False))
    if not pairs:
        return 0.0
    (first, second), count = pairs.most_common(1)[0]
    if count < 2:
        return 0.0
    if first != second:  # occurrences of "a b" cannot overlap
        covered = count * (len(first) + len(second))
    else:  # "buy buy buy": every word of each run of two or more
        runs = (sum(1 for _ in run) for word, run in groupby(words) if word == first)
        covered = sum(n for n in runs if n >= 2) * len(first)
    return covered / sum(map(len, words))


def symbol_ratio(text: str) -> float:
    """Share of the non-space characters that are neither letters, digits nor combining marks (Hindi vowels)."""
    found = SYMBOL.findall(text)
    symbols = text.count("_") + sum(1 for ch in found if not unicodedata.category(ch).startswith("M"))
    return symbols / max(1, _visible(text))


def digit_ratio(text: str) -> float:
    """Share of the non-space characters that are digits."""
    return len(DIGIT.findall(text)) / max(1, _visible(text))


def _visible(text: str) -> int:
    return sum(map(len, text.split()))  # characters that are not spaces (str.split is the fast way)


# The low-information checks, in order: (reason, FilterConfig field with the largest share kept, measure).
QUALITY_CHECKS: list[tuple[str, str, Callable[[str], float]]] = [
    ("repeated_lines", "max_repeated_line_ratio", repeated_line_ratio),
    ("repeated_ngrams", "max_top_ngram_ratio", top_ngram_ratio),
    ("symbol_ratio", "max_symbol_ratio", symbol_ratio),
    ("digit_ratio", "max_digit_ratio", digit_ratio),
]
