"""Callbacks that judge a trial: divergence, the per-epoch line, the final verdict."""
from __future__ import annotations

import logging

import lightning as L
import torch

from .verdict import check_criterion, epoch_line, is_trainable

log = logging.getLogger("deepdepth")


class Trainability(L.Callback):
    """Decides, per replica, whether the network trained; stops a trial whose losses all went non-finite.

    The finiteness check reads the previous step's losses through a non-blocking copy, so on a
    GPU it never stalls the launch queue; on the CPU it is immediate.
    """

    def __init__(self, threshold: float = 0.20, criterion: str = "test", print_epochs: bool = True):
        self.threshold, self.criterion = threshold, check_criterion(criterion)
        self.print_epochs = print_epochs
        self.diverged_at: list[int | None] = []
        self.verdicts: list[dict] = []
        self._pending: tuple[torch.Tensor, object, int] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.diverged_at = [None] * pl_module.net.replicas

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = outputs["replica_loss"]
        if losses.device.type == "cuda":
            host = torch.empty(losses.shape, dtype=torch.bool, pin_memory=True)
            host.copy_(torch.isfinite(losses), non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._check_pending(trainer, block=False)
            self._pending = (host, event, trainer.current_epoch)
        else:
            self._pending = (torch.isfinite(losses), None, trainer.current_epoch)
            self._check_pending(trainer, block=True)

    def _check_pending(self, trainer, block: bool) -> None:
        if self._pending is None:
            return
        finite, event, epoch = self._pending
        if event is not None and not (block or event.query()):
            return
        if event is not None:
            event.synchronize()
        self._pending = None
        for s, ok in enumerate(finite.tolist()):
            if not ok and self.diverged_at[s] is None:
                self.diverged_at[s] = epoch
        if all(d is not None for d in self.diverged_at):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check_pending(trainer, block=True)
        hist = pl_module.history
        if not hist["train_err"] or not self.print_epochs:
            return
        epochs, epoch = trainer.max_epochs, len(hist["train_err"]) - 1
        for s, (tr, te) in enumerate(zip(hist["train_err"][-1], hist["test_err"][-1])):
            prefix = "" if pl_module.net.replicas == 1 else f"[seed {pl_module.net.seeds[s]}] "
            log.info(prefix + epoch_line(epoch, epochs, tr, te))

    def on_train_end(self, trainer, pl_module) -> None:
        self._check_pending(trainer, block=True)
        hist = pl_module.history
        self.verdicts = []
        for s, seed in enumerate(pl_module.net.seeds):
            train_err = [e[s] for e in hist["train_err"]]
            test_err = [e[s] for e in hist["test_err"]]
            diverged = self.diverged_at[s] is not None
            self.verdicts.append({
                "seed": seed, "train_err": train_err, "test_err": test_err,
                "trainable": is_trainable(train_err[-1] if train_err else None,
                                          test_err[-1] if test_err else None,
                                          self.threshold, self.criterion, diverged),
                "diverged": diverged, "diverged_epoch": self.diverged_at[s],
            })
