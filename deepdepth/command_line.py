"""Hydra's side of the command line, before any job: an override Hydra cannot parse is one line
with the way to quote it, and a plain multirun (the basic sweeper's grid) is checked as a whole
before its first job, as the bisect sweeper checks its own. Every sweep also tells its jobs
which process it is, so a job whose sweep is gone stops (``deepdepth.sweep.claims``)."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def unparsable_override(argv: list[str]) -> Optional[str]:
    """Why Hydra cannot parse one of ``argv``'s overrides (with the quoting that fixes it), or None."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    args, _ = get_args_parser().parse_known_args(argv)
    for override in args.overrides:
        try:
            OverridesParser.create().parse_overrides([override])
        except OverrideParseException as e:
            key, eq, value = override.partition("=")
            reason = str(e.message).split(":", 1)[0] if e.message else type(e).__name__
            fix = (f"quote its value, as '{key}=\"{value}\"' (Hydra reads an unquoted value as ASCII words)"
                   if eq else "see https://hydra.cc/docs/advanced/override_grammar/basic/")
            return f"Hydra cannot parse the override {override} ({reason}); {fix}"
    return None


def check_command_line(argv: list[str]) -> None:
    """Exit with one line (status 2) for an override Hydra cannot parse (HYDRA_FULL_ERROR=1: Hydra's own error)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return
    problem = unparsable_override(argv)
    if problem:
        print(f"deepdepth: error: {problem}", file=sys.stderr)
        sys.exit(2)


def grid_problems(config: DictConfig, memory: bool) -> list[str]:
    """Each combination of a basic sweeper's grid composed and checked as its job would check
    it: ``"overrides: why"`` for every one that would be refused."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .trial.config import validate

    loader = GlobalHydra.instance().config_loader()
    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    task = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(params + task)
    swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
    bad = []
    for overrides in BasicSweeper.split_arguments(parsed, None)[0]:
        label = " ".join(o for o in overrides if o.split("=", 1)[0] in swept) or " ".join(overrides)
        try:
            cfg = loader.load_sweep_config(config, list(overrides))
        except Exception as e:  # an unknown group option, a key that does not exist
            bad.append(f"{label}: does not compose: {str(e).strip().splitlines()[0]}")
            continue
        try:
            validate(cfg, memory=memory)
        except ValueError as e:
            bad.append(f"{label}: {e}")
    return bad


class MultirunChecks(Callback):
    """``hydra.callbacks`` entry of conf/train.yaml: the grid of a plain multirun checked before its
    first job (the bisect sweeper checks its own), and the sweep announced to its jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from .sweep.claims import announce

        announce()  # its jobs (in-process, joblib workers, other local launchers) stop when it is gone
        if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
            return
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        bad = grid_problems(config, memory="slurm" not in launcher.lower())  # a cluster's jobs run elsewhere
        if not bad:
            return
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            from .trial.config import ConfigError
            raise ConfigError("; ".join(bad))
        if len(bad) == 1:
            print(f"deepdepth: error: {bad[0]}; no job started (a grid is checked whole before its first job)",
                  file=sys.stderr)
        else:
            print("deepdepth: error: no job started; fix these combinations first:\n  " + "\n  ".join(bad),
                  file=sys.stderr)
        sys.exit(2)
