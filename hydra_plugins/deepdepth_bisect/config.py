"""Config of the bisect sweeper, registered as ``hydra/sweeper=bisect``: the typed options of
``deepdepth.sweep.options`` (one definition, read by the driver too) and the plugin's ``_target_``."""
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from deepdepth.sweep.options import SweeperOptions


@dataclass
class BisectSweeperConf(SweeperOptions):
    _target_: str = "hydra_plugins.deepdepth_bisect.bisect_sweeper.BisectSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="bisect", node=BisectSweeperConf,
                             provider="deepdepth")
