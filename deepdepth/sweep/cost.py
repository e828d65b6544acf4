"""What a job costs: seconds from replica-layer-steps, per device.

A deep thin network is bound by kernel launches on a GPU: a step costs about the same per
layer whatever the replicas packed into it, until the arithmetic catches up. So the cost is
tabled per replica-layer-step as a function of the packed replicas S, interpolated in log S,
plus a fixed cost per job (data to the device, warm-up, graph capture). Test passes are
counted as a third of a training step per batch (forward only).

Sources (benchmarks/RESULTS.md): ``h200`` is this project's resnet k=447 on an H200 with its
CUDA graph (2026-11-28, torch 2.11): 102.6 ms per step for 1 replica and 36.4 ms per
replica-step for 16 (``bench_gpu.py``), and 43.1 for 6 (the study's job at 447/450: 202 s, less
the fixed cost, over its 745 weighted steps); ``h100`` is that table times 1.1, an estimate
until measured; ``cpu`` is this project's 2-core machine (resnet k=12, 45.6 ms per step for 1
replica, 29.8 ms per replica-step packed 4 wide).
The per-job seconds are estimates. A sweep rescales the table by what its jobs took
(``calibrate``: per model where it has measured one, else over all), those it finds finished
when it resumes included, so only a fresh sweep's first launch relies on the constants.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..study import WIDTHS  # the widths the tables were measured at

# replicas -> ms per replica-layer-step
TABLES = {
    "h200": {1: 102.6 / 447, 6: 43.1 / 447, 16: 36.4 / 447},
    "h100": {1: 1.1 * 102.6 / 447, 6: 1.1 * 43.1 / 447, 16: 1.1 * 36.4 / 447},
    "cpu": {1: 45.6 / 12, 4: 29.8 / 12},
}
JOB_SECONDS = {"h200": 8.0, "h100": 8.0, "cpu": 2.0}
EVAL_WEIGHT = 1 / 3  # a test batch (forward only) against a training step


PLANES = (28 * 28, 14 * 14, 7 * 7)  # pixels per channel in each stage


def width_cost(widths) -> float:
    """A layer's arithmetic at ``widths`` against the study's (4, 8, 16): the tables' estimate
    for other widths until a sweep's own jobs calibrate it (``cost_kind``)."""
    if widths is None:
        return 1.0
    flops = lambda ws: sum(w * w * p for w, p in zip(ws, PLANES))  # noqa: E731
    return flops(tuple(widths)) / flops(WIDTHS)


def cost_kind(model, widths=None):
    """The key a job's speed is calibrated by: its model, and its widths where not the study's."""
    if widths is None or tuple(widths) == WIDTHS:
        return model
    return f"{model} widths={','.join(map(str, widths))}"


def steps_per_trial(epochs: int, train: int, test: int, batch: int) -> float:
    """Training steps plus test batches weighted as a third of a step."""
    return epochs * (math.ceil(train / batch) + EVAL_WEIGHT * math.ceil(test / batch))


def device_name(name: str) -> str:
    """A device description ("NVIDIA H200", "cuda:0 NVIDIA H100 80GB HBM3", "cpu") -> a table key."""
    low = name.lower()
    return "h200" if "h200" in low else "h100" if "h100" in low else "cpu" if "cpu" in low or not low else "h200"


def denormal_slowed(result: dict, norm: bool) -> bool:
    """A job that trained a network without normalisation on the CPU without flushing denormal
    floats (every job before ``flush_denormal`` existed): an ordered-phase network's signal decays
    into them, which some CPUs handle in microcode (28x slower steps measured), so its time says
    nothing of the cost model's and is not learnt from. ``norm``: the combination's, where the
    result does not record its own."""
    on_cpu = device_name(str(result.get("device_name") or result.get("device") or "")) == "cpu"
    return on_cpu and not result.get("norm", norm) and not result.get("flush_denormal", False)


def stopped_early(result: dict) -> bool:
    """Every trial of the job diverged: training stops at the batch where the last one did, so its
    seconds are a fraction of a whole job's. Not learnt from: the jobs a refinement adds sit at
    the crossing, where some replica trains to the end, and the early stops of a search's deep
    probes priced them short."""
    trials = result.get("trials") or []
    return bool(trials) and all(t.get("diverged") for t in trials)


def teaches_cost(result: dict, norm: bool) -> bool:
    """Are a finished job's seconds a whole job's at the cost model's speed?"""
    return bool(result.get("seconds")) and not denormal_slowed(result, norm) and not stopped_early(result)


