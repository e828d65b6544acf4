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

On the CPU a ``CompilePlan`` makes the step ``torch.compile`` the whole step (forward, backward
and the SGD step; ``zero_grad`` stays outside) for the full batch, in each mode (BatchNorm's
eval mode under ``protocol=original`` is a second graph): after ``TIMED_STEPS`` timed eager
steps the rule in ``compile_rule`` decides whether the steps left pay for the compile time,
unless the plan forces it (then after one eager step, which makes the momentum buffers the
compiled step updates). Other shapes (the last, partial batch) run eagerly on the same state.
A failed compile restores the parameters, buffers and momentum the attempt may have touched,
logs one warning and trains on eagerly; ``compile_stats()`` reports it (result.json's ``compile``).
"""
from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

import torch

from . import compile_rule

log = logging.getLogger(__name__)
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as CUDA graphs require
MAX_GRAPHS = 2    # the full batch in training mode, plus one more (BatchNorm in eval mode, or the last batch)
TIMED_STEPS = 3   # CPU: eager steps timed (after an untimed first one) before deciding to compile

Outputs = tuple[torch.Tensor, torch.Tensor]


@dataclass
class CompilePlan:
    """What the CPU compile needs to know about the trial (``DepthClassifier`` makes it).

    ``force``: compile without asking the rule (``fast=compile``); ``blocks``: blocks per
    replica (the graph's size); ``norm``: BatchNorm in the net (the smaller gain, and eval mode
    is another graph); ``packed``: several replicas (a smaller gain); ``signature``: what else shapes the compiled code (network, optimizer,
    layout), for the warm-cache marker; ``steps_left(training)``: steps the trial still runs in
    that mode; ``state``: the module whose parameters and buffers a failed compile restores.
    """
    force: bool
    blocks: int
    norm: bool
    packed: bool
    signature: str
    steps_left: Callable[[bool], int]
    state: torch.nn.Module


class TrainStep:
    """``step(x, y, training) -> (logits, per-replica losses)``, both detached.

    ``loss_fn(x, y) -> (logits, losses)`` computes the forward pass and one loss per replica; the
    step sums the losses, backpropagates and steps ``optimizer``. ``use_graph`` asks for the CUDA
    graph, used only for CUDA tensors when CUDA is available.
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], Outputs],
                 optimizer: torch.optim.Optimizer, use_graph: bool, compile_plan: CompilePlan | None = None):
        self.loss_fn, self.optimizer, self.plan = loss_fn, optimizer, compile_plan
        self.use_graph = bool(use_graph) and torch.cuda.is_available()
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, Outputs]] = {}
        self.seen: Counter = Counter()
        self.pool = None    # the memory pool the captured graphs share
        self.stream = None  # the side stream of warm-up and capture, on the batches' GPU
        self.captured = 0
        self.replays = 0
        self.eager_steps = 0
        self.failed: str | None = None
        # the CPU compile: per (shape, mode) True (compiled) / False (eager), and what it cost
        self.compiled_fn = None
        self.choices: dict[tuple, bool] = {}
        self.eager_times: defaultdict[tuple, list[float]] = defaultdict(list)
        self.compiled_keys: set[tuple] = set()
        self.full_batch: int | None = None
        self.reasons: list[str] = []
        self.compile_seconds = 0.0
        self.compiled_steps = 0
        self.compile_failed: str | None = None

    def stats(self) -> dict:
        """What the step did, for result.json: whether any step replayed a CUDA graph, graphs
        captured, replayed and eager steps, and the capture failure (None if none)."""
        return {"used": self.replays > 0, "captured": self.captured,
                "replays": self.replays, "eager_steps": self.eager_steps, "failed": self.failed}

    def compile_stats(self) -> dict | None:
        """The CPU compile, for result.json (None without a plan): whether any step ran
        compiled, why (the rule's reasoning per shape and mode), the seconds compiling took
        (first compiled call less an eager step), compiled steps, and the failure (None if none)."""
        if self.plan is None:
            return None
        reason = "; ".join(self.reasons) or f"not decided: fewer than {TIMED_STEPS + 2} full batches"
        return {"used": self.compiled_steps > 0, "reason": reason, "compile_seconds": round(self.compile_seconds, 3),
                "compiled_steps": self.compiled_steps, "failed": self.compile_failed}

    def release(self) -> None:
        """Drop the graphs, their memory pool and the stream, and the gradients (a captured
        backward allocated them in that pool); the caller then runs gc and
        ``torch.cuda.empty_cache()`` to hand the memory back. A compiled step also resets
        dynamo: its caches hold this trial's modules and would fill its recompile limit
        over a sweep's trials (the next trial's compile then reads inductor's disk cache)."""
        self.graphs.clear()
        self.pool = self.stream = None
        self.optimizer.zero_grad(set_to_none=True)
        if self.compiled_fn is not None:
            self.compiled_fn = None
            torch._dynamo.reset()

    def _step_body(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        logits, losses = self.loss_fn(x, y)
        losses.sum().backward()
        self.optimizer.step()
        return logits.detach(), losses.detach()

    def eager(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        """One plain eager step (gradients zeroed, forward, backward, optimizer step)."""
        self.optimizer.zero_grad(set_to_none=True)
        return self._step_body(x, y)

    def _eager_step(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        self.eager_steps += 1
        return self.eager(x, y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, training: bool) -> Outputs:
        if self.plan is not None and x.device.type == "cpu":
            return self._cpu_step(x, y, training)
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

    # ------------------------------------------------------------------ the CPU compile
    def _cpu_step(self, x: torch.Tensor, y: torch.Tensor, training: bool) -> Outputs:
        if self.full_batch is None:
            self.full_batch = x.shape[0]
        # without BatchNorm the mode changes nothing the step computes: one choice for both
        key = (tuple(x.shape), bool(training) or not self.plan.norm)
        choice = self.choices.get(key)
        if choice:
            return self._compiled_step(key, x, y)
        if choice is False or x.shape[0] != self.full_batch or self.compile_failed:
            return self._eager_step(x, y)
        times = self.eager_times[key]
        self.seen[key] += 1
        if self.seen[key] > 1 and (self.plan.force or len(times) >= TIMED_STEPS):
            self.choices[key] = self._decide(key, times)
            if self.choices[key]:
                return self._compiled_step(key, x, y)
            return self._eager_step(x, y)
        start = time.perf_counter()
        out = self._eager_step(x, y)
        if self.seen[key] > 1:  # the first step of a shape allocates: not timed
            times.append(time.perf_counter() - start)
        return out

    def _signature(self, key: tuple) -> str:
        return compile_rule.step_signature(self.plan.signature, key, torch.__version__)

    def _decide(self, key: tuple, times: list[float]) -> bool:
        what = f"batch {key[0][0]}, {'train' if key[1] else 'eval'} mode"
        if self.plan.force:
            self.reasons.append(f"{what}: forced (fast=compile)")
            return True
        warm = compile_rule.cache_is_warm(compile_rule.inductor_cache_dir(), self._signature(key))
        decision = compile_rule.decide(self.plan.steps_left(key[1]), statistics.median(times),
                                       self.plan.blocks, warm, self.plan.norm, self.plan.packed)
        self.reasons.append(f"{what}: {'compile' if decision.compile else 'eager'}: {decision.reason}")
        return decision.compile

    def _state_tensors(self) -> list[torch.Tensor]:
        tensors = [*self.plan.state.parameters(), *self.plan.state.buffers()]
        for state in self.optimizer.state.values():
            tensors += [t for t in state.values() if isinstance(t, torch.Tensor)]
        return tensors

    def _compiled_step(self, key: tuple, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        first = key not in self.compiled_keys  # this call compiles (or loads) the key's graphs
        if self.compiled_fn is None:
            self.compiled_fn = torch.compile(self._step_body, dynamic=False)
        backup = [t.detach().clone() for t in self._state_tensors()] if first else None
        start = time.perf_counter()
        try:
            self.optimizer.zero_grad(set_to_none=True)
            with torch._dynamo.config.patch(suppress_errors=False):
                out = self.compiled_fn(x, y)
        except Exception as exc:  # no compiler, an unsupported op, a recompile that fails: train on eagerly
            if backup is not None:
                with torch.no_grad():
                    for t, saved in zip(self._state_tensors(), backup):
                        t.copy_(saved)
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            self.compile_failed = f"{type(exc).__name__}: {first_line}"
            log.warning("torch.compile of the CPU step failed (%s); continuing eagerly", self.compile_failed)
            self.choices = dict.fromkeys(self.choices, False)
            return self._eager_step(x, y)
        if first:
            times = self.eager_times[key] or [0.0]
            self.compile_seconds += max(time.perf_counter() - start - statistics.median(times), 0.0)
            self.compiled_keys.add(key)
            compile_rule.mark_warm(compile_rule.inductor_cache_dir(), self._signature(key))
        self.compiled_steps += 1
        return out
