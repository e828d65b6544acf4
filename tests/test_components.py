"""The `logger`, `callbacks` and `trainer` config groups: loggers and added Lightning callbacks
instantiated from their `_target_`, a missing optional package refused in one line, the
Trainer's own logger/callbacks arguments pointed at the groups."""
import importlib.util
import re
from pathlib import Path

import pytest

from conftest import run_train, tiny
from deepdepth.trial.components import build_callbacks, build_loggers
from deepdepth.trial.config import ConfigError
from deepdepth.train import train


def test_tensorboard_logger_writes_event_files(compose, mnist_root, tmp_path):
    if not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
        pytest.skip("tensorboard is not installed (the test extra installs it)")
    result = train(compose("k=3", *tiny(mnist_root), "logger=tensorboard"), tmp_path, interactive=False)
    assert result["complete"] and list(tmp_path.glob("events.out.tfevents.*"))
    assert not (tmp_path / "metrics.csv").exists()  # only the loggers asked for


def test_several_loggers_by_a_list_and_save_dir_is_the_run_dir(compose, tmp_path):
    loggers = build_loggers(compose("logger=[csv,tensorboard]"), tmp_path)
    assert [type(lg).__name__ for lg in loggers] == ["CSVLogger", "TensorBoardLogger"]
    assert all(Path(lg.log_dir) == tmp_path for lg in loggers)
    assert build_loggers(compose("logger=none"), tmp_path) == []


def test_callback_added_by_config_without_any_logger(compose, mnist_root, tmp_path):
    cfg = compose("k=3", *tiny(mnist_root), "logger=none", "trainer.enable_checkpointing=true",
                  "+callbacks.ckpt._target_=lightning.pytorch.callbacks.ModelCheckpoint", "+callbacks.ckpt.save_last=true")
    assert [type(c).__name__ for c in build_callbacks(cfg)] == ["ModelCheckpoint"]
    result = train(cfg, tmp_path, interactive=False)
    assert result["complete"] and result["trainable"] is not None  # the study's own verdict is still there
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()  # in the run directory, not the working one
    assert not (tmp_path / "metrics.csv").exists()


@pytest.mark.parametrize("override, message", [
    ("+trainer.logger=false", "trainer.logger is set by deepdepth from the logger group: choose logger=csv"),
    ("+trainer.callbacks=[]", "add a Lightning callback with +callbacks.NAME._target_=CLASS"),
    ("+callbacks.ckpt.save_last=true", "callbacks.ckpt needs a _target_ (a Lightning callback class)"),
    ("+logger.mine.save_dir=x", "logger.mine needs a _target_ (a Lightning logger class)"),
])
def test_trainer_arguments_and_entries_without_a_class_point_to_the_groups(compose, tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose(override, "data.root=/nonexistent"), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("logger", ["wandb", "mlflow"])
def test_missing_logger_package_is_refused_before_training(compose, tmp_path, logger):
    if importlib.util.find_spec(logger):
        pytest.skip(f"{logger} is installed here")
    with pytest.raises(ConfigError, match=re.escape(f"needs the {logger} package, which is not installed: "
                                                    f"pip install 'deepdepth[{logger}]'")):
        train(compose(f"logger={logger}", "data.root=/nonexistent"), tmp_path)


@pytest.mark.slow
def test_missing_logger_package_is_one_line_on_the_command_line(tmp_path):
    if importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here")
    proc = run_train("logger=wandb", "data.root=/nonexistent", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("deepdepth: error: logger.wandb (lightning.pytorch.loggers.WandbLogger) needs the "
                                   "wandb package, which is not installed: pip install 'deepdepth[wandb]'")


@pytest.mark.parametrize("group, accelerator", [("cpu", "cpu"), ("gpu", "gpu"), ("debug", "auto")])
def test_trainer_options_extend_the_default(compose, group, accelerator):
    trainer = compose(f"trainer={group}").trainer
    assert trainer.accelerator == accelerator and trainer.max_epochs == 3 and trainer.devices is None
