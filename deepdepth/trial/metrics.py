"""Per-replica error rate as a torchmetrics Metric (state stays on the device until compute)."""
from __future__ import annotations

import torch
from torchmetrics import Metric


def error_rate(correct: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``1 - correct / total`` in float64 from integer counts: the notebook's own arithmetic, so
    exactly 8,000 of 10,000 correct gives 0.19999999999999996, below a 0.2 threshold, as there."""
    return 1.0 - correct.to(torch.float64) / total.to(torch.float64)


class ReplicaError(Metric):
    """Fraction misclassified, one value per packed replica, counted in integers."""

    full_state_update = False

    def __init__(self, replicas: int = 1):
        super().__init__()
        self.add_state("correct", default=torch.zeros(replicas, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """logits (N, S, C) and target (N, S), or (N,) / (N, 1) shared by every replica."""
        self.correct += (logits.argmax(-1) == target.view(target.shape[0], -1)).sum(0)
        self.total += target.shape[0]

    def compute(self) -> torch.Tensor:
        """The error rate per replica (S,), float64."""
        return error_rate(self.correct, self.total)
