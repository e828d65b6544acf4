"""BisectSweeper: a depth search per grid combination, driven through any Hydra launcher.

A thin plugin, as Hydra's own sweepers are: Hydra's plugin scan imports this module, so it
holds only the class; the implementation (``_impl``, skipped by the scan) is imported when a
sweep starts, and the search itself is ``deepdepth.search`` (chosen by ``hydra.sweeper.search``).
"""
from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class BisectSweeper(Sweeper):
    def __init__(self, **options: Any) -> None:
        from deepdepth.sweep.options import SweeperOptions

        self.options = SweeperOptions.from_mapping(options)  # BisectSweeperConf's fields, typed
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from ._impl import run_sweep

        return run_sweep(self, arguments)
