"""One SGD step, eager or replayed from a CUDA graph.

A deep thin network does ~10^4 tiny kernels per step, so on a GPU the step is bound by
launch latency. Capturing forward, backward and optimizer step once and replaying the graph
removes that cost (torch docs, "CUDA Graphs: whole-network capture"):

- each batch shape (and train/eval mode) first runs ``WARMUP_STEPS`` eager steps on a side
  stream, then is captured once on that same stream; later batches of that shape are copied
  into the graph's static inputs and replayed. The side stream is made once per ``TrainStep``
  on the batch's own GPU, and warm-up and capture run inside ``torch.cuda.device(...)`` of that
  GPU: PyTorch's default capture stream is made once per process on whatever GPU was current,
  so a reused worker moved to another GPU would record an empty graph (pytorch/pytorch#87894);
- gradients are set to None before each step, so backward writes them instead of adding
  them to zeros (for resnet k=447 that saves ~1,800 zeroing and ~1,800 accumulation kernels a
  step); in a graph they live in its memory pool. Nothing a graph keeps from one step to the
  next lives there: parameters, BatchNorm statistics and momentum buffers (made by the warm-up
  steps) are ordinary tensors that the graph and an eager step update in place, so shapes
  that are not (yet) captured, such as the last, partial batch of an epoch, simply run
  eagerly, and both paths train the same function;
- at most ``MAX_GRAPHS`` graphs are captured, sharing one memory pool: a graph's pool holds
  only that step's temporaries, gradients and outputs, and the outputs are copied out before
  the next step, so sharing is safe whatever the replay order;
- any failure to capture (an unsupported op, the driver, memory) logs one warning and the
  trial goes on eagerly from the same state: capture records work without running it, so
  nothing of the failed step has been applied. ``stats()`` reports it with the step counts
  (result.json's ``cuda_graph``);
- ``release()`` drops the graphs, their pool and the stream once the trial is over.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

import torch

log = logging.getLogger(__name__)
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as CUDA graphs require
MAX_GRAPHS = 2    # the full batch in training mode, plus one more (BatchNorm in eval mode, or the last batch)

Outputs = tuple[torch.Tensor, torch.Tensor]


class TrainStep:
    """``step(x, y, training) -> (logits, per-replica losses)``, both detached.

    ``loss_fn(x, y) -> (logits, losses)`` computes the forward pass and one loss per replica; the
    step sums the losses, backpropagates and steps ``optimizer``. ``use_graph`` asks for the CUDA
    graph, used only for CUDA tensors when CUDA is available.
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], Outputs],
                 optimizer: torch.optim.Optimizer, use_graph: bool):
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.use_graph = bool(use_graph) and torch.cuda.is_available()
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, Outputs]] = {}
        self.seen: Counter = Counter()
        self.pool = None    # the memory pool the captured graphs share
        self.stream = None  # the side stream of warm-up and capture, on the batches' GPU
        self.captured = 0
        self.replays = 0
        self.eager_steps = 0
        self.failed: str | None = None

    def stats(self) -> dict:
        """What the step did, for result.json: whether any step replayed a CUDA graph, graphs
        captured, replayed and eager steps, and the capture failure (None if none)."""
        return {"used": self.replays > 0, "captured": self.captured,
                "replays": self.replays, "eager_steps": self.eager_steps, "failed": self.failed}

    def release(self) -> None:
        """Drop the graphs, their memory pool and the stream, and the gradients (a captured
        backward allocated them in that pool); the caller then runs gc and
        ``torch.cuda.empty_cache()`` to hand the memory back."""
        self.graphs.clear()
        self.pool = self.stream = None
        self.optimizer.zero_grad(set_to_none=True)

    def eager(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        self.optimizer.zero_grad(set_to_none=True)
        logits, losses = self.loss_fn(x, y)
        losses.sum().backward()
        self.optimizer.step()
        return logits.detach(), losses.detach()

    def _eager_step(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        self.eager_steps += 1
        return self.eager(x, y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, training: bool) -> Outputs:
        if not self.use_graph or x.device.type != "cuda":
            return self._eager_step(x, y)
        key = (tuple(x.shape), tuple(y.shape), x.dtype, bool(training))
        if key in self.graphs:
            return self._replay(key, x, y)
        self.seen[key] += 1
        if len(self.graphs) >= MAX_GRAPHS:
            return self._eager_step(x, y)
        with torch.cuda.device(x.device):
            if self.stream is None:
                self.stream = torch.cuda.Stream(x.device)
            if self.seen[key] <= WARMUP_STEPS:
                return self._warmup(x, y)
            return self._capture(key, x, y)

    def _warmup(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        stream, current = self.stream, torch.cuda.current_stream()
        stream.wait_stream(current)
        with torch.cuda.stream(stream):
            logits, losses = self._eager_step(x, y)
        current.wait_stream(stream)
        for t in (x, y, logits, losses):  # made or read on the side stream, used after it on this one
            t.record_stream(current)
            t.record_stream(stream)
        return logits, losses

    def _replay(self, key: tuple, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        graph, static_x, static_y, (logits, losses) = self.graphs[key]
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        self.replays += 1
        return logits.clone(), losses.clone()

    def _capture(self, key: tuple, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            self.optimizer.zero_grad(set_to_none=True)  # as the docs' example: backward allocates
            torch.cuda.synchronize()                    # the gradients in the graph's pool
            # thread_local: only this thread's calls can spoil the capture, not (say) a logger's
            with torch.cuda.graph(graph, pool=self.pool, stream=self.stream, capture_error_mode="thread_local"):
                out = self.eager(static_x, static_y)
        except Exception as exc:  # unsupported op, driver, memory: train on, eagerly
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("CUDA graph capture failed (%s); continuing without CUDA graphs", self.failed)
            self.use_graph = False
            self.graphs.clear()
            del graph
            torch.cuda.synchronize()
            return self._eager_step(x, y)
        if self.pool is None:
            self.pool = graph.pool()
        self.graphs[key] = (graph, static_x, static_y, out)
        self.captured += 1
        return self._replay(key, x, y)  # capture records without running: now run this batch's step
