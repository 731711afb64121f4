"""Objectives: AHP recovers known weights and refuses contradictions, the weighted score, the Pareto front."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from open_autoglm.cli.registered import require_registered
from open_autoglm.config import Config, ConfigError
from open_autoglm.config.sections import SearchConfig
from open_autoglm.search.measure import measure_plugin
from open_autoglm.search.objectives import (
    OBJECTIVES,
    Objective,
    TrialOutcome,
    ahp_weights,
    check_consistent,
    pareto_front,
    resolve_weights,
    score_breakdown,
    study_directions,
    weighted_score,
)

NAMES = ["quality", "latency", "memory"]


def _consistent(weights: dict[str, float]) -> dict[str, float]:
    names = list(weights)
    return {f"{a}/{b}": weights[a] / weights[b] for i, a in enumerate(names) for b in names[i + 1 :]}


def test_objectives_table() -> None:
    assert OBJECTIVES.get("quality").direction is None
    costs = [OBJECTIVES.get(n) for n in ("latency", "memory", "params", "size")]
    assert all(c.direction == "minimize" and c.relative and c.measure is None for c in costs)


@pytest.fixture
def calibration(monkeypatch: pytest.MonkeyPatch) -> Objective:
    """A plugin's objective, registered for one test (the registry's table is restored after it)."""
    objective = Objective("ece", "minimize", "fraction", "calibration error", measure=lambda outcome: 0.25)
    monkeypatch.setitem(OBJECTIVES._entries, "ece", objective)
    return objective


def test_a_plugins_objective_counts_as_it_is_in_the_weighted_score(calibration: Objective) -> None:
    weights = {"quality": 0.5, "latency": 0.3, "ece": 0.2}
    values = {"quality": 0.9, "latency": 5.0, "ece": 0.25}
    parts = score_breakdown(values, weights, {"latency": 10.0}, "maximize")
    assert parts == pytest.approx({"quality": 0.45, "latency": -0.15, "ece": -0.05})  # no reference needed
    assert study_directions(["quality", "ece"], "pareto", "maximize") == ["maximize", "minimize"]
    search = SearchConfig(objectives=["quality", "ece"], weights={"quality": 0.8, "ece": 0.2})
    assert resolve_weights(search) == pytest.approx({"quality": 0.8, "ece": 0.2})


def test_a_plugins_objective_must_say_its_direction_and_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OBJECTIVES._entries, "vague", Objective("vague", None, "", "", measure=lambda o: 0.0))
    monkeypatch.setitem(OBJECTIVES._entries, "unmeasured", Objective("unmeasured", "maximize", "", ""))
    monkeypatch.setitem(OBJECTIVES._entries, "wrong", "not an objective")

    def check(*names: str) -> None:
        require_registered(Config(search=SearchConfig(objectives=["quality", *names])))

    for name in ("vague", "unmeasured"):
        with pytest.raises(ConfigError, match=f"objective '{name}' needs a direction"):
            check(name)
    with pytest.raises(ConfigError, match="entry point must be an open_autoglm.search.objectives.Objective"):
        check("wrong")
    with pytest.raises(ConfigError, match="search.objectives: unknown objective 'speed'; known: .*latency"):
        check("speed")


def test_a_plugins_value_must_be_a_finite_number() -> None:
    model = nn.Linear(2, 2).train()
    outcome = TrialOutcome(model, None, None, {}, None, "cpu")  # type: ignore[arg-type]
    seen = []

    def in_eval_mode(o: TrialOutcome) -> float:
        seen.append(o.model.training)
        return 0.5

    assert measure_plugin("ece", in_eval_mode, outcome) == 0.5
    assert seen == [False] and model.training  # evaluated in eval mode, then put back
    for bad in (float("nan"), None, "0.5", True):
        with pytest.raises(ValueError, match=f"objective 'ece' \\(a plugin\\) returned {bad!r}"):
            measure_plugin("ece", lambda o, bad=bad: bad, outcome)  # type: ignore[misc]


def test_ahp_recovers_consistent_weights() -> None:
    known = {"quality": 0.6, "latency": 0.3, "memory": 0.1}
    result = ahp_weights(_consistent(known), NAMES)
    assert result.weights == pytest.approx(known, abs=1e-6)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert result.lambda_max == pytest.approx(3.0, abs=1e-9)
    assert result.cr == pytest.approx(0.0, abs=1e-9)


def test_ahp_accepts_reverse_keys_and_agreeing_duplicates() -> None:
    prefs = {"latency/quality": 0.5, "quality/latency": 2.0, "memory/quality": 0.25, "latency/memory": 2.0}
    assert ahp_weights(prefs, NAMES).weights == pytest.approx(
        {"quality": 4 / 7, "latency": 2 / 7, "memory": 1 / 7}
    )


def test_ahp_two_objectives_always_consistent() -> None:
    result = ahp_weights({"quality/size": 3}, ["quality", "size"])
    assert result.weights == pytest.approx({"quality": 0.75, "size": 0.25})
    assert result.cr == 0.0


def test_ahp_refuses_cyclic_judgements() -> None:
    prefs = {"quality/latency": 9, "latency/memory": 9, "memory/quality": 9}
    with pytest.raises(
        ValueError, match=r"CR=\d+\.\d+ > 0\.1.*Revisit \"(quality/latency|latency/memory|memory/quality)\""
    ):
        ahp_weights(prefs, NAMES)
    result = ahp_weights(prefs, NAMES, max_cr=None)
    assert result.cr > 1.0
    with pytest.raises(ValueError, match="CR="):
        check_consistent(result)


def test_ahp_names_the_judgement_to_revisit() -> None:
    # Consistent 4:2:1 except memory/latency, flipped: that judgement is the odd one out.
    prefs = {"quality/latency": 2, "quality/memory": 4, "latency/memory": 1 / 6}
    result = ahp_weights(prefs, NAMES, max_cr=None)
    assert result.worst_key == "latency/memory"
    check_consistent(result, limit=1.0)  # a looser limit lets it through
    with pytest.raises(ValueError, match='Revisit "latency/memory"'):
        check_consistent(result, limit=0.01)


@pytest.mark.parametrize(
    ("prefs", "message"),
    [
        ({"quality/latency": 2, "quality/memory": 3}, 'missing the judgement "latency/memory"'),
        ({"quality-latency": 2}, '"quality-latency" must be "a/b"'),
        ({"quality/quality": 2}, "a != b"),
        ({"quality/params": 2}, '"quality/params" must be'),
        ({"quality/latency": 10, "quality/memory": 1, "latency/memory": 1}, "outside Saaty's scale"),
        (
            {"quality/latency": 2, "latency/quality": 2, "quality/memory": 1, "latency/memory": 1},
            "not the reciprocal",
        ),
    ],
)
def test_ahp_rejects_bad_preferences(prefs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ahp_weights(prefs, NAMES)


def test_resolve_weights() -> None:
    assert resolve_weights(SearchConfig()) == {"quality": 1.0}
    weighted = SearchConfig(objectives=NAMES, weights={"quality": 3, "latency": 1})
    assert resolve_weights(weighted) == pytest.approx({"quality": 0.75, "latency": 0.25})
    prefs = SearchConfig(
        objectives=NAMES, preferences=_consistent({"quality": 0.6, "latency": 0.3, "memory": 0.1})
    )
    assert resolve_weights(prefs) == pytest.approx({"quality": 0.6, "latency": 0.3, "memory": 0.1}, abs=1e-6)
    with pytest.raises(ValueError, match="positive sum"):
        resolve_weights(SearchConfig(objectives=NAMES, weights={"quality": 0, "latency": 0}))


def test_weighted_score_by_hand() -> None:
    weights = {"quality": 0.5, "latency": 0.3, "memory": 0.2}
    references = {"latency": 10.0, "memory": 400.0}
    values = {"quality": 0.9, "latency": 5.0, "memory": 800.0}
    parts = score_breakdown(values, weights, references, "maximize")
    assert parts == pytest.approx({"quality": 0.45, "latency": -0.15, "memory": -0.4})
    assert weighted_score(values, weights, references, "maximize") == pytest.approx(0.45 - 0.15 - 0.4)
    # A loss is minimised: it enters negated.
    assert weighted_score({"quality": 2.0}, {"quality": 1.0}, {}, "minimize") == pytest.approx(-2.0)


def test_weights_decide_the_ranking() -> None:
    references = {"latency": 10.0}
    accurate_slow = {"quality": 0.95, "latency": 20.0}
    rough_fast = {"quality": 0.80, "latency": 5.0}

    def accurate_wins(weights: dict[str, float]) -> bool:
        scores = [weighted_score(v, weights, references, "maximize") for v in (accurate_slow, rough_fast)]
        return scores[0] > scores[1]

    assert accurate_wins({"quality": 0.99, "latency": 0.01})
    assert not accurate_wins({"quality": 0.01, "latency": 0.99})


@pytest.mark.parametrize("reference", [0.0, -1.0, None])
def test_weighted_score_refuses_bad_reference(reference: float | None) -> None:
    references = {} if reference is None else {"latency": reference}
    with pytest.raises(ValueError, match="latency"):
        weighted_score(
            {"quality": 1.0, "latency": 3.0}, {"quality": 0.5, "latency": 0.5}, references, "maximize"
        )


def test_weighted_score_refuses_unmeasured_objective() -> None:
    with pytest.raises(ValueError, match="memory"):
        weighted_score({"quality": 1.0}, {"quality": 0.5, "memory": 0.5}, {"memory": 1.0}, "maximize")


def test_pareto_front_by_hand() -> None:
    # (accuracy up, latency down)
    points = [[0.9, 10.0], [0.8, 5.0], [0.85, 12.0], [0.9, 10.0], [0.7, 5.0], [0.95, 30.0]]
    # 2 is beaten by 0; 4 by 1; the duplicates 0 and 3 do not beat each other.
    assert pareto_front(points, ["maximize", "minimize"]) == [0, 1, 3, 5]
    assert pareto_front([], ["maximize"]) == []


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_is_exactly_the_non_dominated(seed: int) -> None:
    rng = np.random.default_rng(seed)
    directions = ["maximize", "minimize", "minimize"]
    points = rng.integers(0, 6, size=(60, 3)).astype(float)  # small integers: ties and duplicates happen
    front = pareto_front(points.tolist(), directions)
    costs = points * np.array([-1.0, 1.0, 1.0])
    assert front, "a non-empty set always has a front"
    for i in range(len(points)):
        if i in front:
            assert not any(_dominates(costs[j], costs[i]) for j in range(len(points)))
        else:
            assert any(_dominates(costs[j], costs[i]) for j in front)


def test_pareto_front_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="directions"):
        pareto_front([[1.0]], ["up"])
    with pytest.raises(ValueError, match="2 values"):
        pareto_front([[1.0]], ["maximize", "minimize"])


def test_study_directions() -> None:
    assert study_directions(NAMES, "weighted", "minimize") == ["maximize"]
    assert study_directions(["quality", "size"], "pareto", "minimize") == ["minimize", "minimize"]
    assert study_directions(["latency", "quality"], "pareto", "maximize") == ["minimize", "maximize"]
    with pytest.raises(ValueError, match="unknown objectives"):
        study_directions(["quality", "speed"], "pareto", "maximize")
