"""Config of the bisect sweeper, registered as ``hydra/sweeper=bisect``."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class RefineConf:
    width: Optional[float] = None  # layers: more seeds until k50's interval is narrower (null: off)
    fraction: Optional[float] = None  # or (and) until it is narrower than this fraction of k50, e.g. 0.25
    max_seeds: int = 24  # per depth
    batch: int = 4  # seeds added per refinement probe
    seed_scheme: Optional[str] = None  # the added seeds' scheme (null: the sweep's seed_scheme)


@dataclass
class BisectSweeperConf:
    _target_: str = "hydra_plugins.deepdepth_bisect.bisect_sweeper.BisectSweeper"
    lower: int = 3  # smallest depth searched
    upper: Optional[int] = None  # largest depth searched (required: checked with the other options); never trained past
    step: int = 3  # depth grid spacing: k = lower, lower+step, ... <= upper
    parallel: int = 1  # probes per round
    seeds: int = 1  # trials per probe
    # independent: each trial's seed derived from (seed, depth, replica), no draws shared across
    # depths; shared: the original study's seeds seed .. seed+seeds-1 at every depth
    seed_scheme: str = "independent"
    rule: str = "majority"  # how seed verdicts combine: majority | all | any
    confirm: bool = True  # bisect: train k* and k*+step if the search did not
    # the search order: gallop (cost-aware, deepdepth.search.GallopSearch), bisect (the original
    # study's binary search), or {_target_: my.Search, ...} implementing deepdepth.search.Search
    search: Any = "gallop"
    hints: Any = None  # where a search starts: null, reference (the original study's k*), or {model: k}
    pack: bool = True  # one job per probe trains all its seeds (replicas=seeds)
    mix_depths: Any = "auto"  # a round's probes of a combination in one job: auto = on a GPU (masked layers waste a CPU)
    max_replicas: int = 16  # replicas per job at most
    pack_inits: bool = True  # combinations that differ only in model.init share jobs, one init per replica
    retries: int = 1  # relaunches of a failed trial
    time_budget: Optional[float] = None  # seconds: launch no job predicted to end later; rerun to resume
    dry_run: bool = False  # print the plan (jobs, rounds, replica-layer-steps, est. time); train nothing
    device: str = "auto"  # cost model: auto (this machine), cpu, h100, h200
    # limits a plan assumes, keyed as upper_for (a grid value, or a whole override such as
    # "optim.lr=0.03"); default: a combination's finished trials, else the reference k*
    plan_limits: Optional[Dict[str, int]] = field(default_factory=dict)
    wait_for_lock: bool = False  # another sweep holds the sweep dir: wait for it instead of refusing
    refine: RefineConf = field(default_factory=RefineConf)
    params: Optional[Dict[str, str]] = None  # extra sweep arguments, as in the basic sweeper
    upper_for: Optional[Dict[str, int]] = field(default_factory=dict)  # per-combination bounds by grid value, e.g. {resnet: 900}


ConfigStore.instance().store(group="hydra/sweeper", name="bisect", node=BisectSweeperConf,
                             provider="deepdepth")
