"""DepthClassifier: trains one DepthNet (or S packed replicas) with SGD, to the study's protocol."""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from .metrics import ReplicaError
from .models import DepthNet
from .step import TrainStep

PROTOCOLS = ("correct", "original")


class DepthClassifier(L.LightningModule):
    """SGD (momentum 0.9) on cross-entropy; train error counted while training, test error in eval mode.

    ``protocol="original"`` reproduces the study notebook's quirk: after the first evaluation the
    network is never put back into training mode, so BatchNorm uses frozen running statistics.
    ``fast`` ("auto", True, False) captures the training step in a CUDA graph on a GPU.
    """

    def __init__(self, net: DepthNet, lr: float = 0.01, momentum: float = 0.9,
                 protocol: str = "correct", fast: bool | str = "auto"):
        super().__init__()
        if not lr > 0:
            raise ValueError(f"optim.lr must be positive, got {lr!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
        self.net, self.lr, self.momentum, self.protocol, self.fast = net, lr, momentum, protocol, fast
        self.automatic_optimization = False
        self.train_error = ReplicaError(net.replicas)
        self.test_error = ReplicaError(net.replicas)
        self.history: dict[str, list[list[float]]] = {"train_err": [], "test_err": []}
        self.step_runner: TrainStep | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=self.lr, momentum=self.momentum)

    def replica_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, S, 10) and one mean cross-entropy per replica (S,)."""
        logits = self.net(x).view(x.shape[0], self.net.replicas, -1)
        target = y.expand(-1, self.net.replicas) if y.shape[1] != self.net.replicas else y
        losses = F.cross_entropy(logits.permute(0, 2, 1), target, reduction="none").mean(0)
        return logits, losses

    def on_train_start(self) -> None:
        use_graph = self.fast is True or (self.fast == "auto" and self.device.type == "cuda")
        self.step_runner = TrainStep(self.replica_losses, self.optimizers().optimizer, use_graph)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.protocol == "original" and self.current_epoch > 0:
            self.net.eval()  # the notebook's missing model.train() after its first evaluation

    def training_step(self, batch, batch_idx: int) -> dict:
        x, y = batch
        logits, losses = self.step_runner(x, y, self.net.training)
        self.train_error.update(logits, y)
        return {"loss": losses.sum(), "replica_loss": losses}

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x).view(x.shape[0], self.net.replicas, -1)
        self.test_error.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        train_err = self.train_error.compute().reshape(-1)  # torchmetrics squeezes one replica to a scalar
        test_err = self.test_error.compute().reshape(-1)
        self.train_error.reset()
        self.test_error.reset()
        self.history["train_err"].append(train_err.tolist())
        self.history["test_err"].append(test_err.tolist())
        for s in range(self.net.replicas):
            suffix = "" if self.net.replicas == 1 else f"/{s}"
            self.log(f"train_err{suffix}", train_err[s], on_epoch=True)
            self.log(f"test_err{suffix}", test_err[s], on_epoch=True)
