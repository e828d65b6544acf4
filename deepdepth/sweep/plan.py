"""Know before you start: a sweep simulated against assumed limits, with the real round logic.

``plan`` runs the sweep loop (``driver.Sweep``) with a backend that trains nothing: each
trial is trainable iff its depth is at most the combination's assumed limit (the original
study's k* where known, ``limits`` to override), and each job is charged the cost model's
seconds on a virtual clock. So the jobs, rounds and replica-layer-steps it prints are the ones
the real sweep launches if the limits hold, and the time is the cost model's estimate.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from .cost import CostModel, duration
from .combos import Combo, Options
from .driver import Sweep
from .records import Finished
from .trials import Job, Outcome


@dataclass
class SimulatedBackend:
    limits: dict  # combination index -> assumed limit (None: nothing trains)
    combos: list
    cost: CostModel
    parallelism: int = 1
    now: float = 0.0
    jobs: int = 0
    work: int = 0  # replica-layer-steps, each replica at its own depth
    seconds: float = 0.0
    lines: list = field(default_factory=list)  # one per launch: its jobs
    labels: list = field(default_factory=list)  # every job launched, as model@depths x replicas
    found: dict | None = None  # where a chunked plan records its trials, as a resumed sweep finds them

    def compose(self, overrides):
        return None

    def launch(self, jobs: list[Job], start: int) -> list[Outcome]:
        out = []
        batch = 0.0
        for job in jobs:
            seconds = self.cost.job_seconds(job.k, len(job.seeds), job.steps, self.combos[job.combo].info.kind)
            batch += seconds
            self.jobs += 1
            self.work += sum(k * self.combos[ci].info.train_steps for ci, k, _ in job.replicas)
            trials = [{"seed": s, "k": k, "trainable": self.limits[ci] is not None and k <= self.limits[ci]}
                      for ci, k, s in job.replicas]
            out.append(Outcome(result={"k": job.k, "trials": trials}))
            if self.found is not None:
                for t, (ci, k, s) in zip(trials, job.replicas):
                    self.found[self.combos[ci].key, k, s] = Finished(t, out[-1].result, Path("planned"), start)
        self.now += batch / max(1, self.parallelism)
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
    seconds: float
    device: str
    lines: list
    labels: list  # its jobs in launch order
    done: bool = True  # every search finished (a chunk of a budgeted plan may not)

    def summary(self) -> str:
        return (f"plan: {self.jobs} jobs, {self.rounds} rounds, {self.work:.2e} replica-layer-steps, "
                f"est. {duration(self.seconds)} on {self.device}")


def plan(combos: list[Combo], limits: dict, device: str, options: Options, found: dict | None = None,
         parallelism: int = 1, budget: float | None = None, record: dict | None = None) -> Plan:
    """Simulate the sweep on fresh copies of its searches (the originals are not touched); with
    a ``budget``, one chunk of it, its trials added to ``record``."""
    cost = CostModel(device)
    sims = [copy.deepcopy(c) for c in combos]
    backend = SimulatedBackend(limits, sims, cost, parallelism, found=record)
    sweep = Sweep(sweep_dir=None, combos=sims, backend=backend, cost=cost,
                  options=Options(retries=0, pack=options.pack, time_budget=budget, write=False,
                                  mix_depths=options.mix_depths, max_replicas=options.max_replicas,
                                  pack_inits=options.pack_inits),
                  found=dict(found or {}), clock=lambda: backend.now)
    sweep.run()
    done = all(c.search.done for c in sims)
    return Plan(backend.jobs, sweep.rounds, backend.work, backend.now, device, backend.lines, backend.labels, done)


def plan_chunks(combos: list[Combo], limits: dict, device: str, options: Options, budget: float,
                found: dict | None = None, parallelism: int = 1, most: int = 200) -> list[Plan]:
    """The sweep in runs of ``budget`` seconds, each resuming what the runs before it trained:
    how many chunks (GPU sittings, SLURM jobs) a study takes. Stops at ``most`` chunks, or at a
    chunk that launches nothing (a job no chunk can run)."""
    found, chunks = dict(found or {}), []
    while len(chunks) < most:
        chunks.append(plan(combos, limits, device, options, dict(found), parallelism, budget, record=found))
        if chunks[-1].done or not chunks[-1].jobs:
            break
    return chunks
