"""Exact and near-duplicate detection, streaming: rows arrive in order and the first occurrence is kept.

- Exact: `exact_key(text)`, a 16-byte BLAKE2b hash of `normalise(text)` (case-folded, NFKC, punctuation and white
  space collapsed), so "Hello,  world!" and "hello world" are the same text.
- Near: b-bit MinHash over character n-grams of the normalised text (character shingles work for Chinese,
  which has no spaces), LSH banding to find candidates, and verification: a candidate is a near-duplicate only
  when the Jaccard similarity estimated from the two signatures reaches the threshold.

`signatures` is a pure function of its arguments (no Python `hash()` randomisation, no global state), so worker
processes can compute signatures for the `NearDuplicateIndex` that lives in the main process.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from array import array

import numpy as np
import rensa

# 1. Normalisation and the exact key --------------------------------------------------------------------------


class _PunctuationToSpace(dict[int, int | str]):
    """A `str.translate` table filled on first use: punctuation, symbols, separators and control characters
    become a space, invisible format characters (zero-width space, soft hyphen) vanish, the rest stays."""

    def __missing__(self, code: int) -> int | str:
        char = chr(code)
        category = unicodedata.category(char)
        value: int | str = code
        if category == "Cf":
            value = ""
        elif category[0] in "PSZ" or category == "Cc":
            # a compatibility character that NFKC turns into letters or digits (㎡ -> m2, ① -> 1) is left to NFKC
            folded = unicodedata.normalize("NFKC", char)
            if all(unicodedata.category(c)[0] in "PSZC" for c in folded):
                value = " "
        self[code] = value
        return value


_TABLE = _PunctuationToSpace()


def normalise(text: str) -> str:
    """The text as deduplication compares it: NFKC, case-folded, punctuation and white space collapsed."""
    # Punctuation goes first: full-width punctuation (，。！) is what sends Chinese text down NFKC's slow path,
    # and NFKC returns its input object unchanged when the rest is already normal (3x faster on mixed text).
    spaced = text.translate(_TABLE)
    folded = unicodedata.normalize("NFKC", spaced)
    if folded is not spaced:  # NFKC changed something: it may have made punctuation (＂ -> ")
        folded = folded.translate(_TABLE)
    return " ".join(folded.casefold().split())


def exact_key(text: str, *, normalised: bool = False) -> bytes:
    """16-byte hash of the normalised text (pass `normalised=True` when `text` already is)."""
    norm = text if normalised else normalise(text)
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# 2. MinHash signatures ---------------------------------------------------------------------------------------
#
# How, measured on 20k real English documents (630 characters, 12.5M shingles), 2 cores:
# - shingle hashing in numpy (below): 0.07 s; building a Python list of shingle strings instead: 2.9 s;
# - MinHash of those hashes with rensa (Rust, `digest_matrix_from_flat_token_hashes`): 0.08 s for 128
#   permutations (+0.2 s to turn its rows into numpy); the same 128 permutations `(a*h+b) >> 32` with a min per
#   document in numpy: 19.5 s; datasketch, one `update` per shingle: 31 us a shingle, ~390 s.
# So numpy hashes the shingles and rensa takes the minima. rensa's R-MinHash (algorithm version 2) is
# deterministic for a given (seed, rensa version); signatures are compared within one run, never stored.
#
# What: b-bit MinHash (Li & Koenig 2010). A signature of `num_perm` uint32 words holds the low 8 bits of
# 4 x num_perm minima: the same 512 bytes as 128 full minima, but half the estimation error (standard deviation
# 0.010 against 0.021 on 3,000 real near-duplicate pairs), which is what decides pairs near the threshold:
# recall at 0.8 went from 0.963 to 0.980 while fewer of 1,500 pairs at 0.65-0.8 passed (8.7% against 13.9%).
# Two different minima agree on their low 8 bits by chance (1/256); the estimate corrects for it.

_BITS = 8
_PER_WORD = 32 // _BITS  # minima packed in one uint32 word
_CHANCE = 1 / (1 << _BITS)  # two different minima agree on their low bits
_U32 = "I" if array("I").itemsize == 4 else "L"  # the array.array code of a 4-byte unsigned integer
_POLY = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: the polynomial base of the rolling shingle hash
_MASK64 = (1 << 64) - 1
# characters hashed per numpy pass: past the CPU cache, page faults on the temporaries dominate
_CHUNK_CHARS = 1 << 16


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place: the polynomial hash's low bits alone are poorly mixed."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _short_shingle(text: str) -> int:
    """The hash of a whole text shorter than the n-gram: the same polynomial and finaliser, in Python."""
    h = 0
    for char in text:
        h = (h * int(_POLY) + ord(char)) & _MASK64
    return int(_fmix64(np.array([h], dtype=np.uint64))[0])


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every character n-gram of each (normalised) text, flat, with row offsets.

    Returns `(hashes, offsets)`: text i's hashes are `hashes[offsets[i]:offsets[i + 1]]`. A text shorter than
    the n-gram (the empty text too) is one shingle of the whole text.
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    long = lengths >= ngram
    counts = np.where(long, lengths - ngram + 1, 1)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    windows = max(codes.size - ngram + 1, 0)
    # (windows,): the polynomial hash of the n characters from each position, then mixed
    h = codes[:windows].astype(np.uint64)
    for k in range(1, ngram):
        h *= _POLY
        h += codes[k : k + windows]
    _fmix64(h)
    # a window is kept when it ends inside its text: drop the ngram - 1 windows before each text's end (they
    # cover every window of a short text, which gets one shingle of its whole text below)
    keep = np.ones(windows, dtype=bool)
    ends = np.cumsum(lengths)
    crossing = (ends[:, None] - np.arange(1, ngram)[None, :]).ravel()
    keep[crossing[(crossing >= 0) & (crossing < windows)]] = False
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    out[np.repeat(long, counts)] = h[keep]
    for i in np.flatnonzero(~long):
        out[offsets[i]] = _short_shingle(texts[i])
    return out, offsets


def signatures(
    texts: list[str], ngram: int = 5, num_perm: int = 128, seed: int = 0, *, normalised: bool = False
) -> np.ndarray:
    """MinHash signatures of the texts' character n-grams: `(len(texts), num_perm)` uint32, each word packing
    the low 8 bits of 4 minima (b-bit MinHash; compare them with `estimated_jaccard`).

    A pure function: the same texts and arguments give the same signatures in any process.
    """
    out = np.empty((len(texts), num_perm * _PER_WORD), dtype=np.uint8)
    start = 0
    while start < len(texts):
        stop, chars = start, 0
        while stop < len(texts) and (chars < _CHUNK_CHARS or stop == start):
            chars += len(texts[stop])
            stop += 1
        chunk = texts[start:stop] if normalised else [normalise(t) for t in texts[start:stop]]
        hashes, offsets = shingle_hashes(chunk, ngram)
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, offsets.astype(np.uint64), num_perm * _PER_WORD, seed
        )
        # rensa gives lists; array.array reads a list of ints twice as fast as numpy does
        words = b"".join([array(_U32, row).tobytes() for row in matrix.to_rows()])
        out[start:stop] = (np.frombuffer(words, dtype=np.uint32) & 0xFF).reshape(stop - start, -1)
        start = stop
    return out.view(np.uint32)


def _agreeing(a: np.ndarray, b: np.ndarray) -> int:
    """Positions (8-bit minima) where two signatures agree."""
    return int(np.count_nonzero(a.view(np.uint8) == b.view(np.uint8)))


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity estimated from two signatures: the share of agreeing minima, less chance agreement."""
    share = _agreeing(a, b) / (a.size * _PER_WORD)
    return min(max((share - _CHANCE) / (1 - _CHANCE), 0.0), 1.0)


