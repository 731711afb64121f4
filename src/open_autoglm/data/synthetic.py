"""The quickstart's demo data: a small synthetic 4-topic news-headline set, written by the project itself.

Synthetic on purpose: it ships with no licence question and no download. It is built from templates and word
lists, so it is easier than real news; it shows the pipeline working end to end, not state-of-the-art quality.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS: dict[str, dict[str, list[str]]] = {
    "sports": {
        "subject": [
            "the home team",
            "the striker",
            "the coach",
            "the veteran goalkeeper",
            "the sprinter",
            "the captain",
        ],
        "event": [
            "won the final",
            "scored twice in the second half",
            "was injured before the match",
            "signed a new contract with the club",
            "broke the national record",
            "lost on penalties",
        ],
        "place": ["at the stadium", "in the league", "at the championship", "during the tournament"],
    },
    "business": {
        "subject": [
            "the bank",
            "the retailer",
            "shareholders",
            "the central bank",
            "the startup",
            "the carmaker",
        ],
        "event": [
            "reported higher quarterly profits",
            "cut its sales forecast",
            "announced a merger",
            "raised interest rates",
            "laid off hundreds of workers",
            "saw its shares fall sharply",
        ],
        "place": [
            "on the stock market",
            "after the earnings call",
            "amid weak demand",
            "in the third quarter",
        ],
    },
    "science": {
        "subject": [
            "researchers",
            "astronomers",
            "the space agency",
            "biologists",
            "a team of physicists",
            "doctors",
        ],
        "event": [
            "discovered a new species",
            "launched a probe to study the planet",
            "published a study on the virus",
            "observed a distant galaxy",
            "developed a faster vaccine test",
            "measured the particle's mass",
        ],
        "place": [
            "in the laboratory",
            "using the new telescope",
            "in a peer-reviewed journal",
            "at the institute",
        ],
    },
    "world": {
        "subject": [
            "the president",
            "the parliament",
            "protesters",
            "the foreign minister",
            "rebel forces",
            "voters",
        ],
        "event": [
            "signed a peace agreement",
            "called for new elections",
            "marched through the capital",
            "met the neighbouring leaders",
            "rejected the ceasefire",
            "approved the new constitution",
        ],
        "place": ["after the summit", "in the capital", "near the border", "at the United Nations"],
    },
}
_TEMPLATES = [
    "{subject} {event} {place}",
    "{place}, {subject} {event}",
    "reports say {subject} {event}",
    "{subject} {event}, officials said",
]


def make_topic_rows(
    n: int, seed: int = 0, mixed: float = 0.0, label_noise: float = 0.0
) -> list[dict[str, str]]:
    """n balanced rows {"text", "label"}; deterministic for a seed.

    `mixed`: the share of rows whose subject and place come from another topic, so that only the event tells
    the topic (a distractor the model must learn to ignore). `label_noise`: the share of rows given a random
    other label — the ceiling of accuracy. Both make the set hard enough for settings to matter.
    """
    rng = random.Random(seed)
    labels = sorted(TOPICS)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        slots = {k: rng.choice(v) for k, v in TOPICS[label].items()}
        if rng.random() < mixed:
            other = TOPICS[rng.choice([t for t in labels if t != label])]
            slots |= {"subject": rng.choice(other["subject"]), "place": rng.choice(other["place"])}
        text = rng.choice(_TEMPLATES).format(**slots)
        if rng.random() < label_noise:
            label = rng.choice([t for t in labels if t != label])
        rows.append({"text": text[0].upper() + text[1:] + ".", "label": label})
    rng.shuffle(rows)
    return rows


def write_topic_dataset(
    path: Path, n: int = 800, seed: int = 0, mixed: float = 0.0, label_noise: float = 0.0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in make_topic_rows(n, seed, mixed, label_noise):
            handle.write(json.dumps(row) + "\n")
    return path
