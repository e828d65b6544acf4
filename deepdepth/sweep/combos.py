"""What a sweep is made of, free of Hydra: a combination (its overrides, its search, what its
composed config says), the sweeper's options, the backend that composes and launches jobs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from .cost import cost_kind
from .trials import Job, Outcome, combo_params, trial_key


class SweepError(ValueError):
    """A user-facing sweep error (the plugin prints it without a traceback)."""


@dataclass
class Composed:
    """What the sweeper needs to know of a combination's composed config."""
    model: Optional[str]
    lr: Optional[float]
    protocol: str = "correct"
    norm: bool = True
    steps: float = 0.0  # cost-model steps per replica (training steps + weighted test batches)
    train_steps: int = 0  # optimizer steps per replica
    init: Optional[str] = None  # model.init
    widths: Optional[tuple] = None  # model.widths where not the study's

    @property
    def kind(self) -> Optional[str]:
        """What the cost model calibrates by: the model, and its widths where they differ."""
        return cost_kind(self.model, self.widths)


class Backend(Protocol):
    parallelism: int  # jobs a launch runs at once

    def compose(self, overrides: list[str]) -> Composed: ...
    def launch(self, jobs: list[Job], start: int) -> list[Outcome]: ...


@dataclass
class Combo:
    index: int
    overrides: list[str]
    search: object  # deepdepth.search.Search
    info: Composed
    seconds: Optional[float] = None

    @property
    def key(self) -> frozenset:
        return trial_key(self.overrides, protocol_free=not self.info.norm)

    @property
    def params(self) -> dict:
        return combo_params(self.overrides)


@dataclass
class Options:
    retries: int = 1
    pack: bool = True
    time_budget: Optional[float] = None  # seconds; None: no budget
    write: bool = True  # False for a dry run
    mix_depths: bool = False  # a round's probes of one combination in one job (pays on a GPU only)
    max_replicas: int = 16  # per job
    pack_inits: bool = True  # combinations that differ only in model.init packed as replicas of one job
    fits: Optional[Callable[[int, list[int]], bool]] = None  # (combination, depths) -> fits the device
    only: Optional[frozenset] = None  # the combinations this run trains (None: all); the rest wait
