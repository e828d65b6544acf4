"""Callbacks that judge a trial: divergence, the per-epoch line, the final verdict."""
from __future__ import annotations

import logging
from collections import deque

import lightning as L
import torch

from .verdict import check_criterion, epoch_line, is_trainable

log = logging.getLogger("deepdepth")


class Trainability(L.Callback):
    """Decides, per replica, whether the network trained; stops a trial whose losses all went non-finite.

    A verdict needs the whole trial: every epoch trained to its last batch and the test error
    measured after the last step. A trial cut short (``trainer.max_steps``, ``max_time``) or a
    debug run (``fast_dev_run``) gives ``trainable: None`` for each replica that did not
    diverge (divergence is a verdict whenever it happens); ``complete`` and ``debug`` say why.

    The finiteness check reads each step's losses through a non-blocking copy to pinned memory,
    processed once the GPU has finished that step, so on a GPU it never stalls the launch queue
    (it waits only if the CPU runs more than MAX_PENDING steps ahead, and at the end of each
    epoch); no step's check is dropped. On the CPU it is immediate.
    """

    MAX_PENDING = 16  # on a GPU, how many steps the CPU may run ahead of the checks before it waits

    def __init__(self, threshold: float = 0.20, criterion: str = "test", print_epochs: bool = True):
        self.threshold, self.criterion = threshold, check_criterion(criterion)
        self.print_epochs = print_epochs
        self.diverged_at: list[int | None] = []
        self.verdicts: list[dict] = []
        self.complete = False   # every epoch trained whole, then tested
        self.debug = False      # a fast_dev_run: never a verdict
        self._epochs_whole = 0
        self._batches = 0
        self._untested = False  # a training step since the last test pass
        self._pending: deque[tuple[torch.Tensor, torch.cuda.Event | None, int]] = deque()

    def on_train_start(self, trainer, pl_module) -> None:
        """Start the trial's bookkeeping: no replica diverged yet, no epoch counted."""
        self.diverged_at = [None] * pl_module.net.replicas
        self._pending.clear()
        self._epochs_whole, self._untested = 0, False

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        """Count this epoch's batches from zero."""
        self._batches = 0

    def on_validation_end(self, trainer, pl_module) -> None:
        """The steps so far have been tested (a sanity check does not count)."""
        if not trainer.sanity_checking:
            self._untested = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Check each replica's loss for divergence (queued on a GPU, read once it is ready)."""
        self._batches += 1
        self._untested = True
        losses = outputs["replica_loss"]
        finite = torch.isfinite(losses)
        if losses.device.type == "cuda":
            # Queue a non-blocking copy; read the copies whose steps the GPU has finished.
            host = torch.empty(finite.shape, dtype=torch.bool, pin_memory=True)
            host.copy_(finite, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending.append((host, event, trainer.current_epoch))
            self._check_pending(trainer, wait_beyond=self.MAX_PENDING)
        else:
            self._pending.append((finite, None, trainer.current_epoch))
            self._check_pending(trainer)

    def _check_pending(self, trainer, wait_beyond: int = 0) -> None:
        """Record divergence from the queued checks, oldest first: every one the GPU has finished,
        waiting for the oldest while more than ``wait_beyond`` are queued (0: wait for all).
        Stops the trial once every replica has diverged."""
        while self._pending:
            finite, event, epoch = self._pending[0]
            if event is not None:
                if len(self._pending) <= wait_beyond and not event.query():
                    break
                event.synchronize()
            self._pending.popleft()
            for s, ok in enumerate(finite.reshape(-1).tolist()):
                if not ok and self.diverged_at[s] is None:
                    self.diverged_at[s] = epoch
        if self.diverged_at and all(d is not None for d in self.diverged_at):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Count a whole epoch and log its line per replica (the original study's format)."""
        self._check_pending(trainer)
        self._epochs_whole += self._batches == trainer.num_training_batches
        hist = pl_module.history
        if not hist["train_err"] or self._untested or not self.print_epochs:
            return  # no test pass after this epoch's last step: nothing to tell
        epochs, epoch = trainer.max_epochs, trainer.current_epoch
        for s, (tr, te) in enumerate(zip(hist["train_err"][-1], hist["test_err"][-1])):
            prefix = "" if pl_module.net.replicas == 1 else f"[seed {pl_module.net.seeds[s]}] "
            log.info(prefix + epoch_line(epoch, epochs, tr, te))

    def on_train_end(self, trainer, pl_module) -> None:
        """Give each replica its verdict from its last epoch's errors (none for an incomplete or debug run)."""
        self._check_pending(trainer)
        hist = pl_module.history
        self.debug = bool(trainer.fast_dev_run)
        self.complete = self._epochs_whole >= trainer.max_epochs and not self._untested
        judged = self.complete and not self.debug
        self.verdicts = []
        for s, seed in enumerate(pl_module.net.seeds):
            train_err = [e[s] for e in hist["train_err"]]
            test_err = [e[s] for e in hist["test_err"]]
            diverged = self.diverged_at[s] is not None
            self.verdicts.append({
                "seed": seed, "train_err": train_err, "test_err": test_err,
                "trainable": None if self.debug or not (judged or diverged) else
                is_trainable(train_err[-1] if train_err else None, test_err[-1] if test_err else None,
                             self.threshold, self.criterion, diverged),
                "diverged": diverged, "diverged_epoch": self.diverged_at[s],
            })
