"""The bisect sweeper's options, typed from the plugin's config (``hydra/sweeper=bisect``, whose
node is this dataclass with its ``_target_``) to the driver, and checked in one place."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional

from ..search.gallop import ORDERS
from ..seeds import SEED_SCHEMES
from .combos import SweepError


@dataclass
class RefineOptions:
    width: Optional[float] = None  # layers: more seeds until k50's interval is narrower (null: off)
    fraction: Optional[float] = None  # or (and) until it is narrower than this fraction of k50, e.g. 0.25
    max_seeds: int = 24  # per depth
    batch: int = 4  # seeds added per refinement probe
    seed_scheme: Optional[str] = None  # the added seeds' scheme (null: the sweep's seed_scheme)


@dataclass
class SweeperOptions:
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
    # gallop's probe order: gallop (its phases) or cost (least expected device seconds under the cost
    # model, deepdepth.search.order); one for every combination, or keyed as upper_for, e.g. {resnet: cost}
    order: Any = "gallop"
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
    refine: RefineOptions = field(default_factory=RefineOptions)
    params: Optional[Dict[str, str]] = None  # extra sweep arguments, as in the basic sweeper
    # combinations beyond the params grid, each a list of overrides applied to the grid's first
    # combination, e.g. [[model.init=fan_in:0.7, "model.widths=[2,4,8]"]]: one more point, not a product
    extra_combinations: Optional[List[List[str]]] = field(default_factory=list)
    upper_for: Optional[Dict[str, int]] = field(default_factory=dict)  # per-combination bounds by grid value, e.g. {resnet: 900}
    # train only the combinations matching one of these, keyed as upper_for (e.g. [cnn_tanh]); the
    # others are read back, train nothing and wait, so a study's directory can be worked on in parts
    only: Optional[List[str]] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, raw: Mapping) -> "SweeperOptions":
        """From the plugin's keyword arguments (plain values or OmegaConf containers)."""
        def plain(x):
            if isinstance(x, Mapping):
                return {str(k): plain(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)) or type(x).__name__ == "ListConfig":
                return [plain(v) for v in x]
            return x
        known = {f.name for f in fields(cls)}
        values = {k: plain(v) for k, v in raw.items() if k in known}
        values["refine"] = RefineOptions(**(values.get("refine") or {}))
        return cls(**values)

    def header(self) -> dict:
        """What frontier.json records of the options (not the grid's own parts)."""
        return {k: v for k, v in asdict(self).items() if k not in ("params", "upper_for", "plan_limits", "extra_combinations", "only")}

    def check(self) -> None:
        """The sweeper's own numbers in range, one line naming the first that is not."""
        def whole(v, least):
            return isinstance(v, int) and not isinstance(v, bool) and v >= least

        def positive(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf

        if self.upper is None:  # the one option without a default: the sweep's bound
            raise SweepError("bisect sweeper: hydra.sweeper.upper (the deepest depth searched, never trained past) "
                             "is not set; add e.g. hydra.sweeper.upper=90")
        r = self.refine
        orders = list(self.order.values()) if isinstance(self.order, Mapping) else [self.order]
        for ok, key, value, want in (
                (whole(self.retries, 0), "retries", self.retries, "an integer >= 0"),
                (whole(self.seeds, 1), "seeds", self.seeds, "an integer >= 1"),
                (whole(self.parallel, 1), "parallel", self.parallel, "an integer >= 1"),
                (whole(self.max_replicas, 1), "max_replicas", self.max_replicas, "an integer >= 1"),
                (self.time_budget is None or positive(self.time_budget), "time_budget", self.time_budget,
                 "a finite number of seconds > 0, or null"),
                (r.width is None or positive(r.width), "refine.width", r.width, "a finite number of layers > 0, or null"),
                (r.fraction is None or positive(r.fraction), "refine.fraction", r.fraction, "a fraction of k50 > 0, or null"),
                (whole(r.max_seeds, 1), "refine.max_seeds", r.max_seeds, "an integer >= 1"),
                (whole(r.batch, 1), "refine.batch", r.batch, "an integer >= 1"),
                (all(o in ORDERS for o in orders), "order", self.order,
                 f"one of {list(ORDERS)}, or a mapping of them keyed as upper_for"),
                (self.seed_scheme in SEED_SCHEMES, "seed_scheme", self.seed_scheme, f"one of {list(SEED_SCHEMES)}"),
                (r.seed_scheme in (None, *SEED_SCHEMES), "refine.seed_scheme", r.seed_scheme,
                 f"one of {list(SEED_SCHEMES)} or null")):
            if not ok:
                raise SweepError(f"bisect sweeper: hydra.sweeper.{key} must be {want}, got {value!r}")
