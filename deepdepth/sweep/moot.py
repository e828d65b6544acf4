"""Which of a round's probes can no longer move their search, and a job's record of one replica."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .combos import Combo
from .trials import Job, Trial


@dataclass
class MootProbes:
    """Which of a round's probes can no longer move their search (``Search.moot``), from the
    trials the round has so far (``got``, filled as its waves finish). A trial one combination
    trains for others (``owner``) is moot only when it is moot for every combination that wants it."""
    combos: list[Combo]
    seeds: dict  # (combination, k) -> the seeds the round trains there
    got: dict  # (combination, k, seed) -> Trial
    owner: dict  # (trial key, k, seed) -> the combination that reads or trains it

    def _trial(self, ci: int, k: int, s: int) -> Optional[Trial]:
        t = self.got.get((ci, k, s))
        o = self.owner.get((self.combos[ci].key, k, s))
        return t if t is not None or o is None else self.got.get((o, k, s))

    def probe(self, ci: int, k: int) -> bool:
        search = self.combos[ci].search
        if not hasattr(search, "moot"):
            return False
        known = {}  # the combination's other probes of the round whose every trial is in
        for (cj, j), ss in self.seeds.items():
            if cj != ci or j == k:
                continue
            trials = [self._trial(ci, j, s) for s in ss]
            if all(t is not None for t in trials):
                known[j] = [t.trainable for t in trials]
        return search.moot(k, known)

    def trial(self, ci: int, k: int, s: int) -> bool:
        key = self.combos[ci].key
        wanting = [cj for (cj, j), ss in self.seeds.items() if j == k and s in ss and self.combos[cj].key == key]
        return bool(wanting) and all(self.probe(cj, k) for cj in wanting)

    def job(self, job: Job) -> bool:
        return all(self.trial(*r) for r in job.replicas)


def replica_record(records: list, i: int, k: int, seed: int, job_k) -> Optional[dict]:
    """Replica i's trial in a result's list (in replica order), checked by its depth and seed."""
    t = records[i] if i < len(records) and isinstance(records[i], dict) else {}
    return t if (t.get("k", job_k), t.get("seed")) == (k, seed) else None
