"""Per-replica error rate as a torchmetrics Metric (state stays on the device until compute)."""
from __future__ import annotations

import torch
from torchmetrics import Metric


class ReplicaError(Metric):
    """Fraction misclassified, one value per packed replica."""

    full_state_update = False

    def __init__(self, replicas: int = 1):
        super().__init__()
        self.add_state("wrong", default=torch.zeros(replicas), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """logits (N, S, C) and target (N, S) or (N, 1)."""
        wrong = logits.argmax(-1) != target
        self.wrong += wrong.sum(0).to(self.wrong.dtype)
        self.total += target.shape[0]

    def compute(self) -> torch.Tensor:
        return self.wrong / self.total