# 3. LSH index with verification ------------------------------------------------------------------------------


def lsh_bands(threshold: float, num_perm: int, catch: float = 0.99) -> tuple[int, int]:
    """(bands, rows per band) for LSH: the longest bands for which `num_perm // rows` of them make a pair at the
    threshold a candidate with probability `catch` or more (0.8, 128: 21 bands of 6).

    datasketch's `_optimal_param` balances false positives against false negatives (at 0.8 and 128 it picks
    9 x 13, which misses 60% of pairs at the threshold). Here every candidate is verified against its
    signature, so a false positive costs one comparison while a false negative is lost for good. Longer bands
    make fewer chance candidates; fewer bands take less memory.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= catch:
            return bands, rows
    return num_perm, 1


_BLOCK_ROWS = 1 << 14  # signatures are stored in blocks, so growing never copies (or doubles) the store
_MAX_PER_KEY = 64  # rows kept under one band key: bounds the work on heavily shared buckets
_MAX_LOAD = 0.7  # of a band table part; past it the part doubles
_PART_BITS = 8  # the band table is 2**8 parts, so a part that doubles holds 1/256 of the keys


class _BandTable:
    """Band key (32-bit) -> kept rows: open addressing with linear probing, in 256 parts chosen by the key's top
    bits, each doubling on its own (so growing never needs memory for a copy of the whole table).

    A slot holds a key and a row's internal index (-1: empty), 8 bytes; at a load of 0.35-0.7 that is 11-23
    bytes a key. array.array, not numpy: scalar reads from Python are several times faster.
    """

    def __init__(self) -> None:
        initial, parts = 256, 1 << _PART_BITS
        self._keys = [array("I", bytes(4 * initial)) for _ in range(parts)]
        self._rows = [array("i", b"\xff" * (4 * initial)) for _ in range(parts)]
        # a key's home slot in its part: the bits just under the part's
        self._shifts = [32 - _PART_BITS - initial.bit_length() + 1] * parts
        self._room = [int(_MAX_LOAD * initial)] * parts  # keys a part takes before it doubles

    @property
    def nbytes(self) -> int:
        return sum(8 * len(rows) for rows in self._rows)

    def find(self, keys: list[int]) -> tuple[set[int], list[int]]:
        """The rows under any of the keys, and for each key the free slot that ends its run (-1: the key is
        full), for `add`: probing is most of the cost."""
        found: set[int] = set()
        ends: list[int] = []
        top = 32 - _PART_BITS
        for key in keys:
            part = key >> top
            table_keys, table_rows = self._keys[part], self._rows[part]
            mask = len(table_rows) - 1
            slot, taken = (key >> self._shifts[part]) & mask, 0
            while (row := table_rows[slot]) >= 0:
                if table_keys[slot] == key:
                    found.add(row)
                    taken += 1
                slot = (slot + 1) & mask
            ends.append(slot if taken < _MAX_PER_KEY else -1)
        return found, ends

    def add(self, keys: list[int], row: int, ends: list[int]) -> None:
        """Add a row under its keys, at the `ends` that `find` just gave for them."""
        top, room = 32 - _PART_BITS, self._room
        full = [part for part in {key >> top for key in keys} if room[part] < len(keys)]
        for part in full:
            self._grow(part)
        if full:
            ends = self.find(keys)[1]
        for key, slot in zip(keys, ends, strict=True):
            if slot < 0:
                continue
            part = key >> top
            table_rows = self._rows[part]
            while table_rows[slot] >= 0:  # taken by another key of this row
                slot = (slot + 1) & (len(table_rows) - 1)
            self._keys[part][slot], table_rows[slot] = key, row
            room[part] -= 1

    def _grow(self, part: int) -> None:
        """Double one part, re-placing its entries (vectorised: rounds of claims on free slots)."""
        keys = np.frombuffer(self._keys[part], dtype=np.uint32)
        rows = np.frombuffer(self._rows[part], dtype=np.int32)
        used = np.flatnonzero(rows >= 0)
        used = used[np.argsort(rows[used], kind="stable")]  # earlier rows first, as they were added
        keys, rows = keys[used], rows[used]
        size = 2 * len(self._rows[part])
        self._shifts[part] -= 1
        new_keys, new_rows = np.zeros(size, dtype=np.uint32), np.full(size, -1, dtype=np.int32)
        slots = (keys >> np.uint32(self._shifts[part])) & np.uint32(size - 1)
        pending = np.arange(keys.size)
        while pending.size:
            # a pending entry takes its slot when the slot is free and no earlier pending entry wants it
            wanted = slots[pending]
            claim = np.zeros(pending.size, dtype=bool)
            claim[np.unique(wanted, return_index=True)[1]] = True
            claim &= new_rows[wanted] < 0
            placed = pending[claim]
            new_keys[slots[placed]], new_rows[slots[placed]] = keys[placed], rows[placed]
            pending = pending[~claim]
            slots[pending] = (slots[pending] + np.uint32(1)) & np.uint32(size - 1)
        self._keys[part], self._rows[part] = array("I", new_keys.tobytes()), array("i", new_rows.tobytes())
        self._room[part] = int(_MAX_LOAD * size) - keys.size


class NearDuplicateIndex:
    """MinHash LSH over kept rows; a candidate counts only when the estimated Jaccard reaches the threshold.

    Memory per kept row: its signature (4 bytes x num_perm), its id (8 bytes) and, per band, 11-23 bytes of the
    band table: about 0.85 KB at the defaults (128 words, 21 bands of 6 minima).
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.threshold, self.num_perm = threshold, num_perm
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        # agreeing 8-bit minima a near-duplicate needs: estimated Jaccard >= threshold
        positions = num_perm * _PER_WORD
        self._needed = math.ceil(positions * (threshold * (1 - _CHANCE) + _CHANCE) - 1e-9)
        # band key: the top 32 bits of a random linear hash of the band's values plus a per-band salt (a fixed
        # seed: keys never leave this process, but the same run should behave the same every time)
        randoms = np.random.default_rng(0x5EED).integers(
            0, 2**63, size=self.rows + self.bands, dtype=np.uint64
        )
        self._multipliers = randoms[: self.rows] * np.uint64(2) + np.uint64(1)
        self._salts = randoms[self.rows :]
        self._blocks: list[np.ndarray] = []  # (_BLOCK_ROWS, num_perm) uint32 each
        self._ids = array("q")  # internal index -> the caller's row id
        self._table = _BandTable()
        # the last lookup: the pipeline asks `match` and then `match_or_add` with the same signature
        self._memo: tuple[bytes, list[int], list[int], int | None] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        """Memory held by the signatures, ids and band table."""
        return sum(b.nbytes for b in self._blocks) + self._ids.itemsize * len(self._ids) + self._table.nbytes

    def match(self, signature: np.ndarray) -> int | None:
        """The row id of a kept row this signature near-duplicates (the most similar), or None."""
        found = self._lookup(signature)[3]
        return None if found is None else self._ids[found]

    def match_or_add(self, signature: np.ndarray, row_id: int) -> int | None:
        """Like `match`; when nothing matches, the row is kept (added under `row_id`) and None is returned."""
        _, keys, ends, found = self._lookup(signature)
        if found is not None:
            return self._ids[found]
        index = len(self._ids)
        if index % _BLOCK_ROWS == 0:
            self._blocks.append(np.empty((_BLOCK_ROWS, self.num_perm), dtype=np.uint32))
        self._blocks[-1][index % _BLOCK_ROWS] = signature
        self._ids.append(row_id)
        self._table.add(keys, index, ends)
        self._memo = None
        return None

    def _lookup(self, signature: np.ndarray) -> tuple[bytes, list[int], list[int], int | None]:
        """(signature bytes, band keys, their table ends, best match): memoised for the next call."""
        if signature.shape != (self.num_perm,):
            raise ValueError(f"signature must have shape ({self.num_perm},), got {signature.shape}")
        signature = np.ascontiguousarray(signature, dtype=np.uint32)
        data = signature.tobytes()
        if self._memo is not None and self._memo[0] == data:
            return self._memo
        # bands of the first bands x rows 8-bit minima (a chance collision of a band: 256**-rows)
        bands = (
            signature.view(np.uint8)[: self.bands * self.rows]
            .reshape(self.bands, self.rows)
            .astype(np.uint64)
        )
        keys = ((bands @ self._multipliers + self._salts) >> np.uint64(32)).tolist()  # (bands,)
        candidates, ends = self._table.find(keys)
        best, best_agree = None, self._needed - 1
        for index in sorted(candidates):  # ties go to the earliest row
            stored = self._blocks[index // _BLOCK_ROWS][index % _BLOCK_ROWS]
            agree = _agreeing(stored, signature)
            if agree > best_agree:
                best, best_agree = index, agree
        self._memo = data, keys, ends, best
        return self._memo


__all__ = [
    "NearDuplicateIndex",
    "estimated_jaccard",
    "exact_key",
    "lsh_bands",
    "normalise",
    "shingle_hashes",
    "signatures",
]
