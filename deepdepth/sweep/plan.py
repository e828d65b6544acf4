"""Know before you start: a sweep simulated against assumed limits, with the real round logic.

``plan`` runs the sweep loop (``driver.Sweep``) with a backend that trains nothing: each
simulated trial trains by the combination's assumed limit (``setup.assumed_limits``), and
each launch is charged the cost model's seconds on a virtual clock as wall time: its jobs
run ``parallelism`` at a time (``cost.wall_seconds``). So the jobs, rounds and
replica-layer-steps it prints are the ones the real sweep launches if the limits hold.

Why trials are drawn, not a step at the limit (``slope``): real verdicts near a limit are
mixed, and a refinement (``search.Refine``) adds seeds until its interval of k50 is narrow,
which a step never shows (no k50, or an interval one grid step wide at once); how many seeds
that takes is what a plan of a refined sweep is mostly made of. So a trial trains with
probability logistic in log depth (one half between the limit and the next grid depth), each
draw fixed by (draw, combination, depth, seed), and the plan is the median of ``draws`` such
futures by wall time. ``slope=None`` keeps the step (a trial trains iff k <= its limit).
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .cost import CostModel, duration, wall_seconds
from .combos import Combo, Options
from .driver import Sweep
from .records import Finished
from .trials import Job, Outcome

# the middle of the slopes the refinement's coverage is calibrated on (search/calibration.py):
# the odds of training fall as (k / k50)^-8: past a limit of 12 (k50 13.5), 3 in 10 train at 15, 1 in 10 at 18
PLAN_SLOPE = 8.0
PLAN_DRAWS = 5  # futures a dry run simulates; the median is shown


def uniform(*key) -> float:
    """A draw in [0, 1) fixed by ``key`` (the same in every process, unlike ``hash``)."""
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:13], 16) / 16 ** 13


def trains(limit: Optional[int], k: int, step: int, slope: Optional[float], u: float) -> bool:
    """A simulated verdict: with ``slope``, true with probability 1 / (1 + (k / k50)^slope),
    k50 = limit + step / 2, for a draw ``u``; without, iff k <= limit. No limit: never."""
    if limit is None:
        return False
    if slope is None:
        return k <= limit
    return u < 1 / (1 + (k / (limit + step / 2)) ** slope)


@dataclass
class SimulatedBackend:
    limits: dict  # combination index -> assumed limit (None: nothing trains)
    combos: list
    cost: CostModel
    parallelism: int = 1
    slope: Optional[float] = None  # None: a trial trains iff k <= its limit (``trains``)
    salt: int = 0  # which of the plan's drawn futures
    now: float = 0.0
    jobs: int = 0
    work: int = 0  # replica-layer-steps, each replica at its own depth
    seconds: float = 0.0  # job-seconds: every job's own time, summed (``now`` is wall time)
    lines: list = field(default_factory=list)  # one per launch: its jobs
    labels: list = field(default_factory=list)  # every job launched, as model@depths x replicas
    found: dict | None = None  # where a chunked plan records its trials, as a resumed sweep finds them

    def compose(self, overrides):
        return None

    def launch(self, jobs: list[Job], start: int) -> list[Outcome]:
        out, times = [], []
        for job in jobs:
            times.append(self.cost.job_seconds(job.k, len(job.seeds), job.steps, self.combos[job.combo].info.kind))
            self.jobs += 1
            self.work += sum(k * self.combos[ci].info.train_steps for ci, k, _ in job.replicas)
            trials = [{"seed": s, "k": k, "trainable": trains(self.limits[ci], k, self.combos[ci].search.step,
                                                              self.slope, uniform(self.salt, ci, k, s))}
                      for ci, k, s in job.replicas]
            out.append(Outcome(result={"k": job.k, "trials": trials}))
            if self.found is not None:
                for t, (ci, k, s) in zip(trials, job.replicas):
                    self.found[self.combos[ci].key, k, s] = Finished(t, out[-1].result, Path("planned"), start)
        self.now += wall_seconds(times, self.parallelism)
        self.seconds += sum(times)
        labels = [f"{self.combos[j.combo].info.model}@{'/'.join(map(str, sorted(set(j.depths or [j.k]))))}"
                  f"x{len(j.seeds)}" for j in jobs]
        self.labels += labels
        self.lines.append(f"  {len(jobs)} jobs: " + ", ".join(labels))
        return out


@dataclass
class Plan:
    jobs: int
    rounds: int
    work: int
    seconds: float  # wall time
    device: str
    lines: list
    labels: list  # its jobs in launch order
    done: bool = True  # every search finished (a chunk of a budgeted plan may not)
    job_seconds: float = 0.0  # its jobs' own times summed: the wall time when one runs at a time
    parallelism: int = 1

    def summary(self) -> str:
        line = (f"plan: {self.jobs} jobs, {self.rounds} rounds, {self.work:.2e} replica-layer-steps, "
                f"est. {duration(self.seconds)} wall on {self.device}")
        if self.parallelism > 1:
            line += f" ({duration(self.job_seconds)} of job time, {self.parallelism} jobs at a time)"
        return line


def plan(combos: list[Combo], limits: dict, device: str, options: Options, found: dict | None = None,
         parallelism: int = 1, budget: float | None = None, record: dict | None = None,
         slope: Optional[float] = None, draws: int = 1, cost: Optional[CostModel] = None) -> Plan:
    """Simulate the sweep on fresh copies of its searches (the originals are not touched); with
    a ``budget``, one chunk of it, its trials added to ``record``. With ``slope``, the median of
    ``draws`` drawn futures (module docstring); ``cost``: a calibrated cost model (copied)."""
    runs = []
    for salt in range(max(1, draws) if slope is not None else 1):
        mine = None if record is None else dict(record)
        runs.append((simulate(combos, limits, device, options, found, parallelism, budget, mine, slope, salt,
                              cost), mine))
    runs.sort(key=lambda run: (run[0].seconds, run[0].jobs))
    chosen, mine = runs[len(runs) // 2]
    if record is not None:
        record.update(mine)
    return chosen


def simulate(combos, limits, device, options, found, parallelism, budget, record, slope, salt, cost) -> Plan:
    """One simulated future of the sweep (``plan``)."""
    cost = copy.deepcopy(cost) if cost is not None else CostModel.here(device)
    sims = [copy.deepcopy(c) for c in combos]
    backend = SimulatedBackend(limits, sims, cost, parallelism, slope, salt, found=record)
    sweep = Sweep(sweep_dir=None, combos=sims, backend=backend, cost=cost,
                  options=Options(retries=0, pack=options.pack, time_budget=budget, write=False,
                                  mix_depths=options.mix_depths, max_replicas=options.max_replicas,
                                  pack_inits=options.pack_inits, only=options.only),
                  found=dict(found or {}), clock=lambda: backend.now)
    sweep.run()
    done = all(c.search.done for c in sims)
    return Plan(backend.jobs, sweep.rounds, backend.work, backend.now, device, backend.lines, backend.labels, done,
                backend.seconds, max(1, parallelism))


def plan_chunks(combos: list[Combo], limits: dict, device: str, options: Options, budget: float,
                found: dict | None = None, parallelism: int = 1, most: int = 200, slope: Optional[float] = None,
                draws: int = 1) -> list[Plan]:
    """The sweep in runs of ``budget`` seconds, each resuming what the runs before it trained:
    how many chunks (GPU sittings, SLURM jobs) a study takes. Stops at ``most`` chunks, or at a
    chunk that launches nothing (a job no chunk can run)."""
    found, chunks = dict(found or {}), []
    while len(chunks) < most:
        chunks.append(plan(combos, limits, device, options, dict(found), parallelism, budget, record=found,
                           slope=slope, draws=draws))
        if chunks[-1].done or not chunks[-1].jobs:
            break
    return chunks