@dataclass
class CostModel:
    device: str = "h200"
    host: Optional[dict] = None  # the machine it predicts for (``trial.devices.host``): see calibrate_from_found
    scale: float = 1.0  # measured / predicted, from the sweep's own jobs
    _measured: list = field(default_factory=list)  # (kind, predicted unscaled, measured seconds)

    @classmethod
    def here(cls, device: str) -> "CostModel":
        """The model for a sweep or plan on this machine: on a CPU it knows this host."""
        if device != "cpu":
            return cls(device)
        from ..trial.devices import host  # torch: only a CPU plan asks
        return cls(device, host=host())

    def __post_init__(self):
        if self.device not in TABLES:
            raise ValueError(f"unknown device {self.device!r} for the cost model; choose one of {sorted(TABLES)}")

    def ms_per_replica_layer_step(self, replicas: int) -> float:
        table = TABLES[self.device]
        xs = sorted(table)
        s = min(max(replicas, xs[0]), xs[-1])
        lo = max(x for x in xs if x <= s)
        hi = min(x for x in xs if x >= s)
        if lo == hi:
            return table[lo]
        t = (math.log(s) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return table[lo] * (table[hi] / table[lo]) ** t

    def job_seconds(self, depth: int, replicas: int, steps: float, kind: str | None = None) -> float:
        """A job of ``replicas`` packed networks computed to ``depth`` layers (masked layers count),
        rescaled by the measured jobs of its ``kind`` (its model: a layer of resnet costs more than
        one of cnn_tanh) where there are some, else by all of them."""
        return self.scale_for(kind) * self._table_seconds(depth, replicas, steps)

    def _table_seconds(self, depth: int, replicas: int, steps: float) -> float:
        compute = steps * depth * replicas * self.ms_per_replica_layer_step(replicas) / 1000
        return JOB_SECONDS[self.device] + compute

    def scale_for(self, kind: str | None) -> float:
        """The measured/predicted ratio of ``kind``'s jobs; for a kind not measured yet, all jobs'
        but never below 1: faster models must not make a first job of a slower one look short
        (a budget would launch it too late)."""
        if kind is None:
            return self.scale
        own = [(p, m) for k, p, m in self._measured if k == kind]
        return sum(m for _, m in own) / sum(p for p, _ in own) if own else max(1.0, self.scale)

    def calibrate(self, depth: int, replicas: int, steps: float, seconds: float, kind: str | None = None) -> None:
        """Rescale the table by a finished job's measured time (the sum of measured over predicted)."""
        self._measured.append((kind, self._table_seconds(depth, replicas, steps), seconds))
        predicted = sum(p for _, p, _ in self._measured)
        self.scale = sum(m for _, _, m in self._measured) / predicted if predicted > 0 else 1.0


def wall_seconds(job_seconds: list[float], at_once: int) -> float:
    """The wall time of one launch: its jobs started in order, each on the first of ``at_once``
    workers to come free (a joblib pool), until the last ends. Not the sum over ``at_once``: an
    odd job out, or a long one beside short ones, runs alone."""
    free = [0.0] * max(1, at_once)
    for seconds in job_seconds:
        i = free.index(min(free))
        free[i] += seconds
    return max(free)


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def same_host(result: dict, host: Optional[dict]) -> bool:
    """Did a finished job run on ``host`` (``trial.devices.host``: the CPU model and torch threads)?"""
    mine = result.get("host") or {}
    return bool(host) and all(mine.get(k) == host.get(k) for k in ("cpu", "torch_threads"))


def calibrate_from_found(cost: CostModel, found: dict, combos: dict) -> None:
    """Rescale ``cost`` by the finished jobs a resumed sweep finds (``found``: (trial key, k, seed)
    -> Finished; ``combos``: trial key -> (steps per replica, norm)), each job once, and only those
    run on this kind of device and not slowed by denormals: a resumed sweep's first launch is
    judged by measured speed (``teaches_cost``). On a CPU, a model's jobs from ``cost.host`` are
    its only teachers where it has some: two CPU hosts have stepped one network 2.5x apart."""
    jobs: dict[str, tuple] = {}
    for (key, _, _), hit in found.items():
        r = hit.result
        where = device_name(str(r.get("device_name") or r.get("device") or ""))
        if str(hit.job_dir) in jobs or key not in combos or where != cost.device or not teaches_cost(r, combos[key][1]):
            continue
        jobs[str(hit.job_dir)] = (key, r, cost_kind(r.get("model"), r.get("widths")))
    here = {kind for _, r, kind in jobs.values() if cost.device == "cpu" and same_host(r, cost.host)}
    for key, r, kind in jobs.values():
        if kind not in here or same_host(r, cost.host):
            cost.calibrate(int(r["k"]), len(r.get("trials") or [None]), combos[key][0], float(r["seconds"]), kind)
