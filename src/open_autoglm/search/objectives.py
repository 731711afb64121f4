"""What a trial is scored on: objective names and directions, AHP or explicit weights, a weighted score, a Pareto front.

The study loop measures the built-in objectives; a plugin's objective (entry point group
`open_autoglm.objectives`, an `Objective` with a `measure`) measures itself on the trained model. This module
turns measurements into what Optuna optimises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from open_autoglm.registry import Registry

if TYPE_CHECKING:
    from open_autoglm.config import Config
    from open_autoglm.config.sections import SearchConfig

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class TrialOutcome:
    """What a plugin's objective measures: the trained model (in eval mode) and the trial's validation rows."""

    model: Any  # torch.nn.Module; PEFT-wrapped for the PEFT methods
    tokenizer: Any
    validation: Any  # datasets.Dataset of tokenised rows: input_ids, attention_mask, labels
    metrics: dict[str, float]  # the validation metrics the Trainer computed
    config: Config  # the trial's config
    device: Any  # torch.device the model is on


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Direction | None  # None: set by the task's metric (accuracy up, loss down)
    unit: str
    description: str
    # None: a built-in, measured by the study loop. A plugin's: a finite number from the trained model.
    measure: Callable[[TrialOutcome], float] | None = None
    # The weighted score divides a relative objective by the untuned model's value (the built-in costs, in ms,
    # MB or parameters); any other counts as it is, like a metric: keep it on a metric's scale (about 0-1).
    relative: bool = False


# The built-ins are entries like a plugin's, each registered under its own `name`.
OBJECTIVES: Registry[Objective] = Registry("objective", "open_autoglm.objectives")
OBJECTIVES.register(Objective("quality", None, "metric", "the task's primary metric on validation"))
OBJECTIVES.register(
    Objective(
        "latency",
        "minimize",
        "ms/example or ms/token",
        "inference time per example; per generated token for a causal LM (greedy, fixed length)",
        relative=True,
    )
)
OBJECTIVES.register(Objective("memory", "minimize", "MB", "peak memory during training", relative=True))
OBJECTIVES.register(Objective("params", "minimize", "parameters", "trainable parameters", relative=True))
OBJECTIVES.register(
    Objective("size", "minimize", "MB", "saved artifact (adapter or full model)", relative=True)
)


def objective_named(name: str) -> Objective:
    """The registered objective, or an error that says what is wrong with a plugin's."""
    objective = OBJECTIVES.get(name)
    if not isinstance(objective, Objective):
        raise ValueError(
            f"objective {name!r} is a {type(objective).__name__}; a plugin's entry point must be an "
            "open_autoglm.search.objectives.Objective"
        )
    if name == "quality" or (objective.relative and objective.measure is None):
        return objective  # a built-in
    if objective.direction is None or objective.measure is None or objective.relative:
        raise ValueError(
            f"objective {name!r} needs a direction (maximize or minimize) and a measure function, and cannot "
            "be relative (only the built-in costs have the untuned model's value to divide by)"
        )
    return objective


# Saaty's random consistency index by matrix size: the mean CI of random reciprocal matrices.
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49}


@dataclass(frozen=True)
class AhpResult:
    weights: dict[str, float]
    lambda_max: float
    ci: float
    cr: float
    # The judgement furthest from what the weights imply (w_a/w_b): the one to revisit when CR is too high.
    worst_key: str | None
    worst_value: float | None
    implied_value: float | None


def _pairwise_matrix(
    preferences: dict[str, float], names: Sequence[str]
) -> tuple[np.ndarray, dict[tuple[int, int], str]]:
    index = {name: i for i, name in enumerate(names)}
    matrix = np.ones((len(names), len(names)))
    given: dict[tuple[int, int], str] = {}  # (i, j) -> the key the user wrote
    for key, value in preferences.items():
        a, sep, b = key.partition("/")
        if not sep or a not in index or b not in index or a == b:
            raise ValueError(f'search.preferences: "{key}" must be "a/b" with a != b among {names}')
        if not 1 / 9 <= value <= 9:
            raise ValueError(f'search.preferences "{key}": {value} is outside Saaty\'s scale [1/9, 9]')
        i, j = index[a], index[b]
        if (j, i) in given and not math.isclose(matrix[i, j], value, rel_tol=1e-6):
            raise ValueError(
                f'search.preferences: "{key}" = {value} is not the reciprocal of "{given[j, i]}"'
            )
        matrix[i, j], matrix[j, i] = value, 1 / value
        given.setdefault((i, j), key)
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            if (i, j) not in given and (j, i) not in given:
                raise ValueError(f'search.preferences: missing the judgement "{a}/{names[j]}"')
    return matrix, given


