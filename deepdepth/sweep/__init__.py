"""The sweep behind ``hydra/sweeper=bisect``, free of Hydra: trials and jobs (``trials``), the
sweep directory (``records``), a combination and the options (``combos``), the loop (``driver``)
and the probes it can skip (``moot``), the time budget (``budget``), the cost
model (``cost``), the dry-run plan (``plan``) and the one-sweep-per-directory lock (``lock``)."""
from .cost import CostModel
from .combos import Backend, Combo, Composed, Options, SweepError
from .driver import Sweep
from .plan import Plan, plan
from .records import scan
from .trials import Job, Outcome, Trial, canonical, seed_packs, trial_key

__all__ = ["Backend", "Combo", "Composed", "CostModel", "Job", "Options", "Outcome", "Plan", "Sweep",
           "SweepError", "Trial", "canonical", "plan", "scan", "seed_packs", "trial_key"]
