"""Where a sweep's trials were trained. A study resumed across machines (GPU sittings, a CPU
chunk, SLURM jobs) states per device its jobs, trials and training time, so every number can be
traced to the hardware that produced it. Training time is the jobs' own seconds summed; where
every job recorded when it finished, also the wall time they spanned (jobs that ran at once,
on two workers or two GPUs, count once). Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from ..sweep.cost import duration
from .load import Trial


@dataclass(frozen=True)
class DeviceShare:
    """How many of a sweep's jobs and trials one kind of device trained, and for how long."""
    device: str  # as result.json names it: "NVIDIA H200", "cpu" (``device_label``)
    jobs: int
    trials: int
    seconds: float  # training time summed over its jobs (a job's replicas share it)
    timed_jobs: int  # jobs that recorded their time
    wall: Optional[float] = None  # the time its jobs spanned, overlaps once (None: not every job recorded its end)


def device_shares(trials: list[Trial]) -> list[DeviceShare]:
    """Per device, the trials trained on it (a trial shared by another combination counts once,
    crashed ones not at all), most trials first."""
    by: dict[str, dict] = {}
    for t in trials:
        if t.status in ("shared", "failed") or t.shared_from is not None:
            continue
        share = by.setdefault(device_label(t.device), {"trials": 0, "jobs": {}})
        share["trials"] += 1
        if t.job is not None:
            share["jobs"][t.job] = (t.job_seconds, t.job_finished)
    out = [DeviceShare(d, len(s["jobs"]), s["trials"], sum(x for x, _ in s["jobs"].values() if x is not None),
                       sum(x is not None for x, _ in s["jobs"].values()), wall_seconds(list(s["jobs"].values())))
           for d, s in by.items()]
    return sorted(out, key=lambda s: (-s.trials, s.device))


def wall_seconds(jobs: list[tuple]) -> Optional[float]:
    """The length of the union of the jobs' [end - seconds, end] spans; None unless every job
    recorded both."""
    if not jobs or any(sec is None or not end for sec, end in jobs):
        return None
    spans = sorted((datetime.fromisoformat(end).timestamp() - sec, datetime.fromisoformat(end).timestamp())
                   for sec, end in jobs)
    total, (start, stop) = 0.0, spans[0]
    for a, b in spans[1:]:
        if a > stop:
            total, start = total + stop - start, a
        stop = max(stop, b)
    return total + stop - start


def device_label(device) -> str:
    """A recorded device as the report names it: a GPU job that recorded only its index says so."""
    if not device:
        return "device not recorded"
    return f"{device} (GPU model not recorded)" if str(device).startswith("cuda") else str(device)


def devices_line(trials: list[Trial]) -> str:
    """'Trained on: NVIDIA H200, 30 trials in 5 jobs (3m51s of job time, 2m10s wall); cpu, ...', or
    '' where no trial records its device."""
    shares = device_shares(trials)
    if all(s.device == device_label(None) for s in shares):
        return ""  # a sweep from before records named their device

    def one(s: DeviceShare) -> str:
        text = f"{s.device}, {s.trials} trials"
        if s.jobs:
            text += f" in {s.jobs} jobs"
            if s.timed_jobs:
                untimed = f", {s.jobs - s.timed_jobs} jobs untimed" if s.timed_jobs < s.jobs else ""
                wall = f", {duration(s.wall)} wall" if s.wall is not None else ""
                text += f" ({duration(s.seconds)} of job time{wall}{untimed})"
        return text

    return "Trained on: " + "; ".join(map(one, shares)) + "."
