"""Turning one step's per-task losses into gradients: fixed weights, uncertainty weighting, GradNorm, PCGrad.

No maintained PyTorch library provides these four (LibMTL and the papers' code are research repositories,
not packages we can depend on), so they are written here by hand, each after its paper.

A weighting's `backward(losses, params, backward)` leaves the step's gradient in `p.grad` of `params` by
calling `backward` (the accelerator's, which scales for fp16) and returns the combined loss for the log.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from open_autoglm.registry import Registry

Backward = Callable[[Tensor], None]
WEIGHTINGS: Registry[type[LossWeighting]] = Registry("loss weighting")


class LossWeighting(nn.Module):
    """How the tasks' losses of one step combine. `losses` holds only the tasks drawn in this step."""

    base_weights: Tensor

    def __init__(self, tasks: Sequence[str], weights: Sequence[float]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.register_buffer("base_weights", torch.tensor(list(weights), dtype=torch.float32))
        self._sum_over_processes: Callable[[Tensor], Tensor] | None = None

    def across_processes(self, sum_over_processes: Callable[[Tensor], Tensor]) -> None:
        """Under several processes: how to sum a tensor over all of them, so that what a weighting learns by
        itself (GradNorm's weights) stays the same on every process."""
        self._sum_over_processes = sum_over_processes

    @classmethod
    def build(
        cls,
        tasks: Sequence[str],
        weights: Sequence[float],
        *,
        shared: Sequence[nn.Parameter],
        alpha: float,
        seed: int,
    ) -> LossWeighting:
        """Construct from the job's settings; each weighting takes the ones it needs."""
        return cls(tasks, weights)

    def backward(
        self, losses: dict[str, Tensor], params: Sequence[nn.Parameter], backward: Backward
    ) -> Tensor:
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """The current weight of each task's loss (for the log)."""
        return {t: float(w) for t, w in zip(self.tasks, self.base_weights, strict=True)}

    def optimizer_parameters(self) -> list[nn.Parameter]:
        """Parameters the main optimizer trains alongside the model (uncertainty's log-variances)."""
        return []

    def _weight(self, task: str) -> Tensor:
        return self.base_weights[self.tasks.index(task)]


@WEIGHTINGS.register
class FixedWeighting(LossWeighting):
    """sum_i w_i * L_i with each task's `weight` from the config."""

    name: ClassVar[str] = "fixed"

    def backward(
        self, losses: dict[str, Tensor], params: Sequence[nn.Parameter], backward: Backward
    ) -> Tensor:
        total = torch.stack([self._weight(t) * loss for t, loss in losses.items()]).sum()
        backward(total)
        return total.detach()


@WEIGHTINGS.register
class UncertaintyWeighting(LossWeighting):
    """Kendall, Gal & Cipolla 2018: each task learns a log-variance s_i = log sigma_i^2 and its loss becomes
    exp(-s_i) * L_i + s_i / 2 (their classification form), so a noisy or hard task is down-weighted while the
    s_i / 2 term keeps every weight from collapsing to zero."""

    name: ClassVar[str] = "uncertainty"

    def __init__(self, tasks: Sequence[str], weights: Sequence[float]) -> None:
        super().__init__(tasks, weights)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def backward(
        self, losses: dict[str, Tensor], params: Sequence[nn.Parameter], backward: Backward
    ) -> Tensor:
        terms = []
        for task, loss in losses.items():
            s = self.log_vars[self.tasks.index(task)]
            terms.append(torch.exp(-s) * loss + s / 2)
        total = torch.stack(terms).sum()
        backward(total)
        return total.detach()

    def weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-s)) for t, s in zip(self.tasks, self.log_vars.detach(), strict=True)}

    def optimizer_parameters(self) -> list[nn.Parameter]:
        return [self.log_vars]


