"""Test-only launcher (on the path only in tests/test_sweeper.py): the basic launcher, except
that its first launch() of two or more jobs runs one job and then raises, as submitit's does
when SLURM kills a job of the batch."""
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore


@dataclass
class FlakyLauncherConf:
    _target_: str = "hydra_plugins.flaky_launcher.FlakyLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="flaky", node=FlakyLauncherConf)


class FlakyLauncher(BasicLauncher):
    def launch(self, job_overrides, initial_job_idx):
        marker = Path(str(self.config.hydra.sweep.dir)) / "flaky.raised"
        if marker.exists() or len(job_overrides) < 2:
            return super().launch(job_overrides, initial_job_idx)
        marker.touch()
        super().launch(job_overrides[:1], initial_job_idx)
        raise RuntimeError("simulated: the cluster killed the batch")
