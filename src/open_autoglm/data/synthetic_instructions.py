"""The SFT quickstart's demo data: short instructions with one exact answer each, written by the project itself.

Synthetic on purpose, as the topic headlines are: no licence question, no download. Every answer is one word or a
few, so a chat model that answers at length (as SmolLM2-Instruct does) scores low on exact match before tuning and
learns the terse format within an epoch: the gain is visible in minutes on a CPU.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "early": "late", "light": "dark",
    "open": "closed", "full": "empty", "high": "low", "old": "new", "strong": "weak", "wet": "dry",
    "loud": "quiet", "rich": "poor", "hard": "soft", "long": "short", "first": "last", "inside": "outside",
}  # fmt: skip
PLURALS = {
    "mouse": "mice", "child": "children", "tooth": "teeth", "foot": "feet", "man": "men", "woman": "women",
    "goose": "geese", "box": "boxes", "city": "cities", "leaf": "leaves", "knife": "knives", "bus": "buses",
    "person": "people", "wolf": "wolves", "story": "stories", "dish": "dishes",
}  # fmt: skip
WORDS = [
    "apple", "river", "garden", "pencil", "window", "rocket", "planet", "guitar", "button", "silver", "orange",
    "candle", "forest", "bridge", "winter", "market", "ticket", "yellow", "dragon", "island", "basket", "coffee",
]  # fmt: skip
COUNTRIES = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin", "Egypt": "Cairo",
    "Canada": "Ottawa", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo", "China": "Beijing",
    "Greece": "Athens", "Portugal": "Lisbon", "Poland": "Warsaw", "Chile": "Santiago", "Ireland": "Dublin",
}  # fmt: skip


def _opposite(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(sorted(OPPOSITES))
    return f"What is the opposite of '{word}'? Answer with one word.", OPPOSITES[word]


def _plural(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(sorted(PLURALS))
    return f"Give the plural of '{word}'. Answer with one word.", PLURALS[word]


def _capitals(rng: random.Random) -> tuple[str, str]:
    words = " ".join(rng.sample(WORDS, 2))
    return f"Write '{words}' in capital letters.", words.upper()


def _reverse(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    return f"Spell '{word}' backwards.", word[::-1]


def _sum(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return f"What is {a} plus {b}? Answer with the number only.", str(a + b)


def _capital_city(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(COUNTRIES))
    return f"What is the capital of {country}? Answer with the city only.", COUNTRIES[country]


def _sort(rng: random.Random) -> tuple[str, str]:
    numbers = rng.sample(range(1, 60), 3)
    listed = ", ".join(map(str, numbers))
    return f"Sort these numbers from smallest to largest: {listed}.", ", ".join(map(str, sorted(numbers)))


KINDS: list[Callable[[random.Random], tuple[str, str]]] = [
    _opposite,
    _plural,
    _capitals,
    _reverse,
    _sum,
    _capital_city,
    _sort,
]


def make_instruction_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` distinct {instruction, output} rows, the kinds in turn (fewer if the kinds run out of variety)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for attempt in range(50 * n):  # a kind that runs out of variety is skipped over
        if len(rows) == n:
            break
        instruction, output = KINDS[attempt % len(KINDS)](rng)
        if instruction not in seen:
            seen.add(instruction)
            rows.append({"instruction": instruction, "output": output})
    return rows


def write_instruction_dataset(path: Path, n: int, seed: int = 0) -> Path:
    """The rows as Alpaca-format JSON lines at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = make_instruction_rows(n, seed)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