def ahp_weights(preferences: dict[str, float], names: Sequence[str], max_cr: float | None = 0.1) -> AhpResult:
    """Weights from pairwise judgements ("a/b": 5 means a matters 5x more than b), by Saaty's AHP.

    The weights are the principal eigenvector of the reciprocal matrix; CR = CI/RI with CI = (lambda_max-n)/(n-1)
    tells how far the judgements contradict each other. CR > max_cr is refused (max_cr=None only computes).
    """
    if len(names) > len(RANDOM_INDEX):
        raise ValueError(f"AHP supports at most {len(RANDOM_INDEX)} objectives, got {len(names)}")
    matrix, given = _pairwise_matrix(preferences, names)
    n = len(names)
    eigenvalues, eigenvectors = np.linalg.eig(matrix)
    k = int(np.argmax(eigenvalues.real))
    vector = eigenvectors[:, k].real
    weights = vector / vector.sum()  # the Perron vector has one sign, so this is positive
    lambda_max = float(eigenvalues[k].real)
    # n <= 2 is consistent by construction; rounding would otherwise give a tiny non-zero CI.
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    cr = ci / RANDOM_INDEX[n] if n > 2 else 0.0

    def deviation(ij: tuple[int, int]) -> float:  # how many-fold the judgement misses w_i/w_j, either way
        i, j = ij
        return abs(math.log(matrix[i, j] * weights[j] / weights[i]))

    worst = max(given, key=deviation, default=None)
    result = AhpResult(
        weights=dict(zip(names, (float(w) for w in weights), strict=True)),
        lambda_max=lambda_max,
        ci=ci,
        cr=cr,
        worst_key=given[worst] if worst is not None else None,
        worst_value=float(matrix[worst]) if worst is not None else None,
        implied_value=float(weights[worst[0]] / weights[worst[1]]) if worst is not None else None,
    )
    if max_cr is not None:
        check_consistent(result, max_cr)
    return result


def check_consistent(result: AhpResult, limit: float = 0.1) -> None:
    """Refuse judgements that contradict each other (Saaty's rule: CR above 0.1), naming the one to revisit."""
    if result.cr > limit:
        raise ValueError(
            f"search.preferences are inconsistent: CR={result.cr:.3f} > {limit}. "
            f'Revisit "{result.worst_key}" = {result.worst_value:g}: '
            f"the weights imply about {result.implied_value:.2g}"
        )


def resolve_weights(search: SearchConfig) -> dict[str, float]:
    """Objective weights summing to 1: search.weights normalised, AHP on search.preferences, else quality only."""
    names = list(search.objectives)
    if search.weights is not None:
        weights = {name: float(w) for name, w in search.weights.items()}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"search.weights must be >= 0 with a positive sum, got {weights}")
        total = sum(weights.values())
        return {name: w / total for name, w in weights.items()}
    if search.preferences is not None:
        return ahp_weights(search.preferences, names).weights
    return {"quality": 1.0}


def score_breakdown(
    values: dict[str, float],
    weights: dict[str, float],
    references: dict[str, float],
    quality_direction: Direction,
) -> dict[str, float]:
    """Each objective's signed contribution to the weighted score; they sum to `weighted_score`."""
    parts: dict[str, float] = {}
    for name, weight in weights.items():
        if name not in values:
            raise ValueError(f"objective {name} has a weight but was not measured")
        objective = objective_named(name)
        if not objective.relative:
            direction = objective.direction or quality_direction
            parts[name] = weight * (values[name] if direction == "maximize" else -values[name])
            continue
        reference = references.get(name)
        if reference is None or not reference > 0:
            raise ValueError(f"objective {name}: the reference trial's value must be > 0, got {reference}")
        parts[name] = -weight * values[name] / reference
    return parts


def weighted_score(
    values: dict[str, float],
    weights: dict[str, float],
    references: dict[str, float],
    quality_direction: Direction,
) -> float:
    """One number to maximise: score = w_q * (+/-)quality - sum_c w_c * value_c / reference_c (+/-) plugins' values.

    Quality is negated when the task minimises it (loss). Each cost c (latency, memory, params, size) counts
    relative to the untuned model's (`references`), so costs in ms, MB or parameters share one scale: half the
    reference latency costs 0.5 * w_latency, the reference itself costs w_latency. A plugin's objective counts
    as it is, with its weight, negated when it is minimised.
    """
    return sum(score_breakdown(values, weights, references, quality_direction).values())


def pareto_front(points: list[list[float]], directions: list[str]) -> list[int]:
    """Indices of the non-dominated points. Equal points are all kept.

    Hand-written: optuna 5.0.0 only has private helpers (optuna.study._multi_objective._is_pareto_front).
    """
    if any(d not in ("maximize", "minimize") for d in directions):
        raise ValueError(f"directions must be maximize or minimize, got {directions}")
    if any(len(point) != len(directions) for point in points):
        raise ValueError(f"every point needs {len(directions)} values, one per direction")
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    costs = (
        np.asarray(points, dtype=float).reshape(len(points), len(directions)) * signs
    )  # (N, M), lower wins
    return [
        i
        for i, point in enumerate(costs)  # dominated: another point no worse anywhere and better somewhere
        if not np.any(np.all(costs <= point, axis=1) & np.any(costs < point, axis=1))
    ]


def study_directions(objectives: Sequence[str], mode: str, quality_direction: Direction) -> list[Direction]:
    """Directions for optuna.create_study: quality alone goes its own way (a loss is minimised), the weighted
    score is maximised, and a Pareto study has one per objective."""
    unknown = [name for name in objectives if name not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objectives {unknown}; known: {OBJECTIVES.names()}")
    if list(objectives) == ["quality"]:
        return [quality_direction]
    if mode == "weighted":
        return ["maximize"]
    if mode != "pareto":
        raise ValueError(f"mode must be weighted or pareto, got {mode}")
    return [objective_named(name).direction or quality_direction for name in objectives]
