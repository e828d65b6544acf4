"""One SGD step, eager or replayed from a CUDA graph.

A deep thin network does ~10^4 tiny kernels per step, so on a GPU the step is bound by
launch latency. Capturing forward, backward and optimizer step once and replaying the graph
removes that cost. The graph needs static shapes and buffers: batches of another size (the
last, partial batch) and any failure to capture run eagerly on the same parameters and
optimizer state, so both paths train the same function.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch

log = logging.getLogger(__name__)
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as CUDA graphs require


class TrainStep:
    def __init__(self, loss_fn: Callable, optimizer: torch.optim.Optimizer, use_graph: bool):
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.use_graph = use_graph and torch.cuda.is_available()
        self.graphs: dict[tuple, tuple] = {}
        self.steps = 0

    def eager(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=False)
        logits, losses = self.loss_fn(x, y)
        losses.sum().backward()
        self.optimizer.step()
        return logits.detach(), losses.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, training: bool):
        self.steps += 1
        if not self.use_graph or x.device.type != "cuda":
            return self.eager(x, y)
        key = (tuple(x.shape), training)
        if key in self.graphs:
            graph, sx, sy, out = self.graphs[key]
            sx.copy_(x)
            sy.copy_(y)
            graph.replay()
            return out
        if self.steps <= WARMUP_STEPS:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                out = self.eager(x, y)
            torch.cuda.current_stream().wait_stream(stream)
            return out
        return self._capture(key, x, y)

    def _capture(self, key, x, y):
        try:
            sx, sy = x.clone(), y.clone()
            graph = torch.cuda.CUDAGraph()
            self.optimizer.zero_grad(set_to_none=False)
            with torch.cuda.graph(graph):
                out = self.eager(sx, sy)
            self.graphs[key] = (graph, sx, sy, out)
            graph.replay()  # capture records without running: now run this batch's step
            return out
        except Exception as exc:  # unsupported op, driver, memory: train on, eagerly
            log.warning("CUDA graph capture failed (%s); continuing without graphs", exc)
            self.use_graph = False
            torch.cuda.synchronize()
            return self.eager(x, y)
