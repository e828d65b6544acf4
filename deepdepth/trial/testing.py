"""A trial whose CUDA-graph capture fails, on purpose: to check the fallback of ``step.TrainStep``
(one warning, the trial trains on eagerly, result.json's ``cuda_graph`` names the failure).

A host read (``.item()``) in the loss is harmless eagerly but not allowed while a graph is
captured. One home for it, shared by tests/test_gpu.py (c) and benchmarks/gpu_memory_probe.py.
"""
from __future__ import annotations

import lightning as L


def breaks_capture(loss_fn):
    """The loss with a host read in it: harmless eagerly, not allowed while a graph is captured."""
    def wrapped(x, y):
        logits, losses = loss_fn(x, y)
        losses.sum().item()
        return logits, losses
    return wrapped


class BreakCapture(L.Callback):
    """Gives a trial's module the loss of ``breaks_capture``, so its graph capture fails:
    ``train(cfg, out, callbacks=[BreakCapture()])``."""
    def on_fit_start(self, trainer, pl_module):
        """Swap in the loss that breaks a capture, before the step runner is built."""
        pl_module.replica_losses = breaks_capture(pl_module.replica_losses)