@WEIGHTINGS.register
class GradNormWeighting(LossWeighting):
    """Chen et al. 2018: learned weights w_i, trained so that each task's gradient norm on the last shared
    layer, G_i = ||grad_W w_i L_i||, approaches mean(G) * r_i^alpha, where r_i is the task's loss ratio
    L_i / L_i(0) relative to the mean ratio (a task that trains slower gets a larger gradient). The weights
    are renormalised to sum to the number of tasks after each update; the model trains on sum_i w_i L_i.

    `shared` is the last shared layer W. The weights have their own Adam optimizer: they follow the GradNorm
    loss, not the task losses.
    """

    name: ClassVar[str] = "gradnorm"

    def __init__(
        self,
        tasks: Sequence[str],
        weights: Sequence[float],
        shared: Sequence[nn.Parameter],
        alpha: float = 1.5,
        lr: float = 0.025,
    ) -> None:
        super().__init__(tasks, weights)
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(len(self.tasks)))
        self.initial_losses: Tensor
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), math.nan))
        self.shared = [p for p in shared if p.requires_grad]
        if not self.shared:
            raise ValueError("GradNorm needs a trainable shared layer")
        self._optimizer = torch.optim.Adam([self.task_weights], lr=lr)

    @classmethod
    def build(
        cls,
        tasks: Sequence[str],
        weights: Sequence[float],
        *,
        shared: Sequence[nn.Parameter],
        alpha: float,
        seed: int,
    ) -> LossWeighting:
        return cls(tasks, weights, shared, alpha)

    def backward(
        self, losses: dict[str, Tensor], params: Sequence[nn.Parameter], backward: Backward
    ) -> Tensor:
        index = [self.tasks.index(t) for t in losses]
        for i, loss in zip(index, losses.values(), strict=True):
            if math.isnan(float(self.initial_losses[i])):
                self.initial_losses[i] = loss.detach().float()
        self._update_weights(index, list(losses.values()))
        w = self.task_weights.detach()
        total = torch.stack([w[i] * loss for i, loss in zip(index, losses.values(), strict=True)]).sum()
        backward(total)
        return total.detach()

    def _update_weights(self, index: list[int], losses: list[Tensor]) -> None:
        grad = torch.zeros_like(self.task_weights)
        shared = [
            p for p in self.shared if p.requires_grad
        ]  # frozen during a head warm-up: nothing to balance
        balances = len(losses) > 1 and bool(shared)  # one task alone has nothing to balance against either
        if balances:
            norms = []  # ||grad_W L_i||: G_i = w_i * that, differentiable in w_i without a second backward
            for loss in losses:
                grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
                squares = [(g.float() ** 2).sum() for g in grads if g is not None]
                norms.append(torch.stack(squares).sum().sqrt())
            g_norm = self.task_weights[index] * torch.stack(norms).detach()  # (k,)
            ratios = torch.stack([loss.detach().float() for loss in losses]) / self.initial_losses[index]
            rate = ratios / ratios.mean()  # relative inverse training rate r_i
            target = (g_norm.mean() * rate**self.alpha).detach()
            gradnorm_loss = (g_norm - target).abs().sum()
            grad = torch.autograd.grad(gradnorm_loss, self.task_weights)[0]
        # Every process takes the same step: the mean gradient of the processes that drew two tasks or more
        # (none took part: no step). Each process calls the reduction every step, drawn tasks or not.
        summed = torch.cat([grad, grad.new_tensor([float(balances)])])
        if self._sum_over_processes is not None:
            summed = self._sum_over_processes(summed)
        contributors = float(summed[-1])
        if contributors == 0:
            return
        self._optimizer.zero_grad()
        self.task_weights.grad = summed[:-1] / contributors
        self._optimizer.step()
        with torch.no_grad():  # renormalise: sum of weights = number of tasks, none negative
            self.task_weights.clamp_(min=1e-3)
            self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())

    def weights(self) -> dict[str, float]:
        return {t: float(w) for t, w in zip(self.tasks, self.task_weights.detach(), strict=True)}


@WEIGHTINGS.register
class PCGradWeighting(LossWeighting):
    """Yu et al. 2020 (gradient surgery): where two tasks' gradients on the shared parameters conflict
    (negative cosine), each is projected onto the normal plane of the other, in a random order of the
    others, before they are summed. Task-specific parameters (each head) keep their own gradient."""

    name: ClassVar[str] = "pcgrad"

    def __init__(self, tasks: Sequence[str], weights: Sequence[float], seed: int = 0) -> None:
        super().__init__(tasks, weights)
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def build(
        cls,
        tasks: Sequence[str],
        weights: Sequence[float],
        *,
        shared: Sequence[nn.Parameter],
        alpha: float,
        seed: int,
    ) -> LossWeighting:
        return cls(tasks, weights, seed)

    def backward(
        self, losses: dict[str, Tensor], params: Sequence[nn.Parameter], backward: Backward
    ) -> Tensor:
        params = [p for p in params if p.requires_grad]
        per_task = []  # one flat gradient per task: (P,), zeros where the task does not reach
        reached = torch.zeros(sum(p.numel() for p in params), dtype=torch.int64)  # (P,) tasks reaching each
        for task, loss in losses.items():
            grads = torch.autograd.grad(
                self._weight(task) * loss, params, retain_graph=True, allow_unused=True
            )
            per_task.append(torch.cat([_flat(g, p) for g, p in zip(grads, params, strict=True)]))
            reached += torch.cat(
                [torch.full((p.numel(),), int(g is not None)) for g, p in zip(grads, params, strict=True)]
            )
        shared = (reached > 1).to(per_task[0].device)
        combined = torch.stack(project_conflicting(per_task, shared, self.generator)).sum(0)
        # The projected gradient enters through a surrogate whose gradient it is, so `backward` (fp16
        # scaling, accumulation, DDP's reduction) treats it like any loss. A parameter no drawn task reached (an
        # absent task's head) stays out: it gets no gradient, as from a plain backward.
        offset, surrogate = 0, torch.zeros((), device=combined.device)
        for p in params:
            n = p.numel()
            if bool(reached[offset : offset + n].any()):
                surrogate = surrogate + (p * combined[offset : offset + n].view_as(p).to(p.dtype)).sum()
            offset += n
        backward(surrogate)
        return torch.stack([self._weight(t) * loss.detach() for t, loss in losses.items()]).sum()


def _flat(grad: Tensor | None, param: nn.Parameter) -> Tensor:
    return (grad if grad is not None else torch.zeros_like(param)).reshape(-1).float()


def project_conflicting(
    grads: list[Tensor], shared: Tensor | None = None, generator: torch.Generator | None = None
) -> list[Tensor]:
    """PCGrad's projection: each gradient g_i, for each other g_j (random order) with g_i . g_j < 0, loses
    its component along g_j. Only the `shared` coordinates (a bool mask, default all) take part: a head that
    one task alone reaches keeps its gradient."""
    shared = torch.ones_like(grads[0], dtype=torch.bool) if shared is None else shared
    projected = []
    for i, g in enumerate(grads):
        g_pc = g.clone()
        order = torch.randperm(len(grads), generator=generator).tolist()
        for j in order:
            if j == i:
                continue
            other = grads[j] * shared
            dot = torch.dot(g_pc * shared, other)
            if dot < 0:
                g_pc = g_pc - dot / other.dot(other).clamp_min(1e-12) * other
        projected.append(g_pc)
    return projected
