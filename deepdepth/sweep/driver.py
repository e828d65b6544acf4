"""The sweep loop, free of Hydra: one search per combination, rounds of packed jobs, retries,
resume, trials shared between combinations that train the same function, a time budget
(what fits it: ``budget``).

Each round gathers the open probes of every unfinished search, reads back trials already in
the sweep dir, trains each missing (trial key, depth, seed) once, retries failures, feeds the
verdicts back and rewrites the study's files. Under a time budget a search whose round has a
job waiting stops there for this run while the others go on; a probe its round's failures made
moot is not trained. A ``Backend`` composes and launches jobs (the Hydra plugin's launcher, or a
simulation for a dry run).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from .budget import TimeBudget
from .combos import Backend, Combo, Options, SweepError
from .cost import CostModel, calibrate_from_found, duration, teaches_cost
from .moot import MootProbes, replica_record
from .records import Finished, frontier_row, write_outputs, written_history_rows
from .trials import INIT, Job, Outcome, Trial, init_free, mixed_packs, override_key, seed_packs

log = logging.getLogger("deepdepth.sweep")


@dataclass
class Sweep:
    sweep_dir: Path
    combos: list[Combo]
    backend: Backend
    cost: CostModel
    options: Options = field(default_factory=Options)
    found: dict = field(default_factory=dict)  # (trial key, k, seed) -> Finished
    next_num: int = 0
    header: dict = field(default_factory=dict)  # written as frontier.json's "sweeper"
    clock: Callable[[], float] = time.perf_counter
    rescan: Optional[Callable[[], tuple[dict, int]]] = None  # re-read the sweep dir after a launcher crash
    # what is left of this run, simulated from where the sweep stands (``setup.forecast``): a Plan
    forecast: Optional[Callable[["Sweep"], object]] = None

    def __post_init__(self):
        self.history: list[Trial] = []
        self.jobs_done = self.work_done = self.rounds = 0
        self.stalled: set[int] = set()  # combinations whose round has a job waiting for the next run
        self.waiting: list[tuple[Job, float]] = []  # those jobs, each with its predicted seconds
        self.launched = 0  # jobs this run launched under its budget
        self.reported = 0  # jobs_done at the last progress line
        self.started = self.clock()
        self.say = log.info if self.options.write else (lambda *args: None)  # a plan is silent
        self.pack_group = self._pack_groups()
        calibrate_from_found(self.cost, self.found, {c.key: (c.info.steps, c.info.norm) for c in self.combos})
        for c in self.combos:  # a search that orders its probes by cost (``price``) gets this device's seconds
            inner = getattr(c.search, "base", c.search)
            if hasattr(inner, "price"):
                inner.price(self._round_seconds(c, inner), self._partly_trained(c, inner))
        # a resume replays the finished rounds; until it has as many trials as the last run
        # wrote, that run's files stay (a sweep killed in its first round must not blank them)
        self.written_rows = written_history_rows(self.sweep_dir) if self.options.write and self.found else 0

    def _pack_groups(self) -> dict[int, int]:
        """Combination -> the first combination it can share packed jobs with: those that set
        model.init and differ only there (with ``pack`` and ``pack_inits``), else itself."""
        first: dict[frozenset, int] = {}
        groups = {}
        for c in self.combos:
            alike = self.options.pack and self.options.pack_inits and c.info.init is not None and any(
                override_key(o) == INIT for o in c.overrides)
            groups[c.index] = first.setdefault(init_free(c.key), c.index) if alike else c.index
        return groups

    def _round_seconds(self, c: Combo, search) -> Callable[[int, int], float]:
        """``(deepest depth, probes) -> seconds`` of a round of ``c``'s probes, as this sweep packs
        them (one job on a GPU, a job per depth on a CPU); a lone probe whose trials this sweep
        found finished costs only its missing seeds, so a resume replays what it has first."""
        o = self.options

        def seconds(k: int, probes: int) -> float:
            seeds = search.seeds_for(k)
            if probes == 1:
                seeds = [s for s in seeds if (c.key, k, s) not in self.found]
            replicas = len(seeds) * (probes if probes > 1 else 1)
            per_job = seed_packs(range(replicas), o.pack, o.max_replicas) if o.mix_depths or probes == 1 else \
                probes * seed_packs(range(len(seeds)), o.pack, o.max_replicas)
            return sum(self.cost.job_seconds(k, len(p), c.info.steps, c.info.kind) for p in per_job)
        return seconds

    def _partly_trained(self, c: Combo, search) -> dict[int, Callable[[int], float]]:
        """Depths of ``c`` some of whose seeds this sweep found finished, each with the seconds of a
        round of it and a deeper probe packed into one job (a GPU's mixed packs; none on a CPU)."""
        o, out = self.options, {}
        if not (o.mix_depths and o.pack):
            return out
        for k in sorted({k for key, k, _ in self.found if key == c.key}):
            missing = sum((c.key, k, s) not in self.found for s in search.seeds_for(k))
            if 0 < missing < len(search.seeds):
                out[k] = lambda top, missing=missing: sum(
                    self.cost.job_seconds(top, len(p), c.info.steps, c.info.kind)
                    for p in seed_packs(range(missing + len(search.seeds)), True, o.max_replicas))
        return out

    # ---- the loop ------------------------------------------------------------------------------
    @property
    def out_of_time(self) -> bool:
        """Did the time budget leave a job for the next run?"""
        return bool(self.stalled)

    def run(self) -> list[dict]:
        """Rounds until every search is done or waits for the next run: a search whose round has a
        job the budget cannot fit stops there (``stalled``), the others go on in the time left."""
        while True:
            wanted = [(c.index, k) for c in self.combos if c.index not in self.stalled for k in c.search.next_probes()]
            for c in self.combos:
                if c.search.done and c.seconds is None:
                    c.seconds = round(self.clock() - self.started, 3)
            if not wanted:
                break
            if len(self.history) >= self.written_rows:
                self.write()
            if self._round(wanted):
                self.rounds += 1
                self._progress()
        self.write()
        if self.waiting:
            self._budget().say_waiting(self.waiting, self.launched, 0, self.clock() - self.started, self.say)
        return self.frontier()

    def _round(self, wanted: list[tuple[int, int]]) -> bool:
        """Train what the round needs and judge each search whose probes are all in; False when
        every one of them has a job waiting for the next run."""
        seeds = {(ci, k): self.combos[ci].search.seeds_for(k) for ci, k in wanted}
        got: dict[tuple, Trial] = {}
        owner: dict[tuple, int] = {}  # (trial key, k, seed) -> the combination that reads or trains it
        missing = []
        for (ci, k), ss in seeds.items():
            c = self.combos[ci]
            for s in ss:
                if (c.key, k, s) in owner:  # another combination's: shared below, counted once
                    continue
                owner[c.key, k, s] = ci
                hit: Optional[Finished] = self.found.get((c.key, k, s))
                if hit is not None:
                    got[ci, k, s] = Trial.from_result(ci, k, s, "resumed", hit.trial, hit.result,
                                                      job_num=hit.job_num, job_dir=str(hit.job_dir))
                else:
                    missing.append((ci, k, s))
        moot = MootProbes(self.combos, seeds, got, owner)
        missing = [m for m in missing if not moot.trial(*m)]  # a resume may know the round's failures
        waits: set[tuple] = set()  # (trial key, k, seed) of the jobs that wait for the next run
        if self.options.only is not None:  # trials no combination of this run's ``only`` wants wait
            wanted_by: dict[tuple, set] = {}
            for (ci, k), ss in seeds.items():
                for s in ss:
                    wanted_by.setdefault((self.combos[ci].key, k, s), set()).add(ci)
            waits = {(self.combos[ci].key, k, s) for ci, k, s in missing
                     if not wanted_by[self.combos[ci].key, k, s] & self.options.only}
            missing = [m for m in missing if (self.combos[m[0]].key, *m[1:]) not in waits]
        for attempt in range(self.options.retries + 1):
            if not missing:
                break
            jobs = self._jobs(missing)
            if self.options.time_budget is None:
                self._launch(jobs, attempt, got)
            else:
                waits |= {(self.combos[ci].key, k, s) for job in self._launch_within_budget(jobs, attempt, got, moot.job)
                          for ci, k, s in job.replicas}
            missing = [m for m in missing if m not in got and (self.combos[m[0]].key, *m[1:]) not in waits
                       and not moot.trial(*m)]
        stalled = {ci for (ci, k), ss in seeds.items() if any((self.combos[ci].key, k, s) in waits for s in ss)}
        self.stalled |= stalled
        for (ci, k), ss in seeds.items():  # trials another combination read or trained for this one
            c = self.combos[ci]
            for s in ss:
                o = owner.get((c.key, k, s))
                if (ci, k, s) not in got and o is not None and o != ci and (o, k, s) in got:
                    got[ci, k, s] = replace(got[o, k, s], combo=ci, status="shared", shared_from=o)
        skip = {probe for probe, ss in seeds.items() if probe[0] not in stalled
                and any((*probe, s) not in got for s in ss) and moot.probe(*probe)}  # before any is recorded
        for (ci, k), ss in seeds.items():
            search = self.combos[ci].search
            rows = [got.get((ci, k, s)) for s in ss]
            for r in rows:
                if r is not None:
                    r.round = search.rounds
                    self.history.append(r)
            if ci in stalled:  # its finished trials are in the history, without a verdict yet
                continue
            if (ci, k) in skip:
                self.say("bisect: %s k=%d skipped: a shallower probe of its round failed, so it cannot move k*",
                         self.combos[ci].info.model, k)
                search.skip(k)
                continue
            verdict = search.record(k, [r.trainable if r else None for r in rows])
            for r in self.history:
                if r.combo == ci and r.k == k and r.probe_verdict is None:
                    r.probe_verdict = verdict
        return any(ci not in stalled for ci, _ in seeds)

    def _jobs(self, missing: list[tuple[int, int, int]]) -> list[Job]:
        """Missing (combination, depth, seed) trials as jobs: per probe, contiguous seeds packed;
        with ``mix_depths`` all of a combination's probes of the round packed into one network;
        combinations that differ only in their init (``pack_group``) packed together."""
        groups: dict[tuple, list[tuple[int, int, int]]] = {}
        for ci, k, s in missing:
            g = self.pack_group[ci]
            groups.setdefault((g,) if self.options.mix_depths else (g, k), []).append((k, ci, s))
        jobs = []
        for (g, *_), members in groups.items():
            steps = self.combos[g].info.steps
            if len({ci for _, ci, _ in members}) == 1 and (not self.options.mix_depths
                                                         or len({k for k, _, _ in members}) == 1):
                ci = members[0][1]
                for k in sorted({k for k, _, _ in members}):
                    runs = seed_packs([s for kk, _, s in members if kk == k], self.options.pack,
                                      self.options.max_replicas)
                    jobs += [Job(ci, k, run, steps) for run in runs]
                continue
            packs = self._fitting(g, mixed_packs(members, self.options.max_replicas))
            jobs += [self._job(pack, steps) for pack in packs]
        return jobs

    def _job(self, pack: list[tuple[int, int, int]], steps: float) -> Job:
        """One job of (depth, combination, seed) replicas: depths listed if they differ, inits if
        the combinations do (they differ only there: one pack group)."""
        depths, combos, seeds = (list(x) for x in zip(*pack))
        several = len(set(combos)) > 1
        return Job(combos[0], max(depths), seeds, steps, depths if len(set(depths)) > 1 else None,
                   combos=combos if several else None,
                   inits=[self.combos[ci].info.init for ci in combos] if several else None)

    def _fitting(self, ci: int, packs: list[list[tuple]]) -> list[list[tuple]]:
        """Packs halved until each fits the device's memory (``Options.fits``); one replica always runs
        (a single trial too big is refused by the trial itself, with its estimate)."""
        fits, out = self.options.fits, []
        while packs:
            pack = packs.pop(0)
            if fits is None or len(pack) == 1 or fits(ci, [m[0] for m in pack]):
                out.append(pack)
            else:
                half = len(pack) // 2
                packs[:0] = [pack[:half], pack[half:]]
        return out

    def _budget(self) -> TimeBudget:
        return TimeBudget(self.options.time_budget, self.cost, [c.info.kind for c in self.combos], self._job)

    def _launch_within_budget(self, jobs: list[Job], attempt: int, got: dict,
                              moot: Callable[[Job], bool]) -> list[Job]:
        """Launch what fits the rest of the time budget (``budget.TimeBudget``), dropping a job the
        waves before it made moot; the jobs that wait for the next run."""
        waiting, launched = self._budget().launch(jobs, max(1, self.backend.parallelism),
                                                  lambda: self.clock() - self.started,
                                                  lambda batch: self._launch(batch, attempt, got), moot)
        self.waiting += waiting
        self.launched += launched
        return [job for job, _ in waiting]

    def _launch(self, jobs: list[Job], attempt: int, got: dict) -> None:
        if not jobs:
            return
        for job in jobs:
            c = self.combos[job.combo]
            job.overrides = c.overrides + job.launch_overrides()
            try:  # compose now, as the basic sweeper does: a broken config never reaches a launcher
                self.backend.compose(job.overrides)
            except ValueError as e:  # it composed at the start: a config file changed under the sweep
                raise SweepError(f"bisect sweeper: {' '.join(job.overrides)} {e}. It composed when the sweep "
                                 f"started: was a config file edited since? Finished trials are kept in "
                                 f"{self.sweep_dir}; rerun the same command to resume.") from None
        num, self.next_num = self.next_num, self.next_num + len(jobs)
        self.say("bisect: launching %d jobs (#%d-#%d), attempt %d", len(jobs), num, num + len(jobs) - 1, attempt + 1)
        outcomes = self.backend.launch(jobs, num)
        if self.rescan and any(o.error and o.error.startswith("launcher:") for o in outcomes):
            self.found.update(self.rescan()[0])
        for i, (job, out) in enumerate(zip(jobs, outcomes)):
            self._collect(job, out, attempt, num + i, got)

    def _collect(self, job: Job, out: Outcome, attempt: int, num: int, got: dict) -> None:
        if out.result is None:  # failed, or the launcher crashed: it may still have finished
            for ci, k, s in job.replicas:
                hit = self.found.get((self.combos[ci].key, k, s))
                if hit is not None and out.error and out.error.startswith("launcher:"):
                    got[ci, k, s] = Trial.from_result(ci, k, s, "ok", hit.trial, hit.result, attempt=attempt,
                                                      job_num=hit.job_num, job_dir=str(hit.job_dir))
                else:
                    self._fail(ci, k, s, attempt, out.error, num, out.job_dir)
            return
        result = out.result
        self.jobs_done += 1
        self.work_done += sum(k * self.combos[ci].info.train_steps for ci, k, _ in job.replicas)
        if teaches_cost(result, self.combos[job.combo].info.norm):
            self.cost.calibrate(job.k, len(job.seeds), job.steps, float(result["seconds"]),
                                self.combos[job.combo].info.kind)
        records = result.get("trials", [])
        for i, (ci, k, s) in enumerate(job.replicas):
            t = replica_record(records, i, k, s, result.get("k"))
            if result.get("debug"):
                self._fail(ci, k, s, attempt, "a debug run (fast_dev_run) is not a verdict", num, out.job_dir)
            elif t is not None:
                got[ci, k, s] = Trial.from_result(ci, k, s, "ok", t, result, attempt=attempt, job_num=num,
                                                  job_dir=out.job_dir)
            else:
                self._fail(ci, k, s, attempt, f"no trial for seed {s} at k={k} in the result", num, out.job_dir)

    def _fail(self, ci, k, seed, attempt, error, num, job_dir) -> None:
        self.history.append(Trial(ci, k, seed, "failed", round=self.combos[ci].search.rounds, attempt=attempt,
                                  error=str(error)[:1000], job_num=num, job_dir=job_dir))

    def _progress(self) -> None:
        """One line a round: this run's jobs done of those it now expects (done + the forecast's
        rest, so never more done than expected), and the forecast's wall time left. A round that
        trained nothing (a resume replays its finished rounds) says nothing."""
        if self.jobs_done == self.reported:
            return
        self.reported = self.jobs_done
        elapsed = self.clock() - self.started
        line = f"bisect: round {self.rounds}: {self.jobs_done} jobs done"
        if self.forecast is not None and self.options.write:
            try:
                rest = self.forecast(self)
            except Exception as e:  # a forecast is never worth a sweep
                log.debug("bisect: no forecast: %s: %s", type(e).__name__, e)
            else:
                line = (f"bisect: round {self.rounds}: {self.jobs_done} of ~{self.jobs_done + rest.jobs} jobs done"
                        f" this run, est. {duration(rest.seconds)} wall left")
        self.say("%s, %s elapsed", line, duration(elapsed))

    # ---- outputs -------------------------------------------------------------------------------
    def frontier(self) -> list[dict]:
        return [frontier_row(c, [t for t in self.history if t.combo == c.index]) for c in self.combos]

    def kept(self) -> list[Trial]:
        """Finished trials in the sweep dir that no search has asked for this run (a resume under
        other options, e.g. a higher ``refine.max_seeds``, replays a different path): recorded as
        ``kept`` so history.csv and the report hold every finished trial, read again if asked."""
        asked = {(self.combos[t.combo].key, t.k, t.seed) for t in self.history}
        out = []
        for (key, k, s), hit in sorted(self.found.items(), key=lambda kv: (kv[1].job_num, kv[0][1], kv[0][2])):
            if (key, k, s) in asked:
                continue
            first = None
            for c in self.combos:
                if c.key == key:
                    status, shared = ("kept", None) if first is None else ("shared", first)
                    out.append(Trial.from_result(c.index, k, s, status, hit.trial, hit.result, shared_from=shared,
                                                 job_num=hit.job_num, job_dir=str(hit.job_dir)))
                    first = c.index if first is None else first
        return out

    def write(self) -> None:
        if not self.options.write:
            return
        doc = {"sweeper": self.header, "sweep_dir": str(self.sweep_dir), "frontier": self.frontier(),
               "history": [t.row(self.combos[t.combo].params) for t in self.history + self.kept()],
               "stopped": "time budget" if self.out_of_time else None}
        write_outputs(self.sweep_dir, doc)
