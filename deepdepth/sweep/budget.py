"""The time budget (``hydra.sweeper.time_budget``): which jobs of a round run, which wait for
the next run, which are split, and the line that says so.

Kept out of the sweep loop (``driver``) because it is one decision with its own rules: jobs go
as many at a time as run at once, each launch judged by the cost model rescaled by the jobs
before it; a job predicted to end past the budget waits while later, shorter ones still go;
one longer than the whole budget is split first (a mixed-depth pack by depth, else its
replicas halved), so no job is too long for every run and a resumed study never sticks on one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .cost import CostModel, duration
from .trials import Job

Replica = tuple[int, int, int]  # (depth, combination, seed), the order packs sort in


def split(job: Job, make_job: Callable[[list[Replica], float], Job]) -> list[Job]:
    """A job too long for the whole time budget, in smaller ones: a mixed-depth pack by depth
    (the shallow ones then cost their own depth), else its replicas halved; [] for one replica.
    ``make_job`` builds a job from (depth, combination, seed) replicas and the cost model's steps."""
    pack = sorted((k, ci, s) for ci, k, s in job.replicas)
    if len(pack) == 1:
        return []
    depths = sorted({k for k, _, _ in pack})
    parts = ([[m for m in pack if m[0] == k] for k in depths] if len(depths) > 1
             else [pack[:len(pack) // 2], pack[len(pack) // 2:]])
    return [make_job(part, job.steps) for part in parts]


@dataclass
class TimeBudget:
    seconds: float  # the budget of the whole run
    cost: CostModel  # the sweep's, rescaled by each finished job
    models: list[Optional[str]]  # combination -> its model (the cost model's kind)
    make_job: Callable[[list[Replica], float], Job]  # the sweep's: a job from replicas and steps

    def job_seconds(self, job: Job) -> float:
        return self.cost.job_seconds(job.k, len(job.seeds), job.steps, self.models[job.combo])

    def one_fits(self, job: Job) -> bool:
        """Does one replica at the job's shallowest depth fit the whole budget (else no split helps)?"""
        shallow = min(k for _, k, _ in job.replicas)
        return self.cost.job_seconds(shallow, 1, job.steps, self.models[job.combo]) <= self.seconds

    def launch(self, jobs: list[Job], at_once: int, elapsed: Callable[[], float],
               launch: Callable[[list[Job]], None],
               moot: Callable[[Job], bool] = lambda job: False) -> tuple[list[tuple[Job, float]], int]:
        """Launch (``launch``) at most ``at_once`` jobs at a time while they are predicted to end
        within the budget, dropping those the jobs before them made ``moot``; the jobs that wait,
        each with its predicted seconds, and how many launched."""
        queue, waiting, launched = list(jobs), [], 0
        while queue:
            batch, ends = [], elapsed()
            while queue and len(batch) < at_once:
                job = queue.pop(0)
                if moot(job):
                    continue
                seconds = self.job_seconds(job)
                pieces = split(job, self.make_job) if seconds > self.seconds and self.one_fits(job) else []
                if pieces:
                    queue[:0] = pieces
                elif ends + seconds / at_once <= self.seconds:
                    batch.append(job)
                    ends += seconds / at_once
                else:
                    waiting.append((job, seconds))
            launch(batch)
            launched += len(batch)
        return waiting, launched

    def say_waiting(self, waiting: list[tuple[Job, float]], launched: int, jobs_done: int, elapsed: float,
                    say: Callable[..., None]) -> None:
        """Name the jobs even one trial of which is too long, then why the run stops: nothing could
        launch, or the budget is reached (``launched``, ``jobs_done``: the jobs it launched, those
        a sweep finished before)."""
        budget = self.seconds
        never = [(job, seconds) for job, seconds in waiting if seconds > budget]  # even one trial is too long
        if never:
            names = sorted({f"{self.models[j.combo]} k={j.k}" for j, _ in never})
            say("bisect: %d jobs cannot run under the time budget of %s, not even one trial of each (%s); "
                "raise hydra.sweeper.time_budget", len(never), duration(budget),
                ", ".join(names[:4]) + (", ..." if len(names) > 4 else ""))
        if not launched and not jobs_done:
            say("bisect: the time budget of %s is smaller than one job (est. %s): nothing launched; "
                "raise hydra.sweeper.time_budget", duration(budget), duration(min(s for _, s in waiting)))
        else:
            say("bisect: time budget of %s reached (%s elapsed; %d jobs wait); "
                "rerun the same command to resume", duration(budget), duration(elapsed), len(waiting))
