"""Config of the bisect sweeper, registered as ``hydra/sweeper=bisect``."""
from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class BisectSweeperConf:
    _target_: str = "hydra_plugins.deepdepth_bisect.bisect_sweeper.BisectSweeper"
    lower: int = 3  # smallest depth searched
    upper: int = MISSING  # largest depth searched (required)
    step: int = 3  # depth grid spacing: k = lower, lower+step, ... <= upper
    parallel: int = 1  # probes per round (1: the original binary search)
    seeds: int = 1  # trials per probe (seeds seed .. seed+seeds-1)
    rule: str = "majority"  # how seed verdicts combine: majority | all | any
    confirm: bool = True  # train k* and k*+step if the search did not
    pack: bool = True  # one job per probe trains all its seeds (replicas=seeds)
    retries: int = 1  # relaunches of a failed trial
    params: Optional[Dict[str, str]] = None  # extra sweep arguments, as in the basic sweeper
    upper_for: Optional[Dict[str, int]] = field(default_factory=dict)  # per-combination bounds by grid value, e.g. {resnet: 900}


ConfigStore.instance().store(group="hydra/sweeper", name="bisect", node=BisectSweeperConf,
                             provider="deepdepth")
