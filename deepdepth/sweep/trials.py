"""What a sweep records: trials, the jobs that train them, and the keys that find them again."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

from ..study import RUNTIME_KEYS

OWNED = ("k", "seed", "replicas", "depths", "seeds", "inits")  # set by the sweeper per job, never part of a combination
RUNTIME = RUNTIME_KEYS  # not part of a trial's identity (``deepdepth.study``)
INIT = "model.init"  # combinations that differ only here train packed, one init per replica
SETTINGS = ("model", "lr", "protocol", "epochs", "criterion", "threshold", "train_samples", "test_samples")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def unescape(value: str) -> str:
    """A Hydra override value without its escapes (``fan_in\\:0.5`` -> ``fan_in:0.5``)."""
    return re.sub(r"\\(.)", r"\1", value)


def canonical(override: str) -> str:
    """An override with a numeric value normalised, so ``optim.lr=0.010`` resumes ``optim.lr=1e-2``,
    and Hydra's escapes dropped, so ``model.init=fan_in\\:0.5`` is ``model.init=fan_in:0.5``."""
    key, eq, value = override.partition("=")
    if not eq:
        return override
    value = unescape(value)
    try:
        return f"{key}={float(value)!r}"
    except ValueError:
        return f"{key}={value}"


def with_init(overrides: Iterable[str], init: str) -> list[str]:
    """The overrides of the combination a replica of an init-packed job belongs to."""
    return [o for o in overrides if override_key(o) != INIT] + [f"{INIT}={init}"]


def init_free(key: frozenset) -> frozenset:
    """A trial key without its init: combinations alike in it can share a packed job."""
    return frozenset(o for o in key if override_key(o) != INIT)


def trial_key(overrides: Iterable[str], protocol_free: bool = False) -> frozenset:
    """The identity of a combination's trials. Without BatchNorm both protocols train the same
    function, so ``protocol_free`` drops the protocol: those trials are trained once and shared."""
    return frozenset(canonical(o) for o in overrides if override_key(o) not in OWNED + RUNTIME
                     and not (protocol_free and override_key(o) == "protocol"))


def combo_params(overrides: list[str]) -> dict:
    """A combination's grid parameters: its overrides, less the keys that do not change a trial."""
    return {override_key(o): o.split("=", 1)[1] for o in overrides if override_key(o) not in RUNTIME}


def seed_packs(seeds: Iterable[int], pack: bool, max_replicas: int = 16) -> list[list[int]]:
    """Seeds grouped into jobs: sorted, at most ``max_replicas`` a job when packing (a contiguous
    pack launches as ``seed=s replicas=n``, any other lists its seeds), else one a job."""
    ordered = sorted(seeds)
    size = max(1, max_replicas) if pack else 1
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def last(xs) -> Optional[float]:
    return xs[-1] if isinstance(xs, list) and xs else None


@dataclass
class Trial:
    """One seed at one depth for one combination: a history row of frontier.json/history.csv."""
    combo: int
    k: int
    seed: int
    status: str  # ok | resumed | kept (found, not asked for this run) | shared (another combination's) | failed
    round: int = 0
    attempt: int = 0
    trainable: Optional[bool] = None
    diverged: Optional[bool] = None
    train_err: Optional[float] = None
    test_err: Optional[float] = None
    probe_verdict: Optional[bool] = None  # the whole probe's verdict (its seeds under the rule), not this trial's
    error: Optional[str] = None
    job_num: Optional[int] = None
    job_dir: Optional[str] = None
    shared_from: Optional[int] = None
    device: Optional[str] = None  # what the job trained on ("NVIDIA H200", "cpu"): a study may span machines
    job_seconds: Optional[float] = None  # the whole job's training time (shared by its replicas)
    settings: dict = field(default_factory=dict)  # SETTINGS read from the job's result.json

    @classmethod
    def from_result(cls, combo: int, k: int, seed: int, status: str, trial: dict, result: dict,
                    **kw) -> "Trial":
        return cls(combo, k, seed, status, trainable=trial.get("trainable"), diverged=trial.get("diverged"),
                   train_err=last(trial.get("train_err")), test_err=last(trial.get("test_err")),
                   device=result.get("device_name") or result.get("device"), job_seconds=result.get("seconds"),
                   settings={s: result.get(s) for s in SETTINGS}, **kw)

    def row(self, params: dict) -> dict:
        """A history row: the combination's parameters win over the job's settings, so a trial
        shared by both protocols of a BatchNorm-free variant carries each row's own protocol."""
        out = asdict(self)
        settings = {k: v for k, v in out.pop("settings").items() if k not in params}
        return {"combo": self.combo, "params": params, **settings, **out}


@dataclass
class Job:
    """One launch: trials packed as replicas, ``seeds[i]`` at ``depths[i]`` (one depth for all,
    ``k``, unless the pack mixes depths) of combination ``combos[i]`` with init ``inits[i]`` (all
    of ``combo`` unless the pack holds combinations that differ only in their init)."""
    combo: int
    k: int
    seeds: list[int]
    steps: float = 0.0  # cost-model steps per replica, from the composed config
    depths: Optional[list[int]] = None  # per replica, for a mixed-depth pack
    overrides: list[str] = field(default_factory=list)
    combos: Optional[list[int]] = None  # per replica, for an init-packed job
    inits: Optional[list[str]] = None  # per replica, with combos

    @property
    def members(self) -> list[tuple[int, int]]:
        """(depth, seed) of each replica."""
        return list(zip(self.depths or [self.k] * len(self.seeds), self.seeds))

    @property
    def replicas(self) -> list[tuple[int, int, int]]:
        """(combination, depth, seed) of each replica."""
        combos = self.combos or [self.combo] * len(self.seeds)
        return [(ci, k, s) for ci, (k, s) in zip(combos, self.members)]

    def launch_overrides(self) -> list[str]:
        """The job's own overrides: a contiguous single-depth pack as ``seed=s replicas=n``, any
        other with every replica's seed (and depth, and init) listed."""
        head = [f"k={self.k}", f"seed={self.seeds[0]}", f"replicas={len(self.seeds)}"]
        contiguous = self.seeds == list(range(self.seeds[0], self.seeds[0] + len(self.seeds)))
        if self.depths is None and self.inits is None and contiguous:
            return head
        lists = ["seeds=[" + ",".join(map(str, self.seeds)) + "]"]
        if self.depths is not None:
            lists.insert(0, "depths=[" + ",".join(map(str, self.depths)) + "]")
        if self.inits is not None:
            lists.append("inits=[" + ",".join(f"'{i}'" for i in self.inits) + "]")
        return head + lists


def mixed_packs(members: list[tuple], max_replicas: int) -> list[list[tuple]]:
    """(depth, ...) tuples of a round grouped into packs of at most ``max_replicas``, deepest
    first, so each pack's depth (its cost) is as small as it can be."""
    ordered = sorted(members, reverse=True)
    return [sorted(ordered[i:i + max_replicas]) for i in range(0, len(ordered), max_replicas)]


@dataclass
class Outcome:
    """What a launcher gave back for one job: the result dict, or an error message."""
    result: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    job_dir: Optional[str] = None
