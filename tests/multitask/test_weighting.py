"""The loss weightings: PCGrad's projection, learnable uncertainty weights, GradNorm's balancing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from open_autoglm.multitask.weighting import (
    WEIGHTINGS,
    GradNormWeighting,
    PCGradWeighting,
    UncertaintyWeighting,
    project_conflicting,
)


def test_registry_holds_the_four() -> None:
    assert WEIGHTINGS.names() == ["fixed", "gradnorm", "pcgrad", "uncertainty"]


def test_pcgrad_removes_the_conflicting_component() -> None:
    g1, g2 = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([-1.0, 1.0, 0.0])
    assert torch.dot(g1, g2) < 0
    p1, p2 = project_conflicting([g1, g2])
    assert torch.dot(p1, g2) == pytest.approx(0.0, abs=1e-6)  # g1 lost its part along g2
    assert torch.dot(p2, g1) == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(p1, torch.tensor([0.5, 0.5, 2.0]))
    # agreeing gradients are left alone
    q1, q2 = project_conflicting([g1, torch.tensor([1.0, 1.0, 0.0])])
    assert torch.equal(q1, g1) and torch.equal(q2, torch.tensor([1.0, 1.0, 0.0]))


def test_pcgrad_projects_only_shared_coordinates() -> None:
    g1, g2 = torch.tensor([1.0, 0.0, 3.0, 0.0]), torch.tensor([-1.0, 1.0, 0.0, 4.0])
    shared = torch.tensor([True, True, False, False])  # the last two are each task's own head
    p1, p2 = project_conflicting([g1, g2], shared)
    assert p1[2] == 3.0 and p2[3] == 4.0  # heads keep their gradient
    assert torch.dot(p1[:2], g2[:2]) == pytest.approx(0.0, abs=1e-6)


def test_pcgrad_weighting_leaves_projected_gradient_in_grad() -> None:
    torch.manual_seed(0)
    shared, head_a, head_b = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 1)
    head_b.load_state_dict(head_a.state_dict())
    x = torch.randn(8, 3)
    h = shared(x)
    # b pulls the shared layer exactly against a (cosine -1): PCGrad cancels both shared gradients
    losses = {"a": head_a(h).mean(), "b": -3 * head_b(h).mean()}
    params = [*shared.parameters(), *head_a.parameters(), *head_b.parameters()]
    grads = {
        t: torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        for t, loss in losses.items()
    }
    assert grads["a"][0].norm() > 0.1  # plain summing would leave -2 x a's gradient
    PCGradWeighting(["a", "b"], [1.0, 1.0]).backward(losses, params, lambda t: t.backward())
    assert torch.allclose(shared.weight.grad, torch.zeros(3, 3), atol=1e-6)
    assert torch.allclose(head_a.weight.grad, grads["a"][2])  # heads: their own task's gradient only
    assert torch.allclose(head_b.weight.grad, grads["b"][4])


def test_uncertainty_weights_learn_to_down_weight_the_larger_loss() -> None:
    weighting = UncertaintyWeighting(["big", "small"], [1.0, 1.0])
    assert weighting.optimizer_parameters() == [weighting.log_vars]
    optimizer = torch.optim.Adam(weighting.optimizer_parameters(), lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        losses = {"big": torch.tensor(4.0), "small": torch.tensor(0.25)}
        weighting.backward(losses, [], lambda t: t.backward())
        optimizer.step()
    weights = weighting.weights()
    # exp(-s) L + s/2 is lowest at exp(-s) = 1 / (2 L)
    assert weights["big"] == pytest.approx(1 / 8, rel=0.05)
    assert weights["small"] == pytest.approx(2.0, rel=0.05)


def _norm_ratio(shared: nn.Linear, losses: dict[str, torch.Tensor], weights: dict[str, float]) -> float:
    norms = [
        weights[t] * torch.autograd.grad(loss, shared.weight, retain_graph=True)[0].norm()
        for t, loss in losses.items()
    ]
    return float(norms[0] / norms[1])


def test_gradnorm_moves_weights_towards_equal_gradient_norms() -> None:
    torch.manual_seed(0)
    shared = nn.Linear(4, 4)
    x, t1, t2 = torch.randn(16, 4), torch.randn(16, 4), torch.randn(16, 4)

    def losses() -> dict[str, torch.Tensor]:
        h = shared(x)
        return {"loud": 10 * ((h - t1) ** 2).mean(), "quiet": ((h - t2) ** 2).mean()}

    weighting = GradNormWeighting(
        ["loud", "quiet"], [1.0, 1.0], list(shared.parameters()), alpha=1.5, lr=0.05
    )
    before = _norm_ratio(shared, losses(), weighting.weights())
    for _ in range(100):  # the model does not train here: only the weights move
        weighting.backward(losses(), [], lambda t: None)
    weights = weighting.weights()
    after = _norm_ratio(shared, losses(), weights)
    assert before > 3
    assert abs(after - 1) < 0.25 * abs(before - 1)
    assert weights["loud"] < weights["quiet"]
    assert sum(weights.values()) == pytest.approx(2.0)  # renormalised to the number of tasks


def test_gradnorm_needs_a_trainable_shared_layer() -> None:
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="shared layer"):
        GradNormWeighting(["a", "b"], [1.0, 1.0], list(frozen.parameters()))
